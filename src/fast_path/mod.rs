//! The fast path: what the crate's own models lend an optimizer beyond parameters, a loss
//! and a gradient, behind one capability ([`FastPath`], which says why and how to forward
//! it).
//!
//! The files: this one (the handle, the contract a model with one provides, and the
//! model's threads for an update pass), `offer.rs` (the step an optimizer offers a model,
//! one type from the offer to what was taken) and `proof.rs` (the bounds a step taken where
//! it cannot be taken back rests on).

mod offer;
mod proof;
#[cfg(test)]
mod tests;

pub(crate) use offer::StepOffer;
pub(crate) use proof::{gradient_bound, stays_finite};

use std::ops::Range;
use std::sync::Arc;

use crate::error::Result;
use crate::pool::ThreadPool;
use crate::scalar::Scalar;

/// What one of the crate's models lends an optimizer beyond parameters, a loss and a
/// gradient, as one opaque handle: its fast path.
///
/// An optimizer needs nothing from an [`Objective`](crate::model::Objective) but its
/// parameters, its loss and its gradient, and that is all a model of yours has to write.
/// The crate's own models ([`Mlp`](crate::model::Mlp) and
/// [`LinearClassifier`](crate::model::LinearClassifier)) can do more, and a gradient method's
/// update runs faster for it:
///
/// * **threads** — the model's worker threads run the update's elementwise pass too, each
///   on the parameters its own caches hold;
/// * **a version and a swap** — the model names its parameters' current values with a
///   version number and lends its parameter vector without a copy, so an update that knows
///   the largest magnitude it last wrote can take the next step in place instead of
///   writing spare buffers (`optim/update`);
/// * **the gradient's magnitude** — measured as the model wrote the gradient, while it was
///   in cache, so the update needs no pass of its own to prove the step finite;
/// * **the step itself** — an update whose constants are known before the gradient is
///   *offered* to the model (a `StepOffer`): the sparse first layer's weight-gradient kernel
///   steps `W₁` and its state from each gradient tile in registers and never writes `dW₁`.
///
/// All of it is reached through one method, [`Objective::fast_path`] (and
/// [`Model::fast_path`] for a model before it is bound to a batch), whose default is `None`:
/// no fast path, and every optimizer works from the parameters, the loss and the gradient
/// alone. What it returns, a [`FastPath`], is an opaque handle: only the crate's models make
/// one, only the crate's optimizers and training loop open it, and a wrapper passes it on.
///
///
/// [`Objective::fast_path`]: crate::model::Objective::fast_path
/// [`Model::fast_path`]: crate::model::Model::fast_path
///
/// # Wrapping a model
///
/// A wrapper — a model that logs every step, counts its calls, or times them — keeps the
/// speed of the model it wraps by forwarding this one method, **if** its `loss_and_grad`
/// calls the inner model's `loss_and_grad` once and returns its gradient unchanged:
///
/// ```
/// use downhill::model::FastPath;
/// use downhill::prelude::*;
///
/// /// An MLP that counts the gradients it computes.
/// struct Counting {
///     inner: Mlp<f32>,
///     gradients: usize,
/// }
///
/// impl Params<f32> for Counting {
///     fn params(&self) -> &[f32] {
///         self.inner.params()
///     }
///     fn params_mut(&mut self) -> &mut [f32] {
///         self.inner.params_mut()
///     }
/// }
///
/// impl Model<f32> for Counting {
///     fn loss(&mut self, batch: &Batch<'_, f32>) -> Result<f32> {
///         self.inner.loss(batch)
///     }
///     fn loss_and_grad(&mut self, batch: &Batch<'_, f32>, grad: &mut [f32]) -> Result<f32> {
///         self.gradients += 1;
///         self.inner.loss_and_grad(batch, grad)
///     }
///     // The gradient is the inner model's, unchanged: its fast path stays valid.
///     fn fast_path(&mut self) -> Option<FastPath<'_, f32>> {
///         self.inner.fast_path()
///     }
/// }
/// # let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
/// # let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
/// # let inner = Mlp::builder(2).hidden(4, Activation::Relu).classes(2).build()?;
/// # let mut model = Counting { inner, gradients: 0 };
/// # let mut sgd = Sgd::new(0.1)?.batch_size(2)?;
/// # Trainer::new(3)?.run(&mut model, &mut sgd, &data, None)?;
/// # assert_eq!(model.gradients, 3);
/// # Ok::<(), downhill::Error>(())
/// ```
///
/// A wrapper that changes the gradient — adds a penalty, freezes a layer, clips it itself —
/// must not forward it, and need not do anything: without a fast path the optimizer reads
/// the gradient the wrapper returns, measures it itself, and takes its step from that. The
/// default is the correct one.
///
/// Made by the crate's models, opened by its optimizers and training loop, and passed on,
/// unopened, by wrappers: what is behind it is the crate's alone.
///
/// ```compile_fail
/// use downhill::prelude::*;
///
/// let mut mlp = Mlp::<f32>::builder(2).classes(2).build().unwrap();
/// let mut fast = mlp.fast_path().unwrap();
/// fast.open(); // private: a handle is passed on, not opened
/// ```
pub struct FastPath<'a, T>(&'a mut dyn Capability<T>);

impl<'a, T: Scalar> FastPath<'a, T> {
    /// The fast path of `model`.
    pub(crate) fn new(model: &'a mut dyn Capability<T>) -> Self {
        FastPath(model)
    }

    /// What is behind the handle.
    pub(crate) fn open(&mut self) -> &mut dyn Capability<T> {
        &mut *self.0
    }
}

impl<T> std::fmt::Debug for FastPath<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FastPath")
    }
}

/// The contract behind a [`FastPath`], crate-private: what a model with one provides.
pub(crate) trait Capability<T: Scalar> {
    /// Runs batches, and update passes, on `threads` threads.
    fn set_threads(&mut self, threads: usize) -> Result<()>;
    /// The model's threads, and where an elementwise pass over its parameters is cut
    /// between them (so that each thread updates what its own caches hold).
    fn shares(&self) -> Shares;
    /// Swaps the parameter vector with `other` (of the same length), without a copy.
    fn swap_params(&mut self, other: &mut Vec<T>) -> Result<()>;
    /// A number naming the parameters' current values: renewed, never reused in the
    /// process ([`fresh_version`]), whenever they may change (each `params_mut` and
    /// `swap_params`, and a step the model takes).
    fn params_version(&self) -> u64;
    /// The largest magnitude in the gradient the last `loss_and_grad` wrote (`+∞` if an
    /// element was not finite), if it measured it. It must describe exactly what was
    /// written: a value below the truth would let a non-finite step through.
    fn grad_magnitude(&self) -> Option<T>;
    /// Lends `offer` for the next `loss_and_grad`, which may take it (and records so in it:
    /// [`StepOffer::record_taken`]).
    fn lend_step(&mut self, offer: StepOffer<T>);
    /// Gives back the offer lent, taken or not.
    fn reclaim_step(&mut self) -> Option<StepOffer<T>>;
}

/// A parameter version never handed out before in this process (see
/// [`Capability::params_version`]): one counter for every model, so two vectors share a
/// version only when one is an unchanged clone of the other.
pub(crate) fn fresh_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A model's threads for an elementwise pass over its parameters, and where the parameters
/// are cut between them.
#[derive(Debug, Clone)]
pub struct Shares {
    pool: Option<Arc<ThreadPool>>,
    /// `bounds[0] = 0 ≤ … ≤ bounds[count] = len`: share `i` takes `bounds[i]..bounds[i + 1]`.
    bounds: Vec<usize>,
}

impl Shares {
    /// `pool`'s threads, share `i` taking `bounds[i]..bounds[i + 1]`; `bounds` must run
    /// from 0 to the parameter count, not decreasing, one range per thread.
    pub(crate) fn new(pool: Arc<ThreadPool>, bounds: Vec<usize>) -> Self {
        debug_assert_eq!(bounds.len(), pool.threads() + 1);
        debug_assert!(bounds.first() == Some(&0) && bounds.windows(2).all(|w| w[0] <= w[1]));
        Shares {
            pool: Some(pool),
            bounds,
        }
    }

    /// One share of `len` parameters, on the calling thread: a model without a fast path.
    pub(crate) fn one(len: usize) -> Self {
        Shares {
            pool: None,
            bounds: vec![0, len],
        }
    }

    /// How many shares.
    pub(crate) fn count(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Each share's range of the parameters.
    pub(crate) fn ranges(&self) -> Vec<Range<usize>> {
        self.bounds.windows(2).map(|w| w[0]..w[1]).collect()
    }

    /// Runs `work(items[i])` on thread `i` (at most [`count`](Shares::count) items), all at
    /// once, and returns the results in item order.
    pub(crate) fn map<S: Send, R: Send>(
        &self,
        items: Vec<S>,
        work: impl Fn(S) -> R + Sync,
    ) -> Vec<R> {
        debug_assert!(items.len() <= self.count());
        let Some(pool) = self.pool.as_ref().filter(|p| p.threads() > 1) else {
            return items.into_iter().map(work).collect();
        };
        let expected = items.len();
        let mut slots: Vec<(Option<S>, Option<R>)> =
            items.into_iter().map(|s| (Some(s), None)).collect();
        let Ok(()) = pool.run_each(slots.iter_mut().collect(), |_, slot| {
            if let Some(item) = slot.0.take() {
                slot.1 = Some(work(item));
            }
            Ok::<(), std::convert::Infallible>(())
        });
        // The pool runs every share below its thread count, once.
        let results: Vec<R> = slots.into_iter().filter_map(|(_, r)| r).collect();
        debug_assert_eq!(results.len(), expected);
        results
    }
}
