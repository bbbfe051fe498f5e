//! What every optimizer minimises: a differentiable function of one flat parameter vector.
//!
//! The lecture's weights are one vector, `W = [0.34, −1.11, 0.78, ...]`, and its gradient
//! another, `dW = [−2.5, 0.6, 0, ...]`. Everything downhill of that — random and local
//! search, gradient descent, SGD and its update rules, the gradient check — needs nothing
//! else from a model, so that is what these traits say:
//!
//! * [`Params`] — the flat parameter vector, and (for models that have them) its named
//!   tensors;
//! * [`Objective`] — a loss of the parameters and its gradient: Rosenbrock, a regulariser,
//!   a layer's backward pass bound to an upstream gradient, or a model bound to a batch
//!   ([`OnBatch`]). Optimizers take `&mut dyn Objective<T>`;
//! * [`FnObjective`] — an objective from two closures, for the cases where writing a type
//!   is more than the function deserves.
//!
//! That is all a function or model of yours writes. The crate's own models also lend the
//! optimizer their threads and take part of its step ([`Objective::fast_path`], see
//! [`FastPath`]); that sits behind one method with a default, so a type of yours neither
//! writes nor forwards it unless it wraps one of them.
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
use crate::fast_path::FastPath;
use crate::model::Model;
use crate::scalar::Scalar;
use crate::validate::same_size;

/// The body of a [`Params`] impl that forwards its three methods to a field: for a wrapper
/// that holds the parameters of what it wraps.
///
/// `forward_params!(T, field)` in `impl<T: Scalar> Params<T> for Wrapper<T>`, or with the
/// element type itself (`forward_params!(f32, inner)`); the field is a name or a tuple
/// index.
///
/// ```
/// use downhill::model::{Mlp, Params};
/// use downhill::prelude::*;
///
/// /// An MLP with a name.
/// struct Named {
///     name: String,
///     inner: Mlp<f32>,
/// }
///
/// impl Params<f32> for Named {
///     downhill::forward_params!(f32, inner);
/// }
///
/// let inner = Mlp::builder(2).hidden(3, Activation::Tanh).classes(2).build()?;
/// let named = Named { name: "xor".into(), inner };
/// assert_eq!(named.params().len(), 2 * 3 + 3 + 3 * 2 + 2);
/// assert_eq!(named.param_groups()[0].name, "layers.0.weight");
/// # Ok::<(), downhill::Error>(())
/// ```
#[macro_export]
macro_rules! forward_params {
    ($t:ty, $field:tt) => {
        fn params(&self) -> &[$t] {
            self.$field.params()
        }
        fn params_mut(&mut self) -> &mut [$t] {
            self.$field.params_mut()
        }
        fn param_groups(&self) -> ::std::vec::Vec<$crate::model::ParamGroup> {
            self.$field.param_groups()
        }
    };
}

/// A flat vector of parameters: what optimizers move and checkpoints save.
///
/// Only [`params`](Params::params) and [`params_mut`](Params::params_mut) are required; a
/// model with named tensors also overrides [`param_groups`](Params::param_groups).
pub trait Params<T: Scalar> {
    /// All parameters, flat.
    fn params(&self) -> &[T];
    /// All parameters, flat and mutable.
    fn params_mut(&mut self) -> &mut [T];
    /// The parameter vector cut into named tensors, in order, covering it exactly.
    ///
    /// Gradient checks report per group, and checkpoints store one tensor per group. The
    /// default is a single group called `params`; [`Mlp`](crate::model::Mlp) names its
    /// tensors PyTorch-style (`layers.0.weight`, `layers.0.bias`, …).
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![ParamGroup::new("params", 0, vec![self.params().len()])]
    }
}

/// A vector is a parameter vector: one group, `params`. (What [`FnObjective`] holds, and
/// what a wrapper of yours can hold and forward to with
/// [`forward_params!`](crate::forward_params).)
impl<T: Scalar> Params<T> for Vec<T> {
    fn params(&self) -> &[T] {
        self
    }
    fn params_mut(&mut self) -> &mut [T] {
        self
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
    /// (`grad.len() == params().len()`; overwritten, not accumulated).
    fn loss_and_grad(&mut self, grad: &mut [T]) -> Result<T>;
    /// What the crate's own models lend an optimizer to take its steps faster (their
    /// threads, and part of the update step itself): see [`FastPath`]. The default, `None`,
    /// is always correct: the optimizer then works from the parameters, the loss and the
    /// gradient alone. A wrapper forwards its inner objective's only if its `loss_and_grad`
    /// returns the inner gradient unchanged.
    fn fast_path(&mut self) -> Option<FastPath<'_, T>> {
        None
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
    crate::forward_params!(T, model);
}

impl<T: Scalar, D: Examples + ?Sized> Objective<T> for OnBatch<'_, '_, T, D> {
    fn loss(&mut self) -> Result<T> {
        self.model.loss(self.batch)
    }
    fn loss_and_grad(&mut self, grad: &mut [T]) -> Result<T> {
        self.model.loss_and_grad(self.batch, grad)
    }
    fn fast_path(&mut self) -> Option<FastPath<'_, T>> {
        self.model.fast_path()
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
    crate::forward_params!(T, x);
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
