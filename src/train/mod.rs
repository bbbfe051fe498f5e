//! The training loop: batch → forward → loss → backward → update, repeated.
//!
//! [`Trainer`] runs any [`Optimizer`] on any [`Model`] over a [`Dataset`] for a number of
//! epochs. It asks the optimizer what it wants to see: full-batch methods (gradient descent,
//! random and local search) get the whole training set once per epoch — for the search
//! methods, one epoch is one try; SGD gets the training set as shuffled minibatches,
//! reshuffled every epoch. After each epoch it records the mean training loss and, if given
//! a validation set, its accuracy and loss.
//!
//! Built-in [`Observer`]s watch and steer a run: [`Progress`] (a bar or per-epoch lines),
//! [`History`] (CSV and JSON), [`LrScheduler`] (a learning-rate [`Schedule`](crate::optim::Schedule))
//! and [`EarlyStopping`] (stop when the validation [`Monitor`] stops improving, keep the
//! best parameters).
//!
//! ```
//! use downhill::prelude::*;
//!
//! let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.9, 0.1, 0.2, 0.8], 4, 2)?;
//! let data = Dataset::from_matrix(x, vec![1, 0, 0, 1], 2)?;
//! let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
//! let mut sgd = Sgd::new(0.5)?.batch_size(2)?;
//! let report = Trainer::new(50)?.seed(1).run(&mut model, &mut sgd, &data, Some(&data))?;
//! assert_eq!(report.history.last().and_then(|e| e.valid_accuracy), Some(1.0));
//! # Ok::<(), downhill::Error>(())
//! ```

mod early_stop;
mod history;
mod lr_schedule;
mod monitor;
mod observer;
mod progress;

pub use early_stop::EarlyStopping;
pub use history::{history_csv, history_json, History};
pub use lr_schedule::LrScheduler;
pub use monitor::Monitor;
pub use observer::{Control, Observer, Observers, StepInfo};
pub use progress::Progress;

use std::time::{Duration, Instant};

use crate::data::{Dataset, Minibatches};
use crate::error::{thread_count, Error, Result};
use crate::model::{accuracy, evaluate, Model};
use crate::optim::{Batching, Optimizer};
use crate::{stream_rng, Scalar};

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean of the losses the optimizer's steps observed during the epoch.
    pub train_loss: f64,
    /// Accuracy on the validation set after the epoch, if one was given.
    pub valid_accuracy: Option<f64>,
    /// Mean data loss on the validation set after the epoch, if one was given and the model
    /// says which loss it uses ([`Model::data_loss`]).
    pub valid_loss: Option<f64>,
    /// The optimizer's learning rate during the epoch, if it has one.
    pub learning_rate: Option<f64>,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Training examples processed (each step's batch size, summed).
    pub samples: usize,
    /// Seconds spent in the training loop proper (evaluation excluded).
    pub train_seconds: f64,
}

/// The result of a run: one record per epoch.
#[derive(Debug, Clone, Default)]
pub struct TrainReport {
    /// Per-epoch records, in order.
    pub history: Vec<EpochRecord>,
    /// Why the run ended before its last epoch, if it did (a time limit, or an
    /// [`Observer`] that asked to stop).
    pub stopped: Option<String>,
}

impl TrainReport {
    /// The last epoch's mean training loss.
    pub fn final_loss(&self) -> Option<f64> {
        self.history.last().map(|e| e.train_loss)
    }
    /// Total seconds in the training loop (evaluation excluded).
    pub fn train_seconds(&self) -> f64 {
        self.history.iter().map(|e| e.train_seconds).sum()
    }
    /// Total training examples processed.
    pub fn samples(&self) -> usize {
        self.history.iter().map(|e| e.samples).sum()
    }
    /// Training examples per second of training-loop time.
    pub fn samples_per_s(&self) -> f64 {
        self.samples() as f64 / self.train_seconds().max(1e-12)
    }
}

/// Runs an optimizer on a model for a number of epochs. Seeded: the same seed, model and
/// data give the same run.
#[derive(Debug, Clone)]
pub struct Trainer {
    epochs: usize,
    seed: u64,
    time_limit: Option<Duration>,
    threads: usize,
    shuffle: bool,
    start: TrainState,
}

/// Where a run stands between two epochs: all the training loop needs to carry on exactly
/// (together with the model's parameters and the optimizer's [state](Optimizer::state)).
///
/// The loop keeps no random generator from one epoch to the next: epoch `e`'s minibatch order
/// is drawn from a generator seeded with `(seed, e)` alone, so the seed and the number of
/// epochs done are the whole of its random state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken over those epochs.
    pub step: usize,
    /// The trainer's seed.
    pub seed: u64,
}

impl Trainer {
    /// A trainer for `epochs` epochs (at least 1).
    pub fn new(epochs: usize) -> Result<Self> {
        if epochs == 0 {
            return Err(Error::param("epochs", 0, "must be at least 1"));
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Trainer {
            epochs,
            seed: 0,
            time_limit: None,
            threads,
            shuffle: true,
            start: TrainState::default(),
        })
    }
    /// Seed for the minibatch shuffling (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Carries on a run from where `state` says it stood: its seed, `state.epoch` epochs done
    /// (the run continues with epoch `state.epoch + 1` up to the trainer's `epochs`) and its
    /// step count. With the model's parameters and the optimizer's state restored too (a
    /// [`Checkpoint`](crate::checkpoint::Checkpoint) holds all three), the rest of the run is
    /// bit-identical to a run that never stopped.
    pub fn resume(mut self, state: &TrainState) -> Result<Self> {
        if state.epoch > self.epochs {
            return Err(Error::param(
                "resume epoch",
                state.epoch,
                "must not exceed the trainer's epochs",
            ));
        }
        self.seed = state.seed;
        self.start = *state;
        Ok(self)
    }
    /// Threads the model may use (default: all available cores). With [`Mlp`](crate::model::Mlp)
    /// the result is bit-identical whatever the count.
    pub fn threads(mut self, threads: usize) -> Result<Self> {
        self.threads = thread_count(threads)?;
        Ok(self)
    }
    /// Whether to reshuffle the minibatches every epoch (default `true`). Off, every epoch
    /// walks the training set in order — with the batch size equal to the set's size, one
    /// epoch of SGD is then exactly one step of gradient descent.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
    /// Stop after the epoch during which this much training time has passed.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// Trains; see [`run_with`](Trainer::run_with) to watch the run as it goes.
    pub fn run<T: Scalar>(
        &self,
        model: &mut dyn Model<T>,
        optimizer: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        valid: Option<&Dataset<T>>,
    ) -> Result<TrainReport> {
        self.run_with(model, optimizer, train, valid, &mut |_: &EpochRecord| {})
    }

    /// Trains, telling `observer` about every step and epoch as soon as it is complete (a
    /// closure `FnMut(&EpochRecord)` will do; several observers go in a slice
    /// `&mut [&mut dyn Observer<T>]`).
    pub fn run_with<T: Scalar>(
        &self,
        model: &mut dyn Model<T>,
        optimizer: &mut dyn Optimizer<T>,
        train: &Dataset<T>,
        valid: Option<&Dataset<T>>,
        observer: &mut dyn Observer<T>,
    ) -> Result<TrainReport> {
        if train.is_empty() {
            return Err(Error::shape(
                "Trainer::run",
                "a non-empty training set",
                "0 examples",
            ));
        }
        model.set_threads(self.threads)?;
        let mut sampler = match optimizer.batching() {
            Batching::MiniBatch(size) => Some(Minibatches::new(train.len(), size)?),
            Batching::FullBatch => None,
        };
        let mut report = TrainReport::default();
        let mut step = self.start.step;
        let mut elapsed = Duration::ZERO;
        'epochs: for epoch in self.start.epoch + 1..=self.epochs {
            let (mut loss_sum, mut steps, mut samples) = (0.0f64, 0usize, 0usize);
            if let Some(s) = sampler.as_mut().filter(|_| self.shuffle) {
                s.shuffle_fresh(&mut stream_rng(self.seed, epoch as u64));
            }
            let steps_per_epoch = sampler.as_ref().map_or(1, |s| s.num_batches());
            let learning_rate = optimizer.learning_rate();
            let t0 = Instant::now();
            // Counts one step, checks its outcome and its loss, and asks the observer whether
            // to go on. A divergence found below (a non-finite gradient) learns where it was.
            let mut observe = |outcome: Result<T>, n: usize| -> Result<Control> {
                let loss = outcome.map_err(|e| e.at(epoch, step))?.to_f64_lossless();
                if !loss.is_finite() {
                    return Err(Error::Diverged {
                        epoch,
                        step,
                        quantity: "loss",
                        value: loss,
                    });
                }
                let info = StepInfo {
                    epoch,
                    step_in_epoch: steps,
                    steps_per_epoch,
                    step,
                    loss,
                    samples: n,
                    epoch_seconds: t0.elapsed().as_secs_f64(),
                };
                loss_sum += loss;
                steps += 1;
                samples += n;
                step += 1;
                observer.on_step(&info)
            };
            let mut control = Control::Continue;
            match &sampler {
                Some(s) => {
                    for idx in s.iter() {
                        let batch = train.batch(idx)?;
                        control = observe(optimizer.step(model, &batch), idx.len())?;
                        if control != Control::Continue {
                            break;
                        }
                    }
                }
                None => control = observe(optimizer.step(model, &train.all()), train.len())?,
            }
            let dt = t0.elapsed();
            elapsed += dt;
            let (valid_accuracy, valid_loss) = validate(model, valid)?;
            let record = EpochRecord {
                epoch,
                train_loss: loss_sum / steps.max(1) as f64,
                valid_accuracy,
                valid_loss,
                learning_rate,
                steps,
                samples,
                train_seconds: dt.as_secs_f64(),
            };
            let after_epoch = observer.on_epoch(&record, model, optimizer)?;
            report.history.push(record);
            for c in [control, after_epoch] {
                if let Control::Stop(why) = c {
                    report.stopped = Some(why);
                    break 'epochs;
                }
            }
            if self.time_limit.is_some_and(|limit| elapsed >= limit) {
                if epoch < self.epochs {
                    report.stopped = Some(format!(
                        "time limit of {:.3} s reached after epoch {epoch}",
                        self.time_limit.unwrap_or_default().as_secs_f64()
                    ));
                }
                break;
            }
        }
        observer.on_end(&report, model)?;
        Ok(report)
    }
}

/// Validation accuracy and, when the model names its loss, validation loss: one pass.
fn validate<T: Scalar>(
    model: &mut dyn Model<T>,
    valid: Option<&Dataset<T>>,
) -> Result<(Option<f64>, Option<f64>)> {
    let Some(v) = valid else {
        return Ok((None, None));
    };
    Ok(match model.data_loss() {
        Some(loss) => {
            let e = evaluate(model, v, loss)?;
            (Some(e.accuracy), Some(e.loss))
        }
        None => (Some(accuracy(model, v)?), None),
    })
}
