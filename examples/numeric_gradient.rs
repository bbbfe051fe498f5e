//! Approach 3: following the slope. The numeric gradient of a linear classifier's loss,
//! one coordinate at a time — `(f(W + h) − f(W)) / h` as on the slide — next to the analytic
//! gradient, how long each takes for the whole vector, and the gradient check (in f64) that says the analytic one is right.
//!
//! ```text
//! cargo run --release --example numeric_gradient -- --examples 200
//! ```

mod common;

use std::time::Instant;

use common::{fail, Args, Json};
use downhill::gradcheck::{numeric_gradient, Difference, GradCheck};
use downhill::prelude::*;

const USAGE: &str = "usage: numeric_gradient [--data DIR] [--examples 200] [--h 1e-5] [--check-h 1e-3] [--seed 0] [--json]";

fn main() {
    let args = Args::parse(
        USAGE,
        &["data", "examples", "h", "check-h", "seed"],
        &["json"],
    );
    if let Err(e) = run(&args) {
        fail(e);
    }
}

fn show(v: &[f64]) -> String {
    let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:.4}")).collect();
    format!("[{}, ...]", head.join(", "))
}

fn run(args: &Args) -> Result<()> {
    let mnist = common::load_data::<f64>(args);
    let data = mnist.train.take(args.get("examples", 200));
    let h: f64 = args.get("h", 1e-5);
    let mut model = LinearClassifier::<f64>::builder(data.num_features(), 10)
        .seed(args.get("seed", 0))
        .build()?;
    let batch = data.all();
    let n = model.num_params();

    let t0 = Instant::now();
    let mut analytic = vec![0.0; n];
    let loss = model.loss_and_grad(&batch, &mut analytic)?;
    let analytic_seconds = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let mut numeric = vec![0.0; n];
    numeric_gradient(&mut model, &batch, h, Difference::Forward, &mut numeric)?;
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
        .h(args.get("check-h", 1e-3))?
        .difference(Difference::FivePoint)
        .run(&mut model, &batch)?;
    println!("gradient check (five-point differences): {report}");
    if args.switch("json") {
        Json::default()
            .str("example", "numeric_gradient")
            .num("params", n as f64)
            .num("max_rel_error", report.max_rel_error)
            .num("max_abs_error", report.max_abs_error)
            .num("numeric_seconds", numeric_seconds)
            .num("analytic_seconds", analytic_seconds)
            .print();
    }
    Ok(())
}
