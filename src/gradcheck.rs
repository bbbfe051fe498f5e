//! Following the slope, numerically — and checking the analytic gradient against it.
//!
//! The numeric gradient nudges one parameter at a time and watches the loss:
//! forward differences `(f(w + h) − f(w)) / h` (one extra loss per parameter, error O(h)) or
//! centred differences `(f(w + h) − f(w − h)) / 2h` (two per parameter, error O(h²)). It is
//! slow — a full loss evaluation per coordinate — and approximate, but it is hard to get
//! wrong. The analytic gradient is exact and fast but easy to get wrong; so it is always
//! *checked* against the numeric one. That is the gradient check:
//!
//! ```
//! use downhill::data::Dataset;
//! use downhill::gradcheck::GradCheck;
//! use downhill::matrix::Matrix;
//! use downhill::model::{Activation, Mlp};
//!
//! let x = Matrix::from_vec(vec![0.5, -1.0, 2.0, 0.1, 0.3, -0.7], 3, 2)?;
//! let data = Dataset::from_matrix(x, vec![0, 2, 1], 3)?;
//! let mut mlp = Mlp::<f64>::builder(2).hidden(4, Activation::Tanh).classes(3).l2(0.1).build()?;
//! let report = GradCheck::new().run(&mut mlp, &data.all())?;
//! assert!(report.max_rel_error < 1e-7, "{report}");
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fmt;

use crate::data::Batch;
use crate::error::{non_negative, positive, Error, Result};
use crate::model::Model;
use crate::Scalar;

/// Which finite difference to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Difference {
    /// `(f(w + h) − f(w)) / h`: one extra loss per parameter, error O(h).
    Forward,
    /// `(f(w + h) − f(w − h)) / 2h`: two losses per parameter, error O(h²).
    #[default]
    Central,
    /// `(−f(w + 2h) + 8f(w + h) − 8f(w − h) + f(w − 2h)) / 12h`: four losses per parameter,
    /// error O(h⁴). Worth it when a check must resolve coordinates whose gradient nearly
    /// cancels over the batch: there the O(h²) term of the centred difference dominates.
    FivePoint,
}

/// The numeric gradient of `model`'s loss on `batch`, written into `out`
/// (`out.len() == model.num_params()`). The parameters are restored exactly afterwards.
pub fn numeric_gradient<T: Scalar>(
    model: &mut dyn Model<T>,
    batch: &Batch<'_, T>,
    h: T,
    difference: Difference,
    out: &mut [T],
) -> Result<()> {
    let h = positive("h", h)?;
    if out.len() != model.num_params() {
        return Err(Error::shape(
            "numeric_gradient",
            model.num_params(),
            out.len(),
        ));
    }
    let f0 = match difference {
        Difference::Forward => model.loss(batch)?,
        _ => T::zero(),
    };
    for (i, g) in out.iter_mut().enumerate() {
        let w = model.params()[i];
        let mut at = |delta: T| -> Result<T> {
            model.params_mut()[i] = w + delta;
            model.loss(batch)
        };
        let result = match difference {
            Difference::Forward => at(h).map(|fp| (fp - f0) / h),
            Difference::Central => at(h).and_then(|fp| Ok((fp - at(-h)?) / (h + h))),
            Difference::FivePoint => (|| {
                let (p1, m1, p2, m2) = (at(h)?, at(-h)?, at(h + h)?, at(-(h + h))?);
                Ok((T::of(8.0) * (p1 - m1) - (p2 - m2)) / (T::of(12.0) * h))
            })(),
        };
        // Restore the parameter even when a loss evaluation failed.
        model.params_mut()[i] = w;
        *g = result?;
    }
    Ok(())
}

/// `|a − n| / max(|a|, |n|, floor)`, and 0 when both are exactly 0.
///
/// With `floor = 0` this is the textbook relative error. A small positive `floor` stops a
/// coordinate whose true gradient is zero up to rounding (numerically 1e-12, analytically 0)
/// from reading as a 100% error.
pub fn relative_error(a: f64, n: f64, floor: f64) -> f64 {
    let denom = a.abs().max(n.abs()).max(floor);
    if denom == 0.0 {
        0.0
    } else {
        (a - n).abs() / denom
    }
}

/// How to run a gradient check; validated on construction.
#[derive(Debug, Clone, Copy)]
pub struct GradCheck {
    h: f64,
    difference: Difference,
    floor: f64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck::new()
    }
}

impl GradCheck {
    /// Centred differences with `h = 1e-5` (right for `f64`; use about `1e-2` for `f32`) and
    /// no floor on the relative error.
    pub fn new() -> Self {
        GradCheck {
            h: 1e-5,
            difference: Difference::Central,
            floor: 0.0,
        }
    }
    /// The finite-difference step (finite, > 0).
    pub fn h(mut self, h: f64) -> Result<Self> {
        self.h = positive("h", h)?;
        Ok(self)
    }
    /// Forward or centred differences.
    pub fn difference(mut self, difference: Difference) -> Self {
        self.difference = difference;
        self
    }
    /// The floor of the relative error's denominator (see [`relative_error`]).
    pub fn floor(mut self, floor: f64) -> Result<Self> {
        self.floor = non_negative("floor", floor)?;
        Ok(self)
    }

    /// Computes both gradients of `model` on `batch` and compares them coordinate by
    /// coordinate.
    pub fn run<T: Scalar>(
        &self,
        model: &mut dyn Model<T>,
        batch: &Batch<'_, T>,
    ) -> Result<GradReport<T>> {
        let mut analytic = vec![T::zero(); model.num_params()];
        model.loss_and_grad(batch, &mut analytic)?;
        let mut numeric = vec![T::zero(); model.num_params()];
        numeric_gradient(model, batch, T::of(self.h), self.difference, &mut numeric)?;
        let mut report = GradReport {
            max_rel_error: 0.0,
            max_abs_error: 0.0,
            worst_index: 0,
            analytic,
            numeric,
        };
        for (i, (a, n)) in report.analytic.iter().zip(&report.numeric).enumerate() {
            let (a, n) = (a.to_f64_lossless(), n.to_f64_lossless());
            let rel = relative_error(a, n, self.floor);
            // A NaN anywhere must fail the check: it becomes the maximum.
            if rel.is_nan() || rel > report.max_rel_error {
                report.max_rel_error = rel;
                report.worst_index = i;
            }
            let abs = (a - n).abs();
            if abs.is_nan() || abs > report.max_abs_error {
                report.max_abs_error = abs;
            }
        }
        Ok(report)
    }
}

/// The outcome of a gradient check.
#[derive(Debug, Clone)]
pub struct GradReport<T> {
    /// The largest relative error over all coordinates.
    pub max_rel_error: f64,
    /// The largest absolute difference over all coordinates.
    pub max_abs_error: f64,
    /// The coordinate with the largest relative error.
    pub worst_index: usize,
    /// The model's analytic gradient.
    pub analytic: Vec<T>,
    /// The numeric gradient.
    pub numeric: Vec<T>,
}

impl<T: Scalar> fmt::Display for GradReport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.worst_index;
        write!(
            f,
            "max relative error {:.3e} at parameter {i} (analytic {}, numeric {}), max absolute error {:.3e}",
            self.max_rel_error,
            self.analytic.get(i).copied().unwrap_or(T::nan()),
            self.numeric.get(i).copied().unwrap_or(T::nan()),
            self.max_abs_error
        )
    }
}
