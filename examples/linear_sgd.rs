//! Lecture step 5 on the lecture's first model: the linear classifier that `random_search`
//! and `local_search` trained blind — the same multiclass SVM loss, the same raw pixels —
//! now trained by minibatch SGD, following the gradient. In a few epochs it beats both
//! searches by far, and its `W` shows why: each class's column, drawn as an image
//! (`--plot DIR`, `linear_sgd_templates.svg`), is a template of the digit, where random
//! search's is noise and local search's a blob.
//!
//! ```text
//! cargo run --release --example linear_sgd
//! cargo run --release --example linear_sgd -- --plot docs/figures
//! cargo run --release --example linear_sgd -- --loss softmax --pixels unit --lr 0.1
//! cargo run --release --example linear_sgd -- --help
//! ```

mod common;

use common::prelude::*;
use common::search::LinearArgs;

/// Minibatch SGD on the linear classifier the searches train: the same loss, the same pixels.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    linear: LinearArgs,
    /// Epochs of SGD
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Learning rate (small: the default pixels are raw, 0 to 255)
    #[arg(long, default_value_t = 1e-6)]
    lr: f32,
    /// Minibatch size
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// L2 weight decay λ added to the gradient (λ·W): it pulls the weights of pixels no
    /// digit lights back to zero
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    #[command(flatten)]
    run: RunArgs,
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    data_format: &'static str,
    loss: &'static str,
    pixels: &'static str,
    epochs: usize,
    lr: f32,
    batch: usize,
    weight_decay: f32,
    steps: usize,
    train_loss: Option<f64>,
    test_accuracy: f64,
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mut p = cli.linear.load()?;
    let mut sgd = Sgd::new(cli.lr)?
        .batch_size(cli.batch)?
        .weight_decay(cli.weight_decay)?;
    let report = Trainer::new(cli.epochs)?.seed(cli.run.seed).run_with(
        &mut p.model,
        &mut sgd,
        &p.train,
        None,
        &mut |e: &EpochRecord| println!("epoch {} loss {:.6}", e.epoch, e.train_loss),
    )?;
    let test_accuracy = accuracy(&mut p.model, &p.test)?;
    let steps: usize = report.history.iter().map(|e| e.steps).sum();
    println!(
        "{steps} steps of SGD; test accuracy {test_accuracy:.4} (mean of argmax(scores) == \
         label over {} test images)",
        p.test.len()
    );
    let title = format!(
        "SGD: W after {} epochs ({steps} steps), each class's column as an image (test accuracy {test_accuracy:.3})",
        report.history.len()
    );
    cli.linear.templates(&p, "linear_sgd", &title)?;
    if cli.run.json {
        let json = Report {
            data_format: p.format.name(),
            loss: cli.linear.loss.name(),
            pixels: cli.linear.pixels.name(),
            epochs: report.history.len(),
            lr: cli.lr,
            batch: cli.batch,
            weight_decay: cli.weight_decay,
            steps,
            train_loss: report.final_loss(),
            test_accuracy,
        };
        cli::print_json(&cli.linear.data, &json)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
