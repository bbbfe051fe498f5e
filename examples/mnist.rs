//! The main job: train an MLP on MNIST digits and report test accuracy.
//!
//! ```text
//! cargo run --release --example mnist
//! cargo run --release --example mnist -- --hidden 256,128 --activation tanh --epochs 20
//! cargo run --release --example mnist -- --data ~/mnist --json
//! cargo run --release --example mnist -- --optimizer adam --schedule warmup-cosine --early-stop 3
//! ```
//! `--data DIR` takes any directory with the four MNIST files (plain or `.gz`); the default is
//! the 8000/2000-digit subset shipped in `data/mnist-10k`.
//! `--plot DIR` writes `mnist.svg`: loss and accuracy per epoch.
//!
//! `--checkpoint PATH` saves a checkpoint after every epoch; `--resume PATH` carries on from
//! one (give the same flags, and `--epochs` the total to reach): four epochs straight and two
//! plus two resumed end with the same `params_hash`. Bad input exits 2; a run that diverges
//! (`--lr 1e6`) exits 1 with one line naming the epoch, the step and the value.

mod common;

use common::{fail, Args, Json};
use downhill::checkpoint::{Checkpoint, CheckpointSaver};
use downhill::prelude::*;
use downhill::train::{EarlyStopping, History, LrScheduler, Monitor, Observers, Progress};

const USAGE: &str =
    "usage: mnist [--data DIR] [--hidden 256[,128...]] [--activation relu|sigmoid|tanh]
             [--loss softmax|svm] [--epochs 20] [--batch 128] [--l2 0] [--seed 0]
             [--optimizer sgd|momentum|nesterov|rmsprop|adam|adamw|gd|random|local]
             [--lr 0.1 (sgd, momentum, nesterov, gd), 1e-3 (rmsprop, adam, adamw)]
             [--momentum 0.9] [--weight-decay 0 (L2; adamw: decoupled, 1e-2)] [--clip MAX_NORM]
             [--schedule constant|step|exp|cosine|warmup-cosine|plateau] [--gamma G]
             [--step-every EPOCHS] [--warmup 2] [--plateau-patience 2]
             [--early-stop PATIENCE] [--monitor valid_loss|valid_accuracy] [--valid N]
             [--history FILE.csv|FILE.json] [--threads N] [--standardize] [--plot DIR]
             [--checkpoint PATH] [--resume PATH] [--json]

  sgd is SGD with --momentum (0.9 by default, 0 for plain SGD); momentum is the same.
  --valid N holds out N training images to validate on (default: 1000 when early stopping
  or reduce-on-plateau needs a validation metric, else 0 and the test set is reported
  per epoch). Test accuracy is measured once more at the end, on the model kept.";

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
            "weight-decay",
            "clip",
            "schedule",
            "gamma",
            "step-every",
            "warmup",
            "plateau-patience",
            "early-stop",
            "monitor",
            "valid",
            "history",
            "plot",
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
    let schedule_name = args.string("schedule").unwrap_or("constant");
    let early_stop: Option<usize> = args.string("early-stop").map(|_| args.get("early-stop", 0));
    let needs_valid = early_stop.is_some() || schedule_name == "plateau";
    let valid_size: usize = args.get("valid", if needs_valid { 1000 } else { 0 });
    // Early stopping and reduce-on-plateau choose by the validation metric, so it must not
    // be the test set: hold out part of the training set instead.
    let mut valid = None;
    if valid_size > 0 {
        let (rest, held_out) = train.split(valid_size, args.get("seed", 0))?;
        train = rest;
        valid = Some(held_out);
    }
    // Pixels are scaled to [0, 1] on load; --standardize also centres and scales each pixel
    // with statistics of the training split (the PyTorch peer's default).
    if args.switch("standardize") {
        let t = FeatureTransform::standardize(&train, 0.01)?;
        train.set_transform(t.clone())?;
        if let Some(v) = valid.as_mut() {
            v.set_transform(t.clone())?;
        }
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
    let mut optimizer = build_optimizer(args, name, seed)?;
    let lr = optimizer.learning_rate();

    let mut trainer = Trainer::new(epochs)?.seed(seed);
    let mut epochs_done = 0;
    if let Some(path) = args.string("resume") {
        let ckpt = Checkpoint::<f32>::load(path)?;
        ckpt.restore_model(&mut model)?;
        ckpt.restore_optimizer(optimizer.as_mut())?;
        trainer = trainer.resume(&ckpt.train)?;
        epochs_done = ckpt.train.epoch;
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
    let monitor: Monitor = args.get("monitor", Monitor::ValidLoss);
    let schedule = build_schedule(args, schedule_name, epochs)?;
    // The search methods have no learning rate: only an explicit schedule is an error there.
    let mut scheduler = if lr.is_some() || schedule_name != "constant" {
        Some(
            LrScheduler::new(schedule, optimizer.as_mut())?
                .monitor(monitor)
                .resume_at(epochs_done, optimizer.as_mut())?,
        )
    } else {
        None
    };
    let mut stopper = early_stop
        .map(|patience| EarlyStopping::<f32>::new(monitor, patience))
        .transpose()?;
    let mut history = History::new();
    if let Some(path) = args.string("history") {
        history = if path.ends_with(".json") {
            history.json(path)
        } else {
            history.csv(path)
        };
    }
    let mut progress = Progress::new(epochs);
    let mut saver = args.string("checkpoint").map(|path| {
        CheckpointSaver::new(path, seed)
            .architecture(model.architecture())
            .hyper("optimizer", name)
            .hyper("lr", lr.map_or("none".to_string(), |l| l.to_string()))
            .hyper("schedule", schedule_name)
            .hyper("batch", args.get::<usize>("batch", 128))
    });
    let mut observers: Vec<&mut dyn Observer<f32>> = vec![&mut progress, &mut history];
    if let Some(s) = stopper.as_mut() {
        observers.push(s);
    }
    // The scheduler goes last: it sets the next epoch's rate once the others have seen this one.
    if let Some(s) = scheduler.as_mut() {
        observers.push(s);
    }
    // The checkpoint is written after the scheduler has set the next epoch's rate.
    if let Some(s) = saver.as_mut() {
        observers.push(s);
    }
    let report = trainer.threads(threads)?.run_with(
        &mut model,
        optimizer.as_mut(),
        &train,
        Some(valid.as_ref().unwrap_or(&test)),
        &mut Observers(observers),
    )?;
    if let Some(dir) = args.string("plot") {
        let (title, set) = (
            format!("MLP {widths:?}, {name}"),
            if valid.is_some() {
                "validation"
            } else {
                "test"
            },
        );
        let path = common::plot::training_history(dir, "mnist.svg", &title, set, &report.history)
            .unwrap_or_else(|e| fail(e));
        println!("wrote {}", path.display());
    }
    // The model now holds the parameters early stopping kept (or the last ones).
    let test_accuracy = accuracy(&mut model, &test)?;
    let best_epoch = stopper.as_ref().and_then(|s| s.best_epoch());
    if json {
        let mut out = Json::default()
            .str("example", "mnist")
            .str("optimizer", name)
            .str("schedule", schedule_name)
            .opt("lr", lr)
            .num("test_accuracy", test_accuracy)
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
            .num("valid_size", valid_size as f64)
            .opt(
                "valid_loss",
                report.history.last().and_then(|e| e.valid_loss),
            )
            .opt("best_epoch", best_epoch.map(|e| e as f64));
        if let Some(why) = &report.stopped {
            out = out.str("stopped", why);
        }
        out.str("params_hash", &common::params_hash(model.params()))
            .print();
    } else {
        if let Some(e) = best_epoch {
            println!("kept the parameters of epoch {e} (best {monitor})");
        }
        println!(
            "test accuracy {:.4} after {} epochs, {:.2} s training, {:.0} samples/s",
            test_accuracy,
            report.history.len(),
            report.train_seconds(),
            report.samples_per_s()
        );
    }
    Ok(())
}

/// The optimizer `--optimizer` names, with its flags.
fn build_optimizer(args: &Args, name: &str, seed: u64) -> Result<Box<dyn Optimizer<f32>>> {
    let adaptive = matches!(name, "rmsprop" | "adam" | "adamw");
    let lr: f32 = args.get("lr", if adaptive { 1e-3 } else { 0.1 });
    let rule = match name {
        "sgd" | "momentum" => None,
        "nesterov" => Some(UpdateRule::nesterov(args.get("momentum", 0.9))?),
        "rmsprop" => Some(UpdateRule::rmsprop()),
        "adam" => Some(UpdateRule::adam()),
        // AdamW's weight decay is its own, decoupled one (PyTorch's `AdamW(weight_decay=)`).
        "adamw" => Some(UpdateRule::adamw().weight_decay(args.get("weight-decay", 1e-2))?),
        "gd" => {
            let gd = GradientDescent::new(lr)?.weight_decay(args.get("weight-decay", 0.0))?;
            return Ok(Box::new(match args.string("clip") {
                Some(_) => gd.clip_grad_norm(args.get("clip", 1.0))?,
                None => gd,
            }));
        }
        "random" => return Ok(Box::new(RandomSearch::new(lr, seed)?)),
        "local" => return Ok(Box::new(LocalSearch::new(lr, seed)?)),
        other => fail(format!(
            "--optimizer {other}: must be sgd, momentum, nesterov, rmsprop, adam, adamw, gd, \
             random or local"
        )),
    };
    let mut sgd = Sgd::new(lr)?.batch_size(args.get("batch", 128))?;
    if name != "adamw" {
        sgd = sgd.weight_decay(args.get("weight-decay", 0.0))?;
    }
    sgd = match rule {
        Some(rule) => sgd.rule(rule),
        None => sgd.momentum(args.get("momentum", 0.9))?,
    };
    if args.string("clip").is_some() {
        sgd = sgd.clip_grad_norm(args.get("clip", 1.0))?;
    }
    Ok(Box::new(sgd))
}

/// The learning-rate schedule `--schedule` names, over a run of `epochs` epochs.
fn build_schedule(args: &Args, name: &str, epochs: usize) -> Result<Schedule> {
    let warmup: usize = args.get("warmup", 2);
    Ok(match name {
        "constant" => Schedule::constant(),
        "step" => Schedule::step(
            args.get("step-every", (epochs / 3).max(1)),
            args.get("gamma", 0.1),
        )?,
        "exp" => Schedule::exponential(args.get("gamma", 0.9))?,
        "cosine" => Schedule::cosine(epochs, 0.0)?,
        "warmup-cosine" => {
            Schedule::cosine(epochs.saturating_sub(warmup).max(1), 0.0)?.with_warmup(warmup, 0.1)?
        }
        "plateau" => Schedule::plateau(args.get("gamma", 0.5), args.get("plateau-patience", 2))?,
        other => fail(format!(
            "--schedule {other}: must be constant, step, exp, cosine, warmup-cosine or plateau"
        )),
    })
}
