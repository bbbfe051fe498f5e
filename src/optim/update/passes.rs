//! The update's passes over the parameters, cut into shares on the model's threads: in
//! place, into spare buffers, and the gradient's norm and magnitude.

use std::ops::Range;

use crate::error::{Error, ErrorKind, Quantity, Result};
use crate::fast_path::Shares;
use crate::kernels::elementwise::{first_non_finite, sum_squares};
use crate::kernels::update::{apply, apply_in_place, magnitude, InPlace, Pass, Share};
use crate::model::Objective;
use crate::optim::RuleState;
use crate::partition::split_ranges;
use crate::scalar::Scalar;

/// The gradient's norm is summed in chunks of this many elements, whatever the thread
/// count, so its rounding — and the clipped step — does not depend on the thread count.
const NORM_CHUNK: usize = 4096;

/// Resizes `buf` to `len` (new elements zero), keeping its allocation across steps.
pub(super) fn resize<T: Scalar>(buf: &mut Vec<T>, len: usize) {
    if buf.len() != len {
        buf.clear();
        buf.resize(len, T::zero());
    }
}

/// Where `objective`'s parameters are cut between its threads: its fast path's shares, or
/// one share on this thread.
fn shares_of<T: Scalar>(objective: &mut dyn Objective<T>) -> Shares {
    let n = objective.params().len();
    match objective.fast_path() {
        Some(mut fast) => fast.open().shares(),
        None => Shares::one(n),
    }
}

/// One share's pieces: its range, its piece of the parameters, and its pieces of the rule's
/// two state buffers (empty for a buffer the rule does not keep).
type SharePieces<'a, T> = (Range<usize>, &'a mut [T], [&'a mut [T]; 2]);

/// Cuts `w` and each of `states` (at most two, each as long as `w` or empty) into the
/// pieces `ranges` name, in order: what both update passes hand their shares.
fn cut_into_shares<'a, T>(
    ranges: &[Range<usize>],
    mut w: &'a mut [T],
    states: Vec<&'a mut [T]>,
) -> Vec<SharePieces<'a, T>> {
    let mut states = states.into_iter();
    let mut s0: &'a mut [T] = states.next().unwrap_or(&mut []);
    let mut s1: &'a mut [T] = states.next().unwrap_or(&mut []);
    ranges
        .iter()
        .map(|r| {
            let mine = |rest: &mut &'a mut [T]| -> &'a mut [T] {
                if rest.is_empty() {
                    return &mut [];
                }
                let (piece, tail) = std::mem::take(rest).split_at_mut(r.len());
                *rest = tail;
                piece
            };
            (r.clone(), mine(&mut w), [mine(&mut s0), mine(&mut s1)])
        })
        .collect()
}

/// The largest magnitude of the gradient `g`, one pass on the model's threads (it was just
/// written, so it is mostly in cache); `None` if an element is not finite.
pub(super) fn grad_peak<T: Scalar>(objective: &mut dyn Objective<T>, g: &[T]) -> Result<Option<T>> {
    let shares = shares_of(objective);
    let peaks = shares.map(shares.ranges(), |r| magnitude(&g[r]));
    Ok(peaks
        .into_iter()
        .try_fold(T::zero(), |top, share| share.map(|m| top.max(m))))
}

/// The in-place pass over parameters `from..` (the model has stepped those before) and
/// the same elements of the state, on the model's threads: returns each share's largest
/// magnitudes written (state buffers, then parameters). Only for a step proved finite.
///
/// With more than one share, the model lends its parameter vector for the pass (swapped
/// into `lent`, free for a model with a fast path) so that its threads can each update
/// their share while it is borrowed.
pub(super) fn in_place<T: Scalar>(
    objective: &mut dyn Objective<T>,
    pass: &Pass<T>,
    g: &[T],
    from: usize,
    state: &mut RuleState<T>,
    lent: &mut Vec<T>,
) -> Result<Vec<[T; 3]>> {
    let n = g.len();
    let shares = shares_of(objective);
    // The shares' ranges, less what the model stepped.
    let ranges: Vec<_> = shares
        .ranges()
        .into_iter()
        .map(|r| r.start.max(from)..r.end.max(from))
        .collect();
    let states: Vec<&mut [T]> = state
        .buffers_mut()
        .into_iter()
        .map(|b| &mut b[from..])
        .collect();
    let step = |(r, w, [s0, s1]): SharePieces<'_, T>| {
        apply_in_place(
            pass,
            InPlace {
                w,
                g: &g[r],
                s0,
                s1,
            },
        )
    };
    if shares.count() <= 1 {
        let whole = from..n;
        let whole = std::slice::from_ref(&whole);
        let items = cut_into_shares(whole, &mut objective.params_mut()[from..], states);
        return Ok(items.into_iter().map(step).collect());
    }
    let Some(mut fast) = objective.fast_path() else {
        return Err(Error::thread(
            "a model without a fast path has more than one share",
        ));
    };
    fast.open().swap_params(lent)?;
    let items = cut_into_shares(&ranges, &mut lent[from..], states);
    let peaks = shares.map(items, step);
    // The parameters go back to the model.
    fast.open().swap_params(lent)?;
    Ok(peaks)
}

/// The update pass into spare buffers over every share: reads the live parameters, `grad`
/// and `state_in` (read as zeros while it is empty, PyTorch's start); writes `params_out`
/// and `state_out`. `Err(Diverged)` if any share wrote a non-finite value, naming the
/// gradient element if the gradient itself was not finite, else the first non-finite value
/// the step computed.
pub(super) fn into_spare<T: Scalar>(
    objective: &mut dyn Objective<T>,
    pass: &Pass<T>,
    grad: &[T],
    state_in: &RuleState<T>,
    params_out: &mut [T],
    state_out: &mut RuleState<T>,
) -> Result<()> {
    let shares = shares_of(objective);
    let w = objective.params();
    let zeros;
    let state_in: Vec<&[T]> = if state_in.is_empty() {
        zeros = vec![T::zero(); w.len()];
        state_out.buffers().iter().map(|_| &zeros[..]).collect()
    } else {
        state_in.buffers()
    };
    let finite = {
        let states = state_out.buffers_mut().into_iter().map(|v| &mut v[..]);
        let items = cut_into_shares(&shares.ranges(), params_out, states.collect());
        let none: &[T] = &[];
        shares.map(items, |(r, w_out, [s0_out, s1_out])| {
            apply(
                pass,
                Share {
                    w: &w[r.clone()],
                    g: &grad[r.clone()],
                    s0: state_in.first().map_or(none, |s| &s[r.clone()]),
                    s1: state_in.get(1).map_or(none, |s| &s[r.clone()]),
                    w_out,
                    s0_out,
                    s1_out,
                },
            )
        })
    };
    if finite.iter().all(|&ok| ok) {
        return Ok(());
    }
    // Refused. Say what was not finite: the gradient, or else what the step computed.
    let (quantity, value) = match first_non_finite(grad) {
        Some(g) => (Quantity::Gradient, g),
        None => {
            let written = std::iter::once(&*params_out).chain(state_out.buffers());
            let bad = written.filter_map(first_non_finite).next();
            (Quantity::Step, bad.unwrap_or_else(T::nan))
        }
    };
    Err(ErrorKind::Diverged {
        quantity,
        value: value.to_f64_lossless(),
        epoch: None,
        step: None,
    }
    .into())
}

/// The factor that scales `g` to global norm at most `max` (PyTorch's `clip_grad_norm_`:
/// `max/(‖g‖ + 1e-6)`, capped at 1). The norm is summed in fixed chunks, on the model's
/// threads, so its value does not depend on how many there are.
pub(super) fn clip_factor<T: Scalar>(
    objective: &mut dyn Objective<T>,
    g: &[T],
    max: T,
) -> Result<T> {
    let shares = shares_of(objective);
    let chunks = g.len().div_ceil(NORM_CHUNK);
    let mut partials = vec![0.0f64; chunks];
    let ranges = split_ranges(chunks, shares.count(), 1);
    let mut items = Vec::with_capacity(ranges.len());
    let mut rest = &mut partials[..];
    for r in &ranges {
        let (mine, tail) = rest.split_at_mut(r.len());
        items.push((r.start, mine));
        rest = tail;
    }
    shares.map(items, |(first, out)| {
        for (k, p) in out.iter_mut().enumerate() {
            let start = (first + k) * NORM_CHUNK;
            *p = sum_squares(&g[start..(start + NORM_CHUNK).min(g.len())]);
        }
    });
    let norm = partials.iter().sum::<f64>().sqrt();
    if !norm.is_finite() {
        return Err(Error::diverged(Quantity::GradientNorm, norm));
    }
    let factor = max.to_f64_lossless() / (norm + 1e-6);
    Ok(if factor < 1.0 {
        T::from_f64(factor)
    } else {
        T::one()
    })
}
