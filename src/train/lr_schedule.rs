//! Applying a learning-rate [`Schedule`] during a run.
//!
//! [`LrScheduler`] is an [`Observer`]: built from the optimizer before the run (it reads the
//! base learning rate and sets the first epoch's), it sets the next epoch's learning rate
//! after each epoch — the place PyTorch code calls `scheduler.step()`. Each
//! [`EpochRecord::learning_rate`] shows the rate the epoch ran with.
//!
//! ```
//! use downhill::prelude::*;
//! use downhill::train::LrScheduler;
//!
//! let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
//! let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
//! let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
//! let mut sgd = Sgd::new(0.4)?.batch_size(2)?;
//! let mut schedule = LrScheduler::new(Schedule::step(2, 0.5)?, &mut sgd)?;
//! let report = Trainer::new(5)?.run_with(&mut model, &mut sgd, &data, None, &mut schedule)?;
//! let lrs: Vec<f64> = report.history.iter().filter_map(|e| e.learning_rate).collect();
//! assert_eq!(lrs, [0.4, 0.4, 0.2, 0.2, 0.1]);
//! # Ok::<(), downhill::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::optim::{Optimizer, Schedule};
use crate::scalar::Scalar;
use crate::train::{Control, EpochEnd, Monitor, Observer};

/// An [`Observer`] that sets the optimizer's learning rate from a [`Schedule`] after every
/// epoch.
#[derive(Debug, Clone)]
pub struct LrScheduler {
    schedule: Schedule,
    monitor: Monitor,
    base: f64,
    epochs_done: usize,
    current: f64,
}

impl LrScheduler {
    /// Takes `optimizer`'s learning rate as the base rate and sets the first epoch's rate.
    /// Fails for optimizers without a learning rate (the search methods).
    pub fn new<T: Scalar>(schedule: Schedule, optimizer: &mut dyn Optimizer<T>) -> Result<Self> {
        let base = optimizer.learning_rate().ok_or(Error::param(
            "schedule",
            schedule.name(),
            "needs an optimizer with a learning rate (gd or sgd)",
        ))?;
        let mut scheduler = LrScheduler {
            schedule,
            monitor: Monitor::ValidLoss,
            base,
            epochs_done: 0,
            current: base,
        };
        scheduler.current = scheduler.schedule.learning_rate(base, 0, None)?;
        optimizer.set_learning_rate(scheduler.current)?;
        Ok(scheduler)
    }
    /// The metric reduce-on-plateau watches (default [`Monitor::ValidLoss`]; accuracy is
    /// watched as the error rate `1 − accuracy`).
    pub fn monitor(mut self, monitor: Monitor) -> Self {
        self.monitor = monitor;
        self
    }
    /// Carries a schedule on from a run resumed after `epochs_done` epochs: sets the rate
    /// of epoch `epochs_done + 1`, so that a resumed run follows the same rates as one run
    /// straight through. Reduce-on-plateau cannot resume (what it has seen of the metric is
    /// not in a checkpoint) and says so.
    pub fn resume_at<T: Scalar>(
        mut self,
        epochs_done: usize,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Result<Self> {
        if epochs_done == 0 {
            return Ok(self);
        }
        if self.schedule.needs_metric() {
            return Err(Error::param(
                "schedule",
                self.schedule.name(),
                "cannot resume: reduce-on-plateau's memory of the metric is not in the checkpoint",
            ));
        }
        self.epochs_done = epochs_done;
        self.current = self.schedule.learning_rate(self.base, epochs_done, None)?;
        optimizer.set_learning_rate(self.current)?;
        Ok(self)
    }
    /// The learning rate set for the coming epoch.
    pub fn learning_rate(&self) -> f64 {
        self.current
    }
    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

impl<T: Scalar> Observer<T> for LrScheduler {
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, T>) -> Result<Control> {
        self.epochs_done += 1;
        let metric = self.monitor.cost(end.record);
        if self.schedule.needs_metric() && metric.is_none() {
            return Err(Error::param(
                "schedule monitor",
                self.monitor,
                "is not in the epoch records: reduce-on-plateau needs it every epoch \
                 (give the trainer a validation set)",
            ));
        }
        self.current = self
            .schedule
            .learning_rate(self.base, self.epochs_done, metric)?;
        end.optimizer.set_learning_rate(self.current)?;
        Ok(Control::Continue)
    }
}
