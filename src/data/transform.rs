//! Per-feature affine transforms applied when rows are gathered: `x' = x·scale + offset`.
//!
//! Scaling pixels to [0, 1] and standardising each feature to zero mean and unit variance
//! are both of this form, and so is their composition, so one type covers both and the data
//! path does one multiply-add per feature.

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::validate::same_size;

/// `x' = x·scale[j] + offset[j]` for feature `j`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTransform<T> {
    pub(crate) scale: Vec<T>,
    pub(crate) offset: Vec<T>,
}

impl<T: Scalar> FeatureTransform<T> {
    /// The same `scale` and `offset` for each of `num_features` features
    /// (`uniform(784, 1.0 / 255.0, 0.0)` maps pixels to [0, 1]).
    pub fn uniform(num_features: usize, scale: T, offset: T) -> Self {
        FeatureTransform {
            scale: vec![scale; num_features],
            offset: vec![offset; num_features],
        }
    }

    /// Per-feature scales and offsets (same length, all finite).
    pub fn new(scale: Vec<T>, offset: Vec<T>) -> Result<Self> {
        same_size(
            "FeatureTransform::new",
            "offsets (one per scale)",
            scale.len(),
            offset.len(),
        )?;
        let transform = FeatureTransform { scale, offset };
        transform.check_finite()?;
        Ok(transform)
    }

    /// Number of features this transform applies to.
    pub fn len(&self) -> usize {
        self.scale.len()
    }

    /// True for a transform of zero features.
    pub fn is_empty(&self) -> bool {
        self.scale.is_empty()
    }

    /// Applies the transform to feature `j` (`None` if `j` is out of range).
    pub fn apply(&self, j: usize, x: T) -> Option<T> {
        Some(x * *self.scale.get(j)? + *self.offset.get(j)?)
    }

    /// Every scale and offset must be finite: one NaN would poison every gathered row.
    pub(crate) fn check_finite(&self) -> Result<()> {
        let pairs = self.scale.iter().zip(&self.offset);
        if let Some((j, (s, o))) = pairs
            .enumerate()
            .find(|(_, (s, o))| !s.is_finite() || !o.is_finite())
        {
            return Err(Error::param(
                "feature transform",
                format!("scale {s}, offset {o} for feature {j}"),
                "must be finite",
            ));
        }
        Ok(())
    }
}
