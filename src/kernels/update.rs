//! The update rules' arithmetic: one fused pass per rule over one share of the parameters.
//!
//! After the backward pass has written the gradient `g`, every gradient method does the
//! same elementwise work per parameter: clip (`c·g`, the factor from the gradient's global
//! norm), add L2 weight decay (`+ λ·w`), advance the rule's state (velocity, moment
//! estimates) and move the parameter. Done as separate loops, that is four or five passes
//! over arrays the size of the model; here it is one, which reads `w`, `g` and the state and
//! writes the new `w` and state.
//!
//! The pass writes into *separate* output buffers, never over its inputs, and reports
//! whether everything it wrote is finite. That is the transaction the optimizers build on
//! (`optim/update.rs`): a step whose outputs are all finite is committed by swapping the
//! buffers; otherwise nothing was overwritten, and the parameters and the state are exactly
//! what they were. The finiteness check is part of the same pass: the pass walks its share
//! in chunks of 512 elements, computes a chunk's outputs and checks them while they are in
//! L1 (`x · 0` is `0` for a finite `x` and NaN otherwise, summed in eight independent
//! lanes), so it costs no branch per element and no second trip to memory.
//!
//! The same formulas also run in place ([`apply_in_place`]), over the live parameters and
//! state, for a step [`stays_finite`] has proved cannot produce a non-finite value: the
//! per-parameter arithmetic is one function per rule, shared by both passes, so both give
//! the same bits.
//!
//! Formulas are PyTorch's (`torch.optim.SGD`, `RMSprop`, `Adam`, `AdamW`), with
//! `d = c·g + λ·w` the clipped, decayed gradient:
//!
//! | rule | state | update |
//! |---|---|---|
//! | plain | — | `w ← w − lr·d` |
//! | momentum | `v` | `v ← μ·v + d`, `w ← w − lr·v` |
//! | Nesterov | `v` | `v ← μ·v + d`, `w ← w − lr·(d + μ·v)` |
//! | RMSProp | `s` | `s ← α·s + (1 − α)·d²`, `w ← w − lr·d/(√s + ε)` |
//! | Adam(W) | `m`, `v` | `m ← β₁·m + (1 − β₁)·d`, `v ← β₂·v + (1 − β₂)·d²`, `w ← κ·w − η·m/(√v/√(1 − β₂ᵗ) + ε)` |
//!
//! with `η = lr/(1 − β₁ᵗ)` and `κ = 1 − lr·λ_W` (AdamW's decoupled decay; 1 for Adam).
//! PyTorch divides `√v` by `√(1 − β₂ᵗ)`; here it is multiplied by the reciprocal, computed
//! once per step in `f64`: one division per element fewer (Adam's pass is bound by its
//! square root and division), a difference of at most an ulp in the denominator.

use crate::error::Result;
use crate::kernels::lanes::{bigger, tile_mut};
use crate::validate::same_size;
use crate::Scalar;

/// The constants of one rule for one step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RulePass<T> {
    /// `w ← w − lr·d`.
    Plain { lr: T },
    /// Classical (`nesterov == false`) or Nesterov momentum.
    Momentum { lr: T, mu: T, nesterov: bool },
    /// RMSProp.
    RmsProp { lr: T, alpha: T, eps: T },
    /// Adam and AdamW.
    Adam(AdamStep<T>),
}

impl<T> RulePass<T> {
    /// How many state buffers the rule keeps (its state is `s0`, then `s1`).
    pub(crate) fn buffers(&self) -> usize {
        match self {
            RulePass::Plain { .. } => 0,
            RulePass::Momentum { .. } | RulePass::RmsProp { .. } => 1,
            RulePass::Adam(_) => 2,
        }
    }

    /// Checks that `state` fits `n` parameters: each buffer the rule keeps `n` long, the
    /// others empty. Whoever steps in place checks it before writing anything.
    pub(crate) fn check_state(
        &self,
        context: &'static str,
        n: usize,
        state: [&[T]; 2],
    ) -> Result<()> {
        for (b, s) in state.into_iter().enumerate() {
            let want = if b < self.buffers() { n } else { 0 };
            same_size(context, "state buffer length", want, s.len())?;
        }
        Ok(())
    }
}

/// Adam's and AdamW's constants for one step (`keep = 1 − lr·λ`, 1 for Adam).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep<T> {
    pub(crate) step_size: T,
    pub(crate) beta1: T,
    pub(crate) beta2: T,
    pub(crate) eps: T,
    pub(crate) inv_bc2_sqrt: T,
    pub(crate) keep: T,
}

/// A whole step's pass: the rule, the clipping factor and the L2 weight decay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass<T> {
    pub rule: RulePass<T>,
    /// `c`, the factor clipping scales the gradient by (1 when not clipping).
    pub grad_scale: T,
    /// `λ`, L2 weight decay added to the gradient.
    pub weight_decay: T,
}

/// One share of a step: inputs, and the buffers the pass writes. State slices a rule does
/// not use are empty.
pub(crate) struct Share<'a, T> {
    pub w: &'a [T],
    pub g: &'a [T],
    pub s0: &'a [T],
    pub s1: &'a [T],
    pub w_out: &'a mut [T],
    pub s0_out: &'a mut [T],
    pub s1_out: &'a mut [T],
}

/// Elements per chunk: the pass computes a chunk's outputs, then checks them while they are
/// still in L1 (2 KiB of `f32` per output stream).
const CHUNK: usize = 512;

/// Whether every element of `xs` is finite: `x · 0` is 0 for a finite `x` and NaN
/// otherwise, summed in eight independent lanes the compiler keeps in vector registers.
#[inline(always)]
fn finite<T: Scalar>(xs: &[T]) -> bool {
    let mut lanes = [T::zero(); 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = *lane + x * T::zero();
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::zero(), |acc, &x| acc + x * T::zero());
    lanes.iter().fold(tail, |acc, &l| acc + l).is_finite()
}

/// The chunks of `0..n`.
fn chunks(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n).step_by(CHUNK).map(move |a| a..(a + CHUNK).min(n))
}

// Each rule's arithmetic for one parameter, written once and used by both passes (into
// spare buffers, and in place), so the two give the same bits. `d = c·g + λ·w`.

#[inline(always)]
fn decayed<T: Scalar>(w: T, g: T, c: T, wd: T) -> T {
    c * g + wd * w
}

/// Momentum (`nesterov == false`) or Nesterov: the new `(w, v)`.
#[inline(always)]
fn momentum_rule<T: Scalar>(w: T, d: T, v: T, lr: T, mu: T, nesterov: bool) -> (T, T) {
    let nv = mu * v + d;
    if nesterov {
        (w - lr * (d + mu * nv), nv)
    } else {
        (w - lr * nv, nv)
    }
}

/// RMSProp: the new `(w, s)`.
#[inline(always)]
fn rmsprop_rule<T: Scalar>(w: T, d: T, sq: T, lr: T, alpha: T, eps: T) -> (T, T) {
    let ns = alpha * sq + (T::one() - alpha) * d * d;
    (w - lr * d / (ns.sqrt() + eps), ns)
}

/// Adam(W): the new `(w, m, v)`.
#[inline(always)]
fn adam_rule<T: Scalar>(w: T, d: T, m: T, v: T, k: &AdamStep<T>) -> (T, T, T) {
    let nm = k.beta1 * m + (T::one() - k.beta1) * d;
    let nv = k.beta2 * v + (T::one() - k.beta2) * d * d;
    let nw = k.keep * w - k.step_size * nm / (nv.sqrt() * k.inv_bc2_sqrt + k.eps);
    (nw, nm, nv)
}

#[inline(always)]
fn plain_body<T: Scalar>(s: Share<'_, T>, lr: T, c: T, wd: T) -> bool {
    let n = s.w.len().min(s.g.len()).min(s.w_out.len());
    for r in chunks(n) {
        let (w, g, w_out) = (&s.w[r.clone()], &s.g[r.clone()], &mut s.w_out[r]);
        for ((nw, &w), &g) in w_out.iter_mut().zip(w).zip(g) {
            *nw = w - lr * decayed(w, g, c, wd);
        }
        if !finite(w_out) {
            return false;
        }
    }
    true
}

/// The loop of a rule with one buffer (momentum's velocity, RMSProp's square average): the
/// body runs on each chunk with `w`, `g`, the buffer and the two outputs cut to one length
/// (so the compiler drops the bounds checks), and the function returns false at the first
/// chunk with a non-finite output, true at the end. A macro, not a function taking a
/// closure: through a closure the momentum pass measured 5–9% slower.
macro_rules! one_buffer {
    ($s:ident, |$w:ident, $g:ident, $b:ident, $w_out:ident, $b_out:ident| $body:block) => {{
        let n = $s.w.len().min($s.g.len()).min($s.s0.len());
        let n = n.min($s.w_out.len()).min($s.s0_out.len());
        for r in chunks(n) {
            let ($w, $g, $b) = (&$s.w[r.clone()], &$s.g[r.clone()], &$s.s0[r.clone()]);
            let ($w_out, $b_out) = (&mut $s.w_out[r.clone()], &mut $s.s0_out[r]);
            let m = $w.len();
            let ($g, $b, $w_out, $b_out) = (&$g[..m], &$b[..m], &mut $w_out[..m], &mut $b_out[..m]);
            $body
            if !(finite($w_out) && finite($b_out)) {
                return false;
            }
        }
        true
    }};
}

// Momentum's passes take Nesterov as a constant, so the branch is outside the loop and
// each loop is one straight-line body.

#[inline(always)]
fn momentum_body<T: Scalar>(s: Share<'_, T>, lr: T, mu: T, nesterov: bool, c: T, wd: T) -> bool {
    if nesterov {
        momentum_loop::<T, true>(s, lr, mu, c, wd)
    } else {
        momentum_loop::<T, false>(s, lr, mu, c, wd)
    }
}

#[inline(always)]
fn momentum_loop<T: Scalar, const NESTEROV: bool>(
    s: Share<'_, T>,
    lr: T,
    mu: T,
    c: T,
    wd: T,
) -> bool {
    one_buffer!(s, |w, g, v, w_out, v_out| {
        for j in 0..w.len() {
            let d = decayed(w[j], g[j], c, wd);
            (w_out[j], v_out[j]) = momentum_rule(w[j], d, v[j], lr, mu, NESTEROV);
        }
    })
}

#[inline(always)]
fn rmsprop_body<T: Scalar>(s: Share<'_, T>, lr: T, alpha: T, eps: T, c: T, wd: T) -> bool {
    one_buffer!(s, |w, g, sq, w_out, sq_out| {
        for j in 0..w.len() {
            let d = decayed(w[j], g[j], c, wd);
            (w_out[j], sq_out[j]) = rmsprop_rule(w[j], d, sq[j], lr, alpha, eps);
        }
    })
}

#[inline(always)]
fn adam_body<T: Scalar>(s: Share<'_, T>, k: AdamStep<T>, c: T, wd: T) -> bool {
    let n = s.w.len().min(s.g.len()).min(s.s0.len()).min(s.s1.len());
    let n = n.min(s.w_out.len()).min(s.s0_out.len()).min(s.s1_out.len());
    for r in chunks(n) {
        let (w, g) = (&s.w[r.clone()], &s.g[r.clone()]);
        let (m1, m2) = (&s.s0[r.clone()], &s.s1[r.clone()]);
        let (w_out, m1_out) = (&mut s.w_out[r.clone()], &mut s.s0_out[r.clone()]);
        let m2_out = &mut s.s1_out[r];
        let m = w.len();
        let (g, m1, m2) = (&g[..m], &m1[..m], &m2[..m]);
        let (w_out, m1_out, m2_out) = (&mut w_out[..m], &mut m1_out[..m], &mut m2_out[..m]);
        for j in 0..m {
            let d = decayed(w[j], g[j], c, wd);
            (w_out[j], m1_out[j], m2_out[j]) = adam_rule(w[j], d, m1[j], m2[j], &k);
        }
        if !(finite(w_out) && finite(m1_out) && finite(m2_out)) {
            return false;
        }
    }
    true
}

dispatch!(
    /// The plain rule over one share.
    plain, plain_avx2, plain_body,
    (s: Share<'_, T>, lr: T, c: T, wd: T) -> bool
);
dispatch!(
    /// Momentum or Nesterov over one share.
    momentum, momentum_avx2, momentum_body,
    (s: Share<'_, T>, lr: T, mu: T, nesterov: bool, c: T, wd: T) -> bool
);
dispatch!(
    /// RMSProp over one share.
    rmsprop, rmsprop_avx2, rmsprop_body,
    (s: Share<'_, T>, lr: T, alpha: T, eps: T, c: T, wd: T) -> bool
);
dispatch!(
    /// Adam or AdamW over one share.
    adam, adam_avx2, adam_body,
    (s: Share<'_, T>, k: AdamStep<T>, c: T, wd: T) -> bool
);

/// One share of a step taken in place: the live parameters and the rule's live state,
/// overwritten. Only for a step [`stays_finite`] has proved finite: nothing here checks, and
/// nothing could be taken back. State slices a rule does not use are empty.
pub(crate) struct InPlace<'a, T> {
    pub w: &'a mut [T],
    pub g: &'a [T],
    pub s0: &'a mut [T],
    pub s1: &'a mut [T],
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
    /// The largest `|x|` of `xs`, or `None` if any element is not finite: what
    /// [`stays_finite`] needs to know of the parameters, the gradient and the state.
    pub(crate) magnitude, magnitude_avx2, magnitude_body,
    (xs: &[T]) -> Option<T>
);

/// The in-place loop of a rule with up to two buffers: the body runs per chunk on `w`, `g`
/// and the buffers cut to one length, and the loop returns the largest magnitude written
/// to each buffer and to `w` (what the next step's [`stays_finite`] needs to know), each
/// taken from the chunk while it is in L1.
macro_rules! in_place {
    ($s:ident, $buffers:literal, |$w:ident, $g:ident, $b0:ident, $b1:ident| $body:block) => {{
        let mut n = $s.w.len().min($s.g.len());
        if $buffers > 0 {
            n = n.min($s.s0.len());
        }
        if $buffers > 1 {
            n = n.min($s.s1.len());
        }
        let mut top = [T::zero(); 3];
        for r in chunks(n) {
            let ($w, $g) = (&mut $s.w[r.clone()], &$s.g[r.clone()]);
            let m = $w.len();
            let $g = &$g[..m];
            let $b0 = if $buffers > 0 { &mut $s.s0[r.clone()] } else { &mut [] };
            let $b1 = if $buffers > 1 { &mut $s.s1[r] } else { &mut [] };
            $body
            top = [top[0].max(peak($b0)), top[1].max(peak($b1)), top[2].max(peak($w))];
        }
        top
    }};
}

#[inline(always)]
fn plain_in_place_body<T: Scalar>(s: InPlace<'_, T>, lr: T, c: T, wd: T) -> [T; 3] {
    in_place!(s, 0, |w, g, _b0, _b1| {
        for (w, &g) in w.iter_mut().zip(g) {
            *w = *w - lr * decayed(*w, g, c, wd);
        }
    })
}

#[inline(always)]
fn momentum_in_place_body<T: Scalar>(
    s: InPlace<'_, T>,
    lr: T,
    mu: T,
    nesterov: bool,
    c: T,
    wd: T,
) -> [T; 3] {
    if nesterov {
        momentum_in_place_loop::<T, true>(s, lr, mu, c, wd)
    } else {
        momentum_in_place_loop::<T, false>(s, lr, mu, c, wd)
    }
}

#[inline(always)]
fn momentum_in_place_loop<T: Scalar, const NESTEROV: bool>(
    s: InPlace<'_, T>,
    lr: T,
    mu: T,
    c: T,
    wd: T,
) -> [T; 3] {
    in_place!(s, 1, |w, g, v, _b1| {
        let v = &mut v[..w.len()];
        for j in 0..w.len() {
            let d = decayed(w[j], g[j], c, wd);
            (w[j], v[j]) = momentum_rule(w[j], d, v[j], lr, mu, NESTEROV);
        }
    })
}

#[inline(always)]
fn rmsprop_in_place_body<T: Scalar>(
    s: InPlace<'_, T>,
    lr: T,
    alpha: T,
    eps: T,
    c: T,
    wd: T,
) -> [T; 3] {
    in_place!(s, 1, |w, g, sq, _b1| {
        let sq = &mut sq[..w.len()];
        for j in 0..w.len() {
            let d = decayed(w[j], g[j], c, wd);
            (w[j], sq[j]) = rmsprop_rule(w[j], d, sq[j], lr, alpha, eps);
        }
    })
}

#[inline(always)]
fn adam_in_place_body<T: Scalar>(s: InPlace<'_, T>, k: AdamStep<T>, c: T, wd: T) -> [T; 3] {
    in_place!(s, 2, |w, g, m1, m2| {
        let (m1, m2) = (&mut m1[..w.len()], &mut m2[..w.len()]);
        for j in 0..w.len() {
            let d = decayed(w[j], g[j], c, wd);
            (w[j], m1[j], m2[j]) = adam_rule(w[j], d, m1[j], m2[j], &k);
        }
    })
}

dispatch!(
    /// The plain rule over one share, in place.
    plain_in_place, plain_in_place_avx2, plain_in_place_body,
    (s: InPlace<'_, T>, lr: T, c: T, wd: T) -> [T; 3]
);
dispatch!(
    /// Momentum or Nesterov over one share, in place.
    momentum_in_place, momentum_in_place_avx2, momentum_in_place_body,
    (s: InPlace<'_, T>, lr: T, mu: T, nesterov: bool, c: T, wd: T) -> [T; 3]
);
dispatch!(
    /// RMSProp over one share, in place.
    rmsprop_in_place, rmsprop_in_place_avx2, rmsprop_in_place_body,
    (s: InPlace<'_, T>, lr: T, alpha: T, eps: T, c: T, wd: T) -> [T; 3]
);
dispatch!(
    /// Adam or AdamW over one share, in place.
    adam_in_place, adam_in_place_avx2, adam_in_place_body,
    (s: InPlace<'_, T>, k: AdamStep<T>, c: T, wd: T) -> [T; 3]
);

/// One tile of `W` parameters stepped in place from their gradient `g`, for a kernel that
/// is itself compiled for the CPU's instruction set and steps parameters as it computes
/// their gradient (the sparse weight gradient's fused step, `kernels/sparse.rs`): the
/// per-rule arithmetic of [`apply_in_place`], inlined into the caller, so the same bits.
/// `s0` and `s1` are the tile's state, `W` long for each buffer the rule keeps
/// ([`RulePass::buffers`]; others are not touched), and `top` the running largest magnitude
/// written, lane by lane, to the parameters and the state alike (one set of lanes, not
/// three: the kernel's registers are full). Only for a step [`stays_finite`] has proved
/// finite.
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
    match pass.rule {
        RulePass::Plain { lr } => {
            for l in 0..W {
                w[l] = w[l] - lr * decayed(w[l], g[l], c, wd);
                top[l] = bigger(top[l], w[l]);
            }
        }
        RulePass::Momentum { lr, mu, nesterov } => {
            let v = tile_mut::<T, W>(s0, 0);
            match nesterov {
                true => momentum_tile::<T, W, true>(w, g, v, top, lr, mu, c, wd),
                false => momentum_tile::<T, W, false>(w, g, v, top, lr, mu, c, wd),
            }
        }
        RulePass::RmsProp { lr, alpha, eps } => {
            let s0 = tile_mut::<T, W>(s0, 0);
            for l in 0..W {
                let d = decayed(w[l], g[l], c, wd);
                (w[l], s0[l]) = rmsprop_rule(w[l], d, s0[l], lr, alpha, eps);
                top[l] = bigger(bigger(top[l], w[l]), s0[l]);
            }
        }
        RulePass::Adam(k) => {
            let (s0, s1) = (tile_mut::<T, W>(s0, 0), tile_mut::<T, W>(s1, 0));
            for l in 0..W {
                let d = decayed(w[l], g[l], c, wd);
                (w[l], s0[l], s1[l]) = adam_rule(w[l], d, s0[l], s1[l], &k);
                top[l] = bigger(bigger(bigger(top[l], w[l]), s0[l]), s1[l]);
            }
        }
    }
}

/// [`step_tile`] for momentum, Nesterov a constant so the loop is one straight-line body (a
/// function, not a closure: a closure is not always inlined into the target-feature
/// function that calls it).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn momentum_tile<T: Scalar, const W: usize, const NESTEROV: bool>(
    w: &mut [T; W],
    g: [T; W],
    v: &mut [T; W],
    top: &mut [T; W],
    lr: T,
    mu: T,
    c: T,
    wd: T,
) {
    for l in 0..W {
        let d = decayed(w[l], g[l], c, wd);
        (w[l], v[l]) = momentum_rule(w[l], d, v[l], lr, mu, NESTEROV);
        top[l] = bigger(bigger(top[l], w[l]), v[l]);
    }
}

/// Runs `pass` over one share in place (only after [`stays_finite`] said yes), and returns
/// the largest magnitude written to each state buffer and to the parameters.
pub(crate) fn apply_in_place<T: Scalar>(pass: &Pass<T>, s: InPlace<'_, T>) -> [T; 3] {
    let (c, wd) = (pass.grad_scale, pass.weight_decay);
    match pass.rule {
        RulePass::Plain { lr } => plain_in_place(s, lr, c, wd),
        RulePass::Momentum { lr, mu, nesterov } => momentum_in_place(s, lr, mu, nesterov, c, wd),
        RulePass::RmsProp { lr, alpha, eps } => rmsprop_in_place(s, lr, alpha, eps, c, wd),
        RulePass::Adam(k) => adam_in_place(s, k, c, wd),
    }
}

/// Whether `pass` is certain to write only finite values, given finite inputs bounded by
/// `w` (the largest `|w|`), `g` (the largest `|g|`) and `state` (the largest value in each
/// state buffer; 0 for a buffer the rule does not keep or that starts at zero).
///
/// Each rule's formula is bounded term by term, in `f64`: `|d| ≤ c·g + λ·w`, then every
/// intermediate the formula computes (`μ·v + d`, `d²`, `√v/√(1 − β₂ᵗ)`, `lr·d/ε`, …) and
/// the outputs. The step is certain when every bound is below `T::MAX / 16`: rounding in
/// `T` adds a relative error of a few ulps per operation, far inside that margin, and the
/// denominators of RMSProp and Adam are at least `ε > 0`. A "no" is not a refusal: the
/// step then goes through the spare buffers and the finiteness check (`optim/update.rs`).
pub(crate) fn stays_finite<T: Scalar>(pass: &Pass<T>, w: T, g: T, state: [T; 2]) -> bool {
    let f = |x: T| x.to_f64_lossless().abs();
    let limit = T::max_value().to_f64_lossless() / 16.0;
    let (w, g, s0, s1) = (f(w), f(g), f(state[0]), f(state[1]));
    let d = f(pass.grad_scale) * g + f(pass.weight_decay) * w;
    // Every bound computed must be under the limit (a NaN, from a non-finite constant,
    // fails the comparison too).
    let under = |bounds: &[f64]| bounds.iter().all(|&b| b <= limit);
    match pass.rule {
        RulePass::Plain { lr } => under(&[d, f(lr) * d, w + f(lr) * d]),
        RulePass::Momentum { lr, mu, .. } => {
            let v = f(mu) * s0 + d;
            let step = f(lr) * (d + f(mu) * v);
            under(&[d, v, f(mu) * v, step, w + step])
        }
        RulePass::RmsProp { lr, alpha, eps } => {
            let eps = f(eps);
            let sq = f(alpha) * s0 + d * d;
            let step = f(lr) * d / eps;
            under(&[d, d * d, sq, f(lr) * d, step, w + step, 1.0 / eps])
        }
        RulePass::Adam(k) => {
            let eps = f(k.eps);
            let m = f(k.beta1) * s0 + d;
            let v = f(k.beta2) * s1 + d * d;
            let step = f(k.step_size) * m / eps;
            let denom = v.sqrt() * f(k.inv_bc2_sqrt) + eps;
            under(&[
                d,
                d * d,
                m,
                v,
                denom,
                f(k.step_size) * m,
                step,
                f(k.keep) * w + step,
                1.0 / eps,
            ])
        }
    }
}

/// Runs `pass` over one share, writing `share`'s outputs. True if every value written is
/// finite; false means the outputs are garbage and must not be committed (the inputs are
/// untouched either way).
pub(crate) fn apply<T: Scalar>(pass: &Pass<T>, s: Share<'_, T>) -> bool {
    let (c, wd) = (pass.grad_scale, pass.weight_decay);
    match pass.rule {
        RulePass::Plain { lr } => plain(s, lr, c, wd),
        RulePass::Momentum { lr, mu, nesterov } => momentum(s, lr, mu, nesterov, c, wd),
        RulePass::RmsProp { lr, alpha, eps } => rmsprop(s, lr, alpha, eps, c, wd),
        RulePass::Adam(k) => adam(s, k, c, wd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share<'a>(
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
        assert!(apply(&p, share(&w, &g, &s, &mut outs)));
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
        assert!(apply(&p, share(&w, &g, &s, &mut outs)));
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
            assert!(!apply(&p, share(&w, &g2, &s, &mut outs)), "at {bad}");
        }
        // A finite gradient that the learning rate scales past the float range fails too.
        let big: Vec<f32> = g.iter().map(|v| v * 10.0).collect();
        let p = pass(RulePass::Plain { lr: f32::MAX });
        assert!(!apply(&p, share(&w, &big, &s, &mut outs)));
        let p = pass(RulePass::Plain { lr: 1.0 });
        assert!(apply(&p, share(&w, &big, &s, &mut outs)));
    }

    /// Every rule as it runs: the four rules with decay and a clipping factor.
    fn every_pass() -> Vec<Pass<f32>> {
        let adam = |keep| {
            RulePass::Adam(AdamStep {
                step_size: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                inv_bc2_sqrt: 5.0,
                keep,
            })
        };
        [
            RulePass::Plain { lr: 0.1 },
            RulePass::Momentum {
                lr: 0.1,
                mu: 0.9,
                nesterov: false,
            },
            RulePass::Momentum {
                lr: 0.1,
                mu: 0.9,
                nesterov: true,
            },
            RulePass::RmsProp {
                lr: 0.01,
                alpha: 0.99,
                eps: 1e-8,
            },
            adam(1.0),
            adam(0.999),
        ]
        .into_iter()
        .map(|rule| Pass {
            rule,
            grad_scale: 0.5,
            weight_decay: 0.1,
        })
        .collect()
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
            assert!(apply(&pass, share(&w, &g, &s, &mut outs)));
            let buffers = match pass.rule {
                RulePass::Plain { .. } => 0,
                RulePass::Momentum { .. } | RulePass::RmsProp { .. } => 1,
                RulePass::Adam(_) => 2,
            };
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

    #[test]
    fn stays_finite_says_yes_only_where_the_pass_writes_finite_values() {
        // Inputs of magnitude 10^e for e across f32's range: wherever the bound says yes,
        // the checked pass must find every output finite; and ordinary steps must be yes.
        for pass in every_pass() {
            let mut yes = 0;
            for e in (-30..=38).step_by(2) {
                let m = 10f32.powi(e).min(f32::MAX);
                let w = [m, -m, m * 0.5, 0.0];
                let g = [-m, m, 0.0, m * 0.25];
                let s = [m, 0.0, m * 0.5, m];
                for (wp, gp, sp) in [(m, m, m), (1.0, m, 0.0), (m, 1.0, 1.0)] {
                    let (w, g, s): (Vec<f32>, Vec<f32>, Vec<f32>) = (
                        w.iter().map(|x| x / m * wp).collect(),
                        g.iter().map(|x| x / m * gp).collect(),
                        s.iter().map(|x| (x / m * sp).abs()).collect(),
                    );
                    if stays_finite(&pass, wp, gp, [sp, sp]) {
                        yes += 1;
                        let mut outs = [vec![0.0; 4], vec![0.0; 4], vec![0.0; 4]];
                        assert!(
                            apply(&pass, share(&w, &g, &s, &mut outs)),
                            "{:?} at {wp:e}, {gp:e}, {sp:e}",
                            pass.rule
                        );
                    }
                }
            }
            assert!(yes > 20, "{:?}: only {yes} yes", pass.rule);
            assert!(stays_finite(&pass, 1.0, 1.0, [1.0, 1.0]), "{:?}", pass.rule);
            assert!(
                !stays_finite(&pass, 1.0, f32::MAX, [1.0, 1.0]),
                "{:?}",
                pass.rule
            );
            assert!(
                !stays_finite(&pass, 1.0, f32::NAN, [1.0, 1.0]),
                "{:?}",
                pass.rule
            );
        }
        // A learning rate that scales an ordinary gradient past the range.
        let huge = Pass {
            rule: RulePass::Plain { lr: f32::MAX },
            grad_scale: 1.0,
            weight_decay: 0.0,
        };
        assert!(!stays_finite(&huge, 1.0, 10.0, [0.0, 0.0]));
        // An ε that rounded to zero leaves RMSProp's denominator unbounded below.
        let no_eps = Pass {
            rule: RulePass::RmsProp {
                lr: 0.01,
                alpha: 0.99,
                eps: 0.0,
            },
            grad_scale: 1.0,
            weight_decay: 0.0,
        };
        assert!(!stays_finite(&no_eps, 1.0, 1.0, [1.0, 0.0]));
    }
}
