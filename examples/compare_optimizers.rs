//! The whole road downhill in one race: random search, random local search, gradient
//! descent, minibatch SGD, SGD with momentum and Adam each train the same MLP on the real
//! digits for the same number of seconds, and we watch test accuracy against the clock.
//!
//! The searches never see a gradient, so in a space of ~50,000 weights they barely move;
//! gradient descent follows the exact slope but pays a pass over all the data per step;
//! SGD takes dozens of cheap noisy steps in that time, and momentum and Adam make each of
//! them count for more.
//!
//! ```text
//! cargo run --release --example compare_optimizers -- --seconds 10 --plot docs/figures
//! ```
//! `--plot DIR` writes `compare_optimizers.svg`. Time is training time: the accuracy checks
//! along the way are not counted.

mod common;

use std::time::Duration;

use common::plot::{self, Legend, Panel};
use common::{fail, Args, Json};
use downhill::optim::UpdateRule;
use downhill::prelude::*;

const USAGE: &str = "usage: compare_optimizers [--data DIR] [--seconds 10] [--hidden 64] [--seed 0]
                          [--random-scale 0.05] [--local-step 0.01]
                          [--threads N] [--plot DIR] [--json]";

/// Accuracy checks per run (evenly spaced in training time).
const CHECKS: f64 = 40.0;

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "data",
            "seconds",
            "hidden",
            "seed",
            "threads",
            "plot",
            "random-scale",
            "local-step",
        ],
        &["json"],
    );
    if let Err(e) = run(&args) {
        fail(e);
    }
}

/// Measures test accuracy every `every` seconds of training time, and once more at the end.
struct AccuracyClock<'a> {
    test: &'a Dataset<f32>,
    every: f64,
    clock: f64,
    next: f64,
    points: Vec<(f64, f64)>,
}

impl AccuracyClock<'_> {
    fn check(&mut self, model: &mut dyn Model<f32>) -> Result<()> {
        if self.points.last().map(|p| p.0) != Some(self.clock) {
            self.points.push((self.clock, accuracy(model, self.test)?));
        }
        Ok(())
    }
}

impl Observer<f32> for AccuracyClock<'_> {
    fn on_epoch(
        &mut self,
        record: &EpochRecord,
        model: &mut dyn Model<f32>,
        _optimizer: &mut dyn Optimizer<f32>,
    ) -> Result<Control> {
        self.clock += record.train_seconds;
        if self.clock >= self.next {
            self.check(model)?;
            while self.next <= self.clock {
                self.next += self.every;
            }
        }
        Ok(Control::Continue)
    }
    fn on_end(&mut self, _report: &TrainReport, model: &mut dyn Model<f32>) -> Result<()> {
        self.check(model)
    }
}

/// One contestant's result.
struct Entry {
    key: &'static str,
    label: String,
    steps: usize,
    epochs: usize,
    train_loss: f64,
    test_accuracy: f64,
    curve: Vec<(f64, f64)>,
}

fn run(args: &Args) -> Result<()> {
    let mnist = common::load_data::<f32>(args);
    let (train, test) = (&mnist.train, &mnist.test);
    let seconds: f64 = args.get("seconds", 10.0);
    if !(seconds > 0.0 && seconds.is_finite()) {
        fail(format!("--seconds {seconds}: must be a positive number"));
    }
    let seed: u64 = args.get("seed", 0);
    let threads: usize = args.get(
        "threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let model = Mlp::<f32>::builder(train.num_features())
        .hidden(args.get("hidden", 64), Activation::Relu)
        .classes(train.num_classes())
        .seed(seed)
        .build()?;
    // Each method with a step size that suits it on this network. The searches draw at the
    // scale of the network's initial weights (He: √(2/784) ≈ 0.05) and step a fraction of it.
    let scale: f32 = args.get("random-scale", 0.05);
    let step: f32 = args.get("local-step", 0.01);
    let (random_label, local_label) = (
        format!("random search (randn·{scale})"),
        format!("local search (step {step})"),
    );
    let contestants: Vec<(&str, &str, Box<dyn Optimizer<f32>>)> = vec![
        (
            "random",
            &random_label,
            Box::new(RandomSearch::new(scale, seed)?),
        ),
        (
            "local",
            &local_label,
            Box::new(LocalSearch::new(step, seed)?),
        ),
        (
            "gd",
            "gradient descent (lr 0.5)",
            Box::new(GradientDescent::new(0.5)?),
        ),
        (
            "sgd",
            "SGD (lr 0.1, batch 128)",
            Box::new(Sgd::new(0.1)?.batch_size(128)?),
        ),
        (
            "momentum",
            "momentum 0.9 (lr 0.05)",
            Box::new(
                Sgd::new(0.05)?
                    .rule(UpdateRule::momentum(0.9)?)
                    .batch_size(128)?,
            ),
        ),
        (
            "adam",
            "Adam (lr 1e-3)",
            Box::new(Sgd::new(1e-3)?.rule(UpdateRule::adam()).batch_size(128)?),
        ),
    ];
    let trainer = Trainer::new(1_000_000)?
        .seed(seed)
        .threads(threads)?
        .time_limit(Duration::from_secs_f64(seconds));
    println!("each optimizer trains the same MLP for {seconds} s of training time:");
    let mut entries = Vec::new();
    for (key, label, mut opt) in contestants {
        let mut m = model.clone();
        let mut clock = AccuracyClock {
            test,
            every: seconds / CHECKS,
            clock: 0.0,
            next: 0.0,
            points: Vec::new(),
        };
        let report = trainer.run_with(&mut m, opt.as_mut(), train, None, &mut clock)?;
        let entry = Entry {
            key,
            label: label.to_string(),
            steps: report.history.iter().map(|e| e.steps).sum(),
            epochs: report.history.len(),
            train_loss: f64::from(m.loss(&train.all())?),
            test_accuracy: clock.points.last().map_or(f64::NAN, |p| p.1),
            curve: clock.points,
        };
        println!(
            "  {:<28} {:>7} steps, test accuracy {:.4}",
            entry.label, entry.steps, entry.test_accuracy
        );
        entries.push(entry);
    }

    println!();
    println!(
        "| {:<28} | {:>7} | {:>6} | {:>10} | {:>13} |",
        "optimizer", "steps", "epochs", "train loss", "test accuracy"
    );
    println!(
        "|{:-<30}|{:->9}|{:->8}|{:->12}|{:->15}|",
        "", "", "", "", ""
    );
    for e in &entries {
        // For the searches one "epoch" is one try on the whole training set.
        println!(
            "| {:<28} | {:>7} | {:>6} | {:>10.4} | {:>13.4} |",
            e.label, e.steps, e.epochs, e.train_loss, e.test_accuracy
        );
    }

    if let Some(dir) = args.string("plot") {
        let mut panel = Panel::new(
            &format!("Six optimizers, one MLP, {seconds} s of training each"),
            "training seconds (accuracy checks not counted)",
            "test accuracy",
        )
        .y_range(0.0, 1.0)
        // In the empty band between the gradient methods (near the top) and the searches.
        .legend(Legend::Coordinate(200, 50));
        for e in &entries {
            panel = panel.path(&e.label, e.curve.clone());
        }
        let path = plot::file_in(dir, "compare_optimizers.svg").unwrap_or_else(|e| fail(e));
        plot::lines(&path, &[panel], 1).unwrap_or_else(|e| fail(e));
        println!("wrote {}", path.display());
    }
    if args.switch("json") {
        let mut json = Json::default()
            .str("example", "compare_optimizers")
            .num("seconds", seconds);
        for e in &entries {
            json = json
                .num(&format!("{}_test_accuracy", e.key), e.test_accuracy)
                .num(&format!("{}_train_loss", e.key), e.train_loss)
                .num(&format!("{}_steps", e.key), e.steps as f64);
        }
        json.print();
    }
    Ok(())
}
