//! Lecture step 3, checking the slope: always check the analytic gradient against the
//! numeric one. The lecture's MLP (784 → 256 ReLU → 10) on real digits, checked tensor by
//! tensor: the report's table, the kinks it excused, and how much slower the numeric side is.
//!
//! ```text
//! cargo run --release --example gradient_check
//! cargo run --release --example gradient_check -- --sample 0 --hidden 16   # every coordinate
//! cargo run --release --example gradient_check -- --help
//! ```

mod common;

use std::time::Instant;

use clap::ValueEnum;
use common::prelude::*;
use downhill::gradcheck::{numeric_partial, Difference, GradCheck};

/// The MLP's analytic gradient checked against numeric differences, tensor by tensor.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Training digits the loss is taken over
    #[arg(long, default_value_t = 16)]
    examples: usize,
    #[command(flatten)]
    net: HiddenArgs,
    /// Coordinates to check, drawn at random (0: every coordinate)
    #[arg(long, default_value_t = 2000)]
    sample: usize,
    /// The finite difference
    #[arg(long, value_enum, default_value_t = DifferenceArg::Central)]
    difference: DifferenceArg,
    /// The difference's step (default: the library's choice for the difference and f64)
    #[arg(long)]
    h: Option<f64>,
    /// Threads for the numeric side of the check
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[command(flatten)]
    run: RunArgs,
}

/// `--difference`.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum DifferenceArg {
    /// (f(w + h) − f(w)) / h
    Forward,
    /// (f(w + h) − f(w − h)) / 2h
    Central,
    /// The five-point stencil, error O(h⁴)
    FivePoint,
}

impl From<DifferenceArg> for Difference {
    fn from(d: DifferenceArg) -> Self {
        match d {
            DifferenceArg::Forward => Difference::Forward,
            DifferenceArg::Central => Difference::Central,
            DifferenceArg::FivePoint => Difference::FivePoint,
        }
    }
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    params: usize,
    checked: usize,
    max_rel_error: f64,
    mean_rel_error: f64,
    worst_group: Option<String>,
    kinks: usize,
    verdict: String,
    passed: bool,
    loss_seconds: f64,
    analytic_seconds: f64,
    check_seconds: f64,
    numeric_seconds_per_coordinate: f64,
    loss_evaluations_per_coordinate: f64,
    numeric_full_seconds: f64,
    numeric_over_analytic: f64,
}

/// The median of some timings, in seconds.
fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mnist = cli.data.load::<f64>()?;
    let data = mnist.train.take(cli.examples);
    let mut model = cli.net.mlp(&data, cli.run.seed)?;
    let activation = Activation::from(cli.net.activation);
    model.set_threads(1)?;
    let batch = data.all();
    let n = model.num_params();

    let difference = Difference::from(cli.difference);
    let mut check = GradCheck::new()
        .difference(difference)
        .threads(cli.threads)?;
    if let Some(h) = cli.h {
        check = check.h(h)?;
    }
    if cli.sample > 0 {
        check = check.sample(cli.sample, cli.run.seed)?;
    }

    let t0 = Instant::now();
    let report = check.run_parallel(&mut model, &batch)?;
    let check_seconds = t0.elapsed().as_secs_f64();

    // What one loss evaluation (a forward pass), one analytic gradient and one numeric
    // partial derivative cost, measured in turn on this thread: alternating keeps a shared
    // machine's drift out of the ratios.
    let mut grad = vec![0.0; n];
    let mut times = [vec![], vec![], vec![]];
    for r in 0..41 {
        let t0 = Instant::now();
        model.loss(&batch)?;
        times[0].push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        model.loss_and_grad(&batch, &mut grad)?;
        times[1].push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        numeric_partial(&mut model.on(&batch), r * 4969 % n, report.h, difference)?;
        times[2].push(t0.elapsed().as_secs_f64());
    }
    let [loss_seconds, analytic_seconds, per_coordinate] = times.map(median);

    println!(
        "MLP {:?} ({activation}), {n} parameters, {} digits, f64, {:?} differences",
        model.widths(),
        data.len(),
        difference
    );
    println!("{report}");
    for c in report.kink_coordinates().take(5) {
        println!(
            "  kink at parameter {} ({}): analytic {:.6e}, numeric {:.6e} — the probe straddled a corner",
            c.index, report.groups[c.group].name, c.analytic, c.numeric
        );
    }

    // The lecture's point: the numeric gradient costs a loss evaluation per coordinate (two
    // for centred differences), the analytic one about three forward passes in all. (One
    // forward difference on its own also evaluates f(w), which a whole gradient shares.)
    let evaluations = per_coordinate / loss_seconds;
    let expected = difference.evaluations() + usize::from(difference == Difference::Forward);
    println!(
        "the check of {} coordinates took {check_seconds:.2} s",
        report.checked()
    );
    let full_numeric = per_coordinate * n as f64;
    println!(
        "one loss (forward pass): {:.1} µs; analytic gradient: {:.1} µs",
        loss_seconds * 1e6,
        analytic_seconds * 1e6
    );
    println!(
        "numeric: {:.1} µs per coordinate = {evaluations:.2} loss evaluations ({expected} expected); \
         all {n} coordinates would take {full_numeric:.1} s — {:.0}× the analytic gradient",
        per_coordinate * 1e6,
        full_numeric / analytic_seconds
    );
    if cli.run.json {
        let json = Report {
            params: n,
            checked: report.checked(),
            max_rel_error: report.max_rel_error,
            mean_rel_error: report.mean_rel_error,
            worst_group: report.worst_group().map(str::to_string),
            kinks: report.kinks.len(),
            verdict: report.verdict().to_string(),
            passed: report.passed(),
            loss_seconds,
            analytic_seconds,
            check_seconds,
            numeric_seconds_per_coordinate: per_coordinate,
            loss_evaluations_per_coordinate: evaluations,
            numeric_full_seconds: full_numeric,
            numeric_over_analytic: full_numeric / analytic_seconds,
        };
        cli::print_json(&cli.data, &json)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
