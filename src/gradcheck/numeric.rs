//! The numeric gradient: nudge one parameter, watch the loss.
//!
//! Only [`Model::loss`] is called — no backward pass — and the parameter vector is modified
//! in place and restored, so the numeric side allocates nothing per coordinate. Its cost is
//! therefore the cost of the loss evaluations themselves: one per coordinate for forward
//! differences, two for centred, four for five-point.

use crate::data::Batch;
use crate::error::{positive, Error, Result};
use crate::model::Model;
use crate::Scalar;

/// Which finite difference to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Difference {
    /// `(f(w + h) − f(w)) / h`: one extra loss per parameter, error O(h).
    Forward,
    /// `(f(w + h) − f(w − h)) / 2h`: two losses per parameter, error O(h²). The default: the
    /// best accuracy per loss evaluation.
    #[default]
    Central,
    /// `(−f(w + 2h) + 8f(w + h) − 8f(w − h) + f(w − 2h)) / 12h`: four losses per parameter,
    /// error O(h⁴). Worth it when a check must resolve coordinates whose gradient nearly
    /// cancels over the batch: there the O(h²) term of the centred difference dominates.
    FivePoint,
}

impl Difference {
    /// Loss evaluations per coordinate (forward differences also need one at `w`, shared by
    /// all coordinates).
    pub fn evaluations(self) -> usize {
        match self {
            Difference::Forward => 1,
            Difference::Central => 2,
            Difference::FivePoint => 4,
        }
    }

    /// The step that balances truncation error against rounding error for this difference
    /// in a type with machine epsilon `eps`: `eps^(1/2)` for forward differences (error
    /// `h·f''/2 + eps·f/h`), `eps^(1/3)` for centred (`h²·f'''/6 + eps·f/h`) and `eps^(1/5)`
    /// for five-point, for a loss and derivatives of order 1.
    ///
    /// In `f64`: 1.5e-8, 6.1e-6 and 7.4e-4; in `f32`: 3.5e-4, 4.9e-3 and 4.1e-2.
    pub fn default_h(self, eps: f64) -> f64 {
        match self {
            Difference::Forward => eps.sqrt(),
            Difference::Central => eps.cbrt(),
            Difference::FivePoint => eps.powf(0.2),
        }
    }
}

/// The numeric partial derivative of `model`'s loss on `batch` along parameter `i`.
///
/// `f0` is the loss at the current parameters; only forward differences use it. The
/// parameter is restored exactly afterwards, even when a loss evaluation fails.
pub fn numeric_partial<T: Scalar>(
    model: &mut dyn Model<T>,
    batch: &Batch<'_, T>,
    i: usize,
    h: T,
    difference: Difference,
    f0: T,
) -> Result<T> {
    let n = model.num_params();
    let w = *model
        .params()
        .get(i)
        .ok_or_else(|| Error::shape("numeric_partial: parameter index", n, i))?;
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
    model.params_mut()[i] = w;
    result
}

/// The numeric gradient of `model`'s loss on `batch`, every coordinate, written into `out`
/// (`out.len() == model.num_params()`). The parameters are restored exactly afterwards.
///
/// ```
/// use downhill::gradcheck::{numeric_gradient, Difference};
/// use downhill::prelude::*;
///
/// let x = Matrix::from_vec(vec![1.0, -2.0], 1, 2)?;
/// let data = Dataset::from_matrix(x, vec![1], 2)?;
/// let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
/// let mut numeric = vec![0.0; model.num_params()];
/// numeric_gradient(&mut model, &data.all(), 1e-6, Difference::Central, &mut numeric)?;
/// let mut analytic = vec![0.0; model.num_params()];
/// model.loss_and_grad(&data.all(), &mut analytic)?;
/// for (n, a) in numeric.iter().zip(&analytic) {
///     assert!((n - a).abs() < 1e-8);
/// }
/// # Ok::<(), downhill::Error>(())
/// ```
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
        *g = numeric_partial(model, batch, i, h, difference, f0)?;
    }
    Ok(())
}

/// `|a − n| / max(|a|, |n|, floor)`, and 0 when both are exactly 0.
///
/// With `floor = 0` this is the textbook relative error. A small positive `floor` stops a
/// coordinate whose true gradient is zero up to rounding (numerically 1e-12, analytically 0)
/// from reading as a 100% error. A NaN in either gives NaN.
pub fn relative_error(a: f64, n: f64, floor: f64) -> f64 {
    let denom = a.abs().max(n.abs()).max(floor);
    if a.is_nan() || n.is_nan() {
        f64::NAN
    } else if denom == 0.0 {
        0.0
    } else {
        (a - n).abs() / denom
    }
}
