//! Optimizers: the road downhill, one approach per file.
//!
//! 1. [`RandomSearch`] — draw whole weight vectors at random, keep the best.
//! 2. [`LocalSearch`] — step from the best weights in a random direction, keep it if better.
//! 3. [`GradientDescent`] — follow the slope: `w ← w − lr·∇L` on the whole training set.
//! 4. [`Sgd`] — the same on small random minibatches, optionally with momentum.
//!
//! Beyond the lecture, both gradient methods take an [`UpdateRule`] — momentum, Nesterov,
//! RMSProp, Adam, AdamW — plus L2 weight decay and gradient clipping, and a
//! [`Schedule`] can change their learning rate from epoch to epoch.
//!
//! All four implement [`Optimizer`], which is object-safe: a program can pick one from a flag
//! and hand `&mut dyn Optimizer<T>` to the [`Trainer`](crate::Trainer). Hyper-parameters are
//! validated when an optimizer is built — a NaN, zero or negative learning rate is an
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

mod gd;
mod local_search;
mod random_search;
mod rule;
mod schedule;
mod sgd;
mod update;

pub use gd::GradientDescent;
pub use local_search::LocalSearch;
pub use random_search::RandomSearch;
pub use rule::UpdateRule;
pub use schedule::Schedule;
pub use sgd::Sgd;

use crate::data::Batch;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::Scalar;

/// What each step of an optimizer wants to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// The whole training set every step (gradient descent, the search methods); one step is
    /// one epoch.
    FullBatch,
    /// Minibatches of this many examples, reshuffled every epoch.
    MiniBatch(usize),
}

/// One way of moving a model's parameters downhill.
pub trait Optimizer<T: Scalar> {
    /// A short name (`"sgd"`, `"gd"`, `"random"`, `"local"`).
    fn name(&self) -> &'static str;
    /// The data each step wants.
    fn batching(&self) -> Batching;
    /// One update of `model`'s parameters using `batch`. Returns the loss it observed: for
    /// the gradient methods the loss before the update, for the search methods the loss of
    /// the (best) parameters the model holds after it.
    fn step(&mut self, model: &mut dyn Model<T>, batch: &Batch<'_, T>) -> Result<T>;
    /// What the optimizer carries from one step to the next (velocity, moment estimates,
    /// step count, best loss so far), so that a run can be saved and resumed exactly.
    /// The default, for stateless optimizers, is [`OptimizerState::default`].
    fn state(&self) -> OptimizerState<T> {
        OptimizerState::default()
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
    /// Restores what [`state`](Optimizer::state) returned. The default accepts only an
    /// empty state: an optimizer that keeps buffers must override both methods.
    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<()> {
        match state
            .buffers
            .first()
            .map(|b| &b.0)
            .or(state.scalars.first().map(|s| &s.0))
        {
            None => Ok(()),
            Some(name) => Err(Error::param(
                "optimizer state",
                name,
                "is not something this optimizer keeps",
            )),
        }
    }
}

/// An optimizer's state between steps: named buffers (each as long as the parameter vector)
/// and named scalars. Hyper-parameters are not part of it; they belong to the configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimizerState<T> {
    /// Steps taken so far.
    pub steps: u64,
    /// Named per-parameter buffers, e.g. `("velocity", v)`.
    pub buffers: Vec<(String, Vec<T>)>,
    /// Named scalars, e.g. `("best_loss", 0.31)`.
    pub scalars: Vec<(String, f64)>,
}

impl<T> OptimizerState<T> {
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

/// The scalar `name` of a saved search state, as `T` (absent: `None`).
/// What both searches carry from one try to the next: the tries made, the best weights, and
/// the best and last losses.
struct SearchState<T> {
    tries: usize,
    best: Vec<T>,
    best_loss: Option<T>,
    last_loss: Option<T>,
}

impl<T: Scalar> SearchState<T> {
    /// The state as an [`OptimizerState`] (the best weights as buffer `best`).
    fn save(
        tries: usize,
        best: &[T],
        best_loss: Option<T>,
        last_loss: Option<T>,
    ) -> OptimizerState<T> {
        let mut state = OptimizerState {
            steps: tries as u64,
            ..OptimizerState::default()
        };
        if !best.is_empty() {
            state.buffers.push(("best".to_string(), best.to_vec()));
        }
        for (name, loss) in [("best_loss", best_loss), ("last_loss", last_loss)] {
            if let Some(l) = loss {
                state.scalars.push((name.to_string(), l.to_f64_lossless()));
            }
        }
        state
    }
    /// Reads it back, after checking `state` holds nothing but it and `extra_scalars`.
    fn load(state: &OptimizerState<T>, who: &'static str, extra_scalars: &[&str]) -> Result<Self> {
        let mut scalars = vec!["best_loss", "last_loss"];
        scalars.extend_from_slice(extra_scalars);
        only_known(state, who, &["best"], &scalars)?;
        Ok(SearchState {
            tries: usize::try_from(state.steps).unwrap_or(usize::MAX),
            best: state.buffer("best").map(<[T]>::to_vec).unwrap_or_default(),
            best_loss: saved_loss(state, "best_loss"),
            last_loss: saved_loss(state, "last_loss"),
        })
    }
}

fn saved_loss<T: Scalar>(state: &OptimizerState<T>, name: &str) -> Option<T> {
    state.scalar(name).map(T::of)
}

/// Checks that a saved state holds only the buffers and scalars an optimizer keeps.
fn only_known<T>(
    state: &OptimizerState<T>,
    who: &'static str,
    buffers: &[&str],
    scalars: &[&str],
) -> Result<()> {
    for (name, _) in &state.buffers {
        if !buffers.contains(&name.as_str()) {
            return Err(Error::param(
                "optimizer state",
                format!("buffer {name:?}"),
                match who {
                    "random" => "is not a buffer random search keeps",
                    _ => "is not a buffer local search keeps",
                },
            ));
        }
    }
    for (name, _) in &state.scalars {
        if !scalars.contains(&name.as_str()) {
            return Err(Error::param(
                "optimizer state",
                format!("scalar {name:?}"),
                match who {
                    "random" => "is not a scalar random search keeps",
                    _ => "is not a scalar local search keeps",
                },
            ));
        }
    }
    Ok(())
}

/// Resizes an optimizer's buffer to the model's parameter count, keeping it across steps.
fn ensure_len<T: Scalar>(buf: &mut Vec<T>, len: usize) {
    if buf.len() != len {
        buf.clear();
        buf.resize(len, T::zero());
    }
}
