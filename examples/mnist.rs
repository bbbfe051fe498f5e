//! Lecture step 6, the training loop — the main job: train an MLP on MNIST digits and report
//! test accuracy.
//!
//! ```text
//! cargo run --release --example mnist
//! cargo run --release --example mnist -- --hidden 256,128 --activation tanh --epochs 20
//! cargo run --release --example mnist -- --data ~/mnist --json
//! cargo run --release --example mnist -- --optimizer adam --schedule warmup-cosine --early-stop 3
//! cargo run --release --example mnist -- --optimizer lbfgs --hidden 64 --epochs 200
//! cargo run --release --example mnist -- --help
//! ```
//! `--data DIR` takes any directory with the four MNIST files (plain or `.gz`); the default is
//! the 8000/2000-digit subset shipped in `data/mnist-10k`.
//!
//! The test set is scored once, at the end. What the run watches after every epoch — the
//! per-epoch lines, `--history`, early stopping, the plateau schedule — is a validation split
//! of the training images (`--valid 1000` of them, drawn with the seed), so that nothing is
//! chosen on the test set. `--valid 0` trains on every training image and shows no held-out
//! figures per epoch; `--test-curve` also scores the test set after every epoch, labelled
//! "test", to show what watching it would look like.
//! `--plot DIR` writes `mnist.svg`: loss and accuracy per epoch; and from the test set's one
//! scoring at the end, `confusion.svg` (which digits it takes for which), `mistakes.svg`
//! (the test images it is surest of and wrong about) and `templates.svg` (its first-layer
//! units with the largest weights, as images).
//!
//! Beyond the lecture: `--dropout P` drops each hidden unit with probability `P` in every
//! training step; `--augment SPEC` distorts every training image a little, differently each
//! epoch, as its batch is gathered — comma-separated parts `shift:PIXELS` (whole-pixel
//! shifts up to that far each way), `rotate:DEGREES` (up to that angle either way),
//! `scale:FRACTION` (up to ±that), `elastic:ALPHA:SIGMA` (a smooth random field: moves of
//! up to about ALPHA pixels, smoothed over SIGMA), e.g. `--augment shift:2,rotate:10,scale:0.1`.
//! Neither touches validation or test images; both are drawn per `(seed, epoch, step, row)`,
//! so runs stay the same on any thread count and resumed. `--train-accuracy` scores the
//! training images after every epoch too (without dropout or augmentation), to show the gap
//! to validation. `--json` carries the test set's confusion matrix and per-class figures.
//!
//! `--checkpoint PATH` saves a checkpoint after every epoch (safetensors, in PyTorch's layout),
//! with every flag that determines the run as its hyper-parameters. `--resume PATH` carries on
//! from one, up to `--epochs` in all: the flags you leave out come from the checkpoint, and a
//! flag that contradicts it is an error naming both values. Four epochs straight and two plus
//! two resumed end with the same `params_hash`, early stopping included. Bad input exits 2; a
//! run that diverges (`--lr 1e8`) exits 1 with one line naming the epoch, the step and the
//! value.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, ValueEnum};
use common::heldout::{hold_out, Scorer, TestSet, VALID};
use common::measure::{params_hash, peak_rss_mib};
use common::prelude::*;
use common::threads::ThreadsArg;
use downhill::checkpoint::{Checkpoint, CheckpointSaver};
use downhill::model::SparseInput;
use downhill::optim::{BatchPolicy, Convergence, Descent, Lbfgs, LineSearch};
use downhill::train::{
    EarlyStopping, History, LrScheduler, Monitor, Observers, Progress, StepInfo, StopReason,
};

/// Trains an MLP on MNIST-format digits and reports its test accuracy.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Epochs to train in all (a resumed run counts the checkpoint's)
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    #[command(flatten)]
    threads: ThreadsArg,
    /// Write the per-epoch history to FILE: CSV, or JSON if FILE ends in .json
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Write mnist.svg (loss and accuracy per epoch) into this directory
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Also score the test set after every epoch and show it, labelled test, in the lines,
    /// the history and the figure (to see what watching it would look like: choose by the
    /// validation split, never by this)
    #[arg(long)]
    test_curve: bool,
    /// Save a checkpoint to PATH after every epoch
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,
    /// Carry on from the checkpoint at PATH: flags left out come from it, flags given must
    /// agree with it
    #[arg(long, value_name = "PATH")]
    resume: Option<PathBuf>,
    /// Print one JSON object as the last line
    #[arg(long)]
    json: bool,
    /// Also score the training images after every epoch (in evaluation mode: no dropout, no
    /// augmentation) and record their accuracy in the history and the figure
    #[arg(long)]
    train_accuracy: bool,
    // Last, under a heading of their own.
    #[command(flatten)]
    run: RunFlags,
}

// Defaults that depend on other flags, each written once: used by `Settings::resolve` and
// shown by `--help`.
/// The learning rate of sgd, momentum, nesterov and gd (and the searches' step).
const LR: f32 = 0.1;
/// The learning rate of rmsprop, adam and adamw.
const ADAPTIVE_LR: f32 = 1e-3;
/// lbfgs's `--lr`: its line search's first trial step (PyTorch's LBFGS `lr`).
const LBFGS_LR: f32 = 1.0;
/// AdamW's decoupled weight decay (the other optimizers' L2 decay defaults to 0).
const ADAMW_DECAY: f64 = 1e-2;
/// γ of the step, exp and plateau schedules.
const STEP_GAMMA: f64 = 0.1;
const EXP_GAMMA: f64 = 0.9;
const PLATEAU_GAMMA: f64 = 0.5;

/// The flags that determine a run, which every checkpoint records. On `--resume`, the ones
/// left out are taken from the checkpoint ([`checkpoint_flags`]). The `Option`s among them
/// have defaults that depend on other flags, applied in [`Settings::resolve`]; their help
/// text is built from the same constants.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Run (recorded in checkpoints, checked on --resume)")]
struct RunFlags {
    #[command(flatten)]
    net: HiddenArgs,
    /// The output layer's activation: none (scores), or the lecture's σ
    #[arg(long, value_enum, default_value_t = OutputArg::None)]
    output: OutputArg,
    /// The data loss (bce needs --output sigmoid)
    #[arg(long, value_enum, default_value_t = LossArg::Softmax)]
    loss: LossArg,
    /// Whether the first layer reads the pixels as sparse rows [auto: below the density
    /// where that is faster]
    #[arg(long, value_enum, default_value_t = SparseArg::Auto)]
    sparse_input: SparseArg,
    /// L2 regularisation strength λ in the loss
    #[arg(long, default_value_t = 0.0)]
    l2: f64,
    /// The optimizer
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    optimizer: OptimizerArg,
    #[arg(long, help = format!(
        "Learning rate (random and local: the step scale; lbfgs: its line search's first \
         trial step) [default: {LR}; {ADAPTIVE_LR} for rmsprop, adam and adamw; {LBFGS_LR} for \
         lbfgs]"
    ))]
    lr: Option<f32>,
    /// lbfgs's history: the curvature pairs it keeps
    #[arg(long, default_value_t = 10)]
    history_size: usize,
    /// lbfgs's line search
    #[arg(long, value_enum, default_value_t = LineSearchArg::StrongWolfe)]
    line_search: LineSearchArg,
    /// Momentum μ of sgd, momentum and nesterov (0: plain SGD)
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    #[arg(long, help = format!(
        "Weight decay: L2, added to the gradient (adamw: decoupled) [default: 0; {ADAMW_DECAY} \
         for adamw]"
    ))]
    weight_decay: Option<f64>,
    /// Clip each gradient to this global norm (default: no clipping)
    #[arg(long, value_name = "MAX_NORM")]
    clip: Option<f32>,
    /// Minibatch size (gd, random and local see the whole training set every step)
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Learning-rate schedule, per epoch
    #[arg(long, value_enum, default_value_t = ScheduleArg::Constant)]
    schedule: ScheduleArg,
    #[arg(long, help = format!(
        "γ of the step, exp and plateau schedules [default: {STEP_GAMMA}, {EXP_GAMMA} and \
         {PLATEAU_GAMMA}]"
    ))]
    gamma: Option<f64>,
    /// Epochs between the step schedule's steps [default: a third of --epochs]
    #[arg(long, value_name = "EPOCHS")]
    step_every: Option<usize>,
    /// Epochs the cosine schedules anneal over [default: the run's epochs after warm-up]
    #[arg(long, value_name = "EPOCHS")]
    cosine_epochs: Option<usize>,
    /// Warm-up epochs of warmup-cosine
    #[arg(long, value_name = "EPOCHS", default_value_t = 2)]
    warmup: usize,
    /// Epochs without improvement before plateau lowers the rate
    #[arg(long, value_name = "EPOCHS", default_value_t = 2)]
    plateau_patience: usize,
    /// Stop after this many epochs without improvement of --monitor, keeping the best
    /// parameters (default: no early stopping)
    #[arg(long, value_name = "PATIENCE")]
    early_stop: Option<usize>,
    /// What early stopping and plateau watch
    #[arg(long, value_enum, default_value_t = MonitorArg::ValidLoss)]
    monitor: MonitorArg,
    /// Training images held out (drawn with --seed) to validate on after every epoch, and
    /// for early stopping and plateau to watch; 0 trains on all of them and shows no held-out
    /// figures per epoch
    #[arg(long, value_name = "N", default_value_t = VALID)]
    valid: usize,
    /// Standardise each pixel with the training split's mean and spread (default: scale to
    /// [0, 1])
    #[arg(long)]
    standardize: bool,
    /// Dropout: the probability each hidden unit is dropped in a training step (0 to 1,
    /// not 1)
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    dropout: f64,
    /// Distort each training image as it is gathered, differently every epoch:
    /// comma-separated shift:PIXELS, rotate:DEGREES, scale:FRACTION, elastic:ALPHA:SIGMA
    /// (e.g. shift:2,rotate:10,scale:0.1); none by default
    #[arg(long, value_name = "SPEC")]
    augment: Option<String>,
    /// Seed of the weights, the validation split and the minibatch order
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `--loss`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LossArg {
    /// Softmax cross-entropy
    Softmax,
    /// Multiclass SVM hinge loss
    Svm,
    /// Mean squared error against the one-hot label
    Mse,
    /// Binary cross-entropy against the one-hot label (outputs in (0, 1))
    Bce,
}

impl From<LossArg> for Loss {
    fn from(l: LossArg) -> Self {
        match l {
            LossArg::Softmax => Loss::SoftmaxCrossEntropy,
            LossArg::Svm => Loss::Hinge,
            LossArg::Mse => Loss::MeanSquared,
            LossArg::Bce => Loss::BinaryCrossEntropy,
        }
    }
}

/// `--output`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OutputArg {
    /// Affine scores
    None,
    /// σ, the lecture's
    Sigmoid,
    /// tanh
    Tanh,
}

impl OutputArg {
    fn activation(self) -> Option<Activation> {
        match self {
            OutputArg::None => None,
            OutputArg::Sigmoid => Some(Activation::Sigmoid),
            OutputArg::Tanh => Some(Activation::Tanh),
        }
    }
}

/// `--sparse-input`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SparseArg {
    /// Sparse below the measured crossover density
    Auto,
    /// Always sparse
    Always,
    /// Always dense
    Never,
}

impl From<SparseArg> for SparseInput {
    fn from(s: SparseArg) -> Self {
        match s {
            SparseArg::Auto => SparseInput::Auto,
            SparseArg::Always => SparseInput::Always,
            SparseArg::Never => SparseInput::Never,
        }
    }
}

/// `--optimizer`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OptimizerArg {
    /// Minibatch SGD with --momentum
    Sgd,
    /// The same as sgd
    Momentum,
    /// SGD with Nesterov momentum
    Nesterov,
    /// SGD with RMSProp
    Rmsprop,
    /// SGD with Adam
    Adam,
    /// SGD with AdamW
    Adamw,
    /// Full-batch gradient descent
    Gd,
    /// L-BFGS, full batch, a line search every iteration (--history-size, --line-search)
    Lbfgs,
    /// Random search
    Random,
    /// Random local search
    Local,
}

impl OptimizerArg {
    /// Whether every step sees the whole training set.
    fn full_batch(self) -> bool {
        matches!(self, Self::Gd | Self::Random | Self::Local | Self::Lbfgs)
    }
    /// Whether it takes gradient steps (and so has a weight decay and clipping).
    fn gradient(self) -> bool {
        !matches!(self, Self::Random | Self::Local | Self::Lbfgs)
    }
    /// Whether it scales each parameter's step itself.
    fn adaptive(self) -> bool {
        matches!(self, Self::Rmsprop | Self::Adam | Self::Adamw)
    }
    /// Whether --momentum applies.
    fn momentum(self) -> bool {
        matches!(self, Self::Sgd | Self::Momentum | Self::Nesterov)
    }
}

/// `--line-search`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LineSearchArg {
    /// Sufficient decrease (Armijo), halving the step
    Backtracking,
    /// Sufficient decrease and curvature, bracketing and zoom
    StrongWolfe,
}

/// Stops the run once L-BFGS has converged: its steps would move nothing more.
struct StopWhenConverged;

impl Observer<f32> for StopWhenConverged {
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, f32>) -> downhill::Result<Control> {
        Ok(match Convergence::from_state(&end.optimizer.state()) {
            Some(why) => Control::Stop(StopReason::Requested(format!(
                "L-BFGS stopped after epoch {}: {why}",
                end.record.epoch
            ))),
            None => Control::Continue,
        })
    }
}

/// `--schedule`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ScheduleArg {
    /// The same rate every epoch
    Constant,
    /// Multiply by --gamma every --step-every epochs
    Step,
    /// Multiply by --gamma every epoch
    Exp,
    /// Cosine annealing to 0 over --cosine-epochs
    Cosine,
    /// A linear warm-up over --warmup epochs, then cosine
    WarmupCosine,
    /// Multiply by --gamma when --monitor has not improved for --plateau-patience epochs
    Plateau,
}

/// `--monitor`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MonitorArg {
    /// Validation loss
    #[value(name = "valid_loss")]
    ValidLoss,
    /// Validation accuracy
    #[value(name = "valid_accuracy")]
    ValidAccuracy,
    /// Training loss (does not show overfitting)
    #[value(name = "train_loss")]
    TrainLoss,
}

impl From<MonitorArg> for Monitor {
    fn from(m: MonitorArg) -> Self {
        match m {
            MonitorArg::ValidLoss => Monitor::ValidLoss,
            MonitorArg::ValidAccuracy => Monitor::ValidAccuracy,
            MonitorArg::TrainLoss => Monitor::TrainLoss,
        }
    }
}

/// A schedule and the parameters it takes.
#[derive(Debug, Clone, Copy)]
enum ScheduleSettings {
    Constant,
    Step { every: usize, gamma: f64 },
    Exp { gamma: f64 },
    Cosine { epochs: usize },
    WarmupCosine { warmup: usize, epochs: usize },
    Plateau { gamma: f64, patience: usize },
}

impl ScheduleSettings {
    /// The library's schedule.
    fn schedule(self) -> downhill::Result<Schedule> {
        Ok(match self {
            Self::Constant => Schedule::constant(),
            Self::Step { every, gamma } => Schedule::step(every, gamma)?,
            Self::Exp { gamma } => Schedule::exponential(gamma)?,
            Self::Cosine { epochs } => Schedule::cosine(epochs, 0.0)?,
            Self::WarmupCosine { warmup, epochs } => {
                Schedule::cosine(epochs, 0.0)?.with_warmup(warmup, 0.1)?
            }
            Self::Plateau { gamma, patience } => Schedule::plateau(gamma, patience)?,
        })
    }
    /// Which `--schedule` it is.
    fn arg(self) -> ScheduleArg {
        match self {
            Self::Constant => ScheduleArg::Constant,
            Self::Step { .. } => ScheduleArg::Step,
            Self::Exp { .. } => ScheduleArg::Exp,
            Self::Cosine { .. } => ScheduleArg::Cosine,
            Self::WarmupCosine { .. } => ScheduleArg::WarmupCosine,
            Self::Plateau { .. } => ScheduleArg::Plateau,
        }
    }
    /// `--schedule`'s value, and the flags of its parameters with theirs.
    fn flags(self) -> Vec<(&'static str, String)> {
        let mut flags = vec![("schedule", flag_name(self.arg()))];
        flags.extend(match self {
            Self::Constant => vec![],
            Self::Step { every, gamma } => {
                vec![
                    ("step-every", every.to_string()),
                    ("gamma", gamma.to_string()),
                ]
            }
            Self::Exp { gamma } => vec![("gamma", gamma.to_string())],
            Self::Cosine { epochs } => vec![("cosine-epochs", epochs.to_string())],
            Self::WarmupCosine { warmup, epochs } => vec![
                ("warmup", warmup.to_string()),
                ("cosine-epochs", epochs.to_string()),
            ],
            Self::Plateau { gamma, patience } => vec![
                ("gamma", gamma.to_string()),
                ("plateau-patience", patience.to_string()),
            ],
        });
        flags
    }
}

/// The name a flag gives a choice (`warmup-cosine`).
fn flag_name(choice: impl ValueEnum) -> String {
    choice
        .to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// A run's settings with every default applied: what the run uses, and what its checkpoints
/// record. A setting that does not apply to the run (momentum for adam, γ for a constant
/// schedule) is `None` and is not recorded.
#[derive(Debug)]
struct Settings {
    hidden: Vec<usize>,
    activation: ActivationArg,
    output: OutputArg,
    loss: LossArg,
    sparse_input: SparseArg,
    l2: f64,
    optimizer: OptimizerArg,
    lr: f32,
    momentum: Option<f64>,
    weight_decay: Option<f64>,
    clip: Option<f32>,
    /// `None` for the full-batch methods.
    batch: Option<usize>,
    /// lbfgs's history size and line search.
    history_size: Option<usize>,
    line_search: Option<LineSearchArg>,
    schedule: ScheduleSettings,
    early_stop: Option<usize>,
    /// When early stopping or plateau watches it.
    monitor: Option<MonitorArg>,
    valid: usize,
    standardize: bool,
    /// `None` for no dropout.
    dropout: Option<f64>,
    /// The `--augment` spec, `None` for none.
    augment: Option<String>,
    seed: u64,
}

impl Settings {
    /// Applies the defaults that depend on other flags (the one place they are applied).
    fn resolve(f: &RunFlags, epochs: usize) -> Settings {
        let opt = f.optimizer;
        let gamma = |default: f64| f.gamma.unwrap_or(default);
        let cosine_epochs = |warmup: usize| {
            f.cosine_epochs
                .unwrap_or(epochs.saturating_sub(warmup).max(1))
        };
        let schedule = match f.schedule {
            ScheduleArg::Constant => ScheduleSettings::Constant,
            ScheduleArg::Step => ScheduleSettings::Step {
                every: f.step_every.unwrap_or((epochs / 3).max(1)),
                gamma: gamma(STEP_GAMMA),
            },
            ScheduleArg::Exp => ScheduleSettings::Exp {
                gamma: gamma(EXP_GAMMA),
            },
            ScheduleArg::Cosine => ScheduleSettings::Cosine {
                epochs: cosine_epochs(0),
            },
            ScheduleArg::WarmupCosine => ScheduleSettings::WarmupCosine {
                warmup: f.warmup,
                epochs: cosine_epochs(f.warmup),
            },
            ScheduleArg::Plateau => ScheduleSettings::Plateau {
                gamma: gamma(PLATEAU_GAMMA),
                patience: f.plateau_patience,
            },
        };
        let watches = f.early_stop.is_some() || f.schedule == ScheduleArg::Plateau;
        Settings {
            hidden: f.net.hidden.clone(),
            activation: f.net.activation,
            output: f.output,
            loss: f.loss,
            sparse_input: f.sparse_input,
            l2: f.l2,
            optimizer: opt,
            lr: f.lr.unwrap_or(match opt {
                OptimizerArg::Lbfgs => LBFGS_LR,
                _ if opt.adaptive() => ADAPTIVE_LR,
                _ => LR,
            }),
            momentum: opt.momentum().then_some(f.momentum),
            weight_decay: opt.gradient().then(|| {
                let default = if opt == OptimizerArg::Adamw {
                    ADAMW_DECAY
                } else {
                    0.0
                };
                f.weight_decay.unwrap_or(default)
            }),
            clip: f.clip.filter(|_| opt.gradient()),
            batch: (!opt.full_batch()).then_some(f.batch),
            history_size: (opt == OptimizerArg::Lbfgs).then_some(f.history_size),
            line_search: (opt == OptimizerArg::Lbfgs).then_some(f.line_search),
            schedule,
            early_stop: f.early_stop,
            monitor: watches.then_some(f.monitor),
            valid: f.valid,
            standardize: f.standardize,
            dropout: (f.dropout != 0.0).then_some(f.dropout),
            augment: f
                .augment
                .as_ref()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty() && a != "none"),
            seed: f.seed,
        }
    }

    /// The settings as a checkpoint records them: flag name → the value, written as the flag
    /// takes it.
    fn hyper(&self) -> BTreeMap<String, String> {
        let widths: Vec<String> = self.hidden.iter().map(usize::to_string).collect();
        let some = |v: &dyn ToString| Some(v.to_string());
        let mut flags: Vec<(&str, Option<String>)> = vec![
            ("hidden", Some(widths.join(","))),
            ("activation", Some(flag_name(self.activation))),
            ("output", Some(flag_name(self.output))),
            ("loss", Some(flag_name(self.loss))),
            ("sparse-input", Some(flag_name(self.sparse_input))),
            ("l2", some(&self.l2)),
            ("optimizer", Some(flag_name(self.optimizer))),
            ("lr", some(&self.lr)),
            ("momentum", self.momentum.map(|v| v.to_string())),
            ("weight-decay", self.weight_decay.map(|v| v.to_string())),
            ("clip", self.clip.map(|v| v.to_string())),
            ("batch", self.batch.map(|v| v.to_string())),
            ("history-size", self.history_size.map(|v| v.to_string())),
            ("line-search", self.line_search.map(flag_name)),
            ("early-stop", self.early_stop.map(|v| v.to_string())),
            ("monitor", self.monitor.map(flag_name)),
            ("valid", some(&self.valid)),
            ("standardize", some(&self.standardize)),
            ("dropout", self.dropout.map(|v| v.to_string())),
            ("augment", self.augment.clone()),
            ("seed", some(&self.seed)),
        ];
        flags.extend(self.schedule.flags().into_iter().map(|(k, v)| (k, Some(v))));
        flags
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect()
    }

    /// The network the settings describe, with fresh weights.
    fn model(&self, inputs: usize, classes: usize) -> downhill::Result<Mlp<f32>> {
        let activation = Activation::from(self.activation);
        let builder = Mlp::<f32>::builder(inputs)
            .classes(classes)
            .output(self.output.activation())
            .loss(self.loss.into())
            .sparse_input(self.sparse_input.into())
            .l2(self.l2)
            .dropout(self.dropout.unwrap_or(0.0))
            .seed(self.seed);
        self.hidden
            .iter()
            .fold(builder, |b, &h| b.hidden(h, activation))
            .build()
    }

    /// The optimizer the settings name, with its hyper-parameters.
    fn optimizer(&self) -> downhill::Result<Box<dyn Optimizer<f32>>> {
        let (lr, seed) = (self.lr, self.seed);
        let mu = self.momentum.unwrap_or(0.0);
        let decay = self.weight_decay.unwrap_or(0.0);
        let rule = match self.optimizer {
            OptimizerArg::Random => return Ok(Box::new(RandomSearch::new(lr, seed)?)),
            OptimizerArg::Lbfgs => {
                let search = match self.line_search {
                    Some(LineSearchArg::Backtracking) => LineSearch::backtracking(),
                    _ => LineSearch::strong_wolfe(),
                };
                let search = search.initial_step(f64::from(lr))?;
                let history = self.history_size.unwrap_or(0);
                return Ok(Box::new(Lbfgs::new(history)?.line_search(search)));
            }
            OptimizerArg::Local => return Ok(Box::new(LocalSearch::new(lr, seed)?)),
            OptimizerArg::Sgd | OptimizerArg::Momentum => UpdateRule::momentum(mu)?,
            OptimizerArg::Nesterov => UpdateRule::nesterov(mu)?,
            OptimizerArg::Rmsprop => UpdateRule::rmsprop(),
            OptimizerArg::Adam => UpdateRule::adam(),
            // AdamW's weight decay is its own, decoupled one (PyTorch's `AdamW(weight_decay=)`).
            OptimizerArg::Adamw => UpdateRule::adamw().weight_decay(decay)?,
            OptimizerArg::Gd => UpdateRule::plain(),
        };
        // Everyone else's is L2 decay added to the gradient (PyTorch's `SGD(weight_decay=)`).
        let l2_decay = if self.optimizer == OptimizerArg::Adamw {
            0.0
        } else {
            decay as f32
        };
        match self.batch {
            Some(batch) => descent(Sgd::new(lr)?.batch_size(batch)?, rule, l2_decay, self.clip),
            None => descent(GradientDescent::new(lr)?, rule, l2_decay, self.clip),
        }
    }
}

/// Gradient descent or SGD — one type, [`Descent`], on full batches or minibatches — with an
/// update rule, L2 weight decay and clipping.
fn descent<B: BatchPolicy + 'static>(
    d: Descent<f32, B>,
    rule: UpdateRule,
    l2_decay: f32,
    clip: Option<f32>,
) -> downhill::Result<Box<dyn Optimizer<f32>>> {
    let d = d.rule(rule).weight_decay(l2_decay)?;
    Ok(match clip {
        Some(max_norm) => Box::new(d.clip_grad_norm(max_norm)?),
        None => Box::new(d),
    })
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    optimizer: String,
    schedule: String,
    lr: f32,
    /// Accuracy on the test set, scored once, after training.
    test_accuracy: f64,
    /// How many times the test set was scored: 1 (after every epoch too with --test-curve).
    test_evaluations: usize,
    train_loss: Option<f64>,
    /// Epochs trained in all, counted from the start (a resumed run's include the
    /// checkpoint's).
    epochs: usize,
    /// Epochs this process ran (a resumed run's, after the checkpoint).
    epochs_run: usize,
    seconds: f64,
    samples_per_s: f64,
    /// Examples per step: the training set's size for gd, random and local.
    batch: usize,
    threads: usize,
    hidden: Vec<usize>,
    /// The training set's fraction of nonzero pixels, and whether the first layer read
    /// them as sparse rows.
    density: f64,
    sparse: bool,
    peak_rss_mib: Option<f64>,
    /// Training images held out to validate on (0: none).
    valid_size: usize,
    /// Loss and accuracy on them after the last epoch (null without any).
    valid_loss: Option<f64>,
    valid_accuracy: Option<f64>,
    /// Dropout's probability (0: none) and the augmentation (null: none).
    dropout: f64,
    augment: Option<String>,
    /// Accuracy on the training images after the last epoch (with --train-accuracy).
    train_accuracy: Option<f64>,
    /// The test set's confusion matrix (rows true, columns predicted), each class's
    /// precision, recall and F1, and the five most frequent mistakes.
    confusion: Vec<Vec<u64>>,
    per_class: Vec<ClassReport>,
    top_confusions: Vec<ConfusionReport>,
    best_epoch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<String>,
    params_hash: String,
}

/// One class's row of `per_class` in `--json`.
#[derive(Serialize)]
struct ClassReport {
    class: usize,
    support: u64,
    precision: Option<f64>,
    recall: Option<f64>,
    f1: Option<f64>,
}

/// One kind of mistake in `--json`'s `top_confusions`.
#[derive(Serialize)]
struct ConfusionReport {
    label: usize,
    predicted: usize,
    count: u64,
}

fn main() -> ExitCode {
    cli::main(|| {
        let matches = Cli::command().get_matches();
        run(&matches)
    })
}

/// Parses `args` as this example's command line (a usage error is bad input).
fn parse(args: &[OsString]) -> Result<(Cli, ArgMatches), Failure> {
    let matches = Cli::command()
        .try_get_matches_from(args)
        .map_err(|e| Failure::Input(first_line(&e.to_string())))?;
    let cli =
        Cli::from_arg_matches(&matches).map_err(|e| Failure::Input(first_line(&e.to_string())))?;
    Ok((cli, matches))
}

/// A clap message's first line, without its `error: `.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    line.trim_start_matches("error: ").to_string()
}

/// The checkpoint's recorded flags, as command-line arguments, but for those `given` has:
/// added to the command line, they are what "flags left out come from the checkpoint" means.
fn checkpoint_flags(
    given: Option<&ArgMatches>,
    hyper: &BTreeMap<String, String>,
    path: &Path,
) -> Result<Vec<OsString>, Failure> {
    // Only the run's flags: a checkpoint cannot say where to read or write.
    let recorded = RunFlags::augment_args(clap::Command::new("mnist"));
    let mut args = Vec::new();
    for (flag, value) in hyper {
        let arg = recorded
            .get_arguments()
            .find(|a| a.get_long() == Some(flag.as_str()))
            .ok_or_else(|| {
                Failure::Input(format!(
                    "{}: records {flag} = {value}, which is not a flag mnist records",
                    path.display()
                ))
            })?;
        if given.is_some_and(|m| was_given(m, flag)) {
            continue;
        }
        if arg.get_action().takes_values() {
            args.push(format!("--{flag}={value}").into());
        } else if value == "true" {
            args.push(format!("--{flag}").into());
        }
    }
    Ok(args)
}

/// The settings of a run resumed from `ckpt`: the command line's flags, the checkpoint's for
/// those it leaves out. A flag given that contradicts the checkpoint is an error naming the
/// flag and both values.
fn resumed_settings(
    given: &ArgMatches,
    ckpt: &Checkpoint<f32>,
    path: &Path,
) -> Result<(Cli, Settings), Failure> {
    let at = path.display();
    let program: Vec<OsString> = std::env::args_os().take(1).collect();
    // What the checkpoint says, read through the same flags (so that "0.10" and "0.1" agree).
    let recorded = [program, checkpoint_flags(None, &ckpt.hyper, path)?].concat();
    let (saved, _) = parse(&recorded).map_err(|e| match e {
        Failure::Input(m) => Failure::Input(format!("{at}: its hyper-parameters: {m}")),
        run => run,
    })?;
    let saved = Settings::resolve(&saved.run, saved.epochs).hyper();

    let command_line: Vec<OsString> = std::env::args_os().collect();
    let (cli, _) = parse(
        &[
            command_line,
            checkpoint_flags(Some(given), &ckpt.hyper, path)?,
        ]
        .concat(),
    )?;
    let settings = Settings::resolve(&cli.run, cli.epochs);
    let mine = settings.hyper();
    let mut keys: Vec<&String> = mine.keys().chain(saved.keys()).collect();
    keys.sort();
    keys.dedup();
    // Name a flag the user gave first: the others follow from it.
    keys.sort_by_key(|k| !was_given(given, k));
    if let Some(k) = keys.into_iter().find(|k| mine.get(*k) != saved.get(*k)) {
        let here = mine
            .get(k)
            .map_or(format!("no --{k}"), |v| format!("--{k} {v}"));
        let there = saved
            .get(k)
            .map_or(format!("no {k}"), |v| format!("{k} = {v}"));
        return Err(Failure::Input(format!(
            "{at}: {here} contradicts the checkpoint, which records {there}"
        )));
    }
    Ok((cli, settings))
}

/// Whether the flag `--long` was on the command line.
fn was_given(given: &ArgMatches, long: &str) -> bool {
    let command = Cli::command();
    let id = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .map(|a| a.get_id().as_str().to_string());
    id.is_some_and(|id| given.value_source(&id) == Some(ValueSource::CommandLine))
}

fn run(matches: &ArgMatches) -> Result<(), Failure> {
    let cli =
        Cli::from_arg_matches(matches).map_err(|e| Failure::Input(first_line(&e.to_string())))?;
    let resume = match &cli.resume {
        Some(path) => Some((Checkpoint::<f32>::load(path)?, path.clone())),
        None => None,
    };
    let (cli, s) = match &resume {
        Some((ckpt, path)) => resumed_settings(matches, ckpt, path)?,
        None => {
            let settings = Settings::resolve(&cli.run, cli.epochs);
            (cli, settings)
        }
    };
    let json = cli.json;
    if s.valid == 0 && s.monitor.is_some_and(|m| m != MonitorArg::TrainLoss) {
        return Err(Failure::Input(format!(
            "--monitor {} needs a validation split, and --valid 0 holds none out: use --valid N \
             (never the test set) or --monitor train_loss",
            flag_name(s.monitor.unwrap_or(MonitorArg::ValidLoss))
        )));
    }
    let mnist = cli.data.load::<f32>()?;
    // Early stopping, reduce-on-plateau and the per-epoch lines watch the validation split,
    // held out of the training images; the test set is scored once, after training.
    let (mut train, mut valid) = hold_out(mnist.train, s.valid, s.seed)?;
    let mut test = TestSet::new(mnist.test);
    // Pixels are scaled to [0, 1] on load; --standardize also centres and scales each pixel
    // with statistics of the training split (the PyTorch peer's default).
    if s.standardize {
        let t = FeatureTransform::standardize(&train, 0.01)?;
        train.set_transform(t.clone())?;
        if let Some(v) = valid.as_mut() {
            v.set_transform(t.clone())?;
        }
        test.data_mut().set_transform(t)?;
    }

    // Training images only, distorted as their batches are gathered; the validation split
    // (held out above) and the test set are read as stored.
    if let Some(spec) = &s.augment {
        let shape = ImageShape::square(train.num_features()).ok_or_else(|| {
            Failure::Input(format!(
                "--augment: {} features are not a square image",
                train.num_features()
            ))
        })?;
        train.set_augment(Augment::parse(spec, shape)?)?;
    }

    let mut model = s.model(train.num_features(), train.num_classes())?;
    let mut optimizer = s.optimizer()?;
    let epochs = cli.epochs;
    let threads = cli.threads.threads;
    let mut trainer = Trainer::new(epochs)?
        .seed(s.seed)
        .threads(threads)?
        .train_accuracy(cli.train_accuracy);
    let monitor = s.monitor.map(Monitor::from).unwrap_or_default();
    let mut stopper = s
        .early_stop
        .map(|patience| EarlyStopping::<f32>::new(monitor, patience))
        .transpose()?;
    let mut epochs_done = 0;
    if let Some((ckpt, path)) = &resume {
        ckpt.restore_model(&mut model)?;
        ckpt.restore_optimizer(optimizer.as_mut())?;
        // Early stopping's best-so-far, or an error if the checkpoint holds a state this run
        // has nothing to restore into.
        match stopper.as_mut() {
            Some(stop) => ckpt.restore_observer(stop)?,
            None => ckpt.restore_observer(&mut Observers(Vec::new()))?,
        }
        if ckpt.train.epoch > epochs {
            return Err(Failure::Input(format!(
                "{}: the checkpoint is after epoch {}, beyond --epochs {epochs} (the total to reach)",
                path.display(),
                ckpt.train.epoch
            )));
        }
        trainer = trainer.resume(&ckpt.train)?;
        epochs_done = ckpt.train.epoch;
    }
    let widths = model.widths();
    // The --optimizer flag's name (adam is SGD with Adam's rule: `optimizer.name()` is sgd).
    let optimizer_name = flag_name(s.optimizer);
    if !json {
        let held_out = valid
            .as_ref()
            .map_or(String::new(), |v| format!(" / {} validation", v.len()));
        println!(
            "MLP {widths:?} ({}), {} parameters, {} loss, {optimizer_name}, {threads} threads; {} train{held_out} / {} test images",
            Activation::from(s.activation),
            model.params().len(),
            model.loss_fn(),
            train.len(),
            test.data().len()
        );
    }
    // The search methods have no learning rate: only an explicit schedule is an error there.
    let constant = matches!(s.schedule, ScheduleSettings::Constant);
    let mut scheduler = if optimizer.learning_rate().is_some() || !constant {
        Some(
            LrScheduler::new(s.schedule.schedule()?, optimizer.as_mut())?
                .monitor(monitor)
                .resume_at(epochs_done, optimizer.as_mut())?,
        )
    } else {
        None
    };
    // With --test-curve the test set is scored after every epoch and its columns join the
    // progress lines and the history, which it then writes itself.
    let mut curve = cli
        .test_curve
        .then(|| TestCurve::new(&test, &model, epochs, cli.history.clone()));
    let mut history = History::new();
    if let Some(path) = cli.history.as_ref().filter(|_| curve.is_none()) {
        history = if is_json(path) {
            history.json(path)
        } else {
            history.csv(path)
        };
    }
    let mut progress = Progress::new(epochs);
    let saver = cli.checkpoint.as_ref().map(|path| {
        let saver = CheckpointSaver::new(path, s.seed).architecture(model.architecture());
        s.hyper()
            .into_iter()
            .fold(saver, |saver, (k, v)| saver.hyper(k, v))
    });
    let mut observers: Vec<&mut dyn Observer<f32>> = match curve.as_mut() {
        Some(curve) => vec![curve, &mut history],
        None => vec![&mut progress, &mut history],
    };
    let mut converged = StopWhenConverged;
    if s.optimizer == OptimizerArg::Lbfgs {
        observers.push(&mut converged);
    }
    // The scheduler sets the next epoch's rate once the others have seen this one.
    if let Some(s) = scheduler.as_mut() {
        observers.push(s);
    }
    // Early stopping goes inside the saver, so that every checkpoint holds its best epoch and
    // parameters; the saver comes last, after the scheduler has set the next epoch's rate.
    let mut saver = match (saver, stopper.as_mut()) {
        (Some(saver), Some(stop)) => Some(saver.including(stop)),
        (saver, stop) => {
            if let Some(stop) = stop {
                observers.push(stop);
            }
            saver
        }
    };
    if let Some(s) = saver.as_mut() {
        observers.push(s);
    }
    let report = trainer.run_with(
        &mut model,
        optimizer.as_mut(),
        &train,
        valid.as_ref(),
        &mut Observers(observers),
    )?;
    let test_points = curve.map(TestCurve::into_points).unwrap_or_default();
    if let Some(dir) = &cli.plot {
        let title = format!("MLP {widths:?}, {optimizer_name}");
        let path =
            common::plot::training_history(dir, "mnist.svg", &title, &report.history, &test_points)
                .map_err(Failure::Input)?;
        println!("wrote {}", path.display());
    }
    // The model now holds the parameters early stopping kept (or the last ones): the test
    // set's one look, which counts the confusion matrix in the same pass.
    let scored = test.evaluate(&mut model)?;
    let test_accuracy = scored.accuracy.unwrap_or(f64::NAN);
    let confusion = match scored.confusion {
        Some(m) => m,
        None => ConfusionMatrix::new(test.data().num_classes())?,
    };
    if let Some(dir) = &cli.plot {
        let what = format!("MLP {widths:?}");
        for path in common::learned::draw(dir, &what, &mut model, test.data(), &confusion)? {
            println!("wrote {}", path.display());
        }
    }
    let best_epoch = stopper.as_ref().and_then(|s| s.best_epoch());
    // Counted from the start: a resumed run's include the checkpoint's.
    let epochs_trained = epochs_done + report.history.len();
    let last = report.history.last();
    if json {
        let json = Report {
            optimizer: optimizer_name.clone(),
            schedule: flag_name(s.schedule.arg()),
            lr: s.lr,
            test_accuracy,
            test_evaluations: test.times_scored(),
            train_loss: report.final_loss(),
            epochs: epochs_trained,
            epochs_run: report.history.len(),
            seconds: report.train_seconds(),
            samples_per_s: report.samples_per_s(),
            batch: s.batch.unwrap_or(train.len()),
            threads,
            hidden: s.hidden.clone(),
            density: train.density(),
            sparse: model.reads_sparse(&train),
            peak_rss_mib: peak_rss_mib(),
            valid_size: valid.as_ref().map_or(0, Dataset::len),
            valid_loss: last.and_then(|e| e.valid_loss),
            valid_accuracy: last.and_then(|e| e.valid_accuracy),
            dropout: s.dropout.unwrap_or(0.0),
            augment: s.augment.clone(),
            train_accuracy: last.and_then(|e| e.train_accuracy),
            confusion: confusion.rows().map(<[u64]>::to_vec).collect(),
            per_class: confusion
                .per_class()
                .into_iter()
                .map(|c| ClassReport {
                    class: c.class,
                    support: c.support,
                    precision: c.precision,
                    recall: c.recall,
                    f1: c.f1,
                })
                .collect(),
            top_confusions: confusion
                .top_confusions(5)
                .into_iter()
                .map(|c| ConfusionReport {
                    label: c.label,
                    predicted: c.predicted,
                    count: c.count,
                })
                .collect(),
            best_epoch,
            stopped: report.stopped.as_ref().map(|why| why.to_string()),
            params_hash: params_hash(model.params()),
        };
        cli::print_json(&cli.data, &json)?;
    } else {
        if let Some(e) = best_epoch {
            println!("kept the parameters of epoch {e} (best {monitor})");
        }
        // The test accuracy last: the line a reader (and CI) looks for at the end.
        let worst: Vec<String> = confusion
            .top_confusions(3)
            .iter()
            .map(|c| format!("{} → {} ({}×)", c.label, c.predicted, c.count))
            .collect();
        println!(
            "most frequent mistakes on the test set (true → predicted): {}",
            worst.join(", ")
        );
        println!(
            "test accuracy {:.4} after {epochs_trained} epoch{}, {:.2} s training, {:.0} samples/s",
            test_accuracy,
            if epochs_trained == 1 { "" } else { "s" },
            report.train_seconds(),
            report.samples_per_s()
        );
    }
    Ok(())
}

/// Whether a history file is to be JSON (by its extension), not CSV.
fn is_json(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

/// `--test-curve`: scores the test set after every epoch and shows it beside the validation
/// figures, labelled test — in the progress lines (as `test_loss` and `test_acc`), in the
/// history (as `test_loss` and `test_accuracy` columns, which it writes itself) and in the
/// figure.
struct TestCurve<'a> {
    test: &'a TestSet,
    scorer: Scorer,
    /// The progress lines, written into `lines` for the test columns to join them.
    progress: Progress<Lines>,
    lines: Lines,
    history: Option<PathBuf>,
    records: Vec<EpochRecord>,
    /// (epoch, test loss, test accuracy).
    points: Vec<(usize, f64, f64)>,
}

/// A buffer that the progress lines are written into and the curve reads back.
#[derive(Clone, Default)]
struct Lines(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// What was written since the last call.
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.borrow_mut())).into_owned()
    }
}

impl<'a> TestCurve<'a> {
    fn new(test: &'a TestSet, net: &Mlp<f32>, epochs: usize, history: Option<PathBuf>) -> Self {
        let lines = Lines::default();
        TestCurve {
            test,
            scorer: Scorer::new(net),
            progress: Progress::lines(epochs, lines.clone()),
            lines,
            history,
            records: Vec::new(),
            points: Vec::new(),
        }
    }

    fn into_points(self) -> Vec<(usize, f64, f64)> {
        self.points
    }

    /// The history with the test columns after the others.
    fn history_text(&self, json: bool) -> String {
        let text = if json {
            downhill::train::history_json(&self.records)
        } else {
            downhill::train::history_csv(&self.records)
        };
        let mut points = self.points.iter();
        let mut out = String::new();
        for line in text.lines() {
            let row = if json {
                // One record per line: `  {"epoch":1,…}` and a trailing comma but on the last.
                let record = line.trim_end_matches(',').strip_suffix('}');
                match (record, record.and_then(|_| points.next())) {
                    (Some(head), Some((_, loss, acc))) => format!(
                        "{head},\"test_loss\":{loss},\"test_accuracy\":{acc}}}{}",
                        if line.ends_with(',') { "," } else { "" }
                    ),
                    _ => line.to_string(),
                }
            } else if line.starts_with("epoch,") {
                format!("{line},test_loss,test_accuracy")
            } else {
                match points.next() {
                    Some((_, loss, acc)) => format!("{line},{loss},{acc}"),
                    None => format!("{line},,"),
                }
            };
            out.push_str(&row);
            out.push('\n');
        }
        out
    }
}

impl Observer<f32> for TestCurve<'_> {
    fn on_step(&mut self, info: &StepInfo) -> downhill::Result<Control> {
        Observer::<f32>::on_step(&mut self.progress, info)
    }

    fn on_epoch(&mut self, end: &mut EpochEnd<'_, f32>) -> downhill::Result<Control> {
        let e = self.test.evaluate_params(&mut self.scorer, end.params)?;
        let (loss, acc) = (e.loss.unwrap_or(f64::NAN), e.accuracy.unwrap_or(f64::NAN));
        self.points.push((end.record.epoch, loss, acc));
        self.records.push(end.record.clone());
        self.progress.on_epoch(end)?;
        // The progress line, with the test columns before the learning rate.
        let line = self.lines.take();
        let columns = format!(" test_loss {loss:.4} test_acc {acc:.4}");
        match line.find(" lr ") {
            Some(at) => print!("{}{columns}{}", &line[..at], &line[at..]),
            None => print!("{line}"),
        }
        if let Some(path) = &self.history {
            let text = self.history_text(is_json(path));
            std::fs::write(path, text).map_err(|source| {
                downhill::Error::from(downhill::error::ErrorKind::Io {
                    path: Some(path.clone()),
                    source,
                })
            })?;
        }
        Ok(Control::Continue)
    }

    fn on_end(
        &mut self,
        report: &TrainReport,
        params: &mut dyn downhill::model::Params<f32>,
    ) -> downhill::Result<()> {
        self.progress.on_end(report, params)?;
        print!("{}", self.lines.take());
        Ok(())
    }
}
