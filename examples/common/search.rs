//! What the lecture's linear classifier shares across `random_search`, `local_search` and
//! `linear_sgd`: the data, the loss it is scored by and the pixel values it sees, as flags,
//! and `--plot DIR`, its templates (the columns of `W`) drawn as images.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use downhill::data::{Dataset, FeatureTransform, ImageShape};
use downhill::loss::Loss;
use downhill::prelude::LinearClassifier;
use downhill::Scalar;
use serde::Serialize;

use super::cli::Failure;
use super::data::{DataArgs, Format};
use super::pictures::{self, Palette};

/// The flags of every example that trains the lecture's linear classifier: the data, what
/// scores its weights, what it sees, and where its templates go.
#[derive(clap::Args, Debug)]
pub struct LinearArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The loss a try is scored by
    #[arg(long, value_enum, default_value_t = LossArg::Svm)]
    pub loss: LossArg,
    /// The pixel values the classifier sees
    #[arg(long, value_enum, default_value_t = Pixels::Raw)]
    pub pixels: Pixels,
    /// Write EXAMPLE_templates.svg into this directory: the columns of the learned W, one
    /// 28×28 (or 32×32 colour) image per class
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

/// The flags both searches take: the linear classifier's, how many tries, and how often to
/// print.
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub linear: LinearArgs,
    /// Tries: weight vectors drawn (random search) or steps taken (local search)
    #[arg(long, default_value_t = 1000)]
    pub tries: usize,
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

impl LinearArgs {
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

    /// With `--plot DIR`, writes `DIR/{example}_templates.svg`: the columns of the
    /// classifier's `W`, one image per class, captioned with the class, under `title`.
    pub fn templates(&self, problem: &Problem, example: &str, title: &str) -> Result<(), Failure> {
        let Some(dir) = &self.plot else {
            return Ok(());
        };
        let w = problem.model.weights();
        let values: Vec<f64> = (0..w.rows())
            .flat_map(|i| (0..w.cols()).map(move |j| (i, j)))
            .map(|(i, j)| w.get(i, j).map_or(0.0, f64::from))
            .collect();
        let name = format!("{example}_templates.svg");
        let path = write_templates(dir, &name, title, &values, w.cols(), None)?;
        println!("wrote {}", path.display());
        Ok(())
    }
}

/// Writes `dir/name`: the columns of a weight matrix `w` (`inputs × outputs`, row-major) as
/// images — every column, captioned by class, or with `pick` the `pick` columns of largest
/// norm (an MLP's first-layer units).
pub fn write_templates(
    dir: &Path,
    name: &str,
    title: &str,
    w: &[f64],
    outputs: usize,
    pick: Option<usize>,
) -> Result<PathBuf, Failure> {
    let inputs = w.len() / outputs.max(1);
    let shape = ImageShape::square(inputs).ok_or_else(|| {
        Failure::Input(format!(
            "--plot: {inputs} inputs are not a square image (grey n×n or colour 3×n×n)"
        ))
    })?;
    let names = pictures::class_names(outputs, shape.channels == 3);
    let tiles = pictures::weight_tiles(w, outputs, pick, &names);
    let scale = if shape.width <= 28 { 4 } else { 3 };
    pictures::tiles(dir, name, title, shape, &tiles, 10, scale, Palette::Weights)
        .map_err(Failure::Input)
}

impl SearchArgs {
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
            loss: self.linear.loss.name(),
            pixels: self.linear.pixels.name(),
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
