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

/// A whole step's constants: the rule, the clipping factor and the L2 weight decay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pass<T> {
    pub rule: RulePass<T>,
    /// `c`, the factor clipping scales the gradient by (1 when not clipping).
    pub grad_scale: T,
    /// `λ`, L2 weight decay added to the gradient.
    pub weight_decay: T,
}

impl<T: Scalar> Pass<T> {
    /// `d = c·g + λ·w`: the gradient the rule reads, clipped and decayed.
    #[inline(always)]
    pub(crate) fn decayed(&self, w: T, g: T) -> T {
        self.grad_scale * g + self.weight_decay * w
    }
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
struct Plain<T> {
    lr: T,
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
struct Momentum<T, const NESTEROV: bool> {
    lr: T,
    mu: T,
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
struct RmsProp<T> {
    lr: T,
    alpha: T,
    eps: T,
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

/// What runs a [`Rule`] whatever it is: a commit strategy, handed the rule's type by
/// [`RulePass::visit`].
pub(crate) trait RuleVisitor<T: Scalar> {
    /// What the strategy returns.
    type Out;
    /// Runs the strategy with `rule`.
    fn visit<R: Rule<T>>(self, rule: R) -> Self::Out;
}

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

    /// Runs `visitor` with this step's rule as its own type: the one place the runtime rule
    /// becomes a compile-time one.
    #[inline(always)]
    pub(crate) fn visit<V: RuleVisitor<T>>(self, visitor: V) -> V::Out {
        match self {
            RulePass::Plain { lr } => visitor.visit(Plain { lr }),
            RulePass::Momentum {
                lr,
                mu,
                nesterov: false,
            } => visitor.visit(Momentum::<T, false> { lr, mu }),
            RulePass::Momentum {
                lr,
                mu,
                nesterov: true,
            } => visitor.visit(Momentum::<T, true> { lr, mu }),
            RulePass::RmsProp { lr, alpha, eps } => visitor.visit(RmsProp { lr, alpha, eps }),
            RulePass::Adam(k) => visitor.visit(k),
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
