//! Optimizers: the road downhill, one approach per file.
//!
//! 1. [`RandomSearch`] — draw whole weight vectors at random, keep the best.
//! 2. [`LocalSearch`] — step from the best weights in a random direction, keep it if better.
//! 3. [`GradientDescent`] — follow the slope: `w ← w − lr·∇L` on the whole training set.
//! 4. [`Sgd`] — the same on small random minibatches, optionally with momentum.
//!
//! All four implement [`Optimizer`], which is object-safe: a program can pick one from a flag
//! and hand `&mut dyn Optimizer<T>` to the [`Trainer`](crate::Trainer). Hyper-parameters are
//! validated when an optimizer is built — a NaN, zero or negative learning rate is an
//! [`Error`](crate::Error), not a silent NaN three epochs later.
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
mod sgd;

pub use gd::GradientDescent;
pub use local_search::LocalSearch;
pub use random_search::RandomSearch;
pub use sgd::Sgd;

use crate::data::Batch;
use crate::error::Result;
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
}

/// Resizes an optimizer's buffer to the model's parameter count, keeping it across steps.
fn ensure_len<T: Scalar>(buf: &mut Vec<T>, len: usize) {
    if buf.len() != len {
        buf.clear();
        buf.resize(len, T::zero());
    }
}
