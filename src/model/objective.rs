//! What every optimizer minimises: a differentiable function of one flat parameter vector.
//!
//! The lecture's weights are one vector, `W = [0.34, −1.11, 0.78, ...]`, and its gradient
//! another, `dW = [−2.5, 0.6, 0, ...]`. Everything downhill of that — random and local
//! search, gradient descent, SGD and its update rules, the gradient check — needs nothing
//! else from a model, so that is what these traits say:
//!
//! * [`Params`] — the flat parameter vector (and, for models that have them, its named
//!   tensors and its threads);
//! * [`Objective`] — a loss of the parameters and its gradient: Rosenbrock, a regulariser,
//!   a layer's backward pass bound to an upstream gradient, or a model bound to a batch
//!   ([`OnBatch`]). Optimizers take `&mut dyn Objective<T>`;
//! * [`FnObjective`] — an objective from two closures, for the cases where writing a type
//!   is more than the function deserves.
//!
//! ```
//! use downhill::model::FnObjective;
//! use downhill::prelude::*;
//!
//! // Rosenbrock's banana, f(x, y) = (1 − x)² + 100·(y − x²)², minimised by gradient descent
//! // with Nesterov momentum: no dataset, no classes, no scores.
//! let mut f = FnObjective::new(
//!     vec![-1.0, 1.0],
//!     |p: &[f64]| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2),
//!     |p: &[f64], g: &mut [f64]| {
//!         g[0] = -2.0 * (1.0 - p[0]) - 400.0 * p[0] * (p[1] - p[0] * p[0]);
//!         g[1] = 200.0 * (p[1] - p[0] * p[0]);
//!     },
//! );
//! let mut gd = GradientDescent::new(1e-3)?.rule(UpdateRule::nesterov(0.9)?);
//! let report = Trainer::new(5000)?.minimize(&mut f, &mut gd)?;
//! assert!(report.final_loss().unwrap() < 1e-6);
//! assert!((f.params()[0] - 1.0).abs() < 1e-3);
//! # Ok::<(), downhill::Error>(())
//! ```

use std::ops::Range;

use crate::data::{Batch, Examples};
use crate::error::{Error, Result};
use crate::kernels::update::Pass;
use crate::model::Model;
use crate::validate::same_size;
use crate::Scalar;

/// The body of a [`Params`] impl that forwards every method to `self.$field`: a wrapper
/// (a model bound to a batch, a classifier around an MLP) must forward all of them, or it
/// silently loses its inner model's threads, names or swap.
macro_rules! forward_params {
    ($field:tt) => {
        fn params(&self) -> &[T] {
            self.$field.params()
        }
        fn params_mut(&mut self) -> &mut [T] {
            self.$field.params_mut()
        }
        fn num_params(&self) -> usize {
            self.$field.num_params()
        }
        fn param_groups(&self) -> Vec<$crate::model::ParamGroup> {
            self.$field.param_groups()
        }
        fn set_threads(&mut self, threads: usize) -> $crate::error::Result<()> {
            self.$field.set_threads(threads)
        }
        fn parallelism(&self) -> usize {
            self.$field.parallelism()
        }
        fn run_shares(&self, job: &(dyn Fn(usize) + Sync)) {
            self.$field.run_shares(job)
        }
        fn share_bounds(&self) -> Option<Vec<usize>> {
            self.$field.share_bounds()
        }
        fn swap_params(&mut self, next: &mut Vec<T>) -> $crate::error::Result<()> {
            self.$field.swap_params(next)
        }
        fn params_version(&self) -> Option<u64> {
            self.$field.params_version()
        }
    };
}
pub(crate) use forward_params;

/// A parameter version never handed out before in this process (see
/// [`Params::params_version`]): one counter for every model, so two vectors share a version
/// only when one is an unchanged clone of the other.
pub(crate) fn fresh_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// [`Params::swap_params`] for a model that owns its parameters as one `Vec`: a swap of
/// the two vectors, no copy (after checking the lengths agree).
pub(crate) fn swap_vec<T>(
    context: &'static str,
    mine: &mut Vec<T>,
    next: &mut Vec<T>,
) -> Result<()> {
    same_size(context, "parameter count", mine.len(), next.len())?;
    std::mem::swap(mine, next);
    Ok(())
}

/// A flat vector of parameters: what optimizers move and checkpoints save.
///
/// Only [`params`](Params::params) and [`params_mut`](Params::params_mut) are required. The
/// rest have defaults that suit a small model; a model with named tensors overrides
/// [`param_groups`](Params::param_groups), and one with worker threads overrides the three
/// methods that let an optimizer's update run on them (as [`Mlp`](crate::model::Mlp)
/// does).
pub trait Params<T: Scalar> {
    /// All parameters, flat.
    fn params(&self) -> &[T];
    /// All parameters, flat and mutable.
    fn params_mut(&mut self) -> &mut [T];
    /// Length of the parameter vector.
    fn num_params(&self) -> usize {
        self.params().len()
    }
    /// The parameter vector cut into named tensors, in order, covering it exactly.
    ///
    /// Gradient checks report per group, and checkpoints store one tensor per group. The
    /// default is a single group called `params`; [`Mlp`](crate::model::Mlp) names its
    /// tensors PyTorch-style (`layers.0.weight`, `layers.0.bias`, …).
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![ParamGroup::new("params", 0, vec![self.num_params()])]
    }
    /// Asks the model to run on `threads` threads. Models that do not parallelise ignore it
    /// (the default).
    fn set_threads(&mut self, threads: usize) -> Result<()> {
        let _ = threads;
        Ok(())
    }
    /// How many shares [`run_shares`](Params::run_shares) runs at once: the model's threads
    /// (default 1).
    fn parallelism(&self) -> usize {
        1
    }
    /// Runs `job(0)`, …, `job(parallelism() − 1)`, concurrently where the model has threads,
    /// and returns when all are done. Optimizers cut their elementwise update into these
    /// shares. The default runs `job(0)` here.
    fn run_shares(&self, job: &(dyn Fn(usize) + Sync)) {
        job(0)
    }
    /// Where an optimizer cuts its elementwise update into the
    /// [`parallelism()`](Params::parallelism) shares [`run_shares`](Params::run_shares)
    /// runs: `Some(bounds)` with `bounds[0] = 0 < … < bounds[parallelism()] = num_params()`,
    /// share `i` updating `bounds[i]..bounds[i + 1]`; `None` (the default) for equal shares.
    /// A model whose threads each own part of the parameters says so here, so each thread
    /// updates what its own caches hold: [`Mlp`](crate::model::Mlp) cuts its first layer's
    /// weights where its threads' ranges of input features meet.
    fn share_bounds(&self) -> Option<Vec<usize>> {
        None
    }
    /// Swaps the parameters with `other` (of the same length): afterwards the model holds
    /// what `other` held and `other` the old parameters. It commits an update computed into
    /// a separate buffer, and lets a search try a candidate and take it back. The default
    /// swaps element by element; a model that owns its vector swaps the vectors, which costs
    /// nothing.
    fn swap_params(&mut self, other: &mut Vec<T>) -> Result<()> {
        let params = self.params_mut();
        same_size(
            "Params::swap_params",
            "parameter count",
            params.len(),
            other.len(),
        )?;
        params.swap_with_slice(other);
        Ok(())
    }
    /// A number that names the parameters' current values: a model that tracks it hands out
    /// a new one, never used before in the process, whenever its parameters may change (each
    /// [`params_mut`](Params::params_mut) and [`swap_params`](Params::swap_params) call).
    /// While it stays the same, an optimizer may trust what it knows of the values it last
    /// wrote — the gradient methods keep their largest magnitude, which lets them take a step
    /// in place without reading the parameters first. `None` (the default): not tracked, and
    /// nothing is assumed.
    fn params_version(&self) -> Option<u64> {
        None
    }
}

/// A differentiable function of a flat parameter vector: what every optimizer minimises.
///
/// Implement it for a function of your own and every optimizer, the training loop
/// ([`Trainer::minimize`](crate::Trainer::minimize)) and the gradient check
/// ([`GradCheck::check`](crate::gradcheck::GradCheck::check)) work with it. The trait is
/// object-safe: optimizers take `&mut dyn Objective<T>`. A loss over data is a
/// [`Model`]; bound to one batch ([`Model::on`]) it is an objective.
pub trait Objective<T: Scalar>: Params<T> {
    /// The function's value at [`params`](Params::params).
    fn loss(&mut self) -> Result<T>;
    /// The value, with its gradient with respect to the parameters written into `grad`
    /// (`grad.len() == num_params()`; overwritten, not accumulated).
    fn loss_and_grad(&mut self, grad: &mut [T]) -> Result<T>;
    /// The largest magnitude in the gradient the last `loss_and_grad` wrote, `+∞` if any
    /// element of it was not finite: for a model that measures it on the way, while the
    /// gradient is in cache. An update step then needs no pass of its own over the gradient
    /// to prove that it stays finite and can be taken in place. The default, `None`, means
    /// not measured: the step measures it.
    ///
    /// It must describe exactly the gradient the last call wrote: a value smaller than the
    /// truth lets a non-finite step through. Return `None` whenever in doubt (a wrapper that
    /// changes the gradient after its inner model wrote it must not forward the inner
    /// model's value).
    fn grad_magnitude(&self) -> Option<T> {
        None
    }
    /// [`loss_and_grad`](Objective::loss_and_grad), with an optimizer's offer to take part
    /// of its update step while the gradient is computed ([`StepOffer`]). The default
    /// declines: it computes the gradient and leaves the whole step to the optimizer. A
    /// wrapper that forwards [`grad_magnitude`](Objective::grad_magnitude) forwards this
    /// too; one that changes the gradient after its inner objective wrote it must not.
    fn loss_and_grad_with_step(
        &mut self,
        grad: &mut [T],
        offer: &mut StepOffer<'_, T>,
    ) -> Result<T> {
        let _ = offer;
        self.loss_and_grad(grad)
    }
}

/// An update step a gradient method offers to let the model take in part, as it computes
/// the gradient ([`Objective::loss_and_grad_with_step`]).
///
/// A step is normally a pass over the whole gradient after it is written: every parameter,
/// its gradient and the rule's state read back from memory. A model that computes part of
/// its gradient in small tiles can step those parameters from each tile while it is in
/// registers, and never write that part of the gradient at all —
/// [`Mlp`](crate::model::Mlp)'s sparse first layer does, for `W₁`, most of a 784-256-10
/// network's parameters (1.11× the examples per second on MNIST, one thread). The bits are
/// those of the separate pass: same formulas, same order. The gradient of what the model
/// stepped is not written (so
/// [`Descent::last_gradient`](crate::optim::Descent::last_gradient) is `None` after such a
/// step), and [`grad_magnitude`](Objective::grad_magnitude) describes the rest.
///
/// What makes that safe is the refusal guarantee: a step that would write a non-finite
/// value must change nothing. So the offer carries what the optimizer knows (the rule's
/// constants, the largest magnitudes of the parameters and of its state), and a model
/// takes it only after proving, *before* it writes anything, that the whole step — its part
/// and the optimizer's — stays finite for every gradient it can produce. The optimizer then
/// steps the rest. Its fields are the crate's: a model outside the crate can decline (the
/// default) or forward the offer to a model inside it, and nothing else.
pub struct StepOffer<'a, T> {
    /// The rule's constants for this step (no clipping: the norm is not known in time).
    pub(crate) pass: Pass<T>,
    /// The largest magnitude in the parameters, and in each state buffer.
    pub(crate) w_peak: T,
    pub(crate) state_peak: [T; 2],
    /// The rule's live state buffers (each as long as the parameters, or empty for one the
    /// rule does not keep), for the model to step in place.
    pub(crate) state: [&'a mut [T]; 2],
    /// What the model took: the first `len` parameters, and the largest magnitude it wrote
    /// to each state buffer and to the parameters.
    pub(crate) taken: Option<(usize, [T; 3])>,
}

impl<T> StepOffer<'_, T> {
    /// How many of the leading parameters the model has stepped itself (`None`: it
    /// declined, and the optimizer takes the whole step).
    pub fn taken(&self) -> Option<usize> {
        self.taken.as_ref().map(|(len, _)| *len)
    }

    /// Checks that the state lent fits `n` parameters: each buffer the rule keeps `n`
    /// long, the others empty. A model checks it before it steps anything, so that no
    /// thread's kernel can refuse its slice after another thread has stepped its own.
    pub(crate) fn check_state(&self, context: &'static str, n: usize) -> Result<()> {
        let [s0, s1] = &self.state;
        self.pass.rule.check_state(context, n, [&**s0, &**s1])
    }
}

impl<T> std::fmt::Debug for StepOffer<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepOffer")
            .field("taken", &self.taken())
            .finish_non_exhaustive()
    }
}

/// How a [`ParamGroup`]'s elements sit in the parameter vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Row-major: the tensor as its shape says.
    #[default]
    RowMajor,
    /// A 2-D tensor stored as its transpose, row-major (that is: column-major). An
    /// [`Mlp`](crate::model::Mlp) computes `x·W` with `W` of `in × out`; PyTorch's
    /// `nn.Linear` names the same numbers as an `[out, in]` weight, and checkpoints write
    /// that.
    Transposed,
}

/// A named, contiguous slice of a model's flat parameter vector, and the tensor it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamGroup {
    /// The tensor's name, e.g. `layers.0.weight`.
    pub name: String,
    /// Index of its first element in [`Params::params`].
    pub offset: usize,
    /// The tensor's shape; the product is its length.
    pub shape: Vec<usize>,
    /// How its elements are laid out from `offset` on.
    pub layout: Layout,
}

impl ParamGroup {
    /// A row-major group called `name` starting at `offset` with `shape`.
    pub fn new(name: impl Into<String>, offset: usize, shape: Vec<usize>) -> Self {
        ParamGroup {
            name: name.into(),
            offset,
            shape,
            layout: Layout::RowMajor,
        }
    }
    /// A `rows × cols` tensor stored transposed (`cols × rows`, row-major) from `offset`.
    pub fn transposed(name: impl Into<String>, offset: usize, rows: usize, cols: usize) -> Self {
        ParamGroup {
            name: name.into(),
            offset,
            shape: vec![rows, cols],
            layout: Layout::Transposed,
        }
    }
    /// Number of parameters in the group.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the group holds no parameters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Its indices in [`Params::params`].
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Checks that `groups` tile `0..n` in order, without gaps or overlaps.
pub(crate) fn check_groups(groups: &[ParamGroup], n: usize) -> Result<()> {
    let mut next = 0usize;
    for g in groups {
        same_size(
            "Params::param_groups",
            "offset of the next group (groups must tile the parameters in order)",
            next,
            g.offset,
        )?;
        next = g
            .offset
            .checked_add(g.len())
            .ok_or_else(|| Error::param("param group", &g.name, "its end overflows usize"))?;
        if g.layout == Layout::Transposed && g.shape.len() != 2 {
            return Err(Error::shape(
                "Params::param_groups",
                "dimensions of a transposed group",
                2,
                g.shape.len(),
            ));
        }
    }
    same_size(
        "Params::param_groups",
        "parameters the groups cover",
        n,
        next,
    )?;
    Ok(())
}

/// A [`Model`] bound to one batch: the objective an optimizer's step minimises. Made by
/// [`Model::on`].
pub struct OnBatch<'a, 'b, T, D: ?Sized> {
    model: &'a mut dyn Model<T, D>,
    batch: &'a Batch<'b, T, D>,
}

impl<'a, 'b, T: Scalar, D: Examples + ?Sized> OnBatch<'a, 'b, T, D> {
    /// `model` on `batch`.
    pub fn new(model: &'a mut dyn Model<T, D>, batch: &'a Batch<'b, T, D>) -> Self {
        OnBatch { model, batch }
    }
}

impl<T: Scalar, D: Examples + ?Sized> Params<T> for OnBatch<'_, '_, T, D> {
    forward_params!(model);
}

impl<T: Scalar, D: Examples + ?Sized> Objective<T> for OnBatch<'_, '_, T, D> {
    fn loss(&mut self) -> Result<T> {
        self.model.loss(self.batch)
    }
    fn loss_and_grad(&mut self, grad: &mut [T]) -> Result<T> {
        self.model.loss_and_grad(self.batch, grad)
    }
    fn grad_magnitude(&self) -> Option<T> {
        self.model.grad_magnitude()
    }
    fn loss_and_grad_with_step(
        &mut self,
        grad: &mut [T],
        offer: &mut StepOffer<'_, T>,
    ) -> Result<T> {
        self.model.loss_and_grad_with_step(self.batch, grad, offer)
    }
}

/// An [`Objective`] made of a starting point and two closures: `f(x)` and `grad(x, g)`
/// (which writes `∇f(x)` into `g`).
///
/// For a function that can fail, or that owns buffers, implement [`Objective`] instead.
#[derive(Clone)]
pub struct FnObjective<T, F, G> {
    x: Vec<T>,
    f: F,
    grad: G,
}

impl<T, F, G> FnObjective<T, F, G>
where
    T: Scalar,
    F: FnMut(&[T]) -> T,
    G: FnMut(&[T], &mut [T]),
{
    /// The function `f` with gradient `grad`, starting at `x0`.
    pub fn new(x0: Vec<T>, f: F, grad: G) -> Self {
        FnObjective { x: x0, f, grad }
    }
    /// The current point.
    pub fn point(&self) -> &[T] {
        &self.x
    }
    /// Gives back the current point.
    pub fn into_point(self) -> Vec<T> {
        self.x
    }
}

impl<T: Scalar, F, G> Params<T> for FnObjective<T, F, G> {
    fn params(&self) -> &[T] {
        &self.x
    }
    fn params_mut(&mut self) -> &mut [T] {
        &mut self.x
    }
    fn swap_params(&mut self, next: &mut Vec<T>) -> Result<()> {
        swap_vec("FnObjective::swap_params", &mut self.x, next)
    }
}

impl<T, F, G> Objective<T> for FnObjective<T, F, G>
where
    T: Scalar,
    F: FnMut(&[T]) -> T,
    G: FnMut(&[T], &mut [T]),
{
    fn loss(&mut self) -> Result<T> {
        Ok((self.f)(&self.x))
    }
    fn loss_and_grad(&mut self, grad: &mut [T]) -> Result<T> {
        same_size(
            "FnObjective::loss_and_grad",
            "gradient length",
            self.x.len(),
            grad.len(),
        )?;
        (self.grad)(&self.x, grad);
        Ok((self.f)(&self.x))
    }
}
