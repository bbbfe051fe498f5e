//! What `random_search` and `local_search` share: the loss they score weights with and the
//! pixel values the classifier sees, as flags.

use downhill::data::{Dataset, FeatureTransform};
use downhill::loss::Loss;
use downhill::Scalar;

use super::cli::Failure;

/// The data loss.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossArg {
    /// Multiclass SVM hinge loss, margin 1 (the lecture's)
    #[value(alias = "hinge")]
    Svm,
    /// Softmax cross-entropy
    Softmax,
}

impl LossArg {
    /// The name in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            LossArg::Svm => "svm",
            LossArg::Softmax => "softmax",
        }
    }
}

impl From<LossArg> for Loss {
    fn from(l: LossArg) -> Self {
        match l {
            LossArg::Svm => Loss::Hinge,
            LossArg::Softmax => Loss::SoftmaxCrossEntropy,
        }
    }
}

/// The pixel values the classifier is scored on.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pixels {
    /// The bytes as they are, 0 to 255 (the lecture's X: its loss of 9.4 at W = randn·1e-4
    /// is one of raw pixels)
    Raw,
    /// Scaled to [0, 1], as the loaders scale them for every other example
    Unit,
}

impl Pixels {
    /// The name in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            Pixels::Raw => "raw",
            Pixels::Unit => "unit",
        }
    }

    /// Sets `data`'s transform to this scale (the loaders leave it at [0, 1]).
    pub fn apply<T: Scalar>(self, data: &mut Dataset<T>) -> Result<(), Failure> {
        let scale = match self {
            Pixels::Raw => 1.0,
            Pixels::Unit => 1.0 / 255.0,
        };
        let n = data.num_features();
        data.set_transform(FeatureTransform::uniform(n, T::from_f64(scale), T::zero()))?;
        Ok(())
    }
}
