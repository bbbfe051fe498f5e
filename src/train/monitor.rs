//! Which number of an epoch to watch: what early stopping and reduce-on-plateau compare
//! from epoch to epoch.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::train::EpochRecord;

/// A per-epoch metric of an [`EpochRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Monitor {
    /// Mean data loss on the validation set (lower is better). The default: it moves even
    /// when the accuracy has settled, so it shows overfitting first.
    #[default]
    ValidLoss,
    /// Accuracy on the validation set (higher is better).
    ValidAccuracy,
    /// Mean training loss of the epoch (lower is better) — for runs without a validation
    /// set; it does not show overfitting.
    TrainLoss,
}

impl Monitor {
    /// The metric's value in `record`, if the record has it.
    pub fn value(self, record: &EpochRecord) -> Option<f64> {
        match self {
            Monitor::ValidLoss => record.valid_loss,
            Monitor::ValidAccuracy => record.valid_accuracy,
            Monitor::TrainLoss => Some(record.train_loss),
        }
    }
    /// Whether larger values are better (accuracy) or smaller (the losses).
    pub fn higher_is_better(self) -> bool {
        self == Monitor::ValidAccuracy
    }
    /// The metric as a cost, lower is better: the loss itself, or the error rate
    /// `1 − accuracy`.
    pub fn cost(self, record: &EpochRecord) -> Option<f64> {
        let v = self.value(record)?;
        Some(if self.higher_is_better() { 1.0 - v } else { v })
    }
    /// The record field's name: `valid_loss`, `valid_accuracy` or `train_loss`.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValidLoss => "valid_loss",
            Monitor::ValidAccuracy => "valid_accuracy",
            Monitor::TrainLoss => "train_loss",
        }
    }
}

impl fmt::Display for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Monitor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "valid_loss" | "loss" => Ok(Monitor::ValidLoss),
            "valid_accuracy" | "accuracy" | "acc" => Ok(Monitor::ValidAccuracy),
            "train_loss" => Ok(Monitor::TrainLoss),
            _ => Err(Error::param(
                "monitor",
                s,
                "must be valid_loss, valid_accuracy or train_loss",
            )),
        }
    }
}
