//! The proof a step rests on before it is taken where it cannot be taken back: in place,
//! or inside a kernel.
//!
//! Two bounds, each computed in `f64` from largest magnitudes the step already knows:
//!
//! * [`gradient_bound`] — a bound on every element of a dense layer's weight gradient, from
//!   the largest magnitudes of its input and of its `dZ`, before the gradient is computed;
//! * [`stays_finite`] — whether a rule's step, from parameters, gradient and state bounded
//!   by given magnitudes, can write only finite values.
//!
//! A "no" is never a refusal: the step then goes through the spare buffers, where every
//! value is checked as it is written, and is committed or refused there (`optim/update`).

use crate::kernels::update::{magnitude, Pass, RulePass};
use crate::scalar::Scalar;

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

/// A bound on every element of the gradient phase B writes for a block of `rows` rows that
/// is the whole batch (`β = 0`), from the largest magnitudes phase A's threads left in
/// `peaks` (per thread: each layer's input, then its `dZ`): `dW_l = A_{l−1}ᵀ·dZ_l` sums
/// `rows` products, so `|dW_l| ≤ rows·max|A_{l−1}|·max|dZ_l|`, and `|db_l| ≤
/// rows·max|dZ_l|`; the sparse first layer's input is its scaled values plus the offset `o`
/// (`dW₁ = (x·s)ᵀ·dZ₁ + o ⊗ colsum(dZ₁)`). Widened by the rounding of a sum of `rows` terms.
/// `None` if anything measured is not finite, or the bound overflows `T`.
pub(crate) fn gradient_bound<T: Scalar>(
    peaks: &[Vec<T>],
    rows: usize,
    offset: Option<&[T]>,
) -> Option<T> {
    let offset = match offset {
        Some(o) => magnitude(o)?.to_f64_lossless(),
        None => 0.0,
    };
    let layers = peaks.first()?.len() / 2;
    let top = |i: usize| -> Option<f64> {
        let m = peaks
            .iter()
            .map(|p| p.get(i).copied())
            .try_fold(T::zero(), |m, p| {
                let p = p?;
                p.is_finite().then(|| m.max(p))
            })?;
        Some(m.to_f64_lossless())
    };
    let n = rows as f64;
    let mut bound = 0.0f64;
    for l in 0..layers {
        let input = top(2 * l)? + if l == 0 { offset } else { 0.0 };
        let dz = top(2 * l + 1)?;
        bound = bound.max(n * dz * input.max(1.0));
    }
    let bound = bound * (1.0 + 2.0 * n * T::epsilon().to_f64_lossless());
    let bound = T::from_f64(bound);
    bound.is_finite().then_some(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::update::{apply, every_pass, test_share};

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
                            apply(&pass, test_share(&w, &g, &s, &mut outs)),
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
