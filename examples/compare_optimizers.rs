//! All of the lecture in one race: random search, random local search, gradient
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
use common::prelude::*;
use common::threads::ThreadsArg;
use downhill::model::Params;
use downhill::optim::UpdateRule;
use serde_json::{Map, Value};

/// Six optimizers train the same MLP for the same seconds: test accuracy against time.
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
    #[command(flatten)]
    threads: ThreadsArg,
    /// Write compare_optimizers.svg into this directory
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// The `--json` line: `<optimizer>_test_accuracy`, `_train_loss` and `_steps` for each.
#[derive(Serialize)]
struct Report {
    seconds: f64,
    random_scale: f32,
    local_step: f32,
    #[serde(flatten)]
    results: Map<String, Value>,
}

/// Accuracy checks per run (evenly spaced in training time).
const CHECKS: f64 = 40.0;

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}

/// Measures test accuracy every `every` seconds of training time, and once more at the end.
///
/// An observer sees the parameters, not the network, so the clock scores a network of its
/// own (a copy of the one being trained) with the parameters it is shown.
struct AccuracyClock<'a> {
    scorer: Mlp<f32>,
    test: &'a Dataset<f32>,
    every: f64,
    clock: f64,
    next: f64,
    points: Vec<(f64, f64)>,
}

impl AccuracyClock<'_> {
    fn check(&mut self, params: &dyn Params<f32>) -> downhill::Result<()> {
        if self.points.last().map(|p| p.0) != Some(self.clock) {
            self.scorer.params_mut().copy_from_slice(params.params());
            self.points
                .push((self.clock, accuracy(&mut self.scorer, self.test)?));
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
    test_accuracy: f64,
    curve: Vec<(f64, f64)>,
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mnist = cli.data.load::<f32>()?;
    let (train, test) = (&mnist.train, &mnist.test);
    let (seconds, seed) = (cli.seconds, cli.run.seed);
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
    println!("each optimizer trains the same MLP for {seconds} s of training time:");
    let mut entries = Vec::new();
    for (key, label, mut opt) in contestants {
        let mut m = model.clone();
        let mut clock = AccuracyClock {
            scorer: model.clone(),
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

    if let Some(dir) = &cli.plot {
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
        let path = plot::file_in(dir, "compare_optimizers.svg").map_err(Failure::Input)?;
        plot::lines(&path, &[panel], 1).map_err(Failure::Input)?;
        println!("wrote {}", path.display());
    }
    if cli.run.json {
        let mut results = Map::new();
        for e in &entries {
            results.insert(format!("{}_test_accuracy", e.key), e.test_accuracy.into());
            results.insert(format!("{}_train_loss", e.key), e.train_loss.into());
            results.insert(format!("{}_steps", e.key), e.steps.into());
        }
        let json = Report {
            seconds,
            random_scale: scale,
            local_step: step,
            results,
        };
        cli::print_json(&cli.data, &json)?;
    }
    Ok(())
}
