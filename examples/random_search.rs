//! Approach 1: random search. Draw `W = randn · 1e-4` again and again for a linear
//! classifier on the digits and keep the best weights by training loss; then see how well
//! the best does on the test set.
//!
//! ```text
//! cargo run --release --example random_search -- --tries 1000
//! ```

mod common;

use common::{fail, Args, Json};
use downhill::prelude::*;

const USAGE: &str = "usage: random_search [--data DIR] [--tries 1000] [--scale 1e-4] [--every 50] [--seed 0] [--json]";

fn main() {
    let args = Args::parse(
        USAGE,
        &["data", "tries", "scale", "every", "seed"],
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
    let mut model = LinearClassifier::<f32>::builder(mnist.train.num_features(), 10).build()?;
    let mut search = RandomSearch::new(args.get("scale", 1e-4f32), seed)?;
    let all = mnist.train.all();
    for attempt in 0..tries {
        search.step(&mut model, &all)?;
        if attempt % every == 0 || attempt + 1 == tries {
            println!(
                "in attempt {attempt} the loss was {:.6}, best {:.6}",
                search.last_loss().unwrap_or(f32::NAN),
                search.best_loss().unwrap_or(f32::NAN)
            );
        }
    }
    let test_accuracy = accuracy(&mut model, &mnist.test)?;
    println!(
        "the best weights found classify {:.1}% of the test digits",
        100.0 * test_accuracy
    );
    if args.switch("json") {
        Json::default()
            .str("example", "random_search")
            .num("tries", tries as f64)
            .opt("best_loss", search.best_loss().map(f64::from))
            .num("test_accuracy", test_accuracy)
            .print();
    }
    Ok(())
}
