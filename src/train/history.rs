//! Keeping the record of a run: every epoch's numbers, as CSV or JSON.
//!
//! [`History`] collects the [`EpochRecord`]s and, if given paths, rewrites its files after
//! every epoch — an interrupted run still leaves its history behind. The formats are
//! written by hand (the crate has no serialisation dependency): CSV with a header row and
//! empty cells for missing values, JSON as an array of objects with `null` for them.
//!
//! ```
//! use downhill::train::{history_csv, history_json};
//! use downhill::EpochRecord;
//!
//! let mut e = EpochRecord::new(1, 0.5);
//! (e.valid_accuracy, e.learning_rate) = (Some(0.9), Some(0.1));
//! (e.steps, e.samples, e.train_seconds) = (10, 1280, 0.25);
//! assert_eq!(
//!     history_csv(&[e.clone()]).lines().nth(1),
//!     Some("1,0.5,,0.9,0.1,10,1280,0.25,")
//! );
//! assert!(history_json(&[e]).contains("\"valid_loss\":null"));
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::train::{Control, EpochEnd, EpochRecord, Observer};

/// The columns, in order (`train_accuracy` last: it came after the others, and a reader
/// that counts columns finds them where they were).
const COLUMNS: [&str; 9] = [
    "epoch",
    "train_loss",
    "valid_loss",
    "valid_accuracy",
    "learning_rate",
    "steps",
    "samples",
    "train_seconds",
    "train_accuracy",
];

/// The values of a record in [`COLUMNS`] order (`None`: missing or not finite).
fn values(e: &EpochRecord) -> [Option<f64>; 9] {
    let finite = |v: f64| v.is_finite().then_some(v);
    [
        Some(e.epoch as f64),
        finite(e.train_loss),
        e.valid_loss.and_then(finite),
        e.valid_accuracy.and_then(finite),
        e.learning_rate.and_then(finite),
        Some(e.steps as f64),
        Some(e.samples as f64),
        finite(e.train_seconds),
        e.train_accuracy.and_then(finite),
    ]
}

/// The records as CSV: a header row, then one row per epoch (missing values empty).
pub fn history_csv(records: &[EpochRecord]) -> String {
    let mut s = COLUMNS.join(",");
    s.push('\n');
    for e in records {
        let row: Vec<String> = values(e)
            .iter()
            .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
            .collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s
}

/// The records as a JSON array of objects (missing values `null`).
pub fn history_json(records: &[EpochRecord]) -> String {
    let mut s = String::from("[");
    for (i, e) in records.iter().enumerate() {
        s.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
        for (j, (name, v)) in COLUMNS.iter().zip(values(e)).enumerate() {
            let sep = if j == 0 { "" } else { "," };
            match v {
                Some(v) => write!(s, "{sep}\"{name}\":{v}"),
                None => write!(s, "{sep}\"{name}\":null"),
            }
            .unwrap_or(());
        }
        s.push('}');
    }
    s.push_str(if records.is_empty() { "]\n" } else { "\n]\n" });
    s
}

/// An [`Observer`] that records every epoch and keeps CSV and/or JSON files up to date.
#[derive(Debug, Clone, Default)]
pub struct History {
    records: Vec<EpochRecord>,
    csv: Option<PathBuf>,
    json: Option<PathBuf>,
}

impl History {
    /// A history that only collects records in memory.
    pub fn new() -> Self {
        History::default()
    }
    /// Also writes the history as CSV to `path` after every epoch.
    pub fn csv(mut self, path: impl Into<PathBuf>) -> Self {
        self.csv = Some(path.into());
        self
    }
    /// Also writes the history as JSON to `path` after every epoch.
    pub fn json(mut self, path: impl Into<PathBuf>) -> Self {
        self.json = Some(path.into());
        self
    }
    /// The records so far.
    pub fn records(&self) -> &[EpochRecord] {
        &self.records
    }

    fn write(path: &Path, text: &str) -> Result<()> {
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }
}

impl<T: Scalar> Observer<T> for History {
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, T>) -> Result<Control> {
        self.records.push(end.record.clone());
        if let Some(path) = &self.csv {
            History::write(path, &history_csv(&self.records))?;
        }
        if let Some(path) = &self.json {
            History::write(path, &history_json(&self.records))?;
        }
        Ok(Control::Continue)
    }
}
