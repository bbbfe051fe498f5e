//! The linear classifier `scores = x·W + b`: the lecture's first model, and an [`Mlp`] with
//! no hidden layers — so it shares the MLP's kernels, losses and gradients rather than
//! repeating them.

use crate::data::{Batch, Dataset};
use crate::error::Result;
use crate::fast_path::FastPath;
use crate::loss::Loss;
use crate::matrix::{MatMut, MatRef};
use crate::model::{Classifier, Evaluation, Init, Mlp, MlpBuilder, Model, Params};
use crate::scalar::Scalar;

/// A linear classifier: one score per class, `x·W + b`, with `W` of `inputs × classes`.
///
/// ```
/// use downhill::model::{LinearClassifier, Params};
///
/// let model = LinearClassifier::<f64>::builder(784, 10).build()?;
/// assert_eq!(model.num_params(), 784 * 10 + 10);
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LinearClassifier<T>(Mlp<T>);

/// Configuration of a [`LinearClassifier`].
#[derive(Debug, Clone)]
pub struct LinearBuilder<T>(MlpBuilder<T>);

impl<T: Scalar> LinearBuilder<T> {
    /// The data loss (default softmax cross-entropy).
    pub fn loss(self, loss: Loss) -> Self {
        LinearBuilder(self.0.loss(loss))
    }
    /// L2 regularisation strength λ (default 0).
    pub fn l2(self, lambda: f64) -> Self {
        LinearBuilder(self.0.l2(lambda))
    }
    /// Weight initialisation (default: `Init::Normal(1e-4)`, the lecture's `randn * 0.0001`).
    pub fn init(self, init: Init) -> Self {
        LinearBuilder(self.0.init(init))
    }
    /// Seed for the initial weights (default 0).
    pub fn seed(self, seed: u64) -> Self {
        LinearBuilder(self.0.seed(seed))
    }
    /// Validates the configuration and draws the initial weights.
    pub fn build(self) -> Result<LinearClassifier<T>> {
        Ok(LinearClassifier(self.0.build()?))
    }
}

impl<T: Scalar> LinearClassifier<T> {
    /// Starts configuring a classifier of `inputs` features into `classes` classes.
    pub fn builder(inputs: usize, classes: usize) -> LinearBuilder<T> {
        LinearBuilder(
            Mlp::<T>::builder(inputs)
                .classes(classes)
                .init(Init::Normal(1e-4)),
        )
    }

    /// The weight matrix `W` (`inputs × classes`).
    pub fn weights(&self) -> MatRef<'_, T> {
        match self.0.weights(0) {
            Some(w) => w,
            None => unreachable!("an Mlp without hidden layers has exactly one layer"),
        }
    }

    /// The length of the parameter vector.
    pub fn num_params(&self) -> usize {
        self.0.num_params()
    }

    /// The MLP with no hidden layers this classifier is.
    pub fn as_mlp(&self) -> &Mlp<T> {
        &self.0
    }
}

impl<T: Scalar> Params<T> for LinearClassifier<T> {
    crate::forward_params!(T, 0);
}

impl<T: Scalar> Model<T> for LinearClassifier<T> {
    fn prepare(&mut self, data: &Dataset<T>) -> Result<()> {
        self.0.prepare(data)
    }
    fn loss(&mut self, batch: &Batch<'_, T>) -> Result<T> {
        self.0.loss(batch)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, T>, grad: &mut [T]) -> Result<T> {
        self.0.loss_and_grad(batch, grad)
    }
    fn evaluate(&mut self, data: &Dataset<T>) -> Result<Evaluation> {
        self.0.evaluate(data)
    }
    /// The MLP's fast path: a linear classifier is an `Mlp` with no hidden layers.
    fn fast_path(&mut self) -> Option<FastPath<'_, T>> {
        self.0.fast_path()
    }
}

impl<T: Scalar> Classifier<T> for LinearClassifier<T> {
    fn num_inputs(&self) -> usize {
        self.0.num_inputs()
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn scores(&mut self, x: MatRef<'_, T>, out: MatMut<'_, T>) -> Result<()> {
        self.0.scores(x, out)
    }
    fn data_loss(&self) -> Option<Loss> {
        self.0.data_loss()
    }
}
