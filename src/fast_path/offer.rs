//! The step an optimizer offers a model: one type from the offer to what was taken.

use std::ops::Range;

use crate::fast_path::proof::stays_finite;
use crate::kernels::update::{Pass, StepRows};
use crate::partition::{split_rows, split_rows_or_empty};
use crate::scalar::Scalar;

/// An update step a gradient method offers to let the model take in part, as it computes
/// the gradient ([`FastPath`](super::FastPath)).
///
/// A step is normally a pass over the whole gradient after it is written: every parameter,
/// its gradient and the rule's state read back from memory. A model that computes part of
/// its gradient in small tiles can step those parameters from each tile while it is in
/// registers, and never write that part of the gradient at all —
/// [`Mlp`](crate::model::Mlp)'s sparse first layer does, for `W₁`. The bits are those of
/// the separate pass: same formulas, same order.
///
/// What makes that safe is the refusal guarantee: a step that would write a non-finite
/// value must change nothing. So the offer carries what the optimizer knows — the rule's
/// constants, the largest magnitudes of the parameters and of its state — and a model takes
/// it only after [`proves`](StepOffer::proves), *before* it writes anything, that the whole
/// step (its part and the optimizer's) stays finite for every gradient it can produce. The
/// optimizer then steps the rest, on the strength of the same proof.
///
/// The offer owns the optimizer's state buffers while it is lent (moved, not copied) and
/// gives them back with the offer.
#[derive(Debug, Clone)]
pub struct StepOffer<T> {
    /// The rule's constants for this step (no clipping: the norm is not known in time).
    pub(crate) pass: Pass<T>,
    /// The largest magnitude in the parameters, and in each state buffer.
    pub(crate) w_peak: T,
    pub(crate) state_peak: [T; 2],
    /// The rule's state buffers: each as long as the parameters, or empty for one the rule
    /// does not keep (the optimizer checked them against the parameters before offering).
    pub(crate) state: [Vec<T>; 2],
    /// How many parameters the offer is for.
    len: usize,
    /// What the model took: its first `len` parameters, and the largest magnitude it wrote
    /// to each state buffer and to the parameters.
    pub(crate) taken: Option<(usize, [T; 3])>,
}

impl<T: Scalar> StepOffer<T> {
    /// An offer of the step `pass` for `len` parameters, from parameters and state of these
    /// largest magnitudes. The state must fit: each buffer the rule keeps `len` long, the
    /// others empty (the optimizer's one check of its state, before the step, makes it so).
    pub(crate) fn new(
        pass: Pass<T>,
        len: usize,
        w_peak: T,
        state_peak: [T; 2],
        state: [Vec<T>; 2],
    ) -> Self {
        debug_assert!(state
            .iter()
            .enumerate()
            .all(|(b, s)| s.len() == if b < pass.rule.buffers() { len } else { 0 }));
        StepOffer {
            pass,
            w_peak,
            state_peak,
            state,
            len,
            taken: None,
        }
    }

    /// Whether the offer is for a vector of `n` parameters.
    pub(crate) fn fits(&self, n: usize) -> bool {
        self.len == n
    }

    /// Whether the whole step is certain to stay finite for any gradient whose elements are
    /// at most `grad_bound` in magnitude: the one proof a step taken in part rests on.
    pub(crate) fn proves(&self, grad_bound: T) -> bool {
        self.taken.is_none() && stays_finite(&self.pass, self.w_peak, grad_bound, self.state_peak)
    }

    /// The per-thread cut: the leading parameters `w` (rows of `width`) and the same
    /// elements of each state buffer, in the rows `ranges` name, one piece per range, for
    /// the tile strategy to step.
    pub(crate) fn cut<'a>(
        &'a mut self,
        w: &'a mut [T],
        width: usize,
        ranges: &[Range<usize>],
    ) -> Vec<StepRows<'a, T>> {
        let pass = self.pass;
        let len = w.len();
        let [s0, s1] = &mut self.state;
        let s0 = split_rows_or_empty(s0, len, width, ranges);
        let s1 = split_rows_or_empty(s1, len, width, ranges);
        let w = split_rows(w, width, ranges);
        w.into_iter()
            .zip(s0)
            .zip(s1)
            .map(|((w, s0), s1)| StepRows { pass, w, s0, s1 })
            .collect()
    }

    /// Records that the model stepped its first `len` parameters, writing nothing larger
    /// than `peak` in magnitude to them or to the state.
    pub(crate) fn record_taken(&mut self, len: usize, peak: T) {
        self.taken = Some((len, [peak; 3]));
    }
}
