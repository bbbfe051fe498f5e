//! The training loop: batch → forward → loss → backward → update, repeated.
//!
//! [`Trainer`] runs any [`Optimizer`] over the examples of any [`Model`] for a number of
//! epochs ([`Trainer::run`]), or on an [`Objective`] without data ([`Trainer::minimize`]).
//! It asks the optimizer what it wants to see: full-batch methods (gradient descent, random
//! and local search) get the whole training set once per epoch — for the search methods,
//! one epoch is one try; SGD gets the training set as shuffled minibatches, reshuffled
//! every epoch. After each epoch it records the mean training loss and, if given a
//! validation set, what the model reports on it ([`Model::evaluate`]: a classifier's
//! accuracy and data loss); with [`Trainer::train_accuracy`], the training set's accuracy
//! too.
//!
//! Every batch it builds carries its [`TrainingStep`] — the seed, the epoch and the step —
//! from which a model with dropout draws its masks and a dataset with an
//! [`Augment`](crate::data::Augment) its distortions: so a run is the same on any number of
//! threads, and a resumed run the same as a straight one, with either.
//!
//! A step that diverges — a loss, gradient, gradient norm or update that is not finite —
//! stops the run with [`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged), its epoch
//! and step filled in; the model keeps the parameters of the last step that was finite.
//!
//! Built-in [`Observer`]s watch and steer a run: [`Progress`] (a bar or per-epoch lines),
//! [`History`] (CSV and JSON), [`LrScheduler`] (a learning-rate
//! [`Schedule`](crate::optim::Schedule)) and [`EarlyStopping`] (stop when the validation
//! [`Monitor`] stops improving, keep the best parameters).
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
pub use observer::{Control, EpochEnd, Observer, Observers, StepInfo, StopReason};
pub use progress::Progress;

use std::time::{Duration, Instant};

use crate::data::{Batch, Examples, Minibatches, TrainingStep};
use crate::error::{Error, Quantity, Result};
use crate::fast_path::FastPath;
use crate::model::{Model, Objective, OnBatch, Params};
use crate::optim::{Batching, Optimizer};
use crate::rng::stream_rng;
use crate::scalar::Scalar;
use crate::validate::{at_least_one, not_empty, thread_count};

/// What one epoch did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean of the losses the optimizer's steps observed during the epoch.
    pub train_loss: f64,
    /// Accuracy on the validation set after the epoch, if one was given and the model is a
    /// classifier.
    pub valid_accuracy: Option<f64>,
    /// Mean loss on the validation set after the epoch, if one was given (for a classifier
    /// the data loss, see [`Model::evaluate`]).
    pub valid_loss: Option<f64>,
    /// The optimizer's learning rate during the epoch, if it has one.
    pub learning_rate: Option<f64>,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Training examples processed (each step's batch size, summed).
    pub samples: usize,
    /// Seconds spent in the training loop proper (evaluation excluded).
    pub train_seconds: f64,
    /// Accuracy on the training set after the epoch, in evaluation mode (no dropout, images
    /// as stored), if the trainer was asked for it ([`Trainer::train_accuracy`]) and the
    /// model is a classifier. Beside the validation accuracy, the gap shows overfitting.
    pub train_accuracy: Option<f64>,
}

impl EpochRecord {
    /// A record of epoch `epoch` with mean training loss `train_loss` and nothing else (set
    /// the other fields as needed: a test of an observer builds its records this way).
    pub fn new(epoch: usize, train_loss: f64) -> Self {
        EpochRecord {
            epoch,
            train_loss,
            valid_accuracy: None,
            valid_loss: None,
            learning_rate: None,
            steps: 0,
            samples: 0,
            train_seconds: 0.0,
            train_accuracy: None,
        }
    }
}

/// The result of a run: one record per epoch.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TrainReport {
    /// Per-epoch records, in order.
    pub history: Vec<EpochRecord>,
    /// Why the run ended before its last epoch, if it did.
    pub stopped: Option<StopReason>,
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
    train_accuracy: bool,
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
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Trainer {
            epochs: at_least_one("epochs", epochs)?,
            seed: 0,
            time_limit: None,
            threads,
            shuffle: true,
            train_accuracy: false,
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
    /// Threads the model may use (default: all available cores). With
    /// [`Mlp`](crate::model::Mlp) the result is bit-identical whatever the count.
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
    /// Whether to score the whole training set after every epoch, as the validation set is
    /// scored (in evaluation mode), and record its accuracy
    /// ([`EpochRecord::train_accuracy`]; default `false`). It costs a pass over the training
    /// set per epoch, outside the epoch's timing.
    pub fn train_accuracy(mut self, record: bool) -> Self {
        self.train_accuracy = record;
        self
    }
    /// Stop after the epoch during which this much training time has passed.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// Trains `model` on `train`; see [`run_with`](Trainer::run_with) to watch the run as
    /// it goes.
    pub fn run<T: Scalar, D: Examples + ?Sized>(
        &self,
        model: &mut dyn Model<T, D>,
        optimizer: &mut dyn Optimizer<T>,
        train: &D,
        valid: Option<&D>,
    ) -> Result<TrainReport> {
        self.run_with(model, optimizer, train, valid, &mut |_: &EpochRecord| {})
    }

    /// Trains, telling `observer` about every step and epoch as soon as it is complete (a
    /// closure `FnMut(&EpochRecord)` will do; several observers go in [`Observers`]).
    pub fn run_with<T: Scalar, D: Examples + ?Sized>(
        &self,
        model: &mut dyn Model<T, D>,
        optimizer: &mut dyn Optimizer<T>,
        train: &D,
        valid: Option<&D>,
        observer: &mut dyn Observer<T>,
    ) -> Result<TrainReport> {
        not_empty("training set", train.len())?;
        if let Some(mut fast) = model.fast_path() {
            fast.open().set_threads(self.threads)?;
        }
        model.prepare(train)?;
        let mut sampler = match optimizer.batching() {
            Batching::MiniBatch(size) => Some(Minibatches::new(train.len(), size)?),
            Batching::FullBatch => None,
        };
        let mut report = TrainReport::default();
        let mut step = self.start.step;
        let mut elapsed = Duration::ZERO;
        for epoch in self.start.epoch + 1..=self.epochs {
            if let Some(s) = sampler.as_mut().filter(|_| self.shuffle) {
                s.shuffle_fresh(&mut stream_rng(self.seed, epoch as u64));
            }
            let steps_per_epoch = sampler.as_ref().map_or(1, |s| s.num_batches());
            let mut epoch_run = EpochRun::new(epoch, steps_per_epoch, optimizer.learning_rate());
            let mut control = Control::Continue;
            let at = |step: usize| TrainingStep::new(self.seed, epoch, step);
            match &sampler {
                Some(s) => {
                    for idx in s.iter() {
                        let batch = Batch::indices(train, idx)?.for_step(at(step));
                        let outcome = optimizer.step(&mut OnBatch::new(model, &batch));
                        control = epoch_run.observe(outcome, idx.len(), &mut step, observer)?;
                        if control != Control::Continue {
                            break;
                        }
                    }
                }
                None => {
                    let batch = Batch::all(train).for_step(at(step));
                    let outcome = optimizer.step(&mut OnBatch::new(model, &batch));
                    control = epoch_run.observe(outcome, train.len(), &mut step, observer)?;
                }
            }
            let dt = epoch_run.started.elapsed();
            elapsed += dt;
            let mut record = epoch_run.record(dt);
            if let Some(v) = valid {
                let e = model.evaluate(v)?;
                (record.valid_loss, record.valid_accuracy) = (e.loss, e.accuracy);
            }
            if self.train_accuracy {
                record.train_accuracy = model.evaluate(train)?.accuracy;
            }
            let after_epoch = observer.on_epoch(&mut EpochEnd::new(&record, model, optimizer))?;
            report.history.push(record);
            if let Some(why) = [control, after_epoch]
                .into_iter()
                .find_map(Control::stop_reason)
            {
                report.stopped = Some(why);
                break;
            }
            if let Some(limit) = self.time_limit.filter(|&limit| elapsed >= limit) {
                if epoch < self.epochs {
                    report.stopped = Some(StopReason::TimeLimit { limit, epoch });
                }
                break;
            }
        }
        observer.on_end(&report, model)?;
        Ok(report)
    }

    /// Minimises an objective with no data: each epoch is one optimizer step on the whole
    /// function, whatever the optimizer's batching.
    ///
    /// ```
    /// use downhill::model::FnObjective;
    /// use downhill::prelude::*;
    ///
    /// // The valley ½(x² + 50·y²): plain gradient descent, step 0.035.
    /// let mut valley = FnObjective::new(
    ///     vec![10.0, 1.0],
    ///     |p: &[f64]| 0.5 * (p[0] * p[0] + 50.0 * p[1] * p[1]),
    ///     |p: &[f64], g: &mut [f64]| { g[0] = p[0]; g[1] = 50.0 * p[1]; },
    /// );
    /// let report = Trainer::new(300)?.minimize(&mut valley, &mut GradientDescent::new(0.035)?)?;
    /// assert!(report.final_loss().unwrap() < 1e-6);
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn minimize<T: Scalar>(
        &self,
        objective: &mut dyn Objective<T>,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Result<TrainReport> {
        self.minimize_with(objective, optimizer, &mut |_: &EpochRecord| {})
    }

    /// [`minimize`](Trainer::minimize), telling `observer` about every step and epoch.
    pub fn minimize_with<T: Scalar>(
        &self,
        objective: &mut dyn Objective<T>,
        optimizer: &mut dyn Optimizer<T>,
        observer: &mut dyn Observer<T>,
    ) -> Result<TrainReport> {
        let mut without_data = WithoutData(objective);
        let mut full = FullBatchOf(optimizer);
        self.run_with(&mut without_data, &mut full, &NoData, None, observer)
    }
}

/// What the loop counts during one epoch.
struct EpochRun {
    epoch: usize,
    steps_per_epoch: usize,
    learning_rate: Option<f64>,
    loss_sum: f64,
    steps: usize,
    samples: usize,
    started: Instant,
}

impl EpochRun {
    fn new(epoch: usize, steps_per_epoch: usize, learning_rate: Option<f64>) -> Self {
        EpochRun {
            epoch,
            steps_per_epoch,
            learning_rate,
            loss_sum: 0.0,
            steps: 0,
            samples: 0,
            started: Instant::now(),
        }
    }

    /// Counts one step of `n` examples, checks its outcome and its loss (placing a
    /// divergence at this epoch and step), and asks the observer whether to go on.
    fn observe<T: Scalar>(
        &mut self,
        outcome: Result<T>,
        n: usize,
        step: &mut usize,
        observer: &mut dyn Observer<T>,
    ) -> Result<Control> {
        let loss = outcome
            .map_err(|e| e.at(self.epoch, *step))?
            .to_f64_lossless();
        if !loss.is_finite() {
            // An optimizer of the user's own that let a non-finite loss through.
            return Err(Error::diverged(Quantity::Loss, loss).at(self.epoch, *step));
        }
        let info = StepInfo {
            epoch: self.epoch,
            step_in_epoch: self.steps,
            steps_per_epoch: self.steps_per_epoch,
            step: *step,
            loss,
            samples: n,
            epoch_seconds: self.started.elapsed().as_secs_f64(),
        };
        self.loss_sum += loss;
        self.steps += 1;
        self.samples += n;
        *step += 1;
        observer.on_step(&info)
    }

    fn record(&self, dt: Duration) -> EpochRecord {
        EpochRecord {
            epoch: self.epoch,
            train_loss: self.loss_sum / self.steps.max(1) as f64,
            valid_accuracy: None,
            valid_loss: None,
            learning_rate: self.learning_rate,
            steps: self.steps,
            samples: self.samples,
            train_seconds: dt.as_secs_f64(),
            train_accuracy: None,
        }
    }
}

/// The "data" of an objective that has none: one example, so that every step sees it all.
struct NoData;

impl Examples for NoData {
    fn len(&self) -> usize {
        1
    }
}

/// An objective as a model of [`NoData`].
struct WithoutData<'a, T>(&'a mut dyn Objective<T>);

impl<T: Scalar> Params<T> for WithoutData<'_, T> {
    crate::forward_params!(T, 0);
}

impl<T: Scalar> Model<T, NoData> for WithoutData<'_, T> {
    fn loss(&mut self, _batch: &Batch<'_, T, NoData>) -> Result<T> {
        self.0.loss()
    }
    fn loss_and_grad(&mut self, _batch: &Batch<'_, T, NoData>, grad: &mut [T]) -> Result<T> {
        self.0.loss_and_grad(grad)
    }
    fn fast_path(&mut self) -> Option<FastPath<'_, T>> {
        self.0.fast_path()
    }
}

/// An optimizer whose every step sees the whole (data-free) objective.
struct FullBatchOf<'a, T>(&'a mut dyn Optimizer<T>);

impl<T: Scalar> Optimizer<T> for FullBatchOf<'_, T> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn step(&mut self, objective: &mut dyn Objective<T>) -> Result<T> {
        self.0.step(objective)
    }
    fn state(&self) -> crate::optim::StateDict<T> {
        self.0.state()
    }
    fn load_state(&mut self, state: &crate::optim::StateDict<T>) -> Result<()> {
        self.0.load_state(state)
    }
    fn learning_rate(&self) -> Option<f64> {
        self.0.learning_rate()
    }
    fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()> {
        self.0.set_learning_rate(learning_rate)
    }
}
