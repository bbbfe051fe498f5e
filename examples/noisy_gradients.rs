//! Lecture step 5, minibatch noise: how noisy is a minibatch gradient? On the real digits,
//! compare the gradient of many random minibatches with the full-batch gradient, by the
//! cosine of the angle between them.
//!
//! A cosine of 1 is the exact direction, 0 is no better than a random direction. The
//! lecture's claim: a minibatch gradient is noisy but right on average, and the bigger the
//! batch the less noisy — the spread shrinks roughly like 1/√batch, while the cost grows
//! like batch. Measured at the MLP's initial weights and again after one epoch of SGD
//! (where the examples disagree more, since the easy ones are already learnt).
//!
//! ```text
//! cargo run --release --example noisy_gradients -- --plot docs/figures
//! cargo run --release --example noisy_gradients -- --help
//! ```
//! `--plot DIR` writes `noisy_gradients.svg`: one histogram per batch size (rows) and phase
//! (columns).

mod common;

use std::num::NonZeroUsize;

use common::plot::{self, HistPanel};
use common::prelude::*;
use common::threads::ThreadsArg;
use downhill::data::Minibatches;
use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;

/// Minibatch gradients against the full-batch gradient, by the cosine between them.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Width of the MLP's hidden layer
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Batch sizes to compare, comma-separated (each at most the training set's size)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SIZES",
        default_value = "1,32,128,1024"
    )]
    sizes: Vec<NonZeroUsize>,
    /// Random batches drawn of each size
    #[arg(long, default_value = "300")]
    batches: NonZeroUsize,
    /// Epochs of SGD before the second measurement (0: measure at the initial weights only)
    #[arg(long, default_value_t = 1)]
    train_epochs: usize,
    #[command(flatten)]
    threads: ThreadsArg,
    /// Write noisy_gradients.svg into this directory
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// The `--json` line: per batch size, the cosines' mean and spread and their average
/// gradient's cosine, at the initial weights and (with --train-epochs) after training.
#[derive(Serialize, Default)]
struct Report {
    batches: usize,
    sizes: Vec<usize>,
    initial_mean: Vec<f64>,
    initial_std: Vec<f64>,
    initial_average_cosine: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trained_mean: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trained_std: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trained_average_cosine: Option<Vec<f64>>,
}

/// cos ∠(a, b), accumulated in f64; 0 if either is the zero vector.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// One batch size's measurements.
struct Spread {
    /// cos ∠(minibatch gradient, full gradient), one per batch.
    cosines: Vec<f64>,
    /// cos ∠(mean of the minibatch gradients, full gradient): "right on average".
    average: f64,
}

/// For each batch size, the cosines between `batches` random minibatch gradients and the
/// full-batch gradient at the model's current weights.
fn cosines(
    model: &mut Mlp<f32>,
    train: &Dataset<f32>,
    sizes: &[usize],
    batches: usize,
    seed: u64,
) -> downhill::Result<Vec<Spread>> {
    let mut full = vec![0.0f32; model.num_params()];
    model.loss_and_grad(&train.all(), &mut full)?;
    let mut grad = vec![0.0f32; model.num_params()];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut out = Vec::new();
    for &size in sizes {
        // Each batch: `size` distinct examples drawn at random, as one SGD step sees them.
        let mut sampler = Minibatches::new(train.len(), size)?;
        let mut cos = Vec::with_capacity(batches);
        let mut sum = vec![0.0f32; model.num_params()];
        for _ in 0..batches {
            sampler.shuffle(&mut rng);
            if let Some(idx) = sampler.iter().next() {
                model.loss_and_grad(&train.batch(idx)?, &mut grad)?;
                cos.push(cosine(&grad, &full));
                sum.iter_mut().zip(&grad).for_each(|(s, g)| *s += g);
            }
        }
        out.push(Spread {
            cosines: cos,
            average: cosine(&sum, &full),
        });
    }
    Ok(out)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mnist = cli.data.load::<f32>()?;
    let train = &mnist.train;
    let sizes: Vec<usize> = cli.sizes.iter().map(|s| s.get()).collect();
    if let Some(too_big) = sizes.iter().find(|&&s| s > train.len()) {
        return Err(Failure::Input(format!(
            "--sizes {too_big}: each size must be at most {} (the training set)",
            train.len()
        )));
    }
    let batches = cli.batches.get();
    let seed = cli.run.seed;
    let threads = cli.threads.threads;
    let mut model = Mlp::<f32>::builder(train.num_features())
        .hidden(cli.hidden, Activation::Relu)
        .classes(train.num_classes())
        .seed(seed)
        .build()?;
    model.set_threads(threads)?;

    let mut phases = vec![(
        "at the initial weights".to_string(),
        cosines(&mut model, train, &sizes, batches, seed)?,
    )];
    if cli.train_epochs > 0 {
        let mut sgd = Sgd::new(0.1f32)?.batch_size(128)?;
        let report = Trainer::new(cli.train_epochs)?
            .seed(seed)
            .threads(threads)?
            .run(&mut model, &mut sgd, train, None)?;
        phases.push((
            format!(
                "after {} epoch{} of SGD (loss {:.3})",
                cli.train_epochs,
                if cli.train_epochs == 1 { "" } else { "s" },
                report.final_loss().unwrap_or(f64::NAN)
            ),
            cosines(&mut model, train, &sizes, batches, seed + 1)?,
        ));
    }

    println!("cos(minibatch gradient, full gradient) over {batches} random batches of each size:");
    let mut json = Report {
        batches,
        sizes: sizes.clone(),
        ..Report::default()
    };
    for (p, (phase, cos)) in phases.iter().enumerate() {
        println!("  {phase}:");
        let (mut means, mut stds, mut averages) = (Vec::new(), Vec::new(), Vec::new());
        for (size, spread) in sizes.iter().zip(cos) {
            let (mean, std) = mean_std(&spread.cosines);
            println!(
                "    batch {size:>5}: mean {mean:.3}, std {std:.3}; their average gradient: {:.3}",
                spread.average
            );
            means.push(mean);
            stds.push(std);
            averages.push(spread.average);
        }
        if p == 0 {
            (json.initial_mean, json.initial_std) = (means, stds);
            json.initial_average_cosine = averages;
        } else {
            (json.trained_mean, json.trained_std) = (Some(means), Some(stds));
            json.trained_average_cosine = Some(averages);
        }
    }

    if let Some(dir) = &cli.plot {
        // One x range for every panel, so the widths compare at a glance.
        let lowest = phases
            .iter()
            .flat_map(|(_, c)| c.iter().flat_map(|s| &s.cosines))
            .fold(0.0f64, |m, &v| m.min(v));
        let lo = ((lowest * 10.0).floor() / 10.0).max(-1.0);
        // One row per batch size, one column per phase: down a column the spread narrows
        // with the batch, along a row it widens with training.
        let mut panels = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            for (phase, cos) in &phases {
                let spread = &cos[i];
                panels.push(HistPanel::new(
                    &format!("batch {size}, {phase}"),
                    &format!(
                        "cosine to the full gradient (their average's: {:.2})",
                        spread.average
                    ),
                    spread.cosines.clone(),
                    (lo, 1.0),
                    40,
                ));
            }
        }
        let path = plot::file_in(dir, "noisy_gradients.svg").map_err(Failure::Input)?;
        plot::histograms(&path, &panels, phases.len(), 360).map_err(Failure::Input)?;
        println!("wrote {}", path.display());
    }
    if cli.run.json {
        cli::print_json(&cli.data, &json)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
