//! Property-testing gradients — yours and the crate's (feature `testing`).
//!
//! Every model's analytic gradient should be checked against the numeric one, and not on
//! one hand-picked input but on many random ones: random shapes, random data, random
//! weights. This module gives [`proptest`](mod@proptest) strategies for MLP shapes and datasets, and
//! [`assert_gradients_match`], which runs a [`GradCheck`] and turns a failed check into a
//! proptest failure whose message is the report's table.
//!
//! Enable it for your tests:
//!
//! ```toml
//! [dev-dependencies]
//! downhill = { version = "0.1", features = ["testing"] }
//! ```
//!
//! A model written from scratch — softmax regression, `scores = x·W` — and its property
//! test:
//!
//! ```
//! use downhill::gradcheck::GradCheck;
//! use downhill::loss::Loss;
//! use downhill::matrix::{MatMut, MatRef};
//! use downhill::testing::{assert_gradients_match, dataset, proptest::prelude::*};
//! use downhill::{Batch, Model, Result};
//!
//! /// `inputs × classes` weights, row-major.
//! struct Softmax { inputs: usize, classes: usize, w: Vec<f64> }
//!
//! impl Softmax {
//!     fn scores_of(&self, x: &[f64]) -> Vec<f64> {
//!         let w = |i: usize, c: usize| self.w[i * self.classes + c];
//!         (0..self.classes).map(|c| x.iter().enumerate().map(|(i, xi)| xi * w(i, c)).sum()).collect()
//!     }
//! }
//!
//! impl Model<f64> for Softmax {
//!     fn num_inputs(&self) -> usize { self.inputs }
//!     fn num_classes(&self) -> usize { self.classes }
//!     fn params(&self) -> &[f64] { &self.w }
//!     fn params_mut(&mut self) -> &mut [f64] { &mut self.w }
//!     fn loss(&mut self, batch: &Batch<'_, f64>) -> Result<f64> {
//!         let mut grad = vec![0.0; self.w.len()];
//!         self.loss_and_grad(batch, &mut grad)
//!     }
//!     fn loss_and_grad(&mut self, batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
//!         let (x, labels) = batch.to_matrix()?;
//!         let n = labels.len() as f64;
//!         grad.fill(0.0);
//!         let mut total = 0.0;
//!         for (row, &label) in x.as_slice().chunks_exact(self.inputs).zip(&labels) {
//!             let mut s = self.scores_of(row);
//!             // The loss, and ∂loss/∂scores ÷ n written over the scores.
//!             total += Loss::SoftmaxCrossEntropy.row_loss_and_grad(&mut s, label, 1.0 / n);
//!             for (i, xi) in row.iter().enumerate() {
//!                 for (c, ds) in s.iter().enumerate() {
//!                     grad[i * self.classes + c] += xi * ds;
//!                 }
//!             }
//!         }
//!         Ok(total / n)
//!     }
//!     fn scores(&mut self, x: MatRef<'_, f64>, mut out: MatMut<'_, f64>) -> Result<()> {
//!         let x = x.to_matrix();
//!         for (r, row) in x.as_slice().chunks_exact(self.inputs).enumerate() {
//!             if let Some(o) = out.row_mut(r) {
//!                 o.copy_from_slice(&self.scores_of(row));
//!             }
//!         }
//!         Ok(())
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
//! softmax_gradient_is_right(); // under #[test] in a test file; called by hand in a doc test
//! ```
//!
//! It also has [`CountingAllocator`] and [`peak_bytes`], for tests that a reader allocates
//! in proportion to its input and never what a lying header claims.
//!
//! Break the gradient (say, drop the `1.0 / n`) and the property fails with the check's table,
//! naming the worst parameter.

use std::ops::{Range, RangeInclusive};

pub use proptest;

pub use crate::kernels::counting_alloc::{peak_bytes, CountingAllocator};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::data::{Batch, Dataset};
use crate::gradcheck::{GradCheck, GradReport};
use crate::loss::Loss;
use crate::matrix::Matrix;
use crate::model::{Activation, Mlp, Model};
use crate::{Result, Scalar};

/// Runs `check` on `model` and `batch`; `Ok(report)` if it passed, otherwise a proptest
/// failure carrying the report's table (and an error of the model's becomes one too).
pub fn assert_gradients_match<T: Scalar>(
    model: &mut dyn Model<T>,
    batch: &Batch<'_, T>,
    check: &GradCheck,
) -> std::result::Result<GradReport, TestCaseError> {
    let report = check
        .run(model, batch)
        .map_err(|e| TestCaseError::fail(format!("the gradient check could not run: {e}")))?;
    if report.passed() {
        Ok(report)
    } else {
        Err(TestCaseError::fail(format!(
            "analytic and numeric gradients disagree:\n{report}"
        )))
    }
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
    /// Whether the objective is smooth: no ReLU and no hinge.
    pub fn is_smooth(&self) -> bool {
        self.loss == Loss::SoftmaxCrossEntropy
            && self.hidden.iter().all(|&(_, a)| a != Activation::Relu)
    }
}

/// Sets every parameter of `model` to a seeded draw from `N(0, scale²)`.
pub fn randomize<T: Scalar>(model: &mut dyn Model<T>, scale: f64, seed: u64) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = crate::DefaultRng::seed_from_u64(seed);
    for w in model.params_mut() {
        let z: f64 = StandardNormal.sample(&mut rng);
        *w = T::of(scale * z);
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

/// Softmax cross-entropy or hinge.
pub fn loss() -> impl Strategy<Value = Loss> {
    prop_oneof![Just(Loss::SoftmaxCrossEntropy), Just(Loss::Hinge)]
}

/// Random MLPs: `inputs` features, `layers` layers in all (1 is a linear classifier, so
/// `layers − 1` hidden ones), hidden widths in `width`, `classes` classes, any activation
/// per layer, either loss, and L2 off (half the time) or in `0.01..0.5`.
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
        loss(),
        prop_oneof![Just(0.0), 0.01f64..0.5],
        any::<u64>(),
    )
        .prop_map(|(inputs, hidden, classes, loss, l2, seed)| MlpSpec {
            inputs,
            hidden,
            classes,
            loss,
            l2,
            seed,
        })
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
        let x = Matrix::from_vec(x.into_iter().map(T::of).collect(), n, features).ok()?;
        Dataset::from_matrix(x, labels, classes).ok()
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
