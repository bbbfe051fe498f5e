//! Per-class metrics: which classes a classifier gets right, and which it takes for which.
//!
//! One number — the accuracy — says how often a classifier is right, not where it is wrong.
//! A [`ConfusionMatrix`] counts every example by its true class (the row) and the class the
//! classifier picked (the column): the diagonal is what it got right, and each cell off it
//! is one kind of mistake (a 4 read as a 9). From it follow, for each class,
//!
//! * **recall** — of the examples of the class, the fraction picked as it (the row's
//!   diagonal share; this is also the *per-class accuracy*, as torchmetrics'
//!   `MulticlassAccuracy(average=None)` reports it);
//! * **precision** — of the examples picked as the class, the fraction that are of it (the
//!   column's diagonal share);
//! * **F1** — their harmonic mean;
//!
//! and [`top_confusions`](ConfusionMatrix::top_confusions), the largest cells off the
//! diagonal. The overall [`accuracy`](ConfusionMatrix::accuracy) is the diagonal's share of
//! the total.
//!
//! A model's [`evaluate`](crate::Model::evaluate) fills one in as it scores a dataset (an
//! [`Mlp`](crate::model::Mlp) in the same pass over the data as its accuracy and loss), and
//! [`confusion_matrix`](crate::model::confusion_matrix) gets one for any classifier.
//!
//! ```
//! use downhill::metrics::ConfusionMatrix;
//!
//! // Six examples of three classes: one 1 taken for a 2, one 2 for a 0.
//! let truth = [0, 0, 1, 1, 2, 2];
//! let picked = [0, 0, 1, 2, 2, 0];
//! let m = ConfusionMatrix::from_predictions(3, &truth, &picked)?;
//! assert_eq!(m.row(1), [0, 1, 1]);
//! assert_eq!(m.total(), 6);
//! assert_eq!(m.accuracy(), Some(4.0 / 6.0));
//! assert_eq!(m.recall(1), Some(0.5));
//! assert_eq!(m.precision(0), Some(2.0 / 3.0));
//! assert_eq!(m.class_accuracy(2), m.recall(2));
//! let worst = m.top_confusions(1);
//! assert_eq!((worst[0].label, worst[0].predicted, worst[0].count), (1, 2, 1));
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fmt;

use crate::error::{Error, Result};

/// Counts of examples by true class (rows) and predicted class (columns). See the
/// [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row-major, `classes × classes`.
    counts: Vec<u64>,
}

/// One kind of mistake: examples of class `label` predicted as `predicted`, `count` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confusion {
    /// The true class.
    pub label: usize,
    /// The class picked instead.
    pub predicted: usize,
    /// How many examples.
    pub count: u64,
}

/// One class's row of a report: how many examples it has and is given, and its precision,
/// recall and F1 (`None` where they divide by zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassMetrics {
    /// The class.
    pub class: usize,
    /// Examples of the class (its row's sum).
    pub support: u64,
    /// Examples predicted as the class (its column's sum).
    pub predicted: u64,
    /// Of those predicted as the class, the fraction that are.
    pub precision: Option<f64>,
    /// Of the class's examples, the fraction predicted as it: the per-class accuracy.
    pub recall: Option<f64>,
    /// The harmonic mean of precision and recall.
    pub f1: Option<f64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes (at least 1).
    pub fn new(classes: usize) -> Result<Self> {
        if classes == 0 {
            return Err(Error::param("classes", 0, "must be at least 1"));
        }
        let counts = classes
            .checked_mul(classes)
            .filter(|&n| n <= 1 << 28)
            .ok_or_else(|| {
                Error::param(
                    "classes",
                    classes,
                    "must be at most 16,384 for a confusion matrix",
                )
            })?;
        Ok(ConfusionMatrix {
            classes,
            counts: vec![0; counts],
        })
    }

    /// The matrix of `labels` (true classes) against `predicted`, pair by pair (the two of
    /// the same length, every class below `classes`).
    pub fn from_predictions(classes: usize, labels: &[usize], predicted: &[usize]) -> Result<Self> {
        if labels.len() != predicted.len() {
            return Err(Error::shape(
                "ConfusionMatrix::from_predictions",
                "predictions (one per label)",
                labels.len(),
                predicted.len(),
            ));
        }
        let mut m = ConfusionMatrix::new(classes)?;
        for (&y, &p) in labels.iter().zip(predicted) {
            m.add(y, p)?;
        }
        Ok(m)
    }

    /// Counts one example of class `label` predicted as `predicted`.
    pub fn add(&mut self, label: usize, predicted: usize) -> Result<()> {
        for (what, class) in [("label", label), ("predicted class", predicted)] {
            if class >= self.classes {
                return Err(Error::shape(
                    "ConfusionMatrix::add",
                    what,
                    self.classes,
                    class,
                ));
            }
        }
        self.counts[label * self.classes + predicted] += 1;
        Ok(())
    }

    /// Counts every pair of `labels` and `predicted` whose classes are in range (the
    /// crate's models, whose labels and predictions are checked before they get here).
    pub(crate) fn add_pairs(&mut self, labels: &[usize], predicted: &[usize]) {
        let k = self.classes;
        for (&y, &p) in labels.iter().zip(predicted) {
            if y < k && p < k {
                self.counts[y * k + p] += 1;
            }
        }
    }

    /// Adds `other`'s counts (of the same number of classes) to these.
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<()> {
        if other.classes != self.classes {
            return Err(Error::shape(
                "ConfusionMatrix::merge",
                "classes",
                self.classes,
                other.classes,
            ));
        }
        for (a, &b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        Ok(())
    }

    /// The number of classes (rows, and columns).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Examples of class `label` predicted as `predicted` (0 out of range).
    pub fn count(&self, label: usize, predicted: usize) -> u64 {
        match label < self.classes && predicted < self.classes {
            true => self.counts[label * self.classes + predicted],
            false => 0,
        }
    }

    /// Row `label`: its examples by predicted class (empty out of range).
    pub fn row(&self, label: usize) -> &[u64] {
        let k = self.classes;
        self.counts.get(label * k..(label + 1) * k).unwrap_or(&[])
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl Iterator<Item = &[u64]> + '_ {
        self.counts.chunks_exact(self.classes)
    }

    /// Examples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Examples predicted as their own class (the diagonal's sum).
    pub fn correct(&self) -> u64 {
        (0..self.classes).map(|c| self.count(c, c)).sum()
    }

    /// The fraction of examples predicted as their own class (`None` for an empty matrix).
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.correct(), self.total())
    }

    /// Examples of class `class` (its row's sum).
    pub fn support(&self, class: usize) -> u64 {
        self.row(class).iter().sum()
    }

    /// Examples predicted as class `class` (its column's sum).
    pub fn predicted(&self, class: usize) -> u64 {
        match class < self.classes {
            true => self.rows().map(|r| r[class]).sum(),
            false => 0,
        }
    }

    /// Of the examples of `class`, the fraction predicted as it (`None` if it has none).
    pub fn recall(&self, class: usize) -> Option<f64> {
        ratio(self.count(class, class), self.support(class))
    }

    /// The per-class accuracy: of the examples of `class`, the fraction classified right.
    /// The same number as [`recall`](ConfusionMatrix::recall) (and as torchmetrics'
    /// `MulticlassAccuracy(average=None)`).
    pub fn class_accuracy(&self, class: usize) -> Option<f64> {
        self.recall(class)
    }

    /// Of the examples predicted as `class`, the fraction that are of it (`None` if none
    /// were).
    pub fn precision(&self, class: usize) -> Option<f64> {
        ratio(self.count(class, class), self.predicted(class))
    }

    /// The harmonic mean of `class`'s precision and recall (`None` if either is, or both
    /// are 0).
    pub fn f1(&self, class: usize) -> Option<f64> {
        let (p, r) = (self.precision(class)?, self.recall(class)?);
        (p + r > 0.0).then(|| 2.0 * p * r / (p + r))
    }

    /// Every class's support, precision, recall and F1, in class order.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        (0..self.classes)
            .map(|class| ClassMetrics {
                class,
                support: self.support(class),
                predicted: self.predicted(class),
                precision: self.precision(class),
                recall: self.recall(class),
                f1: self.f1(class),
            })
            .collect()
    }

    /// The `k` largest cells off the diagonal that are not empty, largest first (ties: by
    /// true class, then predicted class).
    pub fn top_confusions(&self, k: usize) -> Vec<Confusion> {
        let mut off: Vec<Confusion> = (0..self.classes)
            .flat_map(|label| (0..self.classes).map(move |predicted| (label, predicted)))
            .filter(|&(label, predicted)| label != predicted)
            .map(|(label, predicted)| Confusion {
                label,
                predicted,
                count: self.count(label, predicted),
            })
            .filter(|c| c.count > 0)
            .collect();
        off.sort_by(|a, b| (b.count, a.label, a.predicted).cmp(&(a.count, b.label, b.predicted)));
        off.truncate(k);
        off
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A table: the counts with the true class down the side and the predicted class across,
/// each row's recall and each column's precision.
///
/// ```
/// use downhill::metrics::ConfusionMatrix;
///
/// let m = ConfusionMatrix::from_predictions(2, &[0, 0, 1, 1], &[0, 1, 1, 1])?;
/// let table = m.to_string();
/// assert_eq!(table.lines().nth(1).unwrap().split_whitespace().collect::<Vec<_>>(), ["0", "1", "1", "0.500"]);
/// # Ok::<(), downhill::Error>(())
/// ```
impl fmt::Display for ConfusionMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .counts
            .iter()
            .max()
            .map_or(1, |m| m.to_string().len())
            .max(self.classes.to_string().len())
            .max(5);
        write!(f, "{:>6}", "true")?;
        for c in 0..self.classes {
            write!(f, " {c:>width$}")?;
        }
        writeln!(f, " {:>6}", "recall")?;
        for (label, row) in self.rows().enumerate() {
            write!(f, "{label:>6}")?;
            for n in row {
                write!(f, " {n:>width$}")?;
            }
            writeln!(f, " {:>6}", fraction(self.recall(label)))?;
        }
        write!(f, "{:>6}", "prec.")?;
        for c in 0..self.classes {
            write!(f, " {:>width$}", fraction(self.precision(c)))?;
        }
        writeln!(f)
    }
}

fn fraction(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_classes_are_errors_and_counted_pairs_skip_them() {
        let mut m = ConfusionMatrix::new(3).unwrap();
        assert!(m.add(3, 0).is_err());
        assert!(m.add(0, 3).is_err());
        m.add_pairs(&[0, 5, 2], &[1, 1, 9]);
        assert_eq!(m.total(), 1);
        assert!(ConfusionMatrix::new(0).is_err());
        assert!(ConfusionMatrix::from_predictions(2, &[0], &[]).is_err());
    }

    #[test]
    fn empty_rows_and_columns_have_no_ratio() {
        let m = ConfusionMatrix::from_predictions(3, &[0, 0], &[0, 1]).unwrap();
        assert_eq!(m.recall(2), None);
        assert_eq!(m.precision(2), None);
        assert_eq!(m.f1(2), None);
        assert_eq!(m.f1(1), None); // precision 0, recall None
        assert_eq!(ConfusionMatrix::new(2).unwrap().accuracy(), None);
    }
}
