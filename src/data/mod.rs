//! Data: datasets, batches, feature transforms, and the readers.
//!
//! * [`Dataset`] holds examples and labels; features stay in their stored form (bytes for
//!   images) and are converted only when gathered.
//! * [`Batch`] borrows a selection of any [`Examples`] (a dataset, or your own data);
//!   models read it in row blocks.
//! * [`Minibatches`] is SGD's per-epoch shuffled order.
//! * [`FeatureTransform`] scales or standardises features on the fly.
//! * [`idx`] reads IDX files; [`load_mnist`] reads a whole MNIST-format directory. Every
//!   reader refuses a header that claims more than its [`ReadLimit`].

mod batch;
mod dataset;
pub mod idx;
mod limit;
mod mnist;
mod sparse;
mod transform;

pub use batch::{Batch, Examples, Minibatches};
pub use dataset::Dataset;
pub use limit::ReadLimit;
pub use mnist::{load_mnist, Mnist};
pub use transform::FeatureTransform;
