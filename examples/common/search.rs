//! What `random_search` and `local_search` share: the loss they score weights with and the
//! pixel values the classifier sees, as flags.

use std::num::NonZeroUsize;

use downhill::data::{Dataset, FeatureTransform};
use downhill::loss::Loss;
use downhill::prelude::LinearClassifier;
use downhill::Scalar;
use serde::Serialize;

use super::cli::Failure;
use super::data::{DataArgs, Format};

/// The flags both searches take: the data, how many tries, what scores a try and what the
/// classifier sees.
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Tries: weight vectors drawn (random search) or steps taken (local search)
    #[arg(long, default_value_t = 1000)]
    pub tries: usize,
    /// The loss a try is scored by
    #[arg(long, value_enum, default_value_t = LossArg::Svm)]
    pub loss: LossArg,
    /// The pixel values the classifier sees
    #[arg(long, value_enum, default_value_t = Pixels::Raw)]
    pub pixels: Pixels,
    /// Print every this many tries (the lecture prints every one)
    #[arg(long, default_value = "1")]
    pub every: NonZeroUsize,
}

/// What a search runs on: the lecture's linear classifier, and the images it is trained and
/// scored on (pixels as `--pixels` says).
pub struct Problem {
    pub train: Dataset<f32>,
    pub test: Dataset<f32>,
    pub format: Format,
    /// Scored by `--loss`, its weights as the classifier starts them.
    pub model: LinearClassifier<f32>,
}

/// The `--json` fields both searches report.
#[derive(Serialize)]
pub struct SearchReport {
    data_format: &'static str,
    loss: &'static str,
    pixels: &'static str,
    tries: usize,
    /// Every try is scored on the whole training set.
    batch: usize,
    best_loss: Option<f32>,
    test_accuracy: f64,
}

impl SearchArgs {
    /// Loads `--data` and builds the classifier for it.
    pub fn load(&self) -> Result<Problem, Failure> {
        let data = self.data.load::<f32>()?;
        let (mut train, mut test) = (data.train, data.test);
        self.pixels.apply(&mut train)?;
        self.pixels.apply(&mut test)?;
        let model = LinearClassifier::<f32>::builder(train.num_features(), train.num_classes())
            .loss(self.loss.into())
            .build()?;
        Ok(Problem {
            train,
            test,
            format: data.format,
            model,
        })
    }

    /// Whether try `i` (from 0) is one to print: every `--every`th, and the last.
    pub fn prints(&self, i: usize) -> bool {
        i % self.every == 0 || i + 1 == self.tries
    }

    /// The shared `--json` fields of a search of `problem` that ended at `best_loss`.
    pub fn report(
        &self,
        problem: &Problem,
        best_loss: Option<f32>,
        test_accuracy: f64,
    ) -> SearchReport {
        SearchReport {
            data_format: problem.format.name(),
            loss: self.loss.name(),
            pixels: self.pixels.name(),
            tries: self.tries,
            batch: problem.train.len(),
            best_loss,
            test_accuracy,
        }
    }
}

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
