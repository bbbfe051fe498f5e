//! Lecture step 3, following the slope: the numeric gradient of a linear classifier's loss,
//! one coordinate at a time — `(f(W + h) − f(W)) / h` as on the slide — next to the
//! analytic gradient, how long each takes for the whole vector, and the gradient check (in
//! f64) that says the analytic one is right.
//!
//! ```text
//! cargo run --release --example numeric_gradient -- --examples 200
//! cargo run --release --example numeric_gradient -- --help
//! ```

mod common {
    pub mod cli;
    pub mod data;
}

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use common::cli::{self, Failure};
use common::data::DataArgs;
use downhill::gradcheck::{numeric_gradient, Difference, GradCheck};
use downhill::prelude::*;
use serde::Serialize;

/// The numeric gradient next to the analytic one, and the check that they agree.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Training digits the loss is taken over
    #[arg(long, default_value_t = 200)]
    examples: usize,
    /// Step of the slide's forward difference
    #[arg(long, default_value_t = 1e-5)]
    h: f64,
    /// Step of the gradient check's five-point difference
    #[arg(long, default_value_t = 1e-3)]
    check_h: f64,
    /// Seed of the classifier's random weights
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object as the last line
    #[arg(long)]
    json: bool,
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    example: &'static str,
    data: String,
    examples: usize,
    params: usize,
    max_rel_error: f64,
    max_abs_error: f64,
    numeric_seconds: f64,
    analytic_seconds: f64,
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}

fn show(v: &[f64]) -> String {
    let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:.4}")).collect();
    format!("[{}, ...]", head.join(", "))
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mnist = cli.data.load::<f64>()?;
    let data = mnist.train.take(cli.examples);
    let mut model = LinearClassifier::<f64>::builder(data.num_features(), 10)
        .seed(cli.seed)
        .build()?;
    let batch = data.all();
    let n = model.num_params();

    let t0 = Instant::now();
    let mut analytic = vec![0.0; n];
    let loss = model.loss_and_grad(&batch, &mut analytic)?;
    let analytic_seconds = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let mut numeric = vec![0.0; n];
    numeric_gradient(
        &mut model.on(&batch),
        cli.h,
        Difference::Forward,
        &mut numeric,
    )?;
    let numeric_seconds = t0.elapsed().as_secs_f64();

    // Show coordinates where the slope is not zero: the first weights belong to the corner
    // pixel, which is black in every digit.
    let start = analytic.iter().position(|g| g.abs() > 1e-6).unwrap_or(0);
    println!("loss at W = randn·1e-4 on {} digits: {loss:.6}", data.len());
    println!("{n} parameters; showing from parameter {start}");
    println!(
        "numeric  dW = {}  ({numeric_seconds:.3} s)",
        show(&numeric[start..])
    );
    println!(
        "analytic dW = {}  ({analytic_seconds:.5} s)",
        show(&analytic[start..])
    );
    println!(
        "the analytic gradient was {:.0}× faster",
        numeric_seconds / analytic_seconds.max(1e-9)
    );

    // The check itself uses the five-point difference: its O(h⁴) error resolves even the
    // coordinates whose gradient nearly cancels over the batch, where the centred
    // difference's O(h²) term would dominate the comparison.
    let report = GradCheck::new()
        .h(cli.check_h)?
        .difference(Difference::FivePoint)
        .run(&mut model, &batch)?;
    println!("gradient check (five-point differences): {report}");
    if cli.json {
        cli::print_json(&Report {
            example: "numeric_gradient",
            data: cli.data.dir(),
            examples: data.len(),
            params: n,
            max_rel_error: report.max_rel_error,
            max_abs_error: report.max_abs_error,
            numeric_seconds,
            analytic_seconds,
        })?;
    }
    Ok(())
}
