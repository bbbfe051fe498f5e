//! Approach 2: random local search. Start from random weights, try `W + randn · step`, and
//! keep the try only if the training loss goes down. With the same number of loss
//! evaluations as `random_search`, it gets much further.
//!
//! ```text
//! cargo run --release --example local_search -- --tries 1000
//! ```

mod common;

use common::{fail, Args, Json};
use downhill::prelude::*;

const USAGE: &str = "usage: local_search [--data DIR] [--tries 1000] [--step 1e-3] [--every 50] [--seed 0] [--json]";

fn main() {
    let args = Args::parse(
        USAGE,
        &["data", "tries", "step", "every", "seed"],
        &["json"],
    );
    if let Err(e) = run(&args) {
        fail(e);
    }
}

fn run(args: &Args) -> Result<()> {
    let mnist = common::load_data::<f32>(args);
    let tries: usize = args.get("tries", 1000);
    let every: usize = args.get::<usize>("every", 50).max(1);
    let seed: u64 = args.get("seed", 0);
    // The lecture's start: W = randn · 1e-4 (the builder's default for a linear classifier).
    let mut model = LinearClassifier::<f32>::builder(mnist.train.num_features(), 10)
        .seed(seed)
        .build()?;
    let mut search = LocalSearch::new(args.get("step", 1e-3f32), seed)?;
    let all = mnist.train.all();
    for iter in 0..tries {
        search.step(&mut model, &all)?;
        if iter % every == 0 || iter + 1 == tries {
            println!(
                "iter {iter} loss is {:.6}",
                search.best_loss().unwrap_or(f32::NAN)
            );
        }
    }
    let test_accuracy = accuracy(&mut model, &mnist.test)?;
    println!(
        "kept {} of {} steps; the weights found classify {:.1}% of the test digits",
        search.accepted(),
        search.tries(),
        100.0 * test_accuracy
    );
    if args.switch("json") {
        Json::default()
            .str("example", "local_search")
            .num("tries", tries as f64)
            .opt("best_loss", search.best_loss().map(f64::from))
            .num("test_accuracy", test_accuracy)
            .print();
    }
    Ok(())
}
