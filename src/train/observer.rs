//! Watching a run: the callbacks the training loop makes, and what they may answer.
//!
//! An [`Observer`] is told about every step and every epoch, and sees the parameters and the
//! optimizer once an epoch ends — enough to draw a progress bar, record a history, save a
//! checkpoint or stop early. Each callback returns a [`Control`]: keep going, or stop with a
//! [`StopReason`] the [`TrainReport`](crate::TrainReport) keeps.
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

use std::fmt;
use std::time::Duration;

use crate::error::Result;
use crate::model::Params;
use crate::optim::{Optimizer, StateDict};
use crate::scalar::Scalar;
use crate::train::{EpochRecord, Monitor, TrainReport};

/// Why a run ended before its last epoch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`EarlyStopping`](crate::train::EarlyStopping): the monitored metric had not improved
    /// for `patience` epochs.
    EarlyStopping {
        /// The epoch after which the run stopped.
        epoch: usize,
        /// The metric watched.
        monitor: Monitor,
        /// Epochs without improvement it waited.
        patience: usize,
        /// The best value seen and its epoch (`None` if no value was finite).
        best: Option<(f64, usize)>,
    },
    /// The trainer's [time limit](crate::Trainer::time_limit) was reached.
    TimeLimit {
        /// The limit.
        limit: Duration,
        /// The epoch during which it was reached.
        epoch: usize,
    },
    /// An observer of your own asked to stop, and said why.
    Requested(String),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::EarlyStopping {
                epoch,
                monitor,
                patience,
                best,
            } => {
                write!(
                    f,
                    "early stopping after epoch {epoch}: {monitor} has not improved for \
                     {patience} epochs"
                )?;
                match best {
                    Some((v, e)) => write!(f, " (best {v:.4} at epoch {e})"),
                    None => write!(f, " (no finite value yet)"),
                }
            }
            StopReason::TimeLimit { limit, epoch } => write!(
                f,
                "time limit of {:.3} s reached after epoch {epoch}",
                limit.as_secs_f64()
            ),
            StopReason::Requested(why) => f.write_str(why),
        }
    }
}

/// What an observer tells the training loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Carry on.
    Continue,
    /// Stop after this step or epoch; the reason ends up in
    /// [`TrainReport::stopped`](crate::TrainReport::stopped).
    Stop(StopReason),
}

impl Control {
    /// The reason, if this says stop.
    pub fn stop_reason(self) -> Option<StopReason> {
        match self {
            Control::Continue => None,
            Control::Stop(why) => Some(why),
        }
    }
}

/// One optimizer step, as the training loop saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
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

/// What the training loop shows an observer when an epoch ends: the epoch's record, and the
/// parameters and the optimizer as they stand — both open to change, so an observer can put
/// back the best weights or set a new learning rate.
#[non_exhaustive]
pub struct EpochEnd<'a, T: Scalar> {
    /// The finished epoch's record.
    pub record: &'a EpochRecord,
    /// The parameters after the epoch's last step.
    pub params: &'a mut dyn Params<T>,
    /// The optimizer, with its state after the epoch's last step.
    pub optimizer: &'a mut dyn Optimizer<T>,
}

impl<'a, T: Scalar> EpochEnd<'a, T> {
    /// The end of the epoch `record` describes (for calling an observer by hand, in a test).
    pub fn new(
        record: &'a EpochRecord,
        params: &'a mut dyn Params<T>,
        optimizer: &'a mut dyn Optimizer<T>,
    ) -> Self {
        EpochEnd {
            record,
            params,
            optimizer,
        }
    }
}

/// Callbacks from the training loop. Every method has a default that does nothing, so an
/// observer implements only what it watches.
pub trait Observer<T: Scalar> {
    /// After every optimizer step.
    fn on_step(&mut self, info: &StepInfo) -> Result<Control> {
        let _ = info;
        Ok(Control::Continue)
    }
    /// After every epoch, with its record and the parameters and the optimizer as they stand.
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, T>) -> Result<Control> {
        let _ = end;
        Ok(Control::Continue)
    }
    /// Once, when the run ends without an error (after the last epoch, a time limit or a
    /// stop), with the finished report.
    fn on_end(&mut self, report: &TrainReport, params: &mut dyn Params<T>) -> Result<()> {
        let _ = (report, params);
        Ok(())
    }
    /// What the observer carries from epoch to epoch, named, for a checkpoint to save (so a
    /// resumed run ends where a straight one does). The default: nothing.
    fn state(&self) -> Vec<(String, StateDict<T>)> {
        Vec::new()
    }
    /// Takes back a state [`state`](Observer::state) saved under `name`; returns whether
    /// it did (an observer that does not recognise the name leaves it, the default).
    fn load_state(&mut self, name: &str, state: &StateDict<T>) -> Result<bool> {
        let _ = (name, state);
        Ok(false)
    }
}

/// A closure over epoch records is an observer.
impl<T: Scalar, F: FnMut(&EpochRecord)> Observer<T> for F {
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, T>) -> Result<Control> {
        self(end.record);
        Ok(Control::Continue)
    }
}

/// Several observers as one, called in order; the first to stop wins.
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
        for o in self.0.iter_mut() {
            if let Control::Stop(why) = o.on_step(info)? {
                return Ok(Control::Stop(why));
            }
        }
        Ok(Control::Continue)
    }
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, T>) -> Result<Control> {
        let mut control = Control::Continue;
        // Every observer sees every epoch, even after one has asked to stop.
        for o in self.0.iter_mut() {
            let c = o.on_epoch(end)?;
            if control == Control::Continue {
                control = c;
            }
        }
        Ok(control)
    }
    fn on_end(&mut self, report: &TrainReport, params: &mut dyn Params<T>) -> Result<()> {
        for o in self.0.iter_mut() {
            o.on_end(report, params)?;
        }
        Ok(())
    }
    fn state(&self) -> Vec<(String, StateDict<T>)> {
        self.0.iter().flat_map(|o| o.state()).collect()
    }
    fn load_state(&mut self, name: &str, state: &StateDict<T>) -> Result<bool> {
        for o in self.0.iter_mut() {
            if o.load_state(name, state)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
