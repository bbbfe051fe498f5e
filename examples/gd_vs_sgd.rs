//! Lecture steps 4–5, gradient descent against minibatch SGD for the same wall-clock
//! budget. Full-batch gradient descent computes the exact gradient of the training loss —
//! one step per pass over the data. SGD takes a step per minibatch of 128: a noisy gradient,
//! right on average, at a fraction of the cost. Given the same half second (the default), SGD
//! takes ~15× more steps and ends lower in training loss and higher in test accuracy. Given
//! more (`--seconds 5`), gradient descent catches up in test accuracy: both level off at what
//! the network learns from 8000 digits, and SGD's extra steps only fit the training set
//! closer.
//!
//! ```text
//! cargo run --release --example gd_vs_sgd
//! cargo run --release --example gd_vs_sgd -- --plot docs/figures
//! cargo run --release --example gd_vs_sgd -- --seconds 5
//! cargo run --release --example gd_vs_sgd -- --help
//! ```
//! `--plot DIR` writes `gd_vs_sgd.svg`: the training loss of both against epochs and against
//! wall-clock seconds.

mod common;

use std::time::Duration;

use common::data::Data;
use common::plot::{self, Panel};
use common::prelude::*;

/// Full-batch gradient descent and minibatch SGD, the same seconds each.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Seconds of training each optimizer gets (the default shows SGD ahead; given more,
    /// gradient descent catches up)
    #[arg(long, value_name = "S", default_value = "0.5", value_parser = common::values::seconds)]
    seconds: f64,
    /// Width of the MLP's hidden layer
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Gradient descent's learning rate
    #[arg(long, default_value_t = 0.5)]
    gd_lr: f32,
    /// SGD's learning rate
    #[arg(long, default_value_t = 0.1)]
    sgd_lr: f32,
    /// SGD's minibatch size
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Write gd_vs_sgd.svg into this directory
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    seconds: f64,
    gd_lr: f32,
    sgd_lr: f32,
    /// Gradient descent's batch: the whole training set.
    gd_batch: usize,
    sgd_batch: usize,
    gd_final_loss: f64,
    sgd_final_loss: f64,
    gd_test_accuracy: f64,
    sgd_test_accuracy: f64,
    gd_epochs: usize,
    sgd_epochs: usize,
}

/// How one optimizer did.
struct Outcome {
    name: &'static str,
    final_loss: f64,
    test_accuracy: f64,
    epochs: usize,
    /// (epoch, loss) and (seconds so far, loss), for --plot.
    by_epoch: Vec<(f64, f64)>,
    by_time: Vec<(f64, f64)>,
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mnist = cli.data.load::<f32>()?;
    let model = Mlp::<f32>::builder(mnist.train.num_features())
        .hidden(cli.hidden, Activation::Relu)
        .classes(10)
        .seed(cli.run.seed)
        .build()?;
    let trainer = Trainer::new(1_000_000)?
        .seed(cli.run.seed)
        .time_limit(Duration::from_secs_f64(cli.seconds));

    let mut gd = GradientDescent::new(cli.gd_lr)?;
    let gd = race(&model, &trainer, &mnist, &mut gd, cli.seconds)?;
    let mut sgd = Sgd::new(cli.sgd_lr)?.batch_size(cli.batch)?;
    let sgd = race(&model, &trainer, &mnist, &mut sgd, cli.seconds)?;
    if let Some(dir) = &cli.plot {
        let label = |o: &Outcome| match o.name {
            "gd" => "gradient descent (full batch)".to_string(),
            _ => format!("SGD (batch {})", cli.batch),
        };
        let mut per_epoch =
            Panel::new("Training loss per epoch", "epoch", "training loss (log)").log_y();
        let mut per_second = Panel::new(
            &format!("Training loss for the same {} s", cli.seconds),
            "wall-clock seconds of training",
            "training loss (log)",
        )
        .log_y();
        for o in [&gd, &sgd] {
            per_epoch = per_epoch.line(&label(o), o.by_epoch.clone());
            per_second = per_second.line(&label(o), o.by_time.clone());
        }
        let path = plot::file_in(dir, "gd_vs_sgd.svg").map_err(Failure::Input)?;
        plot::lines(&path, &[per_epoch, per_second], 2).map_err(Failure::Input)?;
        println!("wrote {}", path.display());
    }
    if cli.run.json {
        let json = Report {
            seconds: cli.seconds,
            gd_lr: cli.gd_lr,
            sgd_lr: cli.sgd_lr,
            gd_batch: mnist.train.len(),
            sgd_batch: cli.batch,
            gd_final_loss: gd.final_loss,
            sgd_final_loss: sgd.final_loss,
            gd_test_accuracy: gd.test_accuracy,
            sgd_test_accuracy: sgd.test_accuracy,
            gd_epochs: gd.epochs,
            sgd_epochs: sgd.epochs,
        };
        cli::print_json(&cli.data, &json)?;
    }
    Ok(())
}

/// Trains a copy of `model` with `opt` until the trainer's time limit, printing the epochs.
fn race(
    model: &Mlp<f32>,
    trainer: &Trainer,
    mnist: &Data<f32>,
    opt: &mut dyn Optimizer<f32>,
    seconds: f64,
) -> Result<Outcome, Failure> {
    let mut m = model.clone();
    println!("{} for {seconds} s:", opt.name());
    let (mut by_epoch, mut by_time, mut clock) = (Vec::new(), Vec::new(), 0.0);
    let report = trainer.run_with(&mut m, opt, &mnist.train, None, &mut |e: &EpochRecord| {
        clock += e.train_seconds;
        by_epoch.push((e.epoch as f64, e.train_loss));
        by_time.push((clock, e.train_loss));
        if e.epoch <= 10 || e.epoch.is_multiple_of(10) {
            println!(
                "  epoch {:>4} ({:>5} steps so far) loss {:.4}",
                e.epoch,
                e.steps * e.epoch,
                e.train_loss
            );
        }
    })?;
    // Compare both on the same footing: the loss of the final weights on all the data.
    let final_loss = f64::from(m.loss(&mnist.train.all())?);
    let test_accuracy = accuracy(&mut m, &mnist.test)?;
    let steps: usize = report.history.iter().map(|e| e.steps).sum();
    println!(
        "  {} epochs, {steps} steps: training loss {final_loss:.4}, test accuracy {test_accuracy:.4}",
        report.history.len()
    );
    Ok(Outcome {
        name: opt.name(),
        final_loss,
        test_accuracy,
        epochs: report.history.len(),
        by_epoch,
        by_time,
    })
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
