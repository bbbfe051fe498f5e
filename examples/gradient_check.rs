//! Always check the analytic gradient against the numeric one. The lecture's MLP
//! (784 → 256 ReLU → 10) on real digits, checked tensor by tensor: the report's table, the
//! kinks it excused, and how much slower the numeric side is.
//!
//! ```text
//! cargo run --release --example gradient_check
//! cargo run --release --example gradient_check -- --sample 0 --hidden 16   # every coordinate
//! ```

mod common;

use std::time::Instant;

use common::{fail, Args, Json};
use downhill::gradcheck::{numeric_partial, Difference, GradCheck};
use downhill::prelude::*;

const USAGE: &str = "usage: gradient_check [--data DIR] [--examples 16] [--hidden 256[,128...]] \
[--activation relu|sigmoid|tanh] [--sample 2000 (0: every coordinate)] [--difference central|forward|five-point] \
[--h H] [--threads 1] [--seed 0] [--json]";

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "data",
            "examples",
            "hidden",
            "activation",
            "sample",
            "difference",
            "h",
            "threads",
            "seed",
        ],
        &["json"],
    );
    if let Err(e) = run(&args) {
        fail(e);
    }
}

/// The median of some timings, in seconds.
fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn run(args: &Args) -> Result<()> {
    let mnist = common::load_data::<f64>(args);
    let data = mnist.train.take(args.get("examples", 16));
    let activation: Activation = args.get("activation", Activation::Relu);
    let mut builder = Mlp::<f64>::builder(data.num_features())
        .classes(10)
        .seed(args.get("seed", 0));
    for w in args.string("hidden").unwrap_or("256").split(',') {
        let w: usize = w
            .trim()
            .parse()
            .unwrap_or_else(|e| fail(format!("--hidden {w}: {e}")));
        builder = builder.hidden(w, activation);
    }
    let mut model = builder.build()?;
    model.set_threads(1)?;
    let batch = data.all();
    let n = model.num_params();

    let difference = match args.string("difference").unwrap_or("central") {
        "central" => Difference::Central,
        "forward" => Difference::Forward,
        "five-point" => Difference::FivePoint,
        other => fail(format!(
            "--difference {other}: expected central, forward or five-point"
        )),
    };
    let mut check = GradCheck::new()
        .difference(difference)
        .threads(args.get("threads", 1))?;
    if let Some(h) = args.string("h") {
        check = check.h(h.parse().unwrap_or_else(|e| fail(format!("--h {h}: {e}"))))?;
    }
    let sample: usize = args.get("sample", 2000);
    if sample > 0 {
        check = check.sample(sample, args.get("seed", 0))?;
    }

    let t0 = Instant::now();
    let report = check.run_parallel(&mut model, &batch)?;
    let check_seconds = t0.elapsed().as_secs_f64();

    // What one loss evaluation (a forward pass), one analytic gradient and one numeric
    // partial derivative cost, measured in turn on this thread: alternating keeps a shared
    // machine's drift out of the ratios.
    let mut grad = vec![0.0; n];
    let f0 = model.loss(&batch)?;
    let mut times = [vec![], vec![], vec![]];
    for r in 0..41 {
        let t0 = Instant::now();
        model.loss(&batch)?;
        times[0].push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        model.loss_and_grad(&batch, &mut grad)?;
        times[1].push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        numeric_partial(&mut model, &batch, r * 4969 % n, report.h, difference, f0)?;
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
    // for centred differences), the analytic one about three forward passes in all.
    let evaluations = per_coordinate / loss_seconds;
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
        "numeric: {:.1} µs per coordinate = {evaluations:.2} loss evaluations ({} expected); \
         all {n} coordinates would take {full_numeric:.1} s — {:.0}× the analytic gradient",
        per_coordinate * 1e6,
        difference.evaluations(),
        full_numeric / analytic_seconds
    );
    if args.switch("json") {
        Json::default()
            .str("example", "gradient_check")
            .num("params", n as f64)
            .num("checked", report.checked() as f64)
            .num("max_rel_error", report.max_rel_error)
            .num("mean_rel_error", report.mean_rel_error)
            .str("worst_group", report.worst_group().unwrap_or(""))
            .num("kinks", report.kinks.len() as f64)
            .str("verdict", &report.verdict().to_string())
            .num("passed", f64::from(u8::from(report.passed())))
            .num("loss_seconds", loss_seconds)
            .num("analytic_seconds", analytic_seconds)
            .num("check_seconds", check_seconds)
            .num("numeric_seconds_per_coordinate", per_coordinate)
            .num("loss_evaluations_per_coordinate", evaluations)
            .num("numeric_full_seconds", full_numeric)
            .num("numeric_over_analytic", full_numeric / analytic_seconds)
            .print();
    }
    Ok(())
}
