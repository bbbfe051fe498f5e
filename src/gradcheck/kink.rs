//! Telling a kink from a bug.
//!
//! ReLU has a corner at 0 and the hinge loss one at its margin. When a finite-difference
//! probe `w ± h` straddles such a corner, the numeric slope is an average of the slopes on
//! either side, and disagrees with the analytic derivative however correct the backward pass
//! is. The check must not call that a failure — nor excuse a real bug as a kink.
//!
//! The test needs nothing from the objective but its loss, and works along any line (a
//! coordinate or a direction). Compare the one-sided slopes `D₊ = (f(w+h) − f(w))/h` and
//! `D₋ = (f(w) − f(w−h))/h`:
//!
//! * on a smooth stretch they differ by about `h·f''`, which shrinks with `h` and is far
//!   smaller than the discrepancy a wrong formula leaves;
//! * across a corner they differ by the jump in slope (times the fraction of the probe past
//!   the corner), and the centred difference sits exactly halfway between them — so the
//!   discrepancy `|a − n|` is at most about `|D₊ − D₋|`.
//!
//! A failing probe is a kink when (1) `|D₊ − D₋| ≥ |a − n|`, and the gap is well above
//! the rounding noise of a slope at this `h`, and (2) probing again with
//! `h/8` confirms it: either the corner is still straddled (the one-sided slopes still
//! disagree by at least a quarter as much, where a smooth function's disagreement would have
//! shrunk eightfold), or the smaller probe no longer reaches it and agrees with the analytic
//! value.

use crate::error::Result;
use crate::gradcheck::numeric::{loss_at, relative_error, restore, Axis};
use crate::model::Objective;
use crate::scalar::Scalar;

/// How much smaller the confirming probe is.
const SHRINK: f64 = 8.0;

/// What a probe's comparison needs to judge it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judge {
    pub h: f64,
    pub f0: f64,
    pub tolerance: f64,
    pub floor: f64,
    pub noise: f64,
}

/// Whether the disagreement between `analytic` and `numeric` along `axis` comes from a
/// corner of the loss within `h` of `base`.
pub(crate) fn crossed_kink<T: Scalar>(
    objective: &mut dyn Objective<T>,
    axis: Axis<'_, T>,
    base: &[T],
    judge: &Judge,
    analytic: f64,
    numeric: f64,
) -> Result<bool> {
    let (plus, minus) = one_sided_slopes(objective, axis, base, judge.h, judge.f0)?;
    let gap = (plus - minus).abs();
    // A gap within rounding noise says nothing about corners.
    if !(gap >= (analytic - numeric).abs() && gap > 2.0 * judge.noise) {
        return Ok(false);
    }
    let small = judge.h / SHRINK;
    let (plus_s, minus_s) = one_sided_slopes(objective, axis, base, small, judge.f0)?;
    let gap_s = (plus_s - minus_s).abs();
    let still_straddled = gap_s >= gap / 4.0 && gap_s > 2.0 * judge.noise * SHRINK;
    let out_of_reach =
        relative_error(analytic, 0.5 * (plus_s + minus_s), judge.floor) <= judge.tolerance;
    Ok(still_straddled || out_of_reach)
}

/// `(D₊, D₋)` at step `h` along `axis`, restoring the parameters afterwards.
fn one_sided_slopes<T: Scalar>(
    objective: &mut dyn Objective<T>,
    axis: Axis<'_, T>,
    base: &[T],
    h: f64,
    f0: f64,
) -> Result<(f64, f64)> {
    let step = T::from_f64(h);
    // The step actually taken along a coordinate, after rounding w ± h to T.
    let (hp, hm) = match axis {
        Axis::Coordinate(i) => (
            ((base[i] + step) - base[i]).to_f64_lossless(),
            (base[i] - (base[i] - step)).to_f64_lossless(),
        ),
        Axis::Direction(_) => (h, h),
    };
    let result: Result<(f64, f64)> = (|| {
        let fp = loss_at(objective, axis, base, step)?.to_f64_lossless();
        let fm = loss_at(objective, axis, base, -step)?.to_f64_lossless();
        Ok((fp, fm))
    })();
    restore(objective, axis, base);
    let (fp, fm) = result?;
    Ok(((fp - f0) / hp, (f0 - fm) / hm))
}
