//! Fitting a [`FeatureTransform`] to a dataset: per-feature standardisation.

use crate::data::{Dataset, FeatureTransform};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::validate::non_negative;

impl<T: Scalar> FeatureTransform<T> {
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
}
