//! Models: losses over data with a flat parameter vector, and the classifiers among them.
//!
//! Four traits, from the most general down:
//!
//! * [`Params`] — a flat parameter vector (and its named tensors): what optimizers move
//!   and checkpoints save.
//! * [`Objective`] — a differentiable function of the parameters, no data: what optimizers
//!   and the gradient check see ([`objective`](self::Objective) explains why that is
//!   enough).
//! * [`Model`] — a loss over batches of examples (a [`Dataset`] by default, or your own
//!   [`Examples`]): what the training loop batches over. Bound to one batch, a model is an
//!   objective ([`Model::on`]).
//! * [`Classifier`] — a model of a [`Dataset`] that scores classes: what accuracy and the
//!   validation report need.
//!
//! The crate's own models:
//!
//! * [`LinearClassifier`] — `scores = x·W + b`, the lecture's first model.
//! * [`Mlp`] — `y' = σ(W2·σ(W1·x + b1) + b2)` and deeper: any number of hidden layers, each
//!   with its own width and [`Activation`]. `backprop.rs` holds its forward and backward
//!   pass written plainly, one layer beside the other; `blocked/` the same maths walked in
//!   row blocks over the model's threads, which is what training runs.

pub mod backprop;
mod blocked;
mod dropout;
mod init;
mod layer;
mod linear;
mod mlp;
mod objective;

pub use crate::activation::Activation;
pub use crate::fast_path::FastPath;
pub use init::Init;
pub use linear::{LinearBuilder, LinearClassifier};
pub use mlp::{Mlp, MlpArchitecture, MlpBuilder, SparseInput, SPARSE_CROSSOVER};
pub use objective::{FnObjective, Layout, Objective, OnBatch, ParamGroup, Params};

pub(crate) use objective::check_groups;

use crate::data::{Batch, Dataset, Examples};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::matrix::{MatMut, MatRef, Matrix};
use crate::metrics::ConfusionMatrix;
use crate::scalar::Scalar;
use crate::validate::{not_empty, same_size};

/// A loss over examples of `D` (a [`Dataset`] unless said otherwise), with its gradient.
///
/// Implement it for your own model and every optimizer and the training loop work with it
/// (the trait is object-safe: the [`Trainer`](crate::Trainer) takes `&mut dyn Model<T, D>`).
/// A regression over your own points is a `Model<f64, Points>` with `Points:`
/// [`Examples`]; a classifier over a dataset implements [`Classifier`] too.
pub trait Model<T: Scalar, D: Examples + ?Sized = Dataset<T>>: Params<T> {
    /// The objective on `batch`: mean data loss plus regularisation.
    fn loss(&mut self, batch: &Batch<'_, T, D>) -> Result<T>;
    /// The same objective, with its gradient with respect to
    /// [`params`](Params::params) written into `grad` (`grad.len() == params().len()`;
    /// overwritten, not accumulated).
    fn loss_and_grad(&mut self, batch: &Batch<'_, T, D>, grad: &mut [T]) -> Result<T>;
    /// What the training loop reports on a validation set. The default is the objective on
    /// the whole set, without an accuracy; a classifier reports its accuracy and data loss
    /// (see [`evaluate_classifier`]).
    fn evaluate(&mut self, data: &D) -> Result<Evaluation> {
        let loss = self.loss(&Batch::all(data))?;
        Ok(Evaluation {
            loss: Some(loss.to_f64_lossless()),
            accuracy: None,
            confusion: None,
        })
    }
    /// Readies the model for training on `data`; the [`Trainer`](crate::Trainer) calls it
    /// once, before the first epoch and outside the epochs' timing. A model that reads the
    /// data in a form of its own builds it here rather than in its first step: an
    /// [`Mlp`] with a sparse first layer builds the dataset's nonzero
    /// blocks. The default does nothing.
    fn prepare(&mut self, data: &D) -> Result<()> {
        let _ = data;
        Ok(())
    }
    /// What the crate's own models lend an optimizer to take its steps faster: see
    /// [`FastPath`]. The default, `None`, is always correct. A wrapper around one of the
    /// crate's models forwards the inner model's only if its `loss_and_grad` calls the inner
    /// one once and returns its gradient unchanged (the [`FastPath`] docs show one).
    fn fast_path(&mut self) -> Option<FastPath<'_, T>> {
        None
    }
    /// This model on `batch`, as an [`Objective`]: what an optimizer's step takes.
    ///
    /// ```
    /// use downhill::prelude::*;
    ///
    /// let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
    /// let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
    /// let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
    /// let mut sgd = Sgd::new(0.5)?;
    /// let all = data.all();
    /// let before = sgd.step(&mut model.on(&all))?;
    /// assert!(model.loss(&all)? < before);
    /// # Ok::<(), downhill::Error>(())
    /// ```
    fn on<'a, 'b>(&'a mut self, batch: &'a Batch<'b, T, D>) -> OnBatch<'a, 'b, T, D>
    where
        Self: Sized,
    {
        OnBatch::new(self, batch)
    }
}

/// A model of a [`Dataset`] that gives each example a score per class: what accuracy and
/// the validation report need, on top of a loss.
pub trait Classifier<T: Scalar>: Model<T> {
    /// Features each input row must have.
    fn num_inputs(&self) -> usize;
    /// Number of classes (columns of the scores).
    fn num_classes(&self) -> usize;
    /// Class scores for each row of `x` (`x.cols() == num_inputs()`), written into `out`
    /// (`x.rows() × num_classes()`).
    fn scores(&mut self, x: MatRef<'_, T>, out: MatMut<'_, T>) -> Result<()>;
    /// The data loss the model is trained on, if it is one of the crate's [`Loss`]es: the
    /// validation report then computes it from the same scores as the accuracy.
    fn data_loss(&self) -> Option<Loss> {
        None
    }
}

/// The index of the largest score in each row of `scores` (first one on ties).
pub fn argmax_rows<T: Scalar>(scores: MatRef<'_, T>) -> Vec<usize> {
    (0..scores.rows())
        .map(|r| argmax((0..scores.cols()).filter_map(|c| scores.get(r, c))))
        .collect()
}

/// The index of the first largest of `scores` (0 if there are none; a NaN is never larger):
/// one row of [`argmax_rows`].
pub(crate) fn argmax<T: Scalar>(scores: impl IntoIterator<Item = T>) -> usize {
    let mut scores = scores.into_iter().enumerate();
    let Some((_, mut top)) = scores.next() else {
        return 0;
    };
    let mut best = 0;
    for (c, v) in scores {
        if v > top {
            (best, top) = (c, v);
        }
    }
    best
}

/// Fraction of `data`'s examples whose highest-scoring class is their label.
///
/// Evaluated in blocks of rows, so memory stays small whatever the size of `data`.
pub fn accuracy<T: Scalar>(model: &mut dyn Classifier<T>, data: &Dataset<T>) -> Result<f64> {
    evaluate_classifier(model, data, None)?
        .accuracy
        .ok_or_else(|| Error::param("dataset", "empty", "has no examples to score"))
}

/// The confusion matrix of `model` on `data`: each example counted by its label (the row)
/// and the class the model scores highest (the column). It comes from the model's own
/// [`evaluate`](Model::evaluate) when that counts one (an [`Mlp`] does, in the pass that
/// gives its accuracy), else from the scores ([`evaluate_classifier`]). The matrix has a
/// row and a column for every class of the model and of the data.
///
/// ```
/// use downhill::prelude::*;
///
/// let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0], 3, 2)?;
/// let data = Dataset::from_matrix(x, vec![1, 0, 0], 2)?;
/// let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
/// let m = confusion_matrix(&mut model, &data)?;
/// assert_eq!(m.total(), 3);
/// assert_eq!(m.accuracy(), Some(accuracy(&mut model, &data)?));
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn confusion_matrix<T: Scalar>(
    model: &mut dyn Classifier<T>,
    data: &Dataset<T>,
) -> Result<ConfusionMatrix> {
    if let Ok(Evaluation {
        confusion: Some(m), ..
    }) = model.evaluate(data)
    {
        return Ok(m);
    }
    evaluate_classifier(model, data, None)?
        .confusion
        .ok_or_else(|| Error::param("dataset", "empty", "has no examples to score"))
}

/// What a model scored on a dataset.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Evaluation {
    /// The mean loss: for a classifier the data loss per example (no regularisation term:
    /// the number PyTorch reports as validation loss), otherwise the objective.
    pub loss: Option<f64>,
    /// Fraction of examples whose highest-scoring class is their label (classifiers only).
    pub accuracy: Option<f64>,
    /// Every example counted by its label and the class scored highest (classifiers only):
    /// where the accuracy comes from, class by class. Its accuracy is
    /// [`accuracy`](Evaluation::accuracy).
    pub confusion: Option<ConfusionMatrix>,
}

/// Accuracy, the confusion matrix and, with `loss`, the mean data loss of `model` on `data`,
/// from one pass of scores (the loss and the matrix come from the same scores as the
/// accuracy, so they cost almost nothing extra).
///
/// ```
/// use downhill::prelude::*;
/// use downhill::model::evaluate_classifier;
///
/// let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
/// let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
/// let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
/// let e = evaluate_classifier(&mut model, &data, Some(Loss::SoftmaxCrossEntropy))?;
/// // Weights near zero: every class about equally likely, loss about ln 2.
/// assert!((e.loss.unwrap() - 2f64.ln()).abs() < 1e-3);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn evaluate_classifier<T: Scalar>(
    model: &mut dyn Classifier<T>,
    data: &Dataset<T>,
    loss: Option<Loss>,
) -> Result<Evaluation> {
    not_empty("dataset", data.len())?;
    same_size(
        "evaluate_classifier",
        "features per example",
        model.num_inputs(),
        data.num_features(),
    )?;
    // A label the scores have no column for has no loss (accuracy just counts it wrong).
    if loss.is_some() && data.num_classes() > model.num_classes() {
        return Err(Error::shape(
            "evaluate_classifier",
            "classes",
            model.num_classes(),
            data.num_classes(),
        ));
    }
    const BLOCK: usize = 512;
    let rows = BLOCK.min(data.len());
    let classes = model.num_classes();
    let mut x = Matrix::zeros(rows, data.num_features())?;
    let mut s = Matrix::zeros(rows, classes)?;
    let mut labels = vec![0; rows];
    let all = data.all();
    let mut confusion = ConfusionMatrix::new(classes.max(data.num_classes()))?;
    let mut loss_sum = 0.0f64;
    for start in (0..data.len()).step_by(BLOCK) {
        let n = (start + BLOCK).min(data.len()) - start;
        all.gather(start..start + n, x.as_mut_slice(), &mut labels)?;
        let xv = MatRef::new(x.as_slice(), n, data.num_features())?;
        model.scores(xv, MatMut::new(s.as_mut_slice(), n, classes)?)?;
        let sv = MatRef::new(s.as_slice(), n, classes)?;
        let pred = argmax_rows(sv);
        confusion.add_pairs(&labels[..n], &pred);
        if let Some(loss) = loss {
            for (row, &y) in s.as_slice().chunks_exact(classes).zip(&labels[..n]) {
                loss_sum += loss.loss_of(row, y).to_f64_lossless();
            }
        }
    }
    let n = data.len() as f64;
    Ok(Evaluation {
        loss: loss.map(|_| loss_sum / n),
        accuracy: Some(confusion.correct() as f64 / n),
        confusion: Some(confusion),
    })
}
