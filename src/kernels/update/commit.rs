//! The three commit strategies, each one loop driving any [`Rule`]: into spare buffers
//! (checked), in place (proved beforehand), and in a register tile (inside a kernel).

use crate::kernels::lanes::{bigger, tile_mut};
use crate::kernels::update::rules::{with_rule, Pass, Rule};
use crate::scalar::Scalar;

/// Elements per chunk: a strategy computes a chunk's outputs, then checks or measures them
/// while they are still in L1 (2 KiB of `f32` per output stream).
const CHUNK: usize = 512;

/// The chunks of `0..n`.
fn chunks(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n).step_by(CHUNK).map(move |a| a..(a + CHUNK).min(n))
}

/// The largest `|x|` of `xs` (all finite), in eight lanes the compiler keeps in registers.
#[inline(always)]
fn peak<T: Scalar>(xs: &[T]) -> T {
    let mut lanes = [T::zero(); 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = bigger(*lane, x);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::zero(), |m, &x| bigger(m, x));
    lanes.iter().fold(tail, |m, &l| bigger(m, l))
}

/// The largest `|x|`, or `None` if an element is not finite: one loop, eight lanes of the
/// running maximum beside eight of `x · 0` (0 for a finite `x`, NaN otherwise).
#[inline(always)]
fn magnitude_body<T: Scalar>(xs: &[T]) -> Option<T> {
    let zero = T::zero();
    let (mut top, mut bad) = ([zero; 8], [zero; 8]);
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for ((t, b), &x) in top.iter_mut().zip(bad.iter_mut()).zip(chunk) {
            *t = bigger(*t, x);
            *b = *b + x * zero;
        }
    }
    let rest = chunks.remainder();
    let flags = bad.iter().chain(rest).fold(zero, |acc, &x| acc + x * zero);
    flags.is_finite().then(|| peak(&top).max(peak(rest)))
}

dispatch!(
    /// The largest `|x|` of `xs`, or `None` if any element is not finite: what a step's
    /// proof needs to know of the parameters, the gradient and the state.
    pub(crate) magnitude, magnitude_avx2, magnitude_body,
    (xs: &[T]) -> Option<T>
);

/// The state a rule reads at `j`: `s0[j]` and `s1[j]` for the buffers it keeps, zero for
/// the others (never read: `R::BUFFERS` is a constant, so the branches fold away).
#[inline(always)]
fn state_at<T: Scalar, R: Rule<T>>(s0: &[T], s1: &[T], j: usize) -> [T; 2] {
    [
        if R::BUFFERS > 0 { s0[j] } else { T::zero() },
        if R::BUFFERS > 1 { s1[j] } else { T::zero() },
    ]
}

/// Writes the state a rule computed at `j` into the buffers it keeps.
#[inline(always)]
fn store<T: Scalar, R: Rule<T>>(s0: &mut [T], s1: &mut [T], j: usize, s: [T; 2]) {
    if R::BUFFERS > 0 {
        s0[j] = s[0];
    }
    if R::BUFFERS > 1 {
        s1[j] = s[1];
    }
}

/// `n` cut to the lengths of the state buffers the rule keeps (inputs and outputs): the
/// length a strategy's loop runs over, so the compiler drops the bounds checks.
#[inline(always)]
fn kept_len<T: Scalar, R: Rule<T>>(n: usize, s0: [usize; 2], s1: [usize; 2]) -> usize {
    let n = if R::BUFFERS > 0 {
        n.min(s0[0]).min(s0[1])
    } else {
        n
    };
    if R::BUFFERS > 1 {
        n.min(s1[0]).min(s1[1])
    } else {
        n
    }
}

/// `s[r]` cut to `m` elements for a buffer the rule keeps (so the compiler drops the bounds
/// checks), empty for one it does not.
#[inline(always)]
fn kept<T>(keeps: bool, s: &[T], r: std::ops::Range<usize>, m: usize) -> &[T] {
    if keeps {
        &s[r][..m]
    } else {
        &[]
    }
}

/// [`kept`], writable.
#[inline(always)]
fn kept_mut<T>(keeps: bool, s: &mut [T], r: std::ops::Range<usize>, m: usize) -> &mut [T] {
    if keeps {
        &mut s[r][..m]
    } else {
        &mut []
    }
}

/// One share of a step into spare buffers: inputs, and the buffers the pass writes. State
/// slices a rule does not keep are empty.
pub(crate) struct Share<'a, T> {
    pub w: &'a [T],
    pub g: &'a [T],
    pub s0: &'a [T],
    pub s1: &'a [T],
    pub w_out: &'a mut [T],
    pub s0_out: &'a mut [T],
    pub s1_out: &'a mut [T],
}

/// The spare-buffer strategy: writes `s`'s outputs chunk by chunk, and says false at the
/// first chunk with a non-finite output. The constants come by value: read through a
/// reference, they would be reloaded after every store to the outputs.
#[inline(always)]
fn spare<T: Scalar, R: Rule<T>>(rule: R, c: T, wd: T, s: Share<'_, T>) -> bool {
    let (one, two) = (R::BUFFERS > 0, R::BUFFERS > 1);
    let n = s.w.len().min(s.g.len()).min(s.w_out.len());
    let n = kept_len::<T, R>(
        n,
        [s.s0.len(), s.s0_out.len()],
        [s.s1.len(), s.s1_out.len()],
    );
    for r in chunks(n) {
        let (w, g) = (&s.w[r.clone()], &s.g[r.clone()]);
        let m = w.len();
        let (g, w_out) = (&g[..m], &mut s.w_out[r.clone()][..m]);
        let (s0, s1) = (kept(one, s.s0, r.clone(), m), kept(two, s.s1, r.clone(), m));
        let s0_out = kept_mut(one, s.s0_out, r.clone(), m);
        let s1_out = kept_mut(two, s.s1_out, r, m);
        for j in 0..m {
            let (nw, ns) = rule.apply(w[j], c * g[j] + wd * w[j], state_at::<T, R>(s0, s1, j));
            w_out[j] = nw;
            store::<T, R>(s0_out, s1_out, j, ns);
        }
        // `magnitude_body` says `None` for a chunk with a non-finite value.
        let written = [&*w_out, &*s0_out, &*s1_out];
        if written.iter().any(|xs| magnitude_body(xs).is_none()) {
            return false;
        }
    }
    true
}

#[inline(always)]
fn apply_body<T: Scalar>(pass: &Pass<T>, s: Share<'_, T>) -> bool {
    let (c, wd) = (pass.grad_scale, pass.weight_decay);
    with_rule!(pass.rule, |rule| spare(rule, c, wd, s))
}

dispatch!(
    /// Runs `pass` over one share, writing `s`'s outputs. True if every value written is
    /// finite; false means the outputs are garbage and must not be committed (the inputs
    /// are untouched either way).
    pub(crate) apply, apply_avx2, apply_body,
    (pass: &Pass<T>, s: Share<'_, T>) -> bool
);

/// One share of a step taken in place: the live parameters and the rule's live state,
/// overwritten. Only for a step proved finite: nothing here checks, and nothing could be
/// taken back. State slices a rule does not keep are empty.
pub(crate) struct InPlace<'a, T> {
    pub w: &'a mut [T],
    pub g: &'a [T],
    pub s0: &'a mut [T],
    pub s1: &'a mut [T],
}

/// The in-place strategy: returns the largest magnitude written to each state buffer and
/// to `w` (what the next step's proof needs to know), each taken from the chunk while it is
/// in L1.
#[inline(always)]
fn overwrite<T: Scalar, R: Rule<T>>(rule: R, c: T, wd: T, s: InPlace<'_, T>) -> [T; 3] {
    let (one, two) = (R::BUFFERS > 0, R::BUFFERS > 1);
    let n = kept_len::<T, R>(s.w.len().min(s.g.len()), [s.s0.len(); 2], [s.s1.len(); 2]);
    let mut top = [T::zero(); 3];
    for r in chunks(n) {
        let (w, g) = (&mut s.w[r.clone()], &s.g[r.clone()]);
        let m = w.len();
        let g = &g[..m];
        let s0 = kept_mut(one, s.s0, r.clone(), m);
        let s1 = kept_mut(two, s.s1, r, m);
        for j in 0..m {
            let (nw, ns) = rule.apply(w[j], c * g[j] + wd * w[j], state_at::<T, R>(s0, s1, j));
            w[j] = nw;
            store::<T, R>(s0, s1, j, ns);
        }
        top = [
            top[0].max(peak(s0)),
            top[1].max(peak(s1)),
            top[2].max(peak(w)),
        ];
    }
    top
}

#[inline(always)]
fn apply_in_place_body<T: Scalar>(pass: &Pass<T>, s: InPlace<'_, T>) -> [T; 3] {
    let (c, wd) = (pass.grad_scale, pass.weight_decay);
    with_rule!(pass.rule, |rule| overwrite(rule, c, wd, s))
}

dispatch!(
    /// Runs `pass` over one share in place (only for a step proved finite), and returns the
    /// largest magnitude written to each state buffer and to the parameters.
    pub(crate) apply_in_place, apply_in_place_avx2, apply_in_place_body,
    (pass: &Pass<T>, s: InPlace<'_, T>) -> [T; 3]
);

/// Rows of parameters the tile strategy steps, with the rule's constants: `w` laid out as
/// its gradient is (rows of the gradient's width, contiguous), the rule's state buffers
/// beside it (each as long as `w`, or empty for a buffer the rule does not keep).
pub(crate) struct StepRows<'a, T> {
    pub(crate) pass: Pass<T>,
    pub(crate) w: &'a mut [T],
    pub(crate) s0: &'a mut [T],
    pub(crate) s1: &'a mut [T],
}

/// The tile strategy: `W` parameters stepped from their gradient in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn tile<T: Scalar, R: Rule<T>, const W: usize>(
    rule: R,
    c: T,
    wd: T,
    w: &mut [T; W],
    g: [T; W],
    s0: &mut [T],
    s1: &mut [T],
    top: &mut [T; W],
) {
    let (one, two) = (R::BUFFERS > 0, R::BUFFERS > 1);
    // Arrays, not slices, so the lanes need no bounds checks; a buffer the rule does not
    // keep is a dummy that is never read or written.
    let (mut none0, mut none1) = ([T::zero(); W], [T::zero(); W]);
    let s0 = if one {
        tile_mut::<T, W>(s0, 0)
    } else {
        &mut none0
    };
    let s1 = if two {
        tile_mut::<T, W>(s1, 0)
    } else {
        &mut none1
    };
    for l in 0..W {
        let st = [
            if one { s0[l] } else { T::zero() },
            if two { s1[l] } else { T::zero() },
        ];
        let (nw, ns) = rule.apply(w[l], c * g[l] + wd * w[l], st);
        w[l] = nw;
        top[l] = bigger(top[l], nw);
        if one {
            s0[l] = ns[0];
            top[l] = bigger(top[l], ns[0]);
        }
        if two {
            s1[l] = ns[1];
            top[l] = bigger(top[l], ns[1]);
        }
    }
}

/// One tile of `W` parameters stepped in place from their gradient `g`, for a kernel that
/// is itself compiled for the CPU's instruction set and steps parameters as it computes
/// their gradient (the sparse weight gradient's fused step, `kernels/sparse`): the rules'
/// own arithmetic, inlined into the caller, so the same bits as the other strategies. `s0`
/// and `s1` are the tile's state, `W` long for each buffer the rule keeps (others are not
/// touched), and `top` the running largest magnitude written, lane by lane, to the
/// parameters and the state alike (one set of lanes, not three: the kernel's registers are
/// full). Only for a step proved finite.
#[inline(always)]
pub(crate) fn step_tile<T: Scalar, const W: usize>(
    pass: &Pass<T>,
    w: &mut [T; W],
    g: [T; W],
    s0: &mut [T],
    s1: &mut [T],
    top: &mut [T; W],
) {
    let (c, wd) = (pass.grad_scale, pass.weight_decay);
    with_rule!(pass.rule, |rule| tile(rule, c, wd, w, g, s0, s1, top))
}

/// A share of a spare-buffer step for the tests: `s` as both state buffers' input.
#[cfg(test)]
pub(crate) fn test_share<'a>(
    w: &'a [f32],
    g: &'a [f32],
    s: &'a [f32],
    outs: &'a mut [Vec<f32>; 3],
) -> Share<'a, f32> {
    let [w_out, s0_out, s1_out] = outs;
    Share {
        w,
        g,
        s0: s,
        s1: s,
        w_out,
        s0_out,
        s1_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::update::rules::{every_pass, RulePass};

    #[test]
    fn each_rule_matches_its_formula_and_flags_non_finite_outputs() {
        let w: Vec<f32> = (0..21).map(|i| i as f32 * 0.1 - 1.0).collect();
        let g: Vec<f32> = (0..21).map(|i| (i as f32 * 0.7).sin()).collect();
        let s: Vec<f32> = (0..21).map(|i| i as f32 * 0.01).collect();
        let pass = |rule| Pass {
            rule,
            grad_scale: 0.5,
            weight_decay: 0.1,
        };
        let d = |j: usize| 0.5 * g[j] + 0.1 * w[j];
        let mut outs = [vec![0.0; 21], vec![0.0; 21], vec![0.0; 21]];

        let p = pass(RulePass::Momentum {
            lr: 0.1,
            mu: 0.9,
            nesterov: true,
        });
        assert!(apply(&p, test_share(&w, &g, &s, &mut outs)));
        for j in 0..21 {
            let v = 0.9 * s[j] + d(j);
            assert_eq!(outs[1][j], v);
            assert_eq!(outs[0][j], w[j] - 0.1 * (d(j) + 0.9 * v));
        }

        let p = pass(RulePass::RmsProp {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
        });
        assert!(apply(&p, test_share(&w, &g, &s, &mut outs)));
        for j in 0..21 {
            let sq = 0.99 * s[j] + (1.0 - 0.99) * d(j) * d(j);
            assert_eq!(outs[1][j], sq);
            assert_eq!(outs[0][j], w[j] - 0.01 * d(j) / (sq.sqrt() + 1e-8));
        }

        // One infinite gradient element, anywhere, makes the share fail.
        for bad in [0, 9, 20] {
            let mut g2 = g.clone();
            g2[bad] = f32::INFINITY;
            let p = pass(RulePass::Plain { lr: 0.1 });
            assert!(!apply(&p, test_share(&w, &g2, &s, &mut outs)), "at {bad}");
        }
        // A finite gradient that the learning rate scales past the float range fails too.
        let big: Vec<f32> = g.iter().map(|v| v * 10.0).collect();
        let p = pass(RulePass::Plain { lr: f32::MAX });
        assert!(!apply(&p, test_share(&w, &big, &s, &mut outs)));
        let p = pass(RulePass::Plain { lr: 1.0 });
        assert!(apply(&p, test_share(&w, &big, &s, &mut outs)));
    }

    #[test]
    fn the_in_place_pass_writes_the_same_bits_as_the_pass_into_spare_buffers() {
        // 1100 elements: two whole chunks and a ragged one.
        let n = 1100;
        let w: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos() * 3.0).collect();
        let s: Vec<f32> = (0..n).map(|i| (i % 17) as f32 * 0.05).collect();
        for pass in every_pass() {
            let mut outs = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
            assert!(apply(&pass, test_share(&w, &g, &s, &mut outs)));
            let buffers = pass.rule.buffers();
            let (mut w2, mut s0, mut s1) = (w.clone(), s.clone(), s.clone());
            s0.truncate(if buffers > 0 { n } else { 0 });
            s1.truncate(if buffers > 1 { n } else { 0 });
            let peak = apply_in_place(
                &pass,
                InPlace {
                    w: &mut w2,
                    g: &g,
                    s0: &mut s0,
                    s1: &mut s1,
                },
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&w2), bits(&outs[0]), "{:?}", pass.rule);
            assert_eq!(bits(&s0), bits(&outs[1][..s0.len()]), "{:?}", pass.rule);
            assert_eq!(bits(&s1), bits(&outs[2][..s1.len()]), "{:?}", pass.rule);
            let top = |v: &[f32]| v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert_eq!(peak, [top(&s0), top(&s1), top(&w2)], "{:?}", pass.rule);
        }
    }

    #[test]
    fn magnitude_is_the_largest_absolute_value_or_none_for_a_non_finite_element() {
        let xs: Vec<f32> = (0..1037)
            .map(|i| (i as f32 * 0.3).sin() * i as f32)
            .collect();
        let top = xs.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert_eq!(magnitude(&xs), Some(top));
        assert_eq!(magnitude::<f32>(&[]), Some(0.0));
        for at in [0, 7, 512, 1036] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut ys = xs.clone();
                ys[at] = bad;
                assert_eq!(magnitude(&ys), None, "{bad} at {at}");
            }
        }
    }
}
