//! Gradient descent against minibatch SGD, for the same wall-clock budget.
//!
//! Full-batch gradient descent computes the exact gradient of the training loss — one step
//! per pass over the data. SGD takes a step per minibatch of 128: a noisy gradient, right on
//! average, at a fraction of the cost. Given the same seconds, SGD takes ~60× more steps and
//! ends much lower.
//!
//! ```text
//! cargo run --release --example gd_vs_sgd -- --seconds 5
//! cargo run --release --example gd_vs_sgd -- --seconds 5 --plot docs/figures
//! ```
//! `--plot DIR` writes `gd_vs_sgd.svg`: the training loss of both against epochs and against
//! wall-clock seconds.

mod common;

use std::time::Duration;

use common::plot::{self, Panel};
use common::{fail, Args, Json};
use downhill::prelude::*;

const USAGE: &str = "usage: gd_vs_sgd [--data DIR] [--seconds 5] [--hidden 64] [--gd-lr 0.5] [--sgd-lr 0.1] [--batch 128] [--seed 0] [--plot DIR] [--json]";

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "data", "seconds", "hidden", "gd-lr", "sgd-lr", "batch", "seed", "plot",
        ],
        &["json"],
    );
    if let Err(e) = run(&args) {
        fail(e);
    }
}

fn run(args: &Args) -> Result<()> {
    let mnist = common::load_data::<f32>(args);
    let seconds: f64 = args.get("seconds", 5.0);
    if !(seconds > 0.0 && seconds.is_finite()) {
        fail(format!("--seconds {seconds}: must be a positive number"));
    }
    let seed: u64 = args.get("seed", 0);
    let model = Mlp::<f32>::builder(mnist.train.num_features())
        .hidden(args.get("hidden", 64), Activation::Relu)
        .classes(10)
        .seed(seed)
        .build()?;
    let trainer = Trainer::new(1_000_000)?
        .seed(seed)
        .time_limit(Duration::from_secs_f64(seconds));

    let mut results = Vec::new();
    // Per optimizer: (name, [(epoch, loss)], [(seconds so far, loss)]) for --plot.
    let mut curves = Vec::new();
    let gd: Box<dyn Optimizer<f32>> = Box::new(GradientDescent::new(args.get("gd-lr", 0.5f32))?);
    let sgd: Box<dyn Optimizer<f32>> =
        Box::new(Sgd::new(args.get("sgd-lr", 0.1f32))?.batch_size(args.get("batch", 128))?);
    for mut opt in [gd, sgd] {
        let mut m = model.clone();
        println!("{} for {seconds} s:", opt.name());
        let (mut by_epoch, mut by_time, mut clock) = (Vec::new(), Vec::new(), 0.0);
        let report = trainer.run_with(
            &mut m,
            opt.as_mut(),
            &mnist.train,
            None,
            &mut |e: &EpochRecord| {
                clock += e.train_seconds;
                by_epoch.push((e.epoch as f64, e.train_loss));
                by_time.push((clock, e.train_loss));
                if e.epoch <= 10 || e.epoch % 10 == 0 {
                    println!(
                        "  epoch {:>4} ({:>5} steps so far) loss {:.4}",
                        e.epoch,
                        e.steps * e.epoch,
                        e.train_loss
                    );
                }
            },
        )?;
        // Compare both on the same footing: the loss of the final weights on all the data.
        let final_loss = f64::from(m.loss(&mnist.train.all())?);
        let test_accuracy = accuracy(&mut m, &mnist.test)?;
        let steps: usize = report.history.iter().map(|e| e.steps).sum();
        println!(
            "  {} epochs, {steps} steps: training loss {final_loss:.4}, test accuracy {test_accuracy:.4}",
            report.history.len()
        );
        results.push((final_loss, test_accuracy, report.history.len()));
        curves.push((opt.name(), by_epoch, by_time));
    }
    if let Some(dir) = args.string("plot") {
        let label = |name: &str| match name {
            "gd" => "gradient descent (full batch)".to_string(),
            _ => format!("SGD (batch {})", args.get("batch", 128usize)),
        };
        let mut per_epoch =
            Panel::new("Training loss per epoch", "epoch", "training loss (log)").log_y();
        let mut per_second = Panel::new(
            &format!("Training loss for the same {seconds} s"),
            "wall-clock seconds of training",
            "training loss (log)",
        )
        .log_y();
        for (name, by_epoch, by_time) in curves {
            per_epoch = per_epoch.line(&label(name), by_epoch);
            per_second = per_second.line(&label(name), by_time);
        }
        let path = plot::file_in(dir, "gd_vs_sgd.svg").unwrap_or_else(|e| fail(e));
        plot::lines(&path, &[per_epoch, per_second], 2).unwrap_or_else(|e| fail(e));
        println!("wrote {}", path.display());
    }
    if args.switch("json") {
        Json::default()
            .str("example", "gd_vs_sgd")
            .num("seconds", seconds)
            .num("gd_final_loss", results[0].0)
            .num("sgd_final_loss", results[1].0)
            .num("gd_test_accuracy", results[0].1)
            .num("sgd_test_accuracy", results[1].1)
            .num("gd_epochs", results[0].2 as f64)
            .num("sgd_epochs", results[1].2 as f64)
            .print();
    }
    Ok(())
}
