//! The main job: train an MLP on MNIST digits and report test accuracy.
//!
//! ```text
//! cargo run --release --example mnist
//! cargo run --release --example mnist -- --hidden 256,128 --activation tanh --epochs 20
//! cargo run --release --example mnist -- --data ~/mnist --json
//! ```
//! `--data DIR` takes any directory with the four MNIST files (plain or `.gz`); the default is
//! the 8000/2000-digit subset shipped in `data/mnist-10k`.
//!
//! `--checkpoint PATH` saves a checkpoint after every epoch; `--resume PATH` carries on from
//! one (give the same flags, and `--epochs` the total to reach): four epochs straight and two
//! plus two resumed end with the same `params_hash`. Bad input exits 2; a run that diverges
//! (`--lr 1e6`) exits 1 with one line naming the epoch, the step and the value.

mod common;

use common::{fail, Args, Json};
use downhill::checkpoint::{Checkpoint, CheckpointSaver};
use downhill::prelude::*;

const USAGE: &str =
    "usage: mnist [--data DIR] [--hidden 256[,128...]] [--activation relu|sigmoid|tanh]
             [--loss softmax|svm] [--optimizer sgd|gd|random|local] [--lr 0.1]
             [--momentum 0.9] [--batch 128] [--epochs 20] [--l2 0] [--seed 0]
             [--threads N] [--standardize] [--checkpoint PATH] [--resume PATH] [--json]";

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "data",
            "hidden",
            "activation",
            "loss",
            "optimizer",
            "lr",
            "momentum",
            "batch",
            "epochs",
            "l2",
            "seed",
            "threads",
            "checkpoint",
            "resume",
        ],
        &["json", "standardize"],
    );
    match run(&args) {
        Ok(()) => {}
        // Divergence is a failure of the run, not of its input: exit 1, one line.
        Err(e @ Error::Diverged { .. }) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
        Err(e) => fail(e),
    }
}

fn run(args: &Args) -> Result<()> {
    let json = args.switch("json");
    let mnist = common::load_data::<f32>(args);
    let (mut train, mut test) = (mnist.train, mnist.test);
    // Pixels are scaled to [0, 1] on load; --standardize also centres and scales each pixel
    // with statistics of the training split (the PyTorch peer's default).
    if args.switch("standardize") {
        let t = FeatureTransform::standardize(&train, 0.01)?;
        train.set_transform(t.clone())?;
        test.set_transform(t)?;
    }

    let hidden: Vec<usize> = args
        .string("hidden")
        .unwrap_or("256")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|e| fail(format!("--hidden {s}: {e}")))
        })
        .collect();
    let activation: Activation = args.get("activation", Activation::Relu);
    let loss: Loss = args.get("loss", Loss::SoftmaxCrossEntropy);
    let seed: u64 = args.get("seed", 0);
    let epochs: usize = args.get("epochs", 20);
    let lr: f32 = args.get("lr", 0.1);
    let mut builder = Mlp::<f32>::builder(train.num_features())
        .classes(train.num_classes())
        .loss(loss)
        .l2(args.get("l2", 0.0))
        .seed(seed);
    for &h in &hidden {
        builder = builder.hidden(h, activation);
    }
    let mut model = builder.build()?;

    let name = args.string("optimizer").unwrap_or("sgd");
    let mut optimizer: Box<dyn Optimizer<f32>> = match name {
        "sgd" => Box::new(
            Sgd::new(lr)?
                .momentum(args.get("momentum", 0.9))?
                .batch_size(args.get("batch", 128))?,
        ),
        "gd" => Box::new(GradientDescent::new(lr)?),
        "random" => Box::new(RandomSearch::new(lr, seed)?),
        "local" => Box::new(LocalSearch::new(lr, seed)?),
        other => fail(format!(
            "--optimizer {other}: must be sgd, gd, random or local"
        )),
    };

    let mut trainer = Trainer::new(epochs)?.seed(seed);
    if let Some(path) = args.string("resume") {
        let ckpt = Checkpoint::<f32>::load(path)?;
        ckpt.restore_model(&mut model)?;
        ckpt.restore_optimizer(optimizer.as_mut())?;
        trainer = trainer.resume(&ckpt.train)?;
    }
    let widths = model.widths();
    let threads: usize = args.get(
        "threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    if !json {
        println!(
            "MLP {widths:?} ({activation}), {} parameters, {loss} loss, {name}, {threads} threads; {} train / {} test images",
            model.num_params(),
            train.len(),
            test.len()
        );
    }
    let mut print = |e: &EpochRecord| {
        println!(
            "epoch {:>3} loss {:.4} test_acc {:.4} {:.0} samples/s",
            e.epoch,
            e.train_loss,
            e.valid_accuracy.unwrap_or(f64::NAN),
            e.samples as f64 / e.train_seconds.max(1e-12)
        )
    };
    let mut saver = args.string("checkpoint").map(|path| {
        CheckpointSaver::new(path, seed)
            .architecture(model.architecture())
            .hyper("optimizer", name)
            .hyper("lr", lr)
            .hyper("momentum", args.get::<f32>("momentum", 0.9))
            .hyper("batch", args.get::<usize>("batch", 128))
    });
    let mut observers: Vec<&mut dyn Observer<f32>> = vec![&mut print];
    if let Some(s) = saver.as_mut() {
        observers.push(s);
    }
    let report = trainer.threads(threads)?.run_with(
        &mut model,
        optimizer.as_mut(),
        &train,
        Some(&test),
        &mut observers,
    )?;
    let test_accuracy = report.history.last().and_then(|e| e.valid_accuracy);
    if json {
        Json::default()
            .str("example", "mnist")
            .opt("test_accuracy", test_accuracy)
            .opt("train_loss", report.final_loss())
            .num("epochs", report.history.len() as f64)
            .num("seconds", report.train_seconds())
            .num("samples_per_s", report.samples_per_s())
            .num("batch", args.get::<usize>("batch", 128) as f64)
            .num("threads", threads as f64)
            .list(
                "hidden",
                &hidden.iter().map(|&h| h as f64).collect::<Vec<_>>(),
            )
            .opt("peak_rss_mib", common::peak_rss_mib())
            .str("params_hash", &common::params_hash(model.params()))
            .print();
    } else {
        println!(
            "test accuracy {:.4} after {} epochs, {:.2} s training, {:.0} samples/s",
            test_accuracy.unwrap_or(f64::NAN),
            report.history.len(),
            report.train_seconds(),
            report.samples_per_s()
        );
    }
    Ok(())
}
