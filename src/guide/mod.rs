//! A guide that reads like the lecture: training a neural network, one step at a time.
//!
//! Training a network is minimising a loss over its weights. The lecture gets there in
//! steps: first a model and a loss, then three ways of going downhill that get less blind
//! as they go (random search, random local search, following the slope), then gradient
//! descent, minibatch SGD and the training loop, and last what goes wrong on the way down.
//! Each chapter of this guide takes one step and has the same parts:
//!
//! * **The slide** — what the lecture says, in its words and symbols.
//! * **In code** — the same thing with this crate. Every Rust block is a doc test: it
//!   compiles, runs in well under a second on small synthetic data, and asserts what the
//!   prose claims.
//! * **Run it** — the example in `examples/` that does the step at full size, the command
//!   that runs it, and what it prints, trimmed (`...` marks lines left out). The examples
//!   read the 10,000 real MNIST digits shipped in the repository (`data/mnist-10k`; `--data
//!   DIR` points them at another MNIST-format or a CIFAR-10 directory), except `landscape`,
//!   whose functions are small enough to draw. Timings, and what a run given a number of
//!   seconds gets done in them, depend on the machine and its load; the rest is seeded, and
//!   CI replays every transcript shown here and fails if a digit of it moves
//!   (`python3 .ci/transcripts.py --bless` regenerates them after a change that moves one).
//! * **The figure** — for the examples that draw one: what it shows, and the command that
//!   writes it. The figures are in the repository under `docs/figures/`, not in the
//!   published crate.
//!
//! The examples live in the repository, not in the published crate: run them from a clone,
//! with `cargo run --release --example NAME`. Every example takes `--help`.
//!
//! # Chapters
//!
//! 1. [The model and the loss](ch1_model_and_loss) — the MLP
//!    `y' = σ(W2·σ(W1·x + b1) + b2)` on 784-pixel digits, the linear classifier, and the
//!    SVM and softmax losses: a loss is a function of the weights.
//! 2. [Random search](ch2_random_search) — draw `W = randn · 0.0001` a thousand times, keep
//!    the best.
//! 3. [Random local search](ch3_local_search) — from a random start, try small random steps,
//!    keep the ones that go down.
//! 4. [Following the slope](ch4_following_the_slope) — the numeric gradient, the analytic
//!    gradient, and checking one against the other.
//! 5. [Gradient descent and the step size](ch5_gradient_descent) — `W ← W − η·∇L`, and how
//!    big `η` may be.
//! 6. [Minibatch SGD](ch6_minibatch_sgd) — the gradient of a small random batch: noisy, right
//!    on average, cheap.
//! 7. [The training loop](ch7_training_loop) — batch, forward, loss, backward, update; and
//!    the [`Trainer`](crate::Trainer) with its observers, early stopping and checkpoints.
//! 8. [What goes wrong](ch8_what_goes_wrong) — ill-conditioned valleys, saddle points, local
//!    minima, noisy minibatch gradients.
//! 9. [Beyond the lecture](ch9_beyond_the_lecture) — update rules, learning-rate schedules,
//!    and how the crate is made fast.
//! 10. [The step size, answered](ch10_the_step_size_answered) — the slide's question, what
//!     should the step size be: line searches, the curvature `H·v` from two gradients, and
//!     L-BFGS, what the second-order term of the Taylor expansion buys.
//!
//! # Before you start
//!
//! Add the crate to a project (`cargo add downhill`) and bring in the common names:
//!
//! ```
//! use downhill::prelude::*;
//! ```
//!
//! The doc tests use `f64` where a number is compared closely (gradient checks, step
//! sizes) and `f32`, the type the examples train in, elsewhere. Every fallible call returns
//! a [`Result`](crate::Result); the tests end with `Ok::<(), downhill::Error>(())` so that
//! `?` works in them.

#[doc = include_str!("ch1_model_and_loss.md")]
pub mod ch1_model_and_loss {}

#[doc = include_str!("ch2_random_search.md")]
pub mod ch2_random_search {}

#[doc = include_str!("ch3_local_search.md")]
pub mod ch3_local_search {}

#[doc = include_str!("ch4_following_the_slope.md")]
pub mod ch4_following_the_slope {}

#[doc = include_str!("ch5_gradient_descent.md")]
pub mod ch5_gradient_descent {}

#[doc = include_str!("ch6_minibatch_sgd.md")]
pub mod ch6_minibatch_sgd {}

#[doc = include_str!("ch7_training_loop.md")]
pub mod ch7_training_loop {}

#[doc = include_str!("ch8_what_goes_wrong.md")]
pub mod ch8_what_goes_wrong {}

#[doc = include_str!("ch9_beyond_the_lecture.md")]
pub mod ch9_beyond_the_lecture {}

#[doc = include_str!("ch10_the_step_size_answered.md")]
pub mod ch10_the_step_size_answered {}
