//! All of the lecture in one race: random search, random local search, gradient
//! descent, minibatch SGD, SGD with momentum and Adam each train the same MLP on the real
//! digits for the same number of seconds, and we watch validation accuracy against the
//! clock (on `--valid 1000` training images held out); each one's final network is scored on
//! the test set once, at the end.
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

use common::heldout::{hold_out, Scorer, TestSet, VALID};
use common::plot::{self, Panel};
use common::prelude::*;
use common::threads::ThreadsArg;
use downhill::model::Params;
use downhill::optim::UpdateRule;
use serde_json::{Map, Value};

/// Six optimizers train the same MLP for the same seconds: validation accuracy against time,
/// test accuracy once at the end.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Seconds of training each optimizer gets
    #[arg(long, value_name = "S", default_value = "10", value_parser = common::values::seconds)]
    seconds: f64,
    /// Width of the MLP's hidden layer
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Random search's scale: weights drawn as randn · scale (the network's initial scale)
    #[arg(long, default_value_t = 0.05)]
    random_scale: f32,
    /// Local search's step: tries W + randn · step
    #[arg(long, default_value_t = 0.01)]
    local_step: f32,
    /// Training images held out (drawn with --seed) to measure validation accuracy on along
    /// the way
    #[arg(long, value_name = "N", default_value_t = VALID, value_parser = valid_count)]
    valid: usize,
    #[command(flatten)]
    threads: ThreadsArg,
    /// Write compare_optimizers.svg into this directory
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// `--valid N`: at least one image, to watch.
fn valid_count(s: &str) -> Result<usize, String> {
    common::values::count(s, 1, " (the race is watched on held-out images)")
}

/// The `--json` line: `<optimizer>_valid_accuracy` (after the last check),
/// `_test_accuracy` (scored once, at the end), `_train_loss` and `_steps` for each.
#[derive(Serialize)]
struct Report {
    seconds: f64,
    random_scale: f32,
    local_step: f32,
    valid_size: usize,
    /// How many times the test set was scored in all: once per optimizer.
    test_evaluations: usize,
    #[serde(flatten)]
    results: Map<String, Value>,
}

/// Accuracy checks per run (evenly spaced in training time).
const CHECKS: f64 = 40.0;

/// Measures validation accuracy every `every` seconds of training time, and once more at the
/// end.
struct AccuracyClock<'a> {
    scorer: Scorer,
    valid: &'a Dataset<f32>,
    every: f64,
    clock: f64,
    next: f64,
    points: Vec<(f64, f64)>,
}

impl AccuracyClock<'_> {
    fn check(&mut self, params: &dyn Params<f32>) -> downhill::Result<()> {
        if self.points.last().map(|p| p.0) != Some(self.clock) {
            let e = self.scorer.evaluate(params, self.valid)?;
            self.points
                .push((self.clock, e.accuracy.unwrap_or(f64::NAN)));
        }
        Ok(())
    }
}

impl Observer<f32> for AccuracyClock<'_> {
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, f32>) -> downhill::Result<Control> {
        self.clock += end.record.train_seconds;
        if self.clock >= self.next {
            self.check(end.params)?;
            while self.next <= self.clock {
                self.next += self.every;
            }
        }
        Ok(Control::Continue)
    }
    fn on_end(
        &mut self,
        _report: &TrainReport,
        params: &mut dyn Params<f32>,
    ) -> downhill::Result<()> {
        self.check(params)
    }
}

/// One contestant's result.
struct Entry {
    key: &'static str,
    label: String,
    steps: usize,
    epochs: usize,
    train_loss: f64,
    valid_accuracy: f64,
    test_accuracy: f64,
    curve: Vec<(f64, f64)>,
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mnist = cli.data.load::<f32>()?;
    let (seconds, seed) = (cli.seconds, cli.run.seed);
    let (train, valid) = hold_out(mnist.train, cli.valid, seed)?;
    let valid = valid.ok_or_else(|| Failure::Input("--valid must be at least 1".into()))?;
    let test = TestSet::new(mnist.test);
    let train = &train;
    let model = Mlp::<f32>::builder(train.num_features())
        .hidden(cli.hidden, Activation::Relu)
        .classes(train.num_classes())
        .seed(seed)
        .build()?;
    // Each method with a step size that suits it on this network. The searches draw at the
    // scale of the network's initial weights (He: √(2/784) ≈ 0.05) and step a fraction of it.
    let (scale, step) = (cli.random_scale, cli.local_step);
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
        .threads(cli.threads.threads)?
        .time_limit(Duration::from_secs_f64(seconds));
    println!(
        "each optimizer trains the same MLP on {} images for {seconds} s of training time, \
         watched on {} held out:",
        train.len(),
        valid.len()
    );
    let mut entries = Vec::new();
    for (key, label, mut opt) in contestants {
        let mut m = model.clone();
        let mut clock = AccuracyClock {
            scorer: Scorer::new(&model),
            valid: &valid,
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
            valid_accuracy: clock.points.last().map_or(f64::NAN, |p| p.1),
            // The test set's one look at this network.
            test_accuracy: test.evaluate(&mut m)?.accuracy.unwrap_or(f64::NAN),
            curve: clock.points,
        };
        println!(
            "  {:<28} {:>7} steps, validation accuracy {:.4}",
            entry.label, entry.steps, entry.valid_accuracy
        );
        entries.push(entry);
    }

    println!();
    println!(
        "| {:<28} | {:>7} | {:>6} | {:>10} | {:>10} | {:>8} |",
        "optimizer", "steps", "epochs", "train loss", "valid acc", "test acc"
    );
    println!(
        "|{:-<30}|{:->9}|{:->8}|{:->12}|{:->12}|{:->10}|",
        "", "", "", "", "", ""
    );
    for e in &entries {
        // For the searches one "epoch" is one try on the whole training set.
        println!(
            "| {:<28} | {:>7} | {:>6} | {:>10.4} | {:>10.4} | {:>8.4} |",
            e.label, e.steps, e.epochs, e.train_loss, e.valid_accuracy, e.test_accuracy
        );
    }

    if let Some(dir) = &cli.plot {
        let mut panel = Panel::new(
            &format!("Six optimizers, one MLP, {seconds} s of training each"),
            "training seconds (accuracy checks not counted)",
            &format!("validation accuracy ({} held-out images)", valid.len()),
        )
        .y_range(0.0, 1.0);
        for e in &entries {
            panel = panel.path(&e.label, e.curve.clone());
        }
        let path = plot::file_in(dir, "compare_optimizers.svg").map_err(Failure::Input)?;
        plot::lines(&path, &[panel], 1).map_err(Failure::Input)?;
        println!("wrote {}", path.display());
    }
    if cli.run.json {
        let mut results = Map::new();
        for e in &entries {
            results.insert(format!("{}_valid_accuracy", e.key), e.valid_accuracy.into());
            results.insert(format!("{}_test_accuracy", e.key), e.test_accuracy.into());
            results.insert(format!("{}_train_loss", e.key), e.train_loss.into());
            results.insert(format!("{}_steps", e.key), e.steps.into());
        }
        let json = Report {
            seconds,
            random_scale: scale,
            local_step: step,
            valid_size: valid.len(),
            test_evaluations: test.times_scored(),
            results,
        };
        cli::print_json(&cli.data, &json)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
