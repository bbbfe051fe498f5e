//! Lecture step 1, random search: draw `W = randn · 1e-4` again and again for a linear
//! classifier on the digits, keep the best weights by training loss, and see how well the
//! best does on the test set (about 12%: better than chance, barely).
//!
//! ```text
//! cargo run --release --example random_search -- --tries 1000
//! cargo run --release --example random_search -- --help
//! ```

mod common {
    pub mod cli;
    pub mod data;
}

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, Failure};
use common::data::DataArgs;
use downhill::prelude::*;
use serde::Serialize;

/// Random search: the best of many random weight vectors for a linear classifier.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Weight vectors to try
    #[arg(long, default_value_t = 1000)]
    tries: usize,
    /// Standard deviation of each weight drawn
    #[arg(long, default_value_t = 1e-4)]
    scale: f32,
    /// Print every this many tries
    #[arg(long, default_value = "50")]
    every: NonZeroUsize,
    /// Seed of the draws
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
    tries: usize,
    scale: f32,
    /// Every try is scored on the whole training set.
    batch: usize,
    best_loss: Option<f32>,
    test_accuracy: f64,
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mnist = cli.data.load::<f32>()?;
    let mut model = LinearClassifier::<f32>::builder(mnist.train.num_features(), 10).build()?;
    let mut search = RandomSearch::new(cli.scale, cli.seed)?;
    let all = mnist.train.all();
    for attempt in 0..cli.tries {
        search.step(&mut model.on(&all))?;
        if attempt % cli.every == 0 || attempt + 1 == cli.tries {
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
    if cli.json {
        cli::print_json(&Report {
            example: "random_search",
            data: cli.data.dir(),
            tries: cli.tries,
            scale: cli.scale,
            batch: mnist.train.len(),
            best_loss: search.best_loss(),
            test_accuracy,
        })?;
    }
    Ok(())
}
