//! Property-testing gradients — yours and the crate's (feature `testing`).
//!
//! An analytic gradient should be checked against the numeric one, and not on one
//! hand-picked input but on many random ones. This module gives [`proptest`](mod@proptest)
//! strategies for parameter vectors, MLP shapes and datasets, and three assertions that run
//! a [`GradCheck`] and turn a failed check into a proptest failure whose message is the
//! report's table:
//!
//! * [`assert_fn_gradient_matches`] — a function and its hand-written gradient;
//! * [`assert_vjp_matches`] — a layer's backward pass, `dx = J(x)ᵀ·dy`;
//! * [`assert_gradients_match`] — a model on a batch.
//!
//! Enable it for your tests:
//!
//! ```toml
//! [dev-dependencies]
//! downhill = { version = "0.2", features = ["testing"] }
//! ```
//!
//! # A layer's backward pass, property-tested
//!
//! Softmax `y = softmax(x)` and its backward pass `dx = y ⊙ (dy − (dy·y))`, checked on any
//! vector of 2 to 9 values of any magnitude from 1e-3 to 10:
//!
//! ```
//! use downhill::gradcheck::GradCheck;
//! use downhill::testing::{assert_vjp_matches, params, proptest::prelude::*};
//!
//! fn softmax(x: &[f64], y: &mut [f64]) {
//!     let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
//!     y.iter_mut().zip(x).for_each(|(y, &x)| *y = (x - m).exp());
//!     let sum: f64 = y.iter().sum();
//!     y.iter_mut().for_each(|y| *y /= sum);
//! }
//! fn softmax_backward(x: &[f64], dy: &[f64], dx: &mut [f64]) {
//!     let mut y = vec![0.0; x.len()];
//!     softmax(x, &mut y);
//!     let dot: f64 = dy.iter().zip(&y).map(|(a, b)| a * b).sum();
//!     dx.iter_mut().zip(y.iter().zip(dy)).for_each(|(dx, (y, dy))| *dx = y * (dy - dot));
//! }
//!
//! proptest! {
//!     fn softmax_backward_is_right(x in (2usize..10).prop_flat_map(|n| params(n, 1e-3..=10.0))) {
//!         assert_vjp_matches(&GradCheck::new(), &x, x.len(), softmax, softmax_backward)?;
//!     }
//! }
//! softmax_backward_is_right(); // under #[test] in a test file; called by hand in a doc test
//! ```
//!
//! Drop the `- dot` and the property fails, shrinks to a small input and prints the table
//! (the numbers depend on the case it shrinks to):
//!
//! ```text
//! analytic and numeric gradients disagree:
//! group         params    checked    max rel   mean rel  kinks  worst (index: analytic vs numeric)
//! params             2          2   1.00e0     1.00e0      0  0: 4.013155e-1 vs -1.340735e-1
//! 2 of 2 coordinates, h = 6.1e-6: max relative error 1.334e0 at parameter 0 (params), mean 1.167e0, 0 kinks — wrong (OUTSIDE tolerance 1e-4)
//! ```
//!
//! # A model of your own
//!
//! A model written from scratch — softmax regression, `scores = x·W` — and its property
//! test:
//!
//! ```
//! use downhill::gradcheck::GradCheck;
//! use downhill::loss::Loss;
//! use downhill::model::{Model, Params};
//! use downhill::testing::{assert_gradients_match, dataset, proptest::prelude::*};
//! use downhill::{Batch, Result};
//!
//! /// `inputs × classes` weights, row-major.
//! struct Softmax { inputs: usize, classes: usize, w: Vec<f64> }
//!
//! impl Params<f64> for Softmax {
//!     fn params(&self) -> &[f64] { &self.w }
//!     fn params_mut(&mut self) -> &mut [f64] { &mut self.w }
//! }
//!
//! impl Model<f64> for Softmax {
//!     fn loss(&mut self, batch: &Batch<'_, f64>) -> Result<f64> {
//!         let mut grad = vec![0.0; self.w.len()];
//!         self.loss_and_grad(batch, &mut grad)
//!     }
//!     fn loss_and_grad(&mut self, batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
//!         let (x, labels) = batch.to_matrix()?;
//!         let n = labels.len() as f64;
//!         grad.fill(0.0);
//!         let mut total = 0.0;
//!         let mut ds = vec![0.0; self.classes];
//!         for (row, &label) in x.as_slice().chunks_exact(self.inputs).zip(&labels) {
//!             let s: Vec<f64> = (0..self.classes)
//!                 .map(|c| row.iter().enumerate().map(|(i, xi)| xi * self.w[i * self.classes + c]).sum())
//!                 .collect();
//!             // The loss, and ∂loss/∂scores ÷ n.
//!             total += Loss::SoftmaxCrossEntropy.row_loss_and_grad(&s, label, 1.0 / n, &mut ds)?;
//!             for (i, xi) in row.iter().enumerate() {
//!                 for (c, d) in ds.iter().enumerate() {
//!                     grad[i * self.classes + c] += xi * d;
//!                 }
//!             }
//!         }
//!         Ok(total / n)
//!     }
//! }
//!
//! // The property: on any data and any weights, the analytic gradient is right.
//! proptest! {
//!     fn softmax_gradient_is_right(
//!         data in dataset::<f64>(3, 4, 1..20),
//!         w in prop::collection::vec(-2.0f64..2.0, 12),
//!     ) {
//!         let mut model = Softmax { inputs: 3, classes: 4, w };
//!         assert_gradients_match(&mut model, &data.all(), &GradCheck::new())?;
//!     }
//! }
//! softmax_gradient_is_right();
//! ```
//!
//! Break the gradient (say, drop the `1.0 / n`) and the property fails with the check's
//! table, naming the worst parameter.
//!
//! It also has [`CountingAllocator`] and [`peak_bytes`], for tests that a reader allocates
//! in proportion to its input and never what a lying header claims.

use std::ops::{Range, RangeInclusive};

#[allow(unsafe_code)]
mod counting_alloc;

pub use proptest;

pub use counting_alloc::{peak_bytes, CountingAllocator};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::data::{Batch, Dataset, Examples};
use crate::error::Result;
use crate::gradcheck::{GradCheck, GradReport};
use crate::loss::Loss;
use crate::matrix::Matrix;
use crate::model::{Activation, Mlp, Model, Params};
use crate::rng::seeded;
use crate::scalar::Scalar;

/// The largest gradient magnitude `model`'s fast path measured as it wrote its last
/// gradient (`+∞` if an element was not finite), or `None` (no fast path, or nothing
/// measured). An update trusts it to prove its step finite without a pass of its own over
/// the gradient, so it must be the largest `|g|` of what was written, exactly: a property a
/// test of the crate's models checks with this.
pub fn measured_grad_magnitude<T: Scalar, D: Examples + ?Sized>(
    model: &mut dyn Model<T, D>,
) -> Option<T> {
    model.fast_path()?.open().grad_magnitude()
}

/// A check's outcome as a property's: `Ok(report)` if it passed, otherwise a failure
/// carrying the report's table (and an error of the code under test becomes one too).
fn as_property(report: Result<GradReport>) -> std::result::Result<GradReport, TestCaseError> {
    let report = report
        .map_err(|e| TestCaseError::fail(format!("the gradient check could not run: {e}")))?;
    if report.passed() {
        Ok(report)
    } else {
        Err(TestCaseError::fail(format!(
            "analytic and numeric gradients disagree:\n{report}"
        )))
    }
}

/// Runs `check` on `model` and `batch`; `Ok(report)` if it passed, otherwise a proptest
/// failure carrying the report's table.
pub fn assert_gradients_match<T: Scalar, D: Examples + ?Sized>(
    model: &mut dyn Model<T, D>,
    batch: &Batch<'_, T, D>,
    check: &GradCheck,
) -> std::result::Result<GradReport, TestCaseError> {
    as_property(check.run(model, batch))
}

/// Runs [`check.check_fn`](GradCheck::check_fn) on `f` and its gradient `grad` at `x`;
/// `Ok(report)` if it passed, otherwise a proptest failure carrying the report's table.
pub fn assert_fn_gradient_matches<T: Scalar>(
    check: &GradCheck,
    x: &[T],
    f: impl FnMut(&[T]) -> T,
    grad: impl FnMut(&[T], &mut [T]),
) -> std::result::Result<GradReport, TestCaseError> {
    as_property(check.check_fn(x, f, grad))
}

/// Runs [`check.check_vjp`](GradCheck::check_vjp) on the vector function `f` (writing
/// `outputs` values) and its backward pass `vjp` at `x`; `Ok(report)` if it passed,
/// otherwise a proptest failure carrying the report's table.
pub fn assert_vjp_matches<T: Scalar>(
    check: &GradCheck,
    x: &[T],
    outputs: usize,
    f: impl FnMut(&[T], &mut [T]),
    vjp: impl FnMut(&[T], &[T], &mut [T]),
) -> std::result::Result<GradReport, TestCaseError> {
    as_property(check.check_vjp(x, outputs, f, vjp))
}

/// Parameter vectors of `len` values, each of either sign with a magnitude drawn
/// log-uniformly from `magnitude` (e.g. `1e-3..=10.0`): small and large values alike, where
/// a uniform draw would almost never come near zero.
pub fn params<T: Scalar>(
    len: usize,
    magnitude: RangeInclusive<f64>,
) -> impl Strategy<Value = Vec<T>> {
    let (lo, hi) = (
        magnitude.start().abs().max(f64::MIN_POSITIVE).ln(),
        magnitude.end().abs().max(f64::MIN_POSITIVE).ln(),
    );
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    prop::collection::vec((any::<bool>(), lo..=hi), len).prop_map(|v| {
        v.into_iter()
            .map(|(negative, log)| {
                let m = log.exp();
                T::from_f64(if negative { -m } else { m })
            })
            .collect()
    })
}

/// Parameter vectors of `len` values, each within `distance` of one of `kinks` (for ReLU,
/// 0; for a hinge, its margin): where a finite difference is most likely to straddle a
/// corner, which the check must tell from a bug.
pub fn near_kinks<T: Scalar>(
    len: usize,
    kinks: Vec<f64>,
    distance: f64,
) -> impl Strategy<Value = Vec<T>> {
    let kinks = if kinks.is_empty() { vec![0.0] } else { kinks };
    let d = distance.abs();
    let count = kinks.len();
    prop::collection::vec((0..count, -d..=d), len).prop_map(move |v| {
        v.into_iter()
            .map(|(k, off)| T::from_f64(kinks[k] + off))
            .collect()
    })
}

/// Parameter vectors of `len` values of mixed kinds: mostly moderate (`[−2, 2]`), some
/// near zero (within 1e-4), some large (up to ±1e3) — the values that expose overflow,
/// cancellation and corners in one strategy.
pub fn mixed_params<T: Scalar>(len: usize) -> impl Strategy<Value = Vec<T>> {
    let value = prop_oneof![
        6 => -2.0f64..2.0,
        2 => -1e-4f64..1e-4,
        1 => prop_oneof![-1e3f64..-10.0, 10.0f64..1e3],
    ];
    prop::collection::vec(value, len).prop_map(|v| v.into_iter().map(T::from_f64).collect())
}

/// The shape and settings of a random MLP, as drawn by [`mlp_spec`].
#[derive(Debug, Clone, PartialEq)]
pub struct MlpSpec {
    /// Features per example.
    pub inputs: usize,
    /// Width and activation of each hidden layer.
    pub hidden: Vec<(usize, Activation)>,
    /// Number of classes.
    pub classes: usize,
    /// The output layer's activation, if any.
    pub output: Option<Activation>,
    /// The data loss.
    pub loss: Loss,
    /// L2 strength (0 for none).
    pub l2: f64,
    /// Seed of the weights.
    pub seed: u64,
}

impl MlpSpec {
    /// Builds the MLP, then redraws every parameter, biases included, from `N(0, 0.7²)`:
    /// the builder's zero biases would put every ReLU of an all-zero input row exactly on
    /// its kink, and its small initial weights make every gradient small.
    pub fn build<T: Scalar>(&self) -> Result<Mlp<T>> {
        let mut b = Mlp::<T>::builder(self.inputs)
            .classes(self.classes)
            .output(self.output)
            .loss(self.loss)
            .l2(self.l2)
            .seed(self.seed);
        for &(width, act) in &self.hidden {
            b = b.hidden(width, act);
        }
        let mut mlp = b.build()?;
        randomize(&mut mlp, 0.7, self.seed);
        Ok(mlp)
    }
    /// Whether the objective is smooth: no ReLU anywhere and no hinge.
    pub fn is_smooth(&self) -> bool {
        self.loss != Loss::Hinge
            && self.output != Some(Activation::Relu)
            && self.hidden.iter().all(|&(_, a)| a != Activation::Relu)
    }
}

/// Sets every parameter of `model` to a seeded draw from `N(0, scale²)`.
pub fn randomize<T: Scalar>(model: &mut dyn Params<T>, scale: f64, seed: u64) {
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = seeded(seed);
    for w in model.params_mut() {
        let z: f64 = StandardNormal.sample(&mut rng);
        *w = T::from_f64(scale * z);
    }
}

/// Any of sigmoid, tanh and ReLU.
pub fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        Just(Activation::Relu)
    ]
}

/// Any of the losses.
pub fn loss() -> impl Strategy<Value = Loss> {
    prop_oneof![
        Just(Loss::SoftmaxCrossEntropy),
        Just(Loss::Hinge),
        Just(Loss::MeanSquared),
        Just(Loss::BinaryCrossEntropy)
    ]
}

/// An output activation for `loss`: a sigmoid for binary cross-entropy (which needs
/// outputs in `(0, 1)`), otherwise none or any activation.
pub fn output_for(loss: Loss) -> BoxedStrategy<Option<Activation>> {
    if loss.needs_probabilities() {
        Just(Some(Activation::Sigmoid)).boxed()
    } else {
        prop_oneof![2 => Just(None), 1 => activation().prop_map(Some)].boxed()
    }
}

/// Random MLPs: `inputs` features, `layers` layers in all (1 is a linear classifier, so
/// `layers − 1` hidden ones), hidden widths in `width`, `classes` classes, any activation
/// per layer, any loss with an output activation that suits it, and L2 off (half the time)
/// or in `0.01..0.5`.
pub fn mlp_spec(
    inputs: Range<usize>,
    layers: RangeInclusive<usize>,
    width: Range<usize>,
    classes: Range<usize>,
) -> impl Strategy<Value = MlpSpec> {
    let hidden_layers = layers.start().saturating_sub(1)..layers.end().saturating_sub(1) + 1;
    (
        inputs,
        prop::collection::vec((width, activation()), hidden_layers),
        classes,
        loss().prop_flat_map(|loss| (Just(loss), output_for(loss))),
        prop_oneof![Just(0.0), 0.01f64..0.5],
        any::<u64>(),
    )
        .prop_map(
            |(inputs, hidden, classes, (loss, output), l2, seed)| MlpSpec {
                inputs,
                hidden,
                classes,
                output,
                loss,
                l2,
                seed,
            },
        )
}

/// Random datasets of `features` features in `[−2, 2]`, labels in `0..classes`, and a number
/// of rows in `rows` (which must not start at 0).
pub fn dataset<T: Scalar>(
    features: usize,
    classes: usize,
    rows: Range<usize>,
) -> impl Strategy<Value = Dataset<T>> {
    rows.prop_flat_map(move |n| {
        (
            prop::collection::vec(-2.0f64..2.0, n * features),
            prop::collection::vec(0..classes.max(1), n),
        )
    })
    .prop_filter_map("rows and classes must be at least 1", move |(x, labels)| {
        let n = labels.len();
        let x = Matrix::from_vec(x.into_iter().map(T::from_f64).collect(), n, features).ok()?;
        Dataset::from_matrix(x, labels, classes).ok()
    })
}

/// Random byte datasets — pixels — of `features` bytes a row, labels in `0..classes` and a
/// number of rows in `rows` (which must not start at 0), scaled to `[0, 1]` when gathered.
/// Each dataset draws its own density (any fraction of nonzero bytes, 0 to 1), and each row
/// is, now and then, all zero or all nonzero: the cases a sparse first layer must get right.
pub fn byte_dataset<T: Scalar>(
    features: usize,
    classes: usize,
    rows: Range<usize>,
) -> impl Strategy<Value = Dataset<T>> {
    (rows, 0.0f64..=1.0).prop_flat_map(move |(n, density)| {
        let row = (
            prop_oneof![8 => Just(None), 1 => Just(Some(false)), 1 => Just(Some(true))],
            prop::collection::vec((0.0f64..1.0, 1u8..=255), features),
        );
        (
            prop::collection::vec(row, n),
            prop::collection::vec(0..classes.max(1), n),
        )
            .prop_filter_map(
                "rows and classes must be at least 1",
                move |(rows, labels)| {
                    let bytes = rows
                        .into_iter()
                        .flat_map(|(kind, values)| {
                            values.into_iter().map(move |(u, b)| match kind {
                                Some(full) => u8::from(full) * b,
                                None if u < density => b,
                                None => 0,
                            })
                        })
                        .collect();
                    let scale = T::from_f64(1.0 / 255.0);
                    Dataset::from_bytes(bytes, features, labels, classes)
                        .and_then(|d| {
                            d.with_transform(crate::data::FeatureTransform::uniform(
                                features,
                                scale,
                                T::zero(),
                            ))
                        })
                        .ok()
                },
            )
    })
}

/// An MLP from [`mlp_spec`] and a dataset of `rows` rows that fits it.
pub fn mlp_case(
    inputs: Range<usize>,
    layers: RangeInclusive<usize>,
    width: Range<usize>,
    classes: Range<usize>,
    rows: Range<usize>,
) -> impl Strategy<Value = (MlpSpec, Dataset<f64>)> {
    mlp_spec(inputs, layers, width, classes).prop_flat_map(move |spec| {
        let data = dataset::<f64>(spec.inputs, spec.classes, rows.clone());
        (Just(spec), data)
    })
}
