//! Data: datasets, batches, feature transforms, and the readers.
//!
//! * [`Dataset`] holds examples and labels; features stay in their stored form (bytes for
//!   images) and are converted only when gathered.
//! * [`Batch`] borrows a selection of any [`Examples`] (a dataset, or your own data);
//!   models read it in row blocks.
//! * [`Minibatches`] is SGD's per-epoch shuffled order.
//! * [`FeatureTransform`] scales or standardises features on the fly.
//! * [`Augment`] distorts training images as their batches are gathered (shifts, rotations,
//!   scalings, elastic fields), per `(seed, epoch, image)`.
//! * [`idx`] reads IDX files; [`load_mnist`] reads a whole MNIST-format directory.
//! * [`cifar`] reads CIFAR-10's binary batch files; [`load_cifar10`] reads a whole CIFAR-10
//!   directory.
//!
//! Every reader refuses a file that would take more than its [`ReadLimit`] (a header's claim,
//! or the file's own length) before reading it.

mod augment;
mod batch;
pub mod cifar;
mod dataset;
pub mod idx;
mod limit;
mod mnist;
pub(crate) mod sparse;
mod standardize;
mod transform;

pub use augment::{Augment, ImageShape};
pub use batch::{Batch, Examples, Minibatches, TrainingStep};
pub use cifar::{load_cifar10, Cifar10};
pub use dataset::Dataset;
pub use limit::ReadLimit;
pub use mnist::{load_mnist, Mnist};
pub use transform::FeatureTransform;
