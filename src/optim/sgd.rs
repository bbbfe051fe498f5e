//! Minibatch stochastic gradient descent, with any [`UpdateRule`].
//!
//! The gradient over a random minibatch of 32–256 examples is a noisy but unbiased estimate
//! of the full gradient, and costs a fraction of it: many cheap noisy steps beat few exact
//! ones. With momentum `μ`, the step follows a running velocity instead of the raw gradient:
//! `v ← μ·v + ∇L`, `w ← w − lr·v`, which damps the zig-zag across ill-conditioned valleys and
//! keeps moving through flat stretches and saddle points. Nesterov, RMSProp, Adam and AdamW
//! plug in through [`Sgd::rule`]; L2 weight decay and clipping by global norm through
//! [`Sgd::weight_decay`] and [`Sgd::clip_grad_norm`].

use crate::data::Batch;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::update::GradientUpdate;
use crate::optim::{Batching, Optimizer, OptimizerState, UpdateRule};
use crate::Scalar;

/// Minibatch SGD with an [`UpdateRule`] (plain by default; [`Sgd::momentum`] for momentum).
#[derive(Debug, Clone)]
pub struct Sgd<T> {
    update: GradientUpdate<T>,
    batch_size: usize,
}

impl<T: Scalar> Sgd<T> {
    /// SGD with step size `learning_rate` (finite, > 0), batch size 128, the plain rule.
    pub fn new(learning_rate: T) -> Result<Self> {
        Ok(Sgd {
            update: GradientUpdate::new(learning_rate, true)?,
            batch_size: 128,
        })
    }
    /// Classical momentum with coefficient μ in `[0, 1)`; μ = 0 is plain SGD. Shorthand for
    /// `.rule(UpdateRule::momentum(μ)?)`.
    pub fn momentum(mut self, momentum: T) -> Result<Self> {
        if !(momentum >= T::zero() && momentum < T::one()) {
            return Err(Error::param("momentum", momentum, "must be in [0, 1)"));
        }
        let mu = momentum.to_f64_lossless();
        self.update.set_rule(if mu > 0.0 {
            UpdateRule::momentum(mu)?
        } else {
            UpdateRule::Plain
        });
        Ok(self)
    }
    /// Uses `rule` to turn gradients into steps.
    pub fn rule(mut self, rule: UpdateRule) -> Self {
        self.update.set_rule(rule);
        self
    }
    /// L2 weight decay λ (finite, ≥ 0): `λ·w` is added to every gradient, as PyTorch's
    /// `weight_decay` does (for AdamW's decoupled decay see [`UpdateRule::weight_decay`]).
    pub fn weight_decay(mut self, weight_decay: T) -> Result<Self> {
        self.update.set_weight_decay(weight_decay)?;
        Ok(self)
    }
    /// Clips each gradient to global Euclidean norm at most `max_norm` (finite, > 0) before
    /// the update, as PyTorch's `clip_grad_norm_`.
    pub fn clip_grad_norm(mut self, max_norm: T) -> Result<Self> {
        self.update.set_max_grad_norm(max_norm)?;
        Ok(self)
    }
    /// Sets the minibatch size (at least 1; 32–256 is typical).
    pub fn batch_size(mut self, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::param("batch_size", 0, "must be at least 1"));
        }
        self.batch_size = batch_size;
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
    /// The momentum coefficient of the momentum rules (0 for the others).
    pub fn momentum_coefficient(&self) -> T {
        match self.update.rule {
            UpdateRule::Momentum { mu } | UpdateRule::Nesterov { mu } => T::of(mu),
            _ => T::zero(),
        }
    }
    /// The velocity of the momentum rules (empty before the first step, and for the others).
    pub fn velocity(&self) -> &[T] {
        self.update.velocity()
    }
}

impl<T: Scalar> Optimizer<T> for Sgd<T> {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn batching(&self) -> Batching {
        Batching::MiniBatch(self.batch_size)
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
