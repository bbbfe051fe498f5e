//! Loading an MNIST-format directory: the four IDX files of the standard download.

use std::path::{Path, PathBuf};

use crate::data::idx::{read_images, read_labels};
use crate::data::{Dataset, FeatureTransform};
use crate::error::{Error, Result};
use crate::Scalar;

/// The training and test sets of an MNIST-format directory.
#[derive(Debug, Clone)]
pub struct Mnist<T> {
    /// From `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]`.
    pub train: Dataset<T>,
    /// From `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`.
    pub test: Dataset<T>,
}

/// Where the crate's own examples find their data: `data/mnist-10k` in this repository
/// (8000 training and 2000 test digits; not part of the published package).
pub const SHIPPED_MNIST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");

/// The file `name` in `dir`, or `name.gz` if only that exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::io(
        &plain,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("neither {name} nor {name}.gz exists"),
        ),
    ))
}

fn load_split<T: Scalar>(dir: &Path, prefix: &str) -> Result<Dataset<T>> {
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (pixels, count, features) = read_images(&images_path)?;
    let labels = read_labels(&labels_path, 10)?;
    if labels.len() != count {
        return Err(Error::format(
            &labels_path,
            format!(
                "{} labels, but {} has {count} images",
                labels.len(),
                images_path.display()
            ),
        ));
    }
    Dataset::from_bytes(pixels, features, labels, 10)?.with_transform(FeatureTransform::uniform(
        features,
        T::of(1.0 / 255.0),
        T::zero(),
    ))
}

/// Loads an MNIST-format directory. Pixels stay bytes and are scaled to [0, 1] when gathered;
/// standardise with [`FeatureTransform::standardize`] if you prefer.
///
/// ```no_run
/// let mnist = downhill::data::load_mnist::<f32>(downhill::data::SHIPPED_MNIST_DIR)?;
/// assert_eq!((mnist.train.len(), mnist.test.len()), (8000, 2000));
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn load_mnist<T: Scalar>(dir: impl AsRef<Path>) -> Result<Mnist<T>> {
    let dir = dir.as_ref();
    Ok(Mnist {
        train: load_split(dir, "train")?,
        test: load_split(dir, "t10k")?,
    })
}
