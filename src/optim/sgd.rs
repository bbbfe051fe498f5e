//! Minibatch stochastic gradient descent, with optional classical momentum.
//!
//! The gradient over a random minibatch of 32–256 examples is a noisy but unbiased estimate
//! of the full gradient, and costs a fraction of it: many cheap noisy steps beat few exact
//! ones. With momentum `μ`, the step follows a running velocity instead of the raw gradient:
//! `v ← μ·v + ∇L`, `w ← w − lr·v`, which damps the zig-zag across ill-conditioned valleys and
//! keeps moving through flat stretches and saddle points.

use crate::data::Batch;
use crate::error::{positive, Error, Result};
use crate::model::Model;
use crate::optim::{ensure_len, Batching, Optimizer, OptimizerState};
use crate::Scalar;

/// Minibatch SGD (with momentum when `momentum > 0`).
#[derive(Debug, Clone)]
pub struct Sgd<T> {
    learning_rate: T,
    momentum: T,
    batch_size: usize,
    grad: Vec<T>,
    velocity: Vec<T>,
    steps: u64,
}

impl<T: Scalar> Sgd<T> {
    /// SGD with step size `learning_rate` (finite, > 0), batch size 128, no momentum.
    pub fn new(learning_rate: T) -> Result<Self> {
        Ok(Sgd {
            learning_rate: positive("learning_rate", learning_rate)?,
            momentum: T::zero(),
            batch_size: 128,
            grad: Vec::new(),
            velocity: Vec::new(),
            steps: 0,
        })
    }
    /// Sets the momentum coefficient μ, in `[0, 1)`.
    pub fn momentum(mut self, momentum: T) -> Result<Self> {
        if !(momentum >= T::zero() && momentum < T::one()) {
            return Err(Error::param("momentum", momentum, "must be in [0, 1)"));
        }
        self.momentum = momentum;
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
        self.learning_rate
    }
    /// The momentum coefficient.
    pub fn momentum_coefficient(&self) -> T {
        self.momentum
    }
    /// The velocity (empty before the first step, and when momentum is 0).
    pub fn velocity(&self) -> &[T] {
        &self.velocity
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
        let n = model.num_params();
        let (lr, mu) = (self.learning_rate, self.momentum);
        // With momentum the model adds the gradient straight into the velocity
        // (v ← μ·v + ∇L): one buffer, and no pass of its own over the parameters.
        let (loss, step) = if mu > T::zero() {
            ensure_len(&mut self.velocity, n);
            (
                model.loss_and_accumulate_grad(batch, &mut self.velocity, mu)?,
                &self.velocity,
            )
        } else {
            ensure_len(&mut self.grad, n);
            (model.loss_and_grad(batch, &mut self.grad)?, &self.grad)
        };
        if !loss.is_finite() {
            // Leave the parameters where the bad loss was observed; the trainer reports it.
            return Ok(loss);
        }
        model.apply_step(step, lr)?;
        self.steps += 1;
        Ok(loss)
    }
    fn state(&self) -> OptimizerState<T> {
        let mut buffers = Vec::new();
        if !self.velocity.is_empty() {
            buffers.push(("velocity".to_string(), self.velocity.clone()));
        }
        OptimizerState {
            steps: self.steps,
            buffers,
            scalars: Vec::new(),
        }
    }
    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<()> {
        for (name, _) in &state.buffers {
            if name != "velocity" {
                return Err(Error::param(
                    "optimizer state",
                    name,
                    "is not a buffer sgd keeps (it keeps \"velocity\")",
                ));
            }
        }
        if let Some((name, _)) = state.scalars.first() {
            return Err(Error::param(
                "optimizer state",
                name,
                "is not a scalar sgd keeps",
            ));
        }
        self.velocity = state
            .buffer("velocity")
            .map(<[T]>::to_vec)
            .unwrap_or_default();
        self.steps = state.steps;
        Ok(())
    }
}
