//! The gradient method, shared: gradient descent and minibatch SGD are one algorithm run
//! on different batches, so they are one type, [`Descent`], with one set of setters.
//!
//! * [`GradientDescent`](crate::optim::GradientDescent) — `Descent<T, FullBatch>`: the gradient of the loss over the whole
//!   training set, `w ← w − lr·∇L(w)`; one step is one pass over the data.
//! * [`Sgd`](crate::optim::Sgd) — `Descent<T, MiniBatch>`: the same on small random minibatches, reshuffled
//!   every epoch.
//!
//! Either takes an [`UpdateRule`] (momentum, Nesterov, RMSProp, Adam, AdamW), L2 weight
//! decay and clipping by global norm; every step goes through the one guarded update
//! (`optim/update.rs`), which refuses a non-finite step and changes nothing.

use std::fmt::Debug;

use crate::error::{Error, Result};
use crate::model::Objective;
use crate::optim::gd_line_search::SearchedDescent;
use crate::optim::line_search::{Evaluations, LineSearch, LineSearchReport};
use crate::optim::update::GradientUpdate;
use crate::optim::{Batching, Optimizer, RuleState, StateDict, UpdateRule};
use crate::scalar::Scalar;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::FullBatch {}
    impl Sealed for super::MiniBatch {}
}

/// What data each step of a [`Descent`] sees: [`FullBatch`] or [`MiniBatch`] (sealed).
pub trait BatchPolicy: sealed::Sealed + Copy + Debug {
    /// The [`Optimizer::batching`] this policy asks for.
    fn batching(&self) -> Batching;
    /// The optimizer's [name](Optimizer::name): `gd` or `sgd`.
    fn name(&self) -> &'static str;
}

/// Every step sees the whole training set: gradient descent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FullBatch;

/// Every step sees a minibatch of this many examples: SGD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MiniBatch {
    pub(super) size: usize,
}

impl BatchPolicy for FullBatch {
    fn batching(&self) -> Batching {
        Batching::FullBatch
    }
    fn name(&self) -> &'static str {
        "gd"
    }
}

impl BatchPolicy for MiniBatch {
    fn batching(&self) -> Batching {
        Batching::MiniBatch(self.size)
    }
    fn name(&self) -> &'static str {
        "sgd"
    }
}

/// The gradient method with an [`UpdateRule`] (plain by default), on the batches `B` says.
/// Use it through its two names, [`GradientDescent`](crate::optim::GradientDescent) and
/// [`Sgd`](crate::optim::Sgd).
#[derive(Debug, Clone)]
pub struct Descent<T, B> {
    pub(super) update: GradientUpdate<T>,
    pub(super) batches: B,
    /// Set by [`line_search`](Descent::line_search): the search picks every step.
    pub(super) search: Option<Box<SearchedDescent<T>>>,
}

impl<T: Scalar, B: BatchPolicy> Descent<T, B> {
    /// Uses `rule` to turn gradients into steps (a different rule's state is dropped).
    pub fn rule(mut self, rule: UpdateRule) -> Self {
        self.update.set_rule(rule);
        self
    }
    /// Classical momentum with coefficient μ in `[0, 1)`; μ = 0 is the plain rule. Shorthand
    /// for `.rule(UpdateRule::momentum(μ)?)`.
    pub fn momentum(self, momentum: f64) -> Result<Self> {
        Ok(self.rule(UpdateRule::momentum(momentum)?))
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
    /// Whether every step keeps the whole gradient for [`last_gradient`](Self::last_gradient)
    /// (default `false`). A model may take part of a step itself, stepping parameters as
    /// it computes their gradient rather than writing the gradient for a pass over it
    /// afterwards (through its [fast path](crate::model::FastPath): an
    /// [`Mlp`](crate::model::Mlp) with a sparse first layer does, for `W₁`); with `true`
    /// the step is never offered, and the gradient is always written whole.
    pub fn keep_gradient(mut self, keep: bool) -> Self {
        self.update.keep_gradient = keep;
        self
    }
    /// The update rule.
    pub fn update_rule(&self) -> UpdateRule {
        self.update.rule
    }
    /// The L2 weight decay λ.
    pub fn weight_decay_value(&self) -> T {
        self.update.weight_decay
    }
    /// The clipping norm, if clipping.
    pub fn max_grad_norm(&self) -> Option<T> {
        self.update.max_grad_norm
    }
    /// The batches each step sees.
    pub fn batches(&self) -> B {
        self.batches
    }
    /// The rule's state: velocity, squared-gradient average or moment estimates (empty
    /// before the first step).
    pub fn rule_state(&self) -> &RuleState<T> {
        &self.update.state
    }
    /// The line search picking the steps, if [one was set](Descent::line_search).
    pub fn line_search_value(&self) -> Option<LineSearch> {
        self.search.as_ref().map(|s| s.search)
    }
    /// The last step's line search: the step size it accepted and what it cost (`None`
    /// without a line search, before the first step, and after a step at a point where the
    /// gradient was zero).
    pub fn last_search(&self) -> Option<LineSearchReport> {
        self.search.as_ref().and_then(|s| s.report)
    }
    /// The evaluations of the objective the line search's steps have made, in all (`None`
    /// without a line search: a fixed step evaluates once).
    pub fn search_evaluations(&self) -> Option<Evaluations> {
        self.search.as_ref().map(|s| s.evaluations)
    }
    /// The gradient of the last step, as the model computed it (before clipping and weight
    /// decay). `None` before the first step, and after a step the model took in part
    /// without writing the gradient of what it stepped (see
    /// [`keep_gradient`](Self::keep_gradient)).
    pub fn last_gradient(&self) -> Option<&[T]> {
        let grad = &self.update.grad;
        (self.update.grad_whole && !grad.is_empty()).then_some(&grad[..])
    }
}

impl<T: Scalar, B: BatchPolicy> Optimizer<T> for Descent<T, B> {
    fn name(&self) -> &'static str {
        self.batches.name()
    }
    fn batching(&self) -> Batching {
        self.batches.batching()
    }
    fn step(&mut self, objective: &mut dyn Objective<T>) -> Result<T> {
        match &mut self.search {
            Some(search) => search.step(&mut self.update, objective),
            None => self.update.step(objective),
        }
    }
    fn state(&self) -> StateDict<T> {
        let mut state = self.update.state();
        if let Some(search) = &self.search {
            search.save(&mut state);
        }
        state
    }
    fn load_state(&mut self, state: &StateDict<T>) -> Result<()> {
        let Some(search) = &mut self.search else {
            return self.update.load_state(state);
        };
        let (rest, saved) = search.split(state)?;
        self.update.load_state(&rest)?;
        search.apply(saved);
        Ok(())
    }
    /// The learning rate; `None` while a [line search](Descent::line_search) picks the steps.
    fn learning_rate(&self) -> Option<f64> {
        match self.search {
            Some(_) => None,
            None => Some(self.update.learning_rate.to_f64_lossless()),
        }
    }
    fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()> {
        if self.search.is_some() {
            return Err(Error::param(
                "learning_rate",
                learning_rate,
                "cannot be scheduled while a line search picks the steps",
            ));
        }
        self.update.set_learning_rate(learning_rate)
    }
}
