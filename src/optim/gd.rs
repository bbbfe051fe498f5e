//! Approach 3 put to work: gradient descent. The analytic gradient says which way is
//! downhill; step that way, `w ← w − lr·∇L(w)`, with `L` the loss over the whole training set.
//! One step is one pass over the data. Any [`UpdateRule`] applies here as it does to
//! [`Sgd`](crate::optim::Sgd): momentum is the classic cure for the zig-zag of full-batch
//! descent in an ill-conditioned valley.

use crate::data::Batch;
use crate::error::Result;
use crate::model::Model;
use crate::optim::update::GradientUpdate;
use crate::optim::{Batching, Optimizer, OptimizerState, UpdateRule};
use crate::Scalar;

/// Full-batch gradient descent with an [`UpdateRule`] (plain by default).
#[derive(Debug, Clone)]
pub struct GradientDescent<T> {
    update: GradientUpdate<T>,
}

impl<T: Scalar> GradientDescent<T> {
    /// Gradient descent with step size `learning_rate` (finite, > 0) and the plain rule.
    pub fn new(learning_rate: T) -> Result<Self> {
        // No fused momentum: the gradient buffer is kept so `last_gradient` always shows it
        // (one full-batch step is expensive enough that the extra pass does not matter).
        Ok(GradientDescent {
            update: GradientUpdate::new(learning_rate, false)?,
        })
    }
    /// Uses `rule` to turn gradients into steps.
    pub fn rule(mut self, rule: UpdateRule) -> Self {
        self.update.set_rule(rule);
        self
    }
    /// L2 weight decay λ (finite, ≥ 0) added to the gradient as `λ·w`.
    pub fn weight_decay(mut self, weight_decay: T) -> Result<Self> {
        self.update.set_weight_decay(weight_decay)?;
        Ok(self)
    }
    /// Clips each gradient to global Euclidean norm at most `max_norm` (finite, > 0).
    pub fn clip_grad_norm(mut self, max_norm: T) -> Result<Self> {
        self.update.set_max_grad_norm(max_norm)?;
        Ok(self)
    }
    /// The step size.
    pub fn learning_rate(&self) -> T {
        self.update.learning_rate
    }
    /// The update rule.
    pub fn update_rule(&self) -> UpdateRule {
        self.update.rule
    }
    /// The gradient of the last step, after clipping and weight decay (empty before the
    /// first). For Nesterov it holds the look-ahead step `g + μ·v` instead.
    pub fn last_gradient(&self) -> &[T] {
        &self.update.grad
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
        self.update.step(model, batch)
    }
    fn state(&self) -> OptimizerState<T> {
        self.update.state()
    }
    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<()> {
        self.update.load_state(state)
    }
    fn learning_rate(&self) -> Option<f64> {
        Some(self.update.learning_rate.to_f64_lossless())
    }
    fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()> {
        self.update.set_learning_rate(learning_rate)
    }
}
