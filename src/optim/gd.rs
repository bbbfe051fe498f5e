//! Approach 3 put to work: gradient descent. The analytic gradient says which way is
//! downhill; step that way, `w ← w − lr·∇L(w)`, with `L` the loss over the whole training set.
//! One step is one pass over the data.

use crate::data::Batch;
use crate::error::{positive, Result};
use crate::model::Model;
use crate::optim::{ensure_len, Batching, Optimizer};
use crate::Scalar;

/// Full-batch gradient descent.
#[derive(Debug, Clone)]
pub struct GradientDescent<T> {
    learning_rate: T,
    grad: Vec<T>,
}

impl<T: Scalar> GradientDescent<T> {
    /// Gradient descent with step size `learning_rate` (finite, > 0).
    pub fn new(learning_rate: T) -> Result<Self> {
        Ok(GradientDescent {
            learning_rate: positive("learning_rate", learning_rate)?,
            grad: Vec::new(),
        })
    }
    /// The step size.
    pub fn learning_rate(&self) -> T {
        self.learning_rate
    }
    /// The gradient of the last step (empty before the first).
    pub fn last_gradient(&self) -> &[T] {
        &self.grad
    }
}

impl<T: Scalar> Optimizer<T> for GradientDescent<T> {
    fn name(&self) -> &'static str {
        "gd"
    }
    fn batching(&self) -> Batching {
        Batching::FullBatch
    }
    fn step(&mut self, model: &mut dyn Model<T>, batch: &Batch<'_, T>) -> Result<T> {
        ensure_len(&mut self.grad, model.num_params());
        let loss = model.loss_and_grad(batch, &mut self.grad)?;
        if !loss.is_finite() {
            // Leave the parameters where the bad loss was observed; the trainer reports it.
            return Ok(loss);
        }
        model.apply_step(&self.grad, self.learning_rate)?;
        Ok(loss)
    }
}
