//! Watching a run: the callbacks the training loop makes, and what they may answer.
//!
//! An [`Observer`] is told about every step and every epoch, and sees the model and the
//! optimizer once an epoch ends — enough to draw a progress bar, record a history, save a
//! checkpoint or stop early. Each callback returns a [`Control`]: keep going, or stop with a
//! reason the [`TrainReport`](crate::TrainReport) keeps.
//!
//! A closure `FnMut(&EpochRecord)` is an observer that watches epochs and never stops the run:
//!
//! ```
//! use downhill::prelude::*;
//!
//! let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
//! let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
//! let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
//! let mut sgd = Sgd::new(0.5)?.batch_size(2)?;
//! let mut losses = Vec::new();
//! Trainer::new(3)?.run_with(&mut model, &mut sgd, &data, None, &mut |e: &EpochRecord| {
//!     losses.push(e.train_loss)
//! })?;
//! assert_eq!(losses.len(), 3);
//! # Ok::<(), downhill::Error>(())
//! ```

use crate::error::Result;
use crate::model::Model;
use crate::optim::Optimizer;
use crate::train::{EpochRecord, TrainReport};
use crate::Scalar;

/// What an observer tells the training loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Carry on.
    Continue,
    /// Stop after this step or epoch; the reason ends up in [`TrainReport::stopped`].
    Stop(String),
}

/// One optimizer step, as the training loop saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// 1-based epoch the step belongs to.
    pub epoch: usize,
    /// 0-based step number within the epoch.
    pub step_in_epoch: usize,
    /// Steps in this epoch.
    pub steps_per_epoch: usize,
    /// 0-based step number over the whole run.
    pub step: usize,
    /// The loss the step observed.
    pub loss: f64,
    /// Examples in the step's batch.
    pub samples: usize,
    /// Seconds of training-loop time since the epoch began.
    pub epoch_seconds: f64,
}

/// Callbacks from the training loop. Every method has a default that does nothing, so an
/// observer implements only what it watches.
pub trait Observer<T: Scalar> {
    /// After every optimizer step.
    fn on_step(&mut self, info: &StepInfo) -> Result<Control> {
        let _ = info;
        Ok(Control::Continue)
    }
    /// After every epoch, with the model and optimizer as they stand.
    fn on_epoch(
        &mut self,
        record: &EpochRecord,
        model: &mut dyn Model<T>,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Result<Control> {
        let _ = (record, model, optimizer);
        Ok(Control::Continue)
    }
    /// Once, when the run ends without an error (after the last epoch, a time limit or a
    /// stop), with the finished report.
    fn on_end(&mut self, report: &TrainReport, model: &mut dyn Model<T>) -> Result<()> {
        let _ = (report, model);
        Ok(())
    }
}

/// A closure over epoch records is an observer.
impl<T: Scalar, F: FnMut(&EpochRecord)> Observer<T> for F {
    fn on_epoch(
        &mut self,
        record: &EpochRecord,
        _model: &mut dyn Model<T>,
        _optimizer: &mut dyn Optimizer<T>,
    ) -> Result<Control> {
        self(record);
        Ok(Control::Continue)
    }
}

/// Several observers, called in order; the first to stop wins.
impl<T: Scalar> Observer<T> for [&mut dyn Observer<T>] {
    fn on_step(&mut self, info: &StepInfo) -> Result<Control> {
        for o in self.iter_mut() {
            if let Control::Stop(why) = o.on_step(info)? {
                return Ok(Control::Stop(why));
            }
        }
        Ok(Control::Continue)
    }
    fn on_epoch(
        &mut self,
        record: &EpochRecord,
        model: &mut dyn Model<T>,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Result<Control> {
        let mut control = Control::Continue;
        // Every observer sees every epoch, even after one has asked to stop.
        for o in self.iter_mut() {
            if let Control::Stop(why) = o.on_epoch(record, model, optimizer)? {
                if control == Control::Continue {
                    control = Control::Stop(why);
                }
            }
        }
        Ok(control)
    }
    fn on_end(&mut self, report: &TrainReport, model: &mut dyn Model<T>) -> Result<()> {
        for o in self.iter_mut() {
            o.on_end(report, model)?;
        }
        Ok(())
    }
}

/// Several observers as one value that coerces to `&mut dyn Observer<T>` (a slice
/// `[&mut dyn Observer<T>]` is unsized, so it cannot be passed to
/// [`Trainer::run_with`](crate::Trainer::run_with) directly). Called in order; the first to
/// stop wins.
///
/// ```
/// use downhill::prelude::*;
/// use downhill::train::{History, Observers};
///
/// let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
/// let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
/// let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
/// let mut sgd = Sgd::new(0.5)?.batch_size(2)?;
/// let (mut history, mut epochs) = (History::new(), 0);
/// let mut count = |_: &EpochRecord| epochs += 1;
/// Trainer::new(3)?.run_with(
///     &mut model, &mut sgd, &data, None,
///     &mut Observers(vec![&mut history, &mut count]),
/// )?;
/// assert_eq!((history.records().len(), epochs), (3, 3));
/// # Ok::<(), downhill::Error>(())
/// ```
pub struct Observers<'a, T: Scalar>(pub Vec<&'a mut dyn Observer<T>>);

impl<T: Scalar> Observer<T> for Observers<'_, T> {
    fn on_step(&mut self, info: &StepInfo) -> Result<Control> {
        self.0.as_mut_slice().on_step(info)
    }
    fn on_epoch(
        &mut self,
        record: &EpochRecord,
        model: &mut dyn Model<T>,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Result<Control> {
        self.0.as_mut_slice().on_epoch(record, model, optimizer)
    }
    fn on_end(&mut self, report: &TrainReport, model: &mut dyn Model<T>) -> Result<()> {
        self.0.as_mut_slice().on_end(report, model)
    }
}
