//! The main job: train an MLP on MNIST digits and report test accuracy.
//!
//! ```text
//! cargo run --release --example mnist
//! cargo run --release --example mnist -- --hidden 256,128 --activation tanh --epochs 20
//! cargo run --release --example mnist -- --data ~/mnist --json
//! ```
//! `--data DIR` takes any directory with the four MNIST files (plain or `.gz`); the default is
//! the 8000/2000-digit subset shipped in `data/mnist-10k`.
//! `--plot DIR` writes `mnist.svg`: loss and test accuracy per epoch.

mod common;

use common::{fail, Args, Json};
use downhill::prelude::*;

const USAGE: &str =
    "usage: mnist [--data DIR] [--hidden 256[,128...]] [--activation relu|sigmoid|tanh]
             [--loss softmax|svm] [--optimizer sgd|gd|random|local] [--lr 0.1]
             [--momentum 0.9] [--batch 128] [--epochs 20] [--l2 0] [--seed 0]
             [--threads N] [--standardize] [--plot DIR] [--json]";

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
            "plot",
        ],
        &["json", "standardize"],
    );
    if let Err(e) = run(&args) {
        fail(e);
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
    let report = Trainer::new(epochs)?
        .seed(seed)
        .threads(threads)?
        .run_with(
            &mut model,
            optimizer.as_mut(),
            &train,
            Some(&test),
            &mut |e: &EpochRecord| {
                println!(
                    "epoch {:>3} loss {:.4} test_acc {:.4} {:.0} samples/s",
                    e.epoch,
                    e.train_loss,
                    e.valid_accuracy.unwrap_or(f64::NAN),
                    e.samples as f64 / e.train_seconds.max(1e-12)
                )
            },
        )?;
    if let Some(dir) = args.string("plot") {
        let title = format!("MLP {widths:?}, {name}");
        let path = common::plot::training_history(dir, "mnist.svg", &title, &report.history)
            .unwrap_or_else(|e| fail(e));
        println!("wrote {}", path.display());
    }
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
