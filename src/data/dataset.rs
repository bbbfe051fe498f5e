//! [`Dataset`]: examples (one feature row each) and their class labels.
//!
//! Features are kept in the form they arrive in. MNIST pixels stay `u8` — a quarter of the
//! memory of `f32`, an eighth of `f64` — and a per-feature affine [`FeatureTransform`]
//! (scaling, standardisation) is applied when rows are *gathered* into a batch, which has to
//! copy them anyway. Float features (from [`Matrix`]) work the same way.

use std::sync::OnceLock;

use rand::seq::SliceRandom;

use crate::data::sparse::{density, SparseBytes};
use crate::data::{Augment, FeatureTransform};
use crate::error::{Error, ErrorKind, Result};
use crate::kernels::elementwise::{affine, affine_bytes};
use crate::matrix::Matrix;
use crate::rng::seeded;
use crate::scalar::Scalar;
use crate::validate::{indices_below, same_size};

#[derive(Debug, Clone, PartialEq)]
enum Features<T> {
    Bytes(Vec<u8>),
    Floats(Vec<T>),
}

/// A labelled set of examples: `len()` rows of `num_features()` features, each with a label in
/// `0..num_classes()`.
///
/// ```
/// use downhill::data::Dataset;
///
/// // Two 3-pixel "images" of classes 1 and 0, pixels scaled to [0, 1] when gathered.
/// let ds = Dataset::<f32>::from_bytes(vec![0, 255, 0, 255, 0, 255], 3, vec![1, 0], 2)?
///     .with_transform(downhill::data::FeatureTransform::uniform(3, 1.0 / 255.0, 0.0))?;
/// let mut row = [0.0f32; 3];
/// ds.gather_row(1, &mut row)?;
/// assert_eq!(row, [1.0, 0.0, 1.0]);
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dataset<T> {
    features: Features<T>,
    labels: Vec<usize>,
    num_features: usize,
    num_classes: usize,
    transform: Option<FeatureTransform<T>>,
    /// The distortions of a training batch's images (byte features only).
    augment: Option<Augment>,
    /// The fraction of nonzero features, measured on first use.
    density: OnceLock<f64>,
    /// The nonzero bytes row by row, built on first use (byte features only).
    sparse: OnceLock<Option<SparseBytes>>,
}

/// Two datasets are equal when they hold the same examples, transform and augmentation
/// (what each has measured or built for itself does not count).
impl<T: PartialEq> PartialEq for Dataset<T> {
    fn eq(&self, other: &Self) -> bool {
        self.features == other.features
            && self.labels == other.labels
            && self.num_features == other.num_features
            && self.num_classes == other.num_classes
            && self.transform == other.transform
            && self.augment == other.augment
    }
}

fn check_labels(labels: &[usize], num_classes: usize) -> Result<()> {
    match labels.iter().position(|&l| l >= num_classes) {
        Some(row) => Err(ErrorKind::Label {
            path: None,
            row,
            label: labels[row],
            classes: num_classes,
        }
        .into()),
        None => Ok(()),
    }
}

impl<T: Scalar> Dataset<T> {
    /// A dataset of byte features (e.g. pixels), row-major: `bytes.len()` must be
    /// `labels.len() * num_features`, and every label `< num_classes`.
    pub fn from_bytes(
        bytes: Vec<u8>,
        num_features: usize,
        labels: Vec<usize>,
        num_classes: usize,
    ) -> Result<Self> {
        Self::new(Features::Bytes(bytes), num_features, labels, num_classes)
    }

    /// A dataset of float features: one row of `x` per label. NaN or infinite features are
    /// rejected, naming the first one's row and column.
    pub fn from_matrix(x: Matrix<T>, labels: Vec<usize>, num_classes: usize) -> Result<Self> {
        same_size(
            "Dataset::from_matrix",
            "labels (one per row)",
            x.rows(),
            labels.len(),
        )?;
        let num_features = x.cols();
        Self::new(
            Features::Floats(x.into_vec()),
            num_features,
            labels,
            num_classes,
        )
    }

    fn new(
        features: Features<T>,
        num_features: usize,
        labels: Vec<usize>,
        num_classes: usize,
    ) -> Result<Self> {
        let len = match &features {
            Features::Bytes(b) => b.len(),
            Features::Floats(f) => f.len(),
        };
        if num_features == 0 {
            return Err(Error::param("num_features", 0, "must be at least 1"));
        }
        if num_classes == 0 {
            return Err(Error::param("num_classes", 0, "must be at least 1"));
        }
        if labels.len().checked_mul(num_features) != Some(len) {
            return Err(Error::shape(
                "Dataset::new",
                "feature values (labels × features)",
                labels.len().saturating_mul(num_features),
                len,
            ));
        }
        check_labels(&labels, num_classes)?;
        if let Features::Floats(values) = &features {
            // A NaN or infinite feature would turn every loss it touches into NaN.
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::param(
                    "features",
                    format!(
                        "{} at row {}, column {}",
                        values[i],
                        i / num_features,
                        i % num_features
                    ),
                    "must be finite",
                ));
            }
        }
        Ok(Dataset {
            features,
            labels,
            num_features,
            num_classes,
            transform: None,
            augment: None,
            density: OnceLock::new(),
            sparse: OnceLock::new(),
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True if there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Features per example.
    pub fn num_features(&self) -> usize {
        self.num_features
    }
    /// Number of classes; labels are in `0..num_classes()`.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }
    /// The labels, one per example.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
    /// True if features are stored as bytes (and converted when gathered).
    pub fn is_bytes(&self) -> bool {
        matches!(self.features, Features::Bytes(_))
    }
    /// The fraction of the stored features that are not zero, measured once, on the first
    /// call (before any transform: a standardised pixel that was 0 counts as 0). For
    /// MNIST's pixels, about 0.19. An [`Mlp`](crate::model::Mlp)'s first layer takes the
    /// sparse path below its crossover.
    pub fn density(&self) -> f64 {
        *self.density.get_or_init(|| match &self.features {
            Features::Bytes(b) => density(b),
            Features::Floats(v) => {
                let nnz = v.iter().filter(|x| **x != T::zero()).count();
                nnz as f64 / v.len().max(1) as f64
            }
        })
    }

    /// The nonzero bytes row by row, built on first call; `None` for float features and
    /// rows too wide for `u16` columns.
    pub(crate) fn sparse_bytes(&self) -> Option<&SparseBytes> {
        self.sparse
            .get_or_init(|| match &self.features {
                Features::Bytes(b) => SparseBytes::new(b, self.num_features),
                Features::Floats(_) => None,
            })
            .as_ref()
    }

    /// The transform applied to features when they are gathered, if any.
    pub fn transform(&self) -> Option<&FeatureTransform<T>> {
        self.transform.as_ref()
    }

    /// Replaces the feature transform (it must have one finite scale and offset per feature).
    pub fn set_transform(&mut self, transform: FeatureTransform<T>) -> Result<()> {
        same_size(
            "Dataset::set_transform",
            "transform length (features)",
            self.num_features,
            transform.len(),
        )?;
        // `uniform` takes any scale and offset: check here, once, for every constructor.
        transform.check_finite()?;
        self.transform = Some(transform);
        Ok(())
    }

    /// The same dataset with `transform` applied on gather.
    pub fn with_transform(mut self, transform: FeatureTransform<T>) -> Result<Self> {
        self.set_transform(transform)?;
        Ok(self)
    }

    /// The augmentation a training batch's gather applies, if any.
    pub fn augment(&self) -> Option<&Augment> {
        self.augment.as_ref()
    }

    /// Distorts this dataset's images by `augment` whenever a batch of a training step is
    /// gathered (see [`Augment`]); never when a batch without one is — evaluation, scoring
    /// and [`accuracy`](crate::accuracy) read the images as stored. Set it on the training
    /// set only. Needs byte features (pixels) of exactly the augmentation's image shape.
    pub fn set_augment(&mut self, augment: Augment) -> Result<()> {
        if !self.is_bytes() {
            return Err(Error::param(
                "augment",
                augment,
                "needs a dataset of byte features (pixels)",
            ));
        }
        let shape = augment.image_shape();
        same_size(
            "Dataset::set_augment",
            "features (the augmentation's image size)",
            self.num_features,
            shape.len(),
        )?;
        self.augment = Some(augment);
        Ok(())
    }

    /// The same dataset, its training batches distorted by `augment` (see
    /// [`set_augment`](Dataset::set_augment)).
    pub fn with_augment(mut self, augment: Augment) -> Result<Self> {
        self.set_augment(augment)?;
        Ok(self)
    }

    /// Stops distorting training batches.
    pub fn clear_augment(&mut self) {
        self.augment = None;
    }

    /// Example `row`'s features as stored, untransformed (byte features only; `None` for
    /// float features or a row past the end): the pixels, to draw an image or distort it.
    pub fn row_bytes(&self, row: usize) -> Option<&[u8]> {
        let f = self.num_features;
        match &self.features {
            Features::Bytes(b) => b.get(row * f..(row + 1) * f),
            Features::Floats(_) => None,
        }
    }

    /// Writes `bytes` (a row of this dataset's width) into `out`, converted and transformed
    /// as a stored row is.
    pub(crate) fn write_bytes(&self, bytes: &[u8], out: &mut [T]) {
        match &self.transform {
            Some(t) => affine_bytes(out, bytes, &t.scale, &t.offset),
            None => out
                .iter_mut()
                .zip(bytes)
                .for_each(|(o, &x)| *o = T::from_byte(x)),
        }
    }

    /// Writes example `row`'s (transformed) features into `out[..num_features()]`.
    pub fn gather_row(&self, row: usize, out: &mut [T]) -> Result<()> {
        if row >= self.len() {
            return Err(Error::shape(
                "Dataset::gather_row",
                "row (below the number of examples)",
                self.len(),
                row,
            ));
        }
        if out.len() < self.num_features {
            return Err(Error::shape(
                "Dataset::gather_row",
                "output length (features)",
                self.num_features,
                out.len(),
            ));
        }
        self.write_row(row, &mut out[..self.num_features]);
        Ok(())
    }

    /// The hot path of every batch: one row, converted and transformed in a single pass.
    /// `row < len()` and `out.len() == num_features` are the caller's (crate-internal) promise.
    #[inline]
    pub(crate) fn write_row(&self, row: usize, out: &mut [T]) {
        let f = self.num_features;
        let src = row * f..(row + 1) * f;
        match (&self.features, &self.transform) {
            (Features::Bytes(b), _) => self.write_bytes(&b[src], out),
            (Features::Floats(v), Some(t)) => affine(out, &v[src], &t.scale, &t.offset),
            (Features::Floats(v), None) => out.copy_from_slice(&v[src]),
        }
    }

    /// A new dataset holding copies of the examples at `indices`, with the same transform.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        indices_below("Dataset::select", indices, self.len())?;
        Ok(self.select_in_range(indices))
    }

    /// `select` for indices already known to be `< len()`.
    fn select_in_range(&self, indices: &[usize]) -> Self {
        let f = self.num_features;
        let features = match &self.features {
            Features::Bytes(b) => Features::Bytes(
                indices
                    .iter()
                    .flat_map(|&i| b[i * f..(i + 1) * f].iter().copied())
                    .collect(),
            ),
            Features::Floats(v) => Features::Floats(
                indices
                    .iter()
                    .flat_map(|&i| v[i * f..(i + 1) * f].iter().copied())
                    .collect(),
            ),
        };
        Dataset {
            features,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            num_features: f,
            num_classes: self.num_classes,
            transform: self.transform.clone(),
            augment: self.augment.clone(),
            density: OnceLock::new(),
            sparse: OnceLock::new(),
        }
    }

    /// Splits off a random validation set of `validation` examples (seeded); returns
    /// `(train, validation)`. Fit any standardisation on `train` afterwards.
    pub fn split(&self, validation: usize, seed: u64) -> Result<(Self, Self)> {
        if validation > self.len() {
            return Err(Error::param(
                "validation",
                validation,
                "must not exceed the number of examples",
            ));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut seeded(seed));
        let (valid, train) = order.split_at(validation);
        Ok((self.select_in_range(train), self.select_in_range(valid)))
    }

    /// The first `n` examples (all of them if there are fewer), as a new dataset.
    pub fn take(&self, n: usize) -> Self {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.select_in_range(&idx)
    }

    /// The scales of the transform, if any: the sparse gather multiplies each nonzero byte
    /// by its feature's scale and leaves the offset (the same for every row) to the first
    /// layer's bias.
    pub(crate) fn scales(&self) -> Option<&[T]> {
        self.transform.as_ref().map(|t| &t.scale[..])
    }

    /// Raw (untransformed) value of feature `j` of example `i` as `f64`; used for fitting.
    pub(crate) fn raw(&self, i: usize, j: usize) -> f64 {
        match &self.features {
            Features::Bytes(b) => b[i * self.num_features + j] as f64,
            Features::Floats(v) => v[i * self.num_features + j].to_f64_lossless(),
        }
    }
}
