//! How noisy is a minibatch gradient? On the real digits, compare the gradient of many random
//! minibatches with the full-batch gradient, by the cosine of the angle between them.
//!
//! A cosine of 1 is the exact direction, 0 is no better than a random direction. The
//! lecture's claim: a minibatch gradient is noisy but right on average, and the bigger the
//! batch the less noisy — the spread shrinks roughly like 1/√batch, while the cost grows
//! like batch. Measured at the MLP's initial weights and again after one epoch of SGD
//! (where the examples disagree more, since the easy ones are already learnt).
//!
//! ```text
//! cargo run --release --example noisy_gradients -- --plot docs/figures
//! ```
//! `--plot DIR` writes `noisy_gradients.svg`: one histogram per batch size and phase.

mod common;

use common::plot::{self, HistPanel};
use common::{fail, Args, Json};
use downhill::data::Minibatches;
use downhill::prelude::*;
use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;

const USAGE: &str = "usage: noisy_gradients [--data DIR] [--hidden 64] [--sizes 1,32,128,1024]
                       [--batches 300] [--train-epochs 1] [--seed 0] [--threads N]
                       [--plot DIR] [--json]";

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "data",
            "hidden",
            "sizes",
            "batches",
            "train-epochs",
            "seed",
            "threads",
            "plot",
        ],
        &["json"],
    );
    if let Err(e) = run(&args) {
        fail(e);
    }
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
) -> Result<Vec<Spread>> {
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

fn run(args: &Args) -> Result<()> {
    let mnist = common::load_data::<f32>(args);
    let train = &mnist.train;
    let sizes: Vec<usize> = args
        .string("sizes")
        .unwrap_or("1,32,128,1024")
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .ok()
                .filter(|&n| n >= 1 && n <= train.len())
                .unwrap_or_else(|| {
                    fail(format!(
                        "--sizes {s}: each size must be between 1 and {} (the training set)",
                        train.len()
                    ))
                })
        })
        .collect();
    let batches: usize = args.get("batches", 300);
    if batches == 0 {
        fail("--batches 0: must be at least 1");
    }
    let seed: u64 = args.get("seed", 0);
    let train_epochs: usize = args.get("train-epochs", 1);
    let threads: usize = args.get(
        "threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let mut model = Mlp::<f32>::builder(train.num_features())
        .hidden(args.get("hidden", 64), Activation::Relu)
        .classes(train.num_classes())
        .seed(seed)
        .build()?;
    model.set_threads(threads)?;

    let mut phases = vec![(
        "at the initial weights".to_string(),
        cosines(&mut model, train, &sizes, batches, seed)?,
    )];
    if train_epochs > 0 {
        let mut sgd = Sgd::new(0.1f32)?.batch_size(128)?;
        let report = Trainer::new(train_epochs)?
            .seed(seed)
            .threads(threads)?
            .run(&mut model, &mut sgd, train, None)?;
        phases.push((
            format!(
                "after {train_epochs} epoch{} of SGD (loss {:.3})",
                if train_epochs == 1 { "" } else { "s" },
                report.final_loss().unwrap_or(f64::NAN)
            ),
            cosines(&mut model, train, &sizes, batches, seed + 1)?,
        ));
    }

    println!("cos(minibatch gradient, full gradient) over {batches} random batches of each size:");
    let mut json = Json::default()
        .str("example", "noisy_gradients")
        .num("batches", batches as f64)
        .list(
            "sizes",
            &sizes.iter().map(|&s| s as f64).collect::<Vec<_>>(),
        );
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
        let key = if p == 0 { "initial" } else { "trained" };
        json = json
            .list(&format!("{key}_mean"), &means)
            .list(&format!("{key}_std"), &stds)
            .list(&format!("{key}_average_cosine"), &averages);
    }

    if let Some(dir) = args.string("plot") {
        // One x range for every panel, so the widths compare at a glance.
        let lowest = phases
            .iter()
            .flat_map(|(_, c)| c.iter().flat_map(|s| &s.cosines))
            .fold(0.0f64, |m, &v| m.min(v));
        let lo = ((lowest * 10.0).floor() / 10.0).max(-1.0);
        let mut panels = Vec::new();
        for (phase, cos) in &phases {
            for (size, spread) in sizes.iter().zip(cos) {
                panels.push(HistPanel::new(
                    &format!("batch {size}, {phase}"),
                    &format!(
                        "cosine to the full-batch gradient (their average's: {:.2})",
                        spread.average
                    ),
                    spread.cosines.clone(),
                    (lo, 1.0),
                    40,
                ));
            }
        }
        let path = plot::file_in(dir, "noisy_gradients.svg").unwrap_or_else(|e| fail(e));
        plot::histograms(&path, &panels, sizes.len()).unwrap_or_else(|e| fail(e));
        println!("wrote {}", path.display());
    }
    if args.switch("json") {
        json.print();
    }
    Ok(())
}
