//! Loading an MNIST-format directory: the four IDX files of the standard download.

use std::path::{Path, PathBuf};

use crate::data::idx::IdxReader;
use crate::data::{Dataset, FeatureTransform, ReadLimit};
use crate::error::{Error, Result};
use crate::scalar::Scalar;

/// The training and test sets of an MNIST-format directory.
#[derive(Debug, Clone)]
pub struct Mnist<T> {
    /// From `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]`.
    pub train: Dataset<T>,
    /// From `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`.
    pub test: Dataset<T>,
}

/// The file `name` in `dir`, or `name.gz`, if either exists.
pub(crate) fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Some(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    gz.is_file().then_some(gz)
}

fn find_or_fail(dir: &Path, name: &str) -> Result<PathBuf> {
    find(dir, name).ok_or_else(|| {
        Error::io(
            &dir.join(name),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {name} nor {name}.gz exists"),
            ),
        )
    })
}

/// The images and labels files of one split.
struct Split {
    images: PathBuf,
    labels: PathBuf,
}

impl Split {
    /// Finds both files of split `prefix` (`train` or `t10k`) in `dir`.
    fn find(dir: &Path, prefix: &str) -> Result<Self> {
        Ok(Split {
            images: find_or_fail(dir, &format!("{prefix}-images-idx3-ubyte"))?,
            labels: find_or_fail(dir, &format!("{prefix}-labels-idx1-ubyte"))?,
        })
    }

    fn load<T: Scalar>(&self, reader: &IdxReader) -> Result<Dataset<T>> {
        let (pixels, count, features) = reader.read_images(&self.images)?;
        let labels = reader.read_labels(&self.labels, 10)?;
        if labels.len() != count {
            return Err(Error::format(
                &self.labels,
                format!(
                    "{} labels, but {} has {count} images",
                    labels.len(),
                    self.images.display()
                ),
            ));
        }
        Dataset::from_bytes(pixels, features, labels, 10)?.with_transform(
            FeatureTransform::uniform(features, T::from_f64(1.0 / 255.0), T::zero()),
        )
    }
}

impl<T: Scalar> Mnist<T> {
    /// Loads an MNIST-format directory, refusing any file whose header claims more than
    /// `limit`. Pixels stay bytes and are scaled to [0, 1] when gathered; standardise with
    /// [`FeatureTransform::standardize`] if you prefer.
    pub fn load(dir: impl AsRef<Path>, limit: ReadLimit) -> Result<Self> {
        let dir = dir.as_ref();
        let reader = IdxReader::new().limit(limit);
        // All four files are found before any is read: a missing test file fails at once.
        let (train, test) = (Split::find(dir, "train")?, Split::find(dir, "t10k")?);
        let train_set = train.load::<T>(&reader)?;
        let test_set = test.load::<T>(&reader)?;
        if test_set.num_features() != train_set.num_features() {
            return Err(Error::format(
                &test.images,
                format!(
                    "images of {} pixels, but the training images ({}) have {}",
                    test_set.num_features(),
                    train.images.display(),
                    train_set.num_features()
                ),
            ));
        }
        Ok(Mnist {
            train: train_set,
            test: test_set,
        })
    }
}

/// Loads an MNIST-format directory with the default [`ReadLimit`]; see [`Mnist::load`].
///
/// ```no_run
/// let mnist = downhill::data::load_mnist::<f32>("data/mnist-10k")?;
/// assert_eq!((mnist.train.len(), mnist.test.len()), (8000, 2000));
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn load_mnist<T: Scalar>(dir: impl AsRef<Path>) -> Result<Mnist<T>> {
    Mnist::load(dir, ReadLimit::default())
}
