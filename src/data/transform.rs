//! Per-feature affine transforms applied when rows are gathered: `x' = x·scale + offset`.
//!
//! Scaling pixels to [0, 1] and standardising each feature to zero mean and unit variance
//! are both of this form, and so is their composition, so one type covers both and the data
//! path does one multiply-add per feature.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::validate::{non_negative, same_size};
use crate::Scalar;

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

    /// Fits per-feature standardisation on `train` *as it is currently transformed*:
    /// `x'' = (x' − mean) / (std + eps)`, with the sample standard deviation (n − 1), and
    /// returns the composed transform from raw features to standardised ones.
    ///
    /// `eps` keeps constant features (MNIST's always-black border pixels) finite: they map
    /// to zero. Fit on the training split only and apply the result to every split.
    pub fn standardize(train: &Dataset<T>, eps: T) -> Result<Self> {
        let eps = non_negative("eps", eps)?.to_f64_lossless();
        let n = train.len();
        if n < 2 {
            return Err(Error::param(
                "standardize examples",
                n,
                "needs at least 2 examples to estimate a spread",
            ));
        }
        let f = train.num_features();
        let (s0, o0): (Vec<f64>, Vec<f64>) = match train.transform() {
            Some(t) => (
                t.scale.iter().map(|v| v.to_f64_lossless()).collect(),
                t.offset.iter().map(|v| v.to_f64_lossless()).collect(),
            ),
            None => (vec![1.0; f], vec![0.0; f]),
        };
        // Two passes in f64 (mean, then squared deviations): exact enough for 8-bit pixels
        // and immune to the cancellation of the one-pass formula.
        let mut mean = vec![0.0f64; f];
        for i in 0..n {
            for (j, m) in mean.iter_mut().enumerate() {
                *m += train.raw(i, j) * s0[j] + o0[j];
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0f64; f];
        for i in 0..n {
            for (j, v) in var.iter_mut().enumerate() {
                let d = train.raw(i, j) * s0[j] + o0[j] - mean[j];
                *v += d * d;
            }
        }
        let mut scale = Vec::with_capacity(f);
        let mut offset = Vec::with_capacity(f);
        for j in 0..f {
            let inv = 1.0 / ((var[j] / (n - 1) as f64).sqrt() + eps);
            if !inv.is_finite() {
                return Err(Error::param(
                    "eps",
                    eps,
                    "must be > 0 when a feature is constant (its standard deviation is 0)",
                ));
            }
            scale.push(T::from_f64(s0[j] * inv));
            offset.push(T::from_f64((o0[j] - mean[j]) * inv));
        }
        FeatureTransform::new(scale, offset)
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
