//! The numeric gradient: nudge the parameters along a line, watch the loss.
//!
//! A line is one coordinate (the lecture's `W + h` in one dimension) or a direction `v`
//! through all of them (the fast mode). Only [`Objective::loss`] is called — no backward
//! pass — and the parameters are moved in place and put back exactly, so probing a
//! coordinate allocates nothing. Its cost is the loss evaluations themselves: one per probe
//! for forward differences, two for centred, four for five-point.

use crate::error::{Error, Result};
use crate::model::Objective;
use crate::scalar::Scalar;
use crate::validate::{positive, same_size};

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
    /// Loss evaluations per probe (forward differences also need one at `w`, shared by all
    /// probes).
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

/// A line through the parameters, from `base`: one coordinate, or a direction.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Axis<'a, T> {
    Coordinate(usize),
    Direction(&'a [T]),
}

/// The loss at `base + t·axis` (the parameters are left there; see [`restore`]).
pub(crate) fn loss_at<T: Scalar>(
    objective: &mut dyn Objective<T>,
    axis: Axis<'_, T>,
    base: &[T],
    t: T,
) -> Result<T> {
    match axis {
        Axis::Coordinate(i) => objective.params_mut()[i] = base[i] + t,
        Axis::Direction(v) => {
            for ((p, &b), &v) in objective.params_mut().iter_mut().zip(base).zip(v) {
                *p = b + t * v;
            }
        }
    }
    objective.loss()
}

/// Puts the parameters `axis` moved back to `base`, exactly.
pub(crate) fn restore<T: Scalar>(objective: &mut dyn Objective<T>, axis: Axis<'_, T>, base: &[T]) {
    match axis {
        Axis::Coordinate(i) => objective.params_mut()[i] = base[i],
        Axis::Direction(_) => objective.params_mut().copy_from_slice(base),
    }
}

/// The finite difference `difference` of `at` (the loss at a step `t` from the base
/// point; `f0` the loss at the base, used by forward differences only).
fn difference_of<T: Scalar>(
    mut at: impl FnMut(T) -> Result<T>,
    h: T,
    difference: Difference,
    f0: T,
) -> Result<T> {
    match difference {
        Difference::Forward => Ok((at(h)? - f0) / h),
        Difference::Central => Ok((at(h)? - at(-h)?) / (h + h)),
        Difference::FivePoint => {
            let (p1, m1, p2, m2) = (at(h)?, at(-h)?, at(h + h)?, at(-(h + h))?);
            Ok((T::from_f64(8.0) * (p1 - m1) - (p2 - m2)) / (T::from_f64(12.0) * h))
        }
    }
}

/// The numeric derivative of the loss along `axis` at `base`; `f0` (the loss at `base`) is
/// needed by forward differences only. The parameters are restored exactly afterwards,
/// even when a loss evaluation fails.
pub(crate) fn derivative_along<T: Scalar>(
    objective: &mut dyn Objective<T>,
    axis: Axis<'_, T>,
    base: &[T],
    h: T,
    difference: Difference,
    f0: T,
) -> Result<T> {
    let result = difference_of(|t| loss_at(objective, axis, base, t), h, difference, f0);
    restore(objective, axis, base);
    result
}

/// The numeric partial derivative of `objective`'s loss along parameter `i`, with step `h`.
/// The parameter is restored exactly afterwards.
///
/// ```
/// use downhill::gradcheck::{numeric_partial, Difference};
/// use downhill::model::FnObjective;
///
/// let mut f = FnObjective::new(vec![3.0, 1.0], |p: &[f64]| p[0] * p[0] * p[1], |_: &[f64], _: &mut [f64]| {});
/// let d = numeric_partial(&mut f, 0, 1e-6, Difference::Central)?;
/// assert!((d - 6.0).abs() < 1e-8); // ∂(x²y)/∂x = 2xy
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn numeric_partial<T: Scalar>(
    objective: &mut dyn Objective<T>,
    i: usize,
    h: T,
    difference: Difference,
) -> Result<T> {
    let h = positive("h", h)?;
    let n = objective.params().len();
    if i >= n {
        return Err(Error::shape(
            "numeric_partial",
            "parameter index (below the parameter count)",
            n,
            i,
        ));
    }
    let f0 = match difference {
        Difference::Forward => objective.loss()?,
        _ => T::zero(),
    };
    let w = objective.params()[i];
    let result = difference_of(
        |t| {
            objective.params_mut()[i] = w + t;
            objective.loss()
        },
        h,
        difference,
        f0,
    );
    objective.params_mut()[i] = w;
    result
}

/// The numeric gradient of `objective`'s loss, every coordinate, written into `out`
/// (`out.len() == params().len()`). The parameters are restored exactly afterwards.
///
/// ```
/// use downhill::gradcheck::{numeric_gradient, Difference};
/// use downhill::prelude::*;
///
/// let x = Matrix::from_vec(vec![1.0, -2.0], 1, 2)?;
/// let data = Dataset::from_matrix(x, vec![1], 2)?;
/// let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
/// let all = data.all();
/// let mut numeric = vec![0.0; model.num_params()];
/// numeric_gradient(&mut model.on(&all), 1e-6, Difference::Central, &mut numeric)?;
/// let mut analytic = vec![0.0; model.num_params()];
/// model.loss_and_grad(&all, &mut analytic)?;
/// for (n, a) in numeric.iter().zip(&analytic) {
///     assert!((n - a).abs() < 1e-8);
/// }
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn numeric_gradient<T: Scalar>(
    objective: &mut dyn Objective<T>,
    h: T,
    difference: Difference,
    out: &mut [T],
) -> Result<()> {
    let h = positive("h", h)?;
    same_size(
        "numeric_gradient",
        "output length (parameter count)",
        objective.params().len(),
        out.len(),
    )?;
    let f0 = match difference {
        Difference::Forward => objective.loss()?,
        _ => T::zero(),
    };
    let base = objective.params().to_vec();
    for (i, g) in out.iter_mut().enumerate() {
        *g = derivative_along(objective, Axis::Coordinate(i), &base, h, difference, f0)?;
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
