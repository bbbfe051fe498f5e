//! Telling a kink from a bug.
//!
//! ReLU has a corner at 0 and the hinge loss one at its margin. When a finite-difference
//! probe `w ± h` straddles such a corner, the numeric slope is an average of the slopes on
//! either side, and disagrees with the analytic derivative however correct the backward pass
//! is. The check must not call that a failure — nor excuse a real bug as a kink.
//!
//! The test needs nothing from the model but its loss. Compare the one-sided slopes
//! `D₊ = (f(w+h) − f(w))/h` and `D₋ = (f(w) − f(w−h))/h`:
//!
//! * on a smooth stretch they differ by about `h·f''`, which shrinks with `h` and is far
//!   smaller than the discrepancy a wrong formula leaves;
//! * across a corner they differ by the jump in slope (times the fraction of the probe past
//!   the corner), and the centred difference sits exactly halfway between them — so the
//!   discrepancy `|a − n|` is at most about `|D₊ − D₋|`.
//!
//! A failing coordinate is a kink when (1) `|D₊ − D₋| ≥ |a − n|`, and the gap is well above
//! the rounding noise of a slope at this `h`, and (2) probing again with
//! `h/8` confirms it: either the corner is still straddled (the one-sided slopes still
//! disagree by at least a quarter as much, where a smooth function's disagreement would have
//! shrunk eightfold), or the smaller probe no longer reaches it and agrees with the analytic
//! value.

use crate::data::Batch;
use crate::error::Result;
use crate::gradcheck::numeric::relative_error;
use crate::model::Model;
use crate::Scalar;

/// How much smaller the confirming probe is.
const SHRINK: f64 = 8.0;

/// Whether coordinate `i`'s disagreement between `analytic` and `numeric` comes from a
/// corner of the loss within `h` of the current parameters. `f0` is the loss there.
#[allow(clippy::too_many_arguments)]
pub(crate) fn crossed_kink<T: Scalar>(
    model: &mut dyn Model<T>,
    batch: &Batch<'_, T>,
    i: usize,
    h: f64,
    f0: f64,
    analytic: f64,
    numeric: f64,
    tolerance: f64,
    floor: f64,
    noise: f64,
) -> Result<bool> {
    let (plus, minus) = one_sided_slopes(model, batch, i, h, f0)?;
    let gap = (plus - minus).abs();
    // A gap within rounding noise says nothing about corners.
    if !(gap >= (analytic - numeric).abs() && gap > 2.0 * noise) {
        return Ok(false);
    }
    let small = h / SHRINK;
    let (plus_s, minus_s) = one_sided_slopes(model, batch, i, small, f0)?;
    let gap_s = (plus_s - minus_s).abs();
    let still_straddled = gap_s >= gap / 4.0 && gap_s > 2.0 * noise * SHRINK;
    let out_of_reach = relative_error(analytic, 0.5 * (plus_s + minus_s), floor) <= tolerance;
    Ok(still_straddled || out_of_reach)
}

/// `(D₊, D₋)` at step `h`, restoring the parameter afterwards.
fn one_sided_slopes<T: Scalar>(
    model: &mut dyn Model<T>,
    batch: &Batch<'_, T>,
    i: usize,
    h: f64,
    f0: f64,
) -> Result<(f64, f64)> {
    let w = model.params()[i];
    // The step actually taken, after rounding w ± h to T.
    let up = w + T::of(h);
    let down = w - T::of(h);
    let mut at = |v: T| -> Result<f64> {
        model.params_mut()[i] = v;
        Ok(model.loss(batch)?.to_f64_lossless())
    };
    let result = (|| Ok((at(up)?, at(down)?)))();
    model.params_mut()[i] = w;
    let (fp, fm) = result?;
    let (hp, hm) = ((up - w).to_f64_lossless(), (w - down).to_f64_lossless());
    Ok(((fp - f0) / hp, (f0 - fm) / hm))
}
