//! Early stopping: stop when the validation metric stops improving, and keep the best
//! parameters seen.
//!
//! Training loss keeps falling as long as training goes on; validation loss falls, flattens,
//! and then rises as the network starts to memorise its training examples. The epoch where
//! validation was best is the model to keep. [`EarlyStopping`] watches a [`Monitor`] after
//! every epoch, copies the parameters whenever it improves, asks the loop to stop once it
//! has not improved for `patience` epochs, and puts the best parameters back when the run
//! ends — so the model you hold afterwards is the best one, not the last one.
//!
//! ```
//! use downhill::prelude::*;
//! use downhill::train::{EarlyStopping, Monitor, StopReason};
//!
//! let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.9, 0.1, 0.2, 0.8], 4, 2)?;
//! let data = Dataset::from_matrix(x, vec![1, 0, 0, 1], 2)?;
//! let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
//! let mut sgd = Sgd::new(0.5)?.batch_size(2)?;
//! let mut stop = EarlyStopping::<f64>::new(Monitor::ValidAccuracy, 3)?;
//! let report = Trainer::new(100)?.run_with(&mut model, &mut sgd, &data, Some(&data), &mut stop)?;
//! // Accuracy reaches 1 within a few epochs and cannot improve on it: the run stops early.
//! assert!(report.history.len() < 100);
//! assert!(matches!(report.stopped, Some(StopReason::EarlyStopping { patience: 3, .. })));
//! assert_eq!(stop.best_value(), Some(1.0));
//! # Ok::<(), downhill::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::model::Params;
use crate::optim::StateDict;
use crate::scalar::Scalar;
use crate::train::{Control, EpochEnd, Monitor, Observer, StopReason, TrainReport};
use crate::validate::{at_least_one, non_negative, same_size};

/// The name early stopping's state goes under in a checkpoint.
const STATE_NAME: &str = "early_stopping";

/// An [`Observer`] that stops a run when a metric has not improved for `patience` epochs and
/// restores the best parameters at the end.
#[derive(Debug, Clone)]
pub struct EarlyStopping<T> {
    monitor: Monitor,
    patience: usize,
    min_delta: f64,
    restore_best: bool,
    best: Option<(f64, usize)>,
    best_params: Vec<T>,
    bad_epochs: usize,
    restored: bool,
}

impl<T: Scalar> EarlyStopping<T> {
    /// Stops after `patience` (≥ 1) epochs in a row without improvement of `monitor`.
    pub fn new(monitor: Monitor, patience: usize) -> Result<Self> {
        Ok(EarlyStopping {
            monitor,
            patience: at_least_one("patience", patience)?,
            min_delta: 0.0,
            restore_best: true,
            best: None,
            best_params: Vec::new(),
            bad_epochs: 0,
            restored: false,
        })
    }
    /// The smallest change that counts as an improvement (finite, ≥ 0; default 0).
    pub fn min_delta(mut self, min_delta: f64) -> Result<Self> {
        self.min_delta = non_negative("min_delta", min_delta)?;
        Ok(self)
    }
    /// Whether to put the best parameters back into the model when the run ends
    /// (default `true`).
    pub fn restore_best(mut self, restore: bool) -> Self {
        self.restore_best = restore;
        self
    }
    /// The best value of the metric so far.
    pub fn best_value(&self) -> Option<f64> {
        self.best.map(|b| b.0)
    }
    /// The epoch (as numbered in its [`EpochRecord`](crate::EpochRecord)) where the metric was best.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best.map(|b| b.1)
    }
    /// Whether the run's end put the best parameters back.
    pub fn restored(&self) -> bool {
        self.restored
    }

    fn improves(&self, value: f64) -> bool {
        match self.best {
            _ if !value.is_finite() => false,
            None => true,
            Some((best, _)) if self.monitor.higher_is_better() => value > best + self.min_delta,
            Some((best, _)) => value < best - self.min_delta,
        }
    }
}

impl<T: Scalar> Observer<T> for EarlyStopping<T> {
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, T>) -> Result<Control> {
        let value = self.monitor.value(end.record).ok_or(Error::param(
            "early stopping monitor",
            self.monitor,
            "is not in the epoch records (give the trainer a validation set, and a model \
             that names its loss for valid_loss)",
        ))?;
        if self.improves(value) {
            self.best = Some((value, end.record.epoch));
            self.best_params.clear();
            self.best_params.extend_from_slice(end.params.params());
            self.bad_epochs = 0;
            return Ok(Control::Continue);
        }
        self.bad_epochs += 1;
        if self.bad_epochs < self.patience {
            return Ok(Control::Continue);
        }
        Ok(Control::Stop(StopReason::EarlyStopping {
            epoch: end.record.epoch,
            monitor: self.monitor,
            patience: self.patience,
            best: self.best,
        }))
    }

    fn on_end(&mut self, _report: &TrainReport, model: &mut dyn Params<T>) -> Result<()> {
        self.restored = false;
        if !self.restore_best || self.best_params.is_empty() {
            return Ok(());
        }
        let params = model.params_mut();
        same_size(
            "EarlyStopping::on_end (restoring the best parameters)",
            "parameter count",
            self.best_params.len(),
            params.len(),
        )?;
        params.copy_from_slice(&self.best_params);
        self.restored = true;
        Ok(())
    }

    /// The best value and epoch, the epochs without improvement since, and the best
    /// parameters: with them a resumed run stops, and restores, where a straight one does.
    fn state(&self) -> Vec<(String, StateDict<T>)> {
        let mut state = StateDict::default();
        if let Some((value, epoch)) = self.best {
            state.scalars.push(("best_value".into(), value));
            state.scalars.push(("best_epoch".into(), epoch as f64));
        }
        state
            .scalars
            .push(("bad_epochs".into(), self.bad_epochs as f64));
        if !self.best_params.is_empty() {
            state
                .buffers
                .push(("best_params".into(), self.best_params.clone()));
        }
        vec![(STATE_NAME.to_string(), state)]
    }

    fn load_state(&mut self, name: &str, state: &StateDict<T>) -> Result<bool> {
        if name != STATE_NAME {
            return Ok(false);
        }
        let count = |key: &str| -> Result<usize> {
            match state.scalar(key) {
                None => Ok(0),
                Some(v) if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53) => Ok(v as usize),
                Some(v) => Err(Error::checkpoint(
                    None,
                    format!("early stopping's {key} = {v} is not a count"),
                )),
            }
        };
        let best = match (state.scalar("best_value"), state.scalar("best_epoch")) {
            (Some(v), Some(_)) => Some((v, count("best_epoch")?)),
            (None, None) => None,
            _ => {
                return Err(Error::checkpoint(
                    None,
                    "early stopping's state has a best value without its epoch, or the reverse",
                ))
            }
        };
        self.bad_epochs = count("bad_epochs")?;
        self.best = best;
        self.best_params = state
            .buffer("best_params")
            .map(<[T]>::to_vec)
            .unwrap_or_default();
        Ok(true)
    }
}
