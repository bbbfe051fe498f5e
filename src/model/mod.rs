//! Models: functions from features to class scores, with a loss and its gradient.
//!
//! The [`Model`] trait is what every optimizer drives. Its parameters live in **one flat
//! vector**, like the lecture's `W = [0.34, −1.11, 0.78, ...]` and `dW = [−2.5, 0.6, 0, ...]`:
//! that is what lets random search, local search, gradient descent, SGD and the gradient check
//! work on any model without knowing its layers.
//!
//! * [`LinearClassifier`] — `scores = x·W + b`, the lecture's first model.
//! * [`Mlp`] — `y' = σ(W2·σ(W1·x + b1) + b2)` and deeper: any number of hidden layers, each with
//!   its own width and [`Activation`].

mod activation;
mod blocked;
mod linear;
mod mlp;

pub use activation::{Activation, Init};
pub use linear::{LinearBuilder, LinearClassifier};
pub use mlp::{Mlp, MlpArchitecture, MlpBuilder};

use std::ops::Range;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::matrix::{MatMut, MatRef, Matrix};
use crate::{Batch, Scalar};

/// A trainable classifier over one flat parameter vector.
///
/// Implement it for your own model and every optimizer, the training loop and the gradient
/// check work with it (the trait is object-safe: optimizers take `&mut dyn Model<T>`).
pub trait Model<T: Scalar> {
    /// Features each input row must have.
    fn num_inputs(&self) -> usize;
    /// Number of classes (columns of the scores).
    fn num_classes(&self) -> usize;
    /// Length of the parameter vector.
    fn num_params(&self) -> usize {
        self.params().len()
    }
    /// All parameters, flat.
    fn params(&self) -> &[T];
    /// All parameters, flat and mutable: optimizers write here.
    fn params_mut(&mut self) -> &mut [T];
    /// The objective on `batch`: mean data loss plus regularisation.
    fn loss(&mut self, batch: &Batch<'_, T>) -> Result<T>;
    /// The same objective, with its gradient with respect to [`params`](Model::params) written
    /// into `grad` (`grad.len() == num_params()`; overwritten, not accumulated).
    fn loss_and_grad(&mut self, batch: &Batch<'_, T>, grad: &mut [T]) -> Result<T>;
    /// The objective, with `grad ← beta·grad + ∇L`: momentum SGD keeps its velocity in
    /// `grad` and saves a buffer and a pass over every parameter. The default computes the
    /// gradient into a temporary; override it when the model can do better (as [`Mlp`]
    /// does, by letting the products' `β` scale the old contents).
    fn loss_and_accumulate_grad(
        &mut self,
        batch: &Batch<'_, T>,
        grad: &mut [T],
        beta: T,
    ) -> Result<T> {
        let mut fresh = vec![T::zero(); grad.len()];
        let loss = self.loss_and_grad(batch, &mut fresh)?;
        for (g, f) in grad.iter_mut().zip(fresh) {
            *g = beta * *g + f;
        }
        Ok(loss)
    }
    /// Class scores for each row of `x` (`x.cols() == num_inputs()`), written into `out`
    /// (`x.rows() × num_classes()`).
    fn scores(&mut self, x: MatRef<'_, T>, out: MatMut<'_, T>) -> Result<()>;
    /// `params ← params − lr·step`: the last move of every gradient method. A step with a NaN
    /// or infinite element (or one that `lr` scales past the float range) is refused with [`Error::Diverged`] before anything changes, so a
    /// poisoned gradient never reaches the parameters. The default is
    /// one loop over the parameters; a model with worker threads can share it out (as
    /// [`Mlp`] does), since on a small network it is a tenth of a step's time.
    fn apply_step(&mut self, step: &[T], lr: T) -> Result<()> {
        if step.len() != self.num_params() {
            return Err(Error::shape(
                "Model::apply_step",
                self.num_params(),
                step.len(),
            ));
        }
        if let Some(bad) = crate::kernels::elementwise::first_non_finite(step, lr) {
            return Err(Error::non_finite_gradient(bad.to_f64_lossless()));
        }
        crate::kernels::elementwise::descend(self.params_mut(), step, lr);
        Ok(())
    }
    /// The parameter vector cut into named tensors, in order, covering it exactly.
    ///
    /// Gradient checks report per group, and checkpoints store one tensor per group. The
    /// default is a single group called `params`; [`Mlp`] names its tensors PyTorch-style
    /// (`layers.0.weight`, `layers.0.bias`, …).
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![ParamGroup::new("params", 0, vec![self.num_params()])]
    }
    /// Asks the model to run batches on `threads` threads. Models that do not parallelise
    /// ignore it (the default).
    fn set_threads(&mut self, threads: usize) -> Result<()> {
        let _ = threads;
        Ok(())
    }
    /// The data loss the model is trained on, if it is one of the crate's [`Loss`]es: the
    /// training loop then reports a validation loss computed from the same scores as the
    /// validation accuracy ([`evaluate`]). The default, `None`, means no validation loss.
    fn data_loss(&self) -> Option<Loss> {
        None
    }
}

/// A named, contiguous slice of a model's flat parameter vector, and the shape it has as a
/// row-major tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamGroup {
    /// The tensor's name, e.g. `layers.0.weight`.
    pub name: String,
    /// Index of its first element in [`Model::params`].
    pub offset: usize,
    /// Its shape, row-major; the product is its length.
    pub shape: Vec<usize>,
}

impl ParamGroup {
    /// A group called `name` starting at `offset` with `shape`.
    pub fn new(name: impl Into<String>, offset: usize, shape: Vec<usize>) -> Self {
        ParamGroup {
            name: name.into(),
            offset,
            shape,
        }
    }
    /// Number of parameters in the group.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the group holds no parameters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Its indices in [`Model::params`].
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// The index of the largest score in each row of `scores` (first one on ties).
pub fn argmax_rows<T: Scalar>(scores: MatRef<'_, T>) -> Vec<usize> {
    (0..scores.rows())
        .map(|r| {
            let mut best = 0;
            for c in 1..scores.cols() {
                if scores.get(r, c) > scores.get(r, best) {
                    best = c;
                }
            }
            best
        })
        .collect()
}

/// Fraction of `data`'s examples whose highest-scoring class is their label.
///
/// Evaluated in blocks of rows, so memory stays small whatever the size of `data`.
pub fn accuracy<T: Scalar>(model: &mut dyn Model<T>, data: &Dataset<T>) -> Result<f64> {
    Ok(evaluate_blocks(model, data, None)?.accuracy)
}

/// A model's accuracy and mean data loss on a dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean per-example data loss (no regularisation term: the number PyTorch reports as
    /// validation loss).
    pub loss: f64,
    /// Fraction of examples whose highest-scoring class is their label.
    pub accuracy: f64,
}

/// Accuracy and mean data `loss` of `model` on `data`, from one pass of scores (the loss is
/// computed from the same scores as the accuracy, so it costs almost nothing extra).
///
/// ```
/// use downhill::prelude::*;
/// use downhill::model::evaluate;
///
/// let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
/// let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
/// let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
/// let e = evaluate(&mut model, &data, Loss::SoftmaxCrossEntropy)?;
/// // Weights near zero: every class about equally likely, loss about ln 2.
/// assert!((e.loss - 2f64.ln()).abs() < 1e-3);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn evaluate<T: Scalar>(
    model: &mut dyn Model<T>,
    data: &Dataset<T>,
    loss: Loss,
) -> Result<Evaluation> {
    evaluate_blocks(model, data, Some(loss))
}

/// Scores `data` in blocks; counts correct predictions and, if `loss` is given, sums it.
fn evaluate_blocks<T: Scalar>(
    model: &mut dyn Model<T>,
    data: &Dataset<T>,
    loss: Option<Loss>,
) -> Result<Evaluation> {
    if data.is_empty() {
        return Err(Error::shape(
            "accuracy",
            "a non-empty dataset",
            "0 examples",
        ));
    }
    // A label the scores have no column for has no loss (accuracy just counts it wrong).
    if loss.is_some() && data.num_classes() > model.num_classes() {
        return Err(Error::shape(
            "evaluate (classes)",
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
    let mut correct = 0usize;
    let mut loss_sum = 0.0f64;
    for start in (0..data.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(data.len());
        let n = end - start;
        all.gather(start..end, x.as_mut_slice(), &mut labels)?;
        let xv = x
            .as_ref()
            .row_range(0, n)
            .ok_or_else(|| Error::shape("accuracy", rows, n))?;
        let sv = MatMut::new(s.as_mut_slice(), n, classes)?;
        model.scores(xv, sv)?;
        let pred = argmax_rows(s.as_ref().row_range(0, n).unwrap_or(s.as_ref()));
        correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
        if let Some(loss) = loss {
            for (row, &y) in s.as_slice().chunks_exact(classes).zip(&labels[..n]) {
                loss_sum += loss.row_loss(row, y).to_f64_lossless();
            }
        }
    }
    let n = data.len() as f64;
    Ok(Evaluation {
        loss: if loss.is_some() {
            loss_sum / n
        } else {
            f64::NAN
        },
        accuracy: correct as f64 / n,
    })
}
