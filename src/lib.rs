//! # downhill — training a neural network, one lecture step at a time
//!
//! A classifier is a function with parameters: the MLP `y' = σ(W2·σ(W1·x + b1) + b2)` turns a
//! 784-pixel digit image `x` into ten class scores. A **loss** says how wrong the scores are
//! on the training data, so training is minimisation: find the weights `W` where the loss
//! is lowest. This crate walks that minimisation the way the lecture does, and every step is
//! working code:
//!
//! 1. **Random search** ([`optim::RandomSearch`]) — draw `W = randn · 1e-4` over and over,
//!    keep the best. With the lecture's protocol (a linear classifier, the multiclass SVM
//!    loss on raw pixels, 1000 draws) the best classifies 13.7% of the shipped test digits
//!    (`cargo run --release --example random_search`): better than chance, barely. (The
//!    lecture's 15.5% is on CIFAR-10.)
//! 2. **Random local search** ([`optim::LocalSearch`]) — start from a random `W`
//!    (`randn · 1e-3`), try `W + randn · 1e-4`, keep it only if the loss goes down. With the
//!    same 1000 loss evaluations it reaches 64.75% on the digits
//!    (`cargo run --release --example local_search`; the lecture's 21.4% is on CIFAR-10):
//!    much better, still blind.
//! 3. **Following the slope** ([`gradcheck`]) — the gradient says which way is downhill. The
//!    *numeric* gradient nudges each weight by `h` and watches the loss: slow, approximate,
//!    hard to get wrong. The *analytic* gradient ([`Model::loss_and_grad`]) is exact and fast
//!    but easy to get wrong, so it is always checked against the numeric one.
//! 4. **Gradient descent** ([`optim::GradientDescent`]) — `W ← W − lr · ∇L(W)` on the loss of
//!    the whole training set.
//! 5. **Minibatch SGD** ([`optim::Sgd`]) — the same on a random batch of 32–256 examples,
//!    reshuffled every epoch: a noisy gradient that is right on average, for a fraction of
//!    the cost, optionally smoothed by momentum.
//! 6. **The training loop** ([`Trainer`]) — batch → forward → loss → backward → update.
//!
//! The [`guide`] walks these steps chapter by chapter, with the code and what it prints.
//!
//! And what goes wrong: in an ill-conditioned valley gradient descent zig-zags across and
//! crawls along; at a saddle point the gradient vanishes and full-batch descent stalls, while
//! SGD's noise rarely lets it sit there (see the `landscape` and `gd_vs_sgd` examples).
//!
//! ## The pieces
//! * [`Objective`](model::Objective) — anything with a flat parameter vector, a loss and its
//!   gradient: what every optimizer minimises and the gradient check checks. A function of
//!   your own is one ([`model::FnObjective`]), and so is a model bound to a batch.
//! * [`Model`] — a loss over examples (a [`Dataset`], or your own data), and
//!   [`Classifier`](model::Classifier) — one that scores classes:
//!   [`model::LinearClassifier`] and [`model::Mlp`] (sigmoid, tanh or ReLU layers of any
//!   width; [`model::backprop`] is its forward and backward pass written to be read). A
//!   model of yours writes `params`, `params_mut`, `loss` and `loss_and_grad`; the crate's
//!   own models also lend an optimizer their threads and take part of its step, behind one
//!   capability ([`model::FastPath`]) that a wrapper forwards with one line.
//! * [`Optimizer`] — the four methods above, object-safe so a flag can pick one. Beyond the
//!   lecture, the gradient methods take an [`optim::UpdateRule`] (momentum, Nesterov, RMSProp,
//!   Adam, AdamW), weight decay and clipping; [`optim::Schedule`] changes the learning rate
//!   per epoch, and the observers in [`train`] stop early, draw progress and keep a history.
//! * [`gradcheck`] — numeric gradients and the check of models, functions and backward
//!   passes, by coordinate or along random directions.
//! * [`loss`] — softmax cross-entropy (stable log-sum-exp) and the multiclass SVM hinge.
//! * [`metrics`] — the confusion matrix, and each class's precision, recall and F1.
//! * [`data`] — datasets that keep pixels as bytes, batches, standardisation, and readers
//!   (MNIST's IDX files, CIFAR-10's binary batches) that refuse a lying header or length.
//! * kernels — the matrix products under the models: matrixmultiply's for the hidden
//!   layers, with bias and activation fused in, and hand-written ones for a sparse input and
//!   a narrow output (public only with the `internals` feature, for the benchmarks). An
//!   [`Mlp`](model::Mlp) walks a batch in row blocks and shares each block among its
//!   threads ([`Trainer::threads`]); the same seed gives bit-identical parameters on any
//!   number of threads.
//! * [`checkpoint`] — safetensors checkpoints in PyTorch's layout, and exact resume.
//! * [`error`] — one [`Error`] with a typed [`kind`](Error::kind).
//!
//! Everything public without a feature is the crate's API, [`model::backprop`] included:
//! it is the lecture's backward pass as a reference to read and to test a fast path against
//! (the crate's own tests do), two functions whose signatures follow `Mlp`'s. The feature
//! `testing` adds [`testing`] (proptest strategies and a gradient-check assertion);
//! `internals` makes `kernels` and `pool` public for the benchmarks, with no semver
//! promise.
//!
//! ## The layers
//! Each line uses only the lines above it, and, where it says so in brackets, a module on
//! its own line; so the crate reads from the top down (`tests/layers.rs` checks it against
//! the code):
//! ```text
//! error, scalar, rng, partition      errors, numbers, seeds, and how work is cut between threads
//! validate, matrix, activation, metrics   checked values, matrix views, activations, confusion matrices (matrix uses validate)
//! pool, kernels                      threads, the products and the update rules' arithmetic
//! fast_path                          what the crate's models lend an optimizer to go faster
//! data, loss, model                  examples, losses, objectives and networks (model uses data, loss)
//! optim, gradcheck                   what moves parameters, and what checks gradients
//! train, checkpoint                  the loop, its observers, and saving it (checkpoint uses train)
//! testing, guide                     property-test helpers, and the guide
//! ```
//!
//! The `unsafe` code is in `pool` (a borrowed job for the worker threads), `kernels` (the
//! instruction-set dispatch and `matrixmultiply`'s entry points) and `testing`'s counting
//! allocator: each module opts in to it, the compiler denies it everywhere else, and every
//! block carries its `// SAFETY:` argument.
//!
//! ## Example
//! ```
//! use downhill::prelude::*;
//!
//! // Four points in the plane, two classes, and an MLP to separate them (XOR).
//! let x = Matrix::from_vec(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], 4, 2)?;
//! let data = Dataset::from_matrix(x, vec![0, 1, 1, 0], 2)?;
//! let mut mlp = Mlp::<f64>::builder(2).hidden(8, Activation::Tanh).classes(2).seed(3).build()?;
//! let mut sgd = Sgd::new(0.5)?.momentum(0.9)?.batch_size(4)?;
//! Trainer::new(300)?.run(&mut mlp, &mut sgd, &data, None)?;
//! assert_eq!(accuracy(&mut mlp, &data)?, 1.0);
//! # Ok::<(), downhill::Error>(())
//! ```
#![deny(missing_docs)]
// No panics on bad input: the library returns errors (its unit tests may unwrap).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// `unsafe` only where a module opts in (`pool`, `kernels`, `testing`'s allocator), each block
// with its argument.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![forbid(unsafe_op_in_unsafe_fn)]

mod activation;
pub mod checkpoint;
pub mod data;
pub mod error;
mod fast_path;
pub mod gradcheck;
pub mod guide;
// The kernels and the thread pool are the machinery under the models: public only with the
// `internals` feature, for the crate's benches, without a semver promise.
#[cfg(feature = "internals")]
#[allow(unsafe_code)]
pub mod kernels;
#[cfg(not(feature = "internals"))]
#[allow(unsafe_code, dead_code, unused_imports)]
mod kernels;
pub mod loss;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod optim;
mod partition;
#[cfg(feature = "internals")]
#[allow(unsafe_code)]
pub mod pool;
#[cfg(not(feature = "internals"))]
#[allow(unsafe_code, dead_code)]
mod pool;
mod rng;
mod scalar;
#[cfg(feature = "testing")]
pub mod testing;
pub mod train;
mod validate;

pub use data::{Batch, Dataset};
pub use error::{Error, Result};
pub use model::{accuracy, confusion_matrix, Model};
pub use optim::Optimizer;
pub use scalar::Scalar;
pub use train::{EpochEnd, EpochRecord, Observer, TrainReport, TrainState, Trainer};

/// The names most programs need: `use downhill::prelude::*;`.
pub mod prelude {
    pub use crate::data::{
        load_cifar10, load_mnist, Augment, Batch, Dataset, FeatureTransform, ImageShape,
    };
    pub use crate::gradcheck::{GradCheck, GradReport};
    pub use crate::loss::Loss;
    pub use crate::matrix::{MatMut, MatRef, Matrix};
    pub use crate::metrics::ConfusionMatrix;
    pub use crate::model::{
        accuracy, confusion_matrix, Activation, Classifier, Init, LinearClassifier, Mlp, Model,
        Objective, Params,
    };
    pub use crate::optim::{
        GradientDescent, Lbfgs, LineSearch, LocalSearch, Optimizer, RandomSearch, Schedule, Search,
        Sgd, UpdateRule,
    };
    pub use crate::train::{Control, EpochEnd, EpochRecord, Observer, TrainReport, Trainer};
    pub use crate::{Error, Result, Scalar};
}

// The README's usage snippets are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
