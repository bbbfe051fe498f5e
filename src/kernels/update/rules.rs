//! Each update rule's arithmetic for one parameter, and the constants of one step.

use crate::scalar::Scalar;

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

/// A whole step's constants: the rule, the clipping factor and the L2 weight decay. A rule
/// reads the gradient clipped and decayed, `d = c·g + λ·w`; each strategy computes it with
/// `c` and `λ` in registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass<T> {
    pub rule: RulePass<T>,
    /// `c`, the factor clipping scales the gradient by (1 when not clipping).
    pub grad_scale: T,
    /// `λ`, L2 weight decay added to the gradient.
    pub weight_decay: T,
}

/// One rule's arithmetic for one parameter: what every commit strategy (`commit.rs`) runs
/// per element. A rule is a small `Copy` value holding its step's constants.
pub(crate) trait Rule<T: Scalar>: Copy {
    /// How many state buffers the rule keeps: its state is `s[0]`, then `s[1]`; entries
    /// past `BUFFERS` are neither read nor written.
    const BUFFERS: usize;
    /// The new parameter and state, from the parameter `w`, its clipped and decayed
    /// gradient `d` and its state `s`.
    fn apply(self, w: T, d: T, s: [T; 2]) -> (T, [T; 2]);
}

/// Plain gradient descent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plain<T> {
    pub(crate) lr: T,
}

impl<T: Scalar> Rule<T> for Plain<T> {
    const BUFFERS: usize = 0;
    #[inline(always)]
    fn apply(self, w: T, d: T, s: [T; 2]) -> (T, [T; 2]) {
        (w - self.lr * d, s)
    }
}

/// Momentum, Nesterov's when `NESTEROV` (a constant, so each loop is one straight-line
/// body).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Momentum<T, const NESTEROV: bool> {
    pub(crate) lr: T,
    pub(crate) mu: T,
}

impl<T: Scalar, const NESTEROV: bool> Rule<T> for Momentum<T, NESTEROV> {
    const BUFFERS: usize = 1;
    #[inline(always)]
    fn apply(self, w: T, d: T, s: [T; 2]) -> (T, [T; 2]) {
        let v = self.mu * s[0] + d;
        let w = if NESTEROV {
            w - self.lr * (d + self.mu * v)
        } else {
            w - self.lr * v
        };
        (w, [v, s[1]])
    }
}

/// RMSProp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RmsProp<T> {
    pub(crate) lr: T,
    pub(crate) alpha: T,
    pub(crate) eps: T,
}

impl<T: Scalar> Rule<T> for RmsProp<T> {
    const BUFFERS: usize = 1;
    #[inline(always)]
    fn apply(self, w: T, d: T, s: [T; 2]) -> (T, [T; 2]) {
        let sq = self.alpha * s[0] + (T::one() - self.alpha) * d * d;
        (w - self.lr * d / (sq.sqrt() + self.eps), [sq, s[1]])
    }
}

impl<T: Scalar> Rule<T> for AdamStep<T> {
    const BUFFERS: usize = 2;
    #[inline(always)]
    fn apply(self, w: T, d: T, s: [T; 2]) -> (T, [T; 2]) {
        let m = self.beta1 * s[0] + (T::one() - self.beta1) * d;
        let v = self.beta2 * s[1] + (T::one() - self.beta2) * d * d;
        let w = self.keep * w - self.step_size * m / (v.sqrt() * self.inv_bc2_sqrt + self.eps);
        (w, [m, v])
    }
}

/// Evaluates `$body` with `$rule` bound to `$pass`'s rule (a [`RulePass`]) as its own type:
/// the one place the runtime rule becomes a compile-time one, so that a strategy's loop is
/// compiled once per rule with its branches resolved. A macro, not a function taking a
/// visitor: the body is generic over the rule's type, which a closure cannot be, and a
/// visitor struct carrying the strategy's operands through the `match` was measured to cost
/// the sparse kernel's fused step ~30 instructions per tile (its operands copied to memory).
macro_rules! with_rule {
    ($pass:expr, |$rule:ident| $body:expr) => {{
        use $crate::kernels::update::rules::{Momentum, Plain, RmsProp, RulePass};
        match $pass {
            RulePass::Plain { lr } => {
                let $rule = Plain { lr };
                $body
            }
            RulePass::Momentum {
                lr,
                mu,
                nesterov: false,
            } => {
                let $rule = Momentum::<_, false> { lr, mu };
                $body
            }
            RulePass::Momentum {
                lr,
                mu,
                nesterov: true,
            } => {
                let $rule = Momentum::<_, true> { lr, mu };
                $body
            }
            RulePass::RmsProp { lr, alpha, eps } => {
                let $rule = RmsProp { lr, alpha, eps };
                $body
            }
            RulePass::Adam(k) => {
                let $rule = k;
                $body
            }
        }
    }};
}
pub(crate) use with_rule;

impl<T: Scalar> RulePass<T> {
    /// How many state buffers the rule keeps ([`Rule::BUFFERS`]).
    pub(crate) fn buffers(&self) -> usize {
        match self {
            RulePass::Plain { .. } => Plain::<T>::BUFFERS,
            RulePass::Momentum { .. } => Momentum::<T, false>::BUFFERS,
            RulePass::RmsProp { .. } => RmsProp::<T>::BUFFERS,
            RulePass::Adam(_) => AdamStep::<T>::BUFFERS,
        }
    }
}

#[cfg(test)]
/// Every rule as it runs: the four rules with decay and a clipping factor.
pub(crate) fn every_pass() -> Vec<Pass<f32>> {
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
