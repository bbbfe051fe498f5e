//! Data: datasets, batches, feature transforms, and the IDX (MNIST) reader.
//!
//! * [`Dataset`] holds examples and labels; features stay in their stored form (bytes for
//!   images) and are converted only when gathered.
//! * [`Batch`] borrows a selection of a dataset; models read it in row blocks.
//! * [`Minibatches`] is SGD's per-epoch shuffled order.
//! * [`FeatureTransform`] scales or standardises features on the fly.
//! * [`idx`] reads IDX files; [`load_mnist`] reads a whole MNIST-format directory.

mod batch;
mod dataset;
pub mod idx;
mod mnist;
mod transform;

pub use batch::{Batch, Minibatches};
pub use dataset::Dataset;
pub use mnist::{load_mnist, Mnist, SHIPPED_MNIST_DIR};
pub use transform::FeatureTransform;
