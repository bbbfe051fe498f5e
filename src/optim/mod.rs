//! Optimizers: the road downhill, one approach per file.
//!
//! 1. [`RandomSearch`] (`random_search.rs`) — draw whole weight vectors at random, keep the
//!    best.
//! 2. [`LocalSearch`] (`local_search.rs`) — step from the best weights in a random
//!    direction, keep it if better.
//! 3. [`GradientDescent`] (`gd.rs`) — follow the slope: `w ← w − lr·∇L` on the whole
//!    training set.
//! 4. [`Sgd`] (`sgd.rs`) — the same on small random minibatches.
//!
//! And the answer to the lecture's question *what should the step size be?*
//! ([guide, chapter 10](crate::guide::ch10_the_step_size_answered)):
//!
//! 5. [`LineSearch`] (`line_search.rs`) — try steps along a direction until one meets the
//!    Armijo (and strong Wolfe) conditions; [`GradientDescent::line_search`](Descent::line_search) picks every
//!    step of gradient descent that way (`gd_line_search.rs`).
//! 6. [`Lbfgs`] (`lbfgs.rs`) — L-BFGS: the Taylor expansion's second-order term, learnt from
//!    the last steps' gradients, for the direction and the step size at once.
//!
//! The two gradient methods are one algorithm on different batches, [`Descent`]
//! (`descent.rs`), with one guarded update (`update.rs`): beyond the lecture it takes an
//! [`UpdateRule`] (`rule.rs`: momentum, Nesterov, RMSProp, Adam, AdamW), L2 weight decay
//! and gradient clipping, and a [`Schedule`] (`schedule.rs`) can change its learning rate
//! from epoch to epoch.
//!
//! All of them implement [`Optimizer`], which is object-safe: a program can pick one from a
//! flag and hand `&mut dyn Optimizer<T>` to the [`Trainer`](crate::Trainer). An optimizer
//! sees only an [`Objective`] — parameters, a loss and its gradient — so it minimises a
//! model on a batch and a function of your own alike. Hyper-parameters are validated when
//! an optimizer is built: a NaN, zero or negative learning rate is an
//! [`Error`], not a silent NaN three epochs later.
//!
//! ```
//! use downhill::optim::{Optimizer, Sgd};
//!
//! let sgd = Sgd::<f32>::new(0.05)?.momentum(0.9)?.batch_size(128)?;
//! let opt: Box<dyn Optimizer<f32>> = Box::new(sgd);
//! assert_eq!(opt.name(), "sgd");
//! assert!(Sgd::<f32>::new(-0.1).is_err());
//! # Ok::<(), downhill::Error>(())
//! ```

mod descent;
mod gd;
mod gd_line_search;
mod lbfgs;
mod line_search;
mod local_search;
mod random_search;
mod rule;
mod schedule;
mod search;
mod sgd;
mod update;

pub use descent::{BatchPolicy, Descent, FullBatch, MiniBatch};
pub use gd::GradientDescent;
pub use lbfgs::{Convergence, Lbfgs};
pub use line_search::{Evaluations, LineSearch, LineSearchReport};
pub use local_search::LocalSearch;
pub use random_search::RandomSearch;
pub use rule::{RuleState, UpdateRule};
pub use schedule::Schedule;
pub use search::Search;
pub use sgd::Sgd;

use crate::error::{Error, Result};
use crate::model::Objective;
use crate::scalar::Scalar;
use crate::validate::same_size;

/// Swaps `objective`'s parameters with `other` (of the same length): the vectors
/// themselves through its fast path (no copy), element by element otherwise. Afterwards the
/// objective holds what `other` held and `other` the old parameters.
pub(crate) fn swap_params<T: Scalar>(
    objective: &mut dyn Objective<T>,
    other: &mut Vec<T>,
) -> Result<()> {
    if let Some(mut fast) = objective.fast_path() {
        return fast.open().swap_params(other);
    }
    let params = objective.params_mut();
    same_size("swap_params", "parameter count", params.len(), other.len())?;
    params.swap_with_slice(other);
    Ok(())
}

/// What each step of an optimizer wants to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// The whole training set every step (gradient descent, the search methods); one step is
    /// one epoch.
    FullBatch,
    /// Minibatches of this many examples, reshuffled every epoch.
    MiniBatch(usize),
}

/// One way of moving an objective's parameters downhill.
pub trait Optimizer<T: Scalar> {
    /// A short name (`"sgd"`, `"gd"`, `"random"`, `"local"`).
    fn name(&self) -> &'static str;
    /// The data each step wants (the training loop batches accordingly). The default is
    /// the whole training set every step, as gradient descent, L-BFGS and the searches want;
    /// minibatch SGD overrides it.
    fn batching(&self) -> Batching {
        Batching::FullBatch
    }
    /// One update of `objective`'s parameters. Returns the loss it observed: for the
    /// gradient methods the loss before the update, for the search methods the loss of the
    /// (best) parameters the objective holds after it. A step that fails — a non-finite
    /// loss, gradient or update is [`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged)
    /// — leaves the parameters and the optimizer's state as they were.
    fn step(&mut self, objective: &mut dyn Objective<T>) -> Result<T>;
    /// What the optimizer carries from one step to the next (velocity, moment estimates,
    /// step count, best loss so far), so that a run can be saved and resumed exactly.
    /// The default, for stateless optimizers, is an empty [`StateDict`].
    fn state(&self) -> StateDict<T> {
        StateDict::default()
    }
    /// Restores what [`state`](Optimizer::state) returned. The default accepts only an
    /// empty state: an optimizer that keeps buffers must override both methods.
    fn load_state(&mut self, state: &StateDict<T>) -> Result<()> {
        match state
            .buffers
            .first()
            .map(|b| &b.0)
            .or(state.scalars.first().map(|s| &s.0))
        {
            None => Ok(()),
            Some(name) => Err(Error::optimizer_state(
                self.name(),
                format!("{name:?} is not something this optimizer keeps"),
            )),
        }
    }
    /// The current learning rate, for optimizers that have one (the gradient methods);
    /// `None` for the search methods, whose step scale is not a learning rate.
    fn learning_rate(&self) -> Option<f64> {
        None
    }
    /// Sets the learning rate (finite, ≥ 0: a schedule may anneal to 0) — what a
    /// [`Schedule`] does between epochs. The default, for optimizers without one, is an
    /// error.
    fn set_learning_rate(&mut self, learning_rate: f64) -> Result<()> {
        Err(Error::param(
            "learning_rate",
            learning_rate,
            "this optimizer has no learning rate to schedule",
        ))
    }
}

/// What an optimizer (or an [observer](crate::Observer)) carries from one step or epoch to
/// the next, in the form checkpoints store — PyTorch's `state_dict`: named buffers (each as
/// long as the parameter vector) and named scalars. Hyper-parameters are not part of it;
/// they belong to the configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateDict<T> {
    /// Steps taken so far.
    pub steps: u64,
    /// Named per-parameter buffers, e.g. `("velocity", v)`.
    pub buffers: Vec<(String, Vec<T>)>,
    /// Named scalars, e.g. `("best_loss", 0.31)`.
    pub scalars: Vec<(String, f64)>,
}

impl<T> StateDict<T> {
    /// The buffer called `name`, if there is one.
    pub fn buffer(&self, name: &str) -> Option<&[T]> {
        self.buffers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }
    /// The scalar called `name`, if there is one.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.scalars
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }
}
