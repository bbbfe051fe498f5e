//! Update rules: what a gradient method does with the gradient once it has it.
//!
//! Plain gradient descent steps straight down the slope, `w ← w − lr·g`. In an
//! ill-conditioned valley that zig-zags across and crawls along; at a saddle it stalls; with
//! minibatches every step carries the batch's noise. The remedies keep a little state per
//! parameter between steps. The formulas are PyTorch's (`torch.optim.SGD`, `RMSprop`, `Adam`,
//! `AdamW`), so runs and hyper-parameters carry over:
//!
//! * [`momentum`](UpdateRule::momentum) — a velocity `v ← μ·v + g`, step `w ← w − lr·v`: the
//!   zig-zag averages out, the steady component adds up.
//! * [`nesterov`](UpdateRule::nesterov) — the same velocity, but the step looks ahead along
//!   it: `w ← w − lr·(g + μ·v)`.
//! * [`rmsprop`](UpdateRule::rmsprop) — a running mean of squared gradients
//!   `s ← α·s + (1 − α)·g²`, step `w ← w − lr·g / (√s + ε)`: each parameter gets its own
//!   step size, large where the slope is shallow, small where it is steep.
//! * [`adam`](UpdateRule::adam) — momentum and RMSProp together, with the bias of their zero
//!   start corrected: `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²`,
//!   `w ← w − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)`.
//! * [`adamw`](UpdateRule::adamw) — Adam with weight decay taken out of the gradient:
//!   `w ← w·(1 − lr·λ)` before the Adam step, so decay does not get rescaled by `√v`.
//!
//! A rule is configuration only, validated by its constructors and setters (its fields are
//! private). Its state between steps — [`RuleState`] — lives in the optimizer that uses it,
//! and the arithmetic of each rule is written once, for one parameter, and run by every way
//! a step is committed (`kernels/update`).
//!
//! ```
//! use downhill::optim::{Sgd, UpdateRule};
//!
//! let adam = UpdateRule::adam().betas(0.9, 0.99)?.eps(1e-7)?;
//! let sgd = Sgd::<f32>::new(1e-3)?.rule(adam).batch_size(64)?;
//! assert_eq!(sgd.update_rule().name(), "adam");
//! assert_eq!(sgd.update_rule().decay_rates(), Some((0.9, 0.99)));
//! assert!(UpdateRule::nesterov(1.5).is_err());
//! assert!(UpdateRule::plain().betas(0.9, 0.999).is_err()); // plain SGD has no betas
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fmt;

use crate::error::{Error, Result};
use crate::kernels::update::{AdamStep, RulePass};
use crate::scalar::Scalar;
use crate::validate::{non_negative, open_unit_interval, positive, unit_interval};

/// How a gradient method turns gradients into steps. Build one with the constructors; every
/// hyper-parameter is validated when it is set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UpdateRule {
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum Kind {
    #[default]
    Plain,
    Momentum {
        mu: f64,
    },
    Nesterov {
        mu: f64,
    },
    RmsProp {
        alpha: f64,
        eps: f64,
    },
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    AdamW {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
}

impl UpdateRule {
    /// Plain gradient descent: `w ← w − lr·g`.
    pub fn plain() -> UpdateRule {
        UpdateRule { kind: Kind::Plain }
    }
    /// Classical momentum with coefficient `mu` in `[0, 1)` (PyTorch's SGD with
    /// `momentum=mu`); `mu = 0` is the plain rule.
    pub fn momentum(mu: f64) -> Result<UpdateRule> {
        let mu = unit_interval("momentum", mu)?;
        Ok(if mu == 0.0 {
            UpdateRule::plain()
        } else {
            UpdateRule {
                kind: Kind::Momentum { mu },
            }
        })
    }
    /// Nesterov momentum with coefficient `mu` in `(0, 1)` (PyTorch's SGD with
    /// `nesterov=True`).
    pub fn nesterov(mu: f64) -> Result<UpdateRule> {
        Ok(UpdateRule {
            kind: Kind::Nesterov {
                mu: open_unit_interval("momentum", mu)?,
            },
        })
    }
    /// RMSProp with PyTorch's defaults: α = 0.99, ε = 1e-8.
    pub fn rmsprop() -> UpdateRule {
        UpdateRule {
            kind: Kind::RmsProp {
                alpha: 0.99,
                eps: 1e-8,
            },
        }
    }
    /// Adam with PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8 (use learning rate 1e-3).
    pub fn adam() -> UpdateRule {
        UpdateRule {
            kind: Kind::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
        }
    }
    /// AdamW with PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, weight decay 1e-2.
    pub fn adamw() -> UpdateRule {
        UpdateRule {
            kind: Kind::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 1e-2,
            },
        }
    }

    /// Sets Adam's or AdamW's moment decays, each in `[0, 1)`.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Result<UpdateRule> {
        let b = (
            unit_interval("beta1", beta1)?,
            unit_interval("beta2", beta2)?,
        );
        match &mut self.kind {
            Kind::Adam { beta1, beta2, .. } | Kind::AdamW { beta1, beta2, .. } => {
                (*beta1, *beta2) = b;
                Ok(self)
            }
            _ => Err(Error::param(
                "betas",
                self,
                "only adam and adamw have betas",
            )),
        }
    }
    /// Sets ε (finite, > 0) of RMSProp, Adam or AdamW.
    pub fn eps(self, value: f64) -> Result<UpdateRule> {
        let value = positive("eps", value)?;
        self.set(
            "eps",
            value,
            "only rmsprop, adam and adamw have eps",
            |kind| match kind {
                Kind::RmsProp { eps, .. } | Kind::Adam { eps, .. } | Kind::AdamW { eps, .. } => {
                    Some(eps)
                }
                _ => None,
            },
        )
    }
    /// Sets RMSProp's smoothing constant α, in `[0, 1)`.
    pub fn alpha(self, value: f64) -> Result<UpdateRule> {
        let value = unit_interval("alpha", value)?;
        self.set(
            "alpha",
            value,
            "only rmsprop has alpha",
            |kind| match kind {
                Kind::RmsProp { alpha, .. } => Some(alpha),
                _ => None,
            },
        )
    }
    /// Sets AdamW's decoupled weight decay λ (finite, ≥ 0). For L2 weight decay added to the
    /// gradient (any rule), see [`Descent::weight_decay`](crate::optim::Descent::weight_decay).
    pub fn weight_decay(self, value: f64) -> Result<UpdateRule> {
        let value = non_negative("weight_decay", value)?;
        let why = "only adamw decouples weight decay (use the optimizer's weight_decay)";
        self.set("weight_decay", value, why, |kind| match kind {
            Kind::AdamW { weight_decay, .. } => Some(weight_decay),
            _ => None,
        })
    }
    /// The scalar setters' common part: `field` finds the hyper-parameter `name` in the rules
    /// that have it, and `value` (already validated) goes there; the other rules refuse it.
    fn set(
        mut self,
        name: &'static str,
        value: f64,
        why: &'static str,
        field: impl FnOnce(&mut Kind) -> Option<&mut f64>,
    ) -> Result<UpdateRule> {
        match field(&mut self.kind) {
            Some(slot) => {
                *slot = value;
                Ok(self)
            }
            None => Err(Error::param(name, self, why)),
        }
    }

    /// The rule's name: `plain`, `momentum`, `nesterov`, `rmsprop`, `adam` or `adamw`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Plain => "plain",
            Kind::Momentum { .. } => "momentum",
            Kind::Nesterov { .. } => "nesterov",
            Kind::RmsProp { .. } => "rmsprop",
            Kind::Adam { .. } => "adam",
            Kind::AdamW { .. } => "adamw",
        }
    }
    /// μ of the momentum rules.
    pub fn momentum_coefficient(&self) -> Option<f64> {
        match self.kind {
            Kind::Momentum { mu } | Kind::Nesterov { mu } => Some(mu),
            _ => None,
        }
    }
    /// RMSProp's α.
    pub fn smoothing(&self) -> Option<f64> {
        match self.kind {
            Kind::RmsProp { alpha, .. } => Some(alpha),
            _ => None,
        }
    }
    /// Adam's and AdamW's `(β₁, β₂)`.
    pub fn decay_rates(&self) -> Option<(f64, f64)> {
        match self.kind {
            Kind::Adam { beta1, beta2, .. } | Kind::AdamW { beta1, beta2, .. } => {
                Some((beta1, beta2))
            }
            _ => None,
        }
    }
    /// ε of RMSProp, Adam and AdamW.
    pub fn epsilon(&self) -> Option<f64> {
        match self.kind {
            Kind::RmsProp { eps, .. } | Kind::Adam { eps, .. } | Kind::AdamW { eps, .. } => {
                Some(eps)
            }
            _ => None,
        }
    }
    /// AdamW's decoupled weight decay λ.
    pub fn decoupled_weight_decay(&self) -> Option<f64> {
        match self.kind {
            Kind::AdamW { weight_decay, .. } => Some(weight_decay),
            _ => None,
        }
    }

    /// The names of the per-parameter buffers the rule keeps, as they appear in
    /// [`StateDict::buffers`](crate::optim::StateDict::buffers) and checkpoints:
    /// `velocity` for the momentum rules, `square_avg` for RMSProp, `exp_avg` and
    /// `exp_avg_sq` for Adam(W) (PyTorch's names).
    pub fn buffer_names(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Plain => &[],
            Kind::Momentum { .. } | Kind::Nesterov { .. } => &["velocity"],
            Kind::RmsProp { .. } => &["square_avg"],
            Kind::Adam { .. } | Kind::AdamW { .. } => &["exp_avg", "exp_avg_sq"],
        }
    }

    /// The rule's constants for its `t`-th step (1-based) at learning rate `lr`.
    pub(crate) fn pass<T: Scalar>(&self, lr: T, t: u64) -> RulePass<T> {
        let f = T::from_f64;
        match self.kind {
            Kind::Plain => RulePass::Plain { lr },
            Kind::Momentum { mu } => RulePass::Momentum {
                lr,
                mu: f(mu),
                nesterov: false,
            },
            Kind::Nesterov { mu } => RulePass::Momentum {
                lr,
                mu: f(mu),
                nesterov: true,
            },
            Kind::RmsProp { alpha, eps } => RulePass::RmsProp {
                lr,
                alpha: f(alpha),
                eps: f(eps),
            },
            Kind::Adam { beta1, beta2, eps } => adam_pass(lr, t, beta1, beta2, eps, 0.0),
            Kind::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => adam_pass(lr, t, beta1, beta2, eps, weight_decay),
        }
    }
}

/// Adam's constants at step `t`: bias correction (m and v start at zero, so early on they
/// underestimate the moments by the factors 1 − βᵗ; dividing those out makes the first
/// steps full size) and AdamW's decay factor.
fn adam_pass<T: Scalar>(
    lr: T,
    t: u64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    decoupled: f64,
) -> RulePass<T> {
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    let lr64 = lr.to_f64_lossless();
    RulePass::Adam(AdamStep {
        step_size: T::from_f64(lr64 / (1.0 - beta1.powi(t))),
        beta1: T::from_f64(beta1),
        beta2: T::from_f64(beta2),
        eps: T::from_f64(eps),
        inv_bc2_sqrt: T::from_f64(1.0 / (1.0 - beta2.powi(t)).sqrt()),
        keep: T::one() - lr * T::from_f64(decoupled),
    })
}

impl fmt::Display for UpdateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Plain => write!(f, "plain"),
            Kind::Momentum { mu } => write!(f, "momentum(mu={mu})"),
            Kind::Nesterov { mu } => write!(f, "nesterov(mu={mu})"),
            Kind::RmsProp { alpha, eps } => write!(f, "rmsprop(alpha={alpha}, eps={eps})"),
            Kind::Adam { beta1, beta2, eps } => {
                write!(f, "adam(betas=({beta1}, {beta2}), eps={eps})")
            }
            Kind::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => write!(
                f,
                "adamw(betas=({beta1}, {beta2}), eps={eps}, weight_decay={weight_decay})"
            ),
        }
    }
}

/// What an update rule carries from one step to the next, one value per parameter, under
/// PyTorch's names. Empty vectors before the first step.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RuleState<T> {
    /// The plain rule keeps nothing.
    Plain,
    /// Momentum and Nesterov: the velocity `v`.
    Momentum {
        /// `v`.
        velocity: Vec<T>,
    },
    /// RMSProp: the running mean of squared gradients `s`.
    RmsProp {
        /// `s`.
        square_avg: Vec<T>,
    },
    /// Adam and AdamW: the moment estimates.
    Adam {
        /// The first moment `m`.
        exp_avg: Vec<T>,
        /// The second moment `v`.
        exp_avg_sq: Vec<T>,
    },
}

impl<T: Scalar> RuleState<T> {
    /// The (empty) state of `rule`.
    pub(crate) fn for_rule(rule: &UpdateRule) -> Self {
        match rule.kind {
            Kind::Plain => RuleState::Plain,
            Kind::Momentum { .. } | Kind::Nesterov { .. } => RuleState::Momentum {
                velocity: Vec::new(),
            },
            Kind::RmsProp { .. } => RuleState::RmsProp {
                square_avg: Vec::new(),
            },
            Kind::Adam { .. } | Kind::AdamW { .. } => RuleState::Adam {
                exp_avg: Vec::new(),
                exp_avg_sq: Vec::new(),
            },
        }
    }

    /// The buffers, in [`UpdateRule::buffer_names`] order.
    pub fn buffers(&self) -> Vec<&[T]> {
        match self {
            RuleState::Plain => Vec::new(),
            RuleState::Momentum { velocity } => vec![velocity],
            RuleState::RmsProp { square_avg } => vec![square_avg],
            RuleState::Adam {
                exp_avg,
                exp_avg_sq,
            } => vec![exp_avg, exp_avg_sq],
        }
    }

    pub(crate) fn buffers_mut(&mut self) -> Vec<&mut Vec<T>> {
        match self {
            RuleState::Plain => Vec::new(),
            RuleState::Momentum { velocity: b } | RuleState::RmsProp { square_avg: b } => vec![b],
            RuleState::Adam {
                exp_avg: m,
                exp_avg_sq: v,
            } => vec![m, v],
        }
    }

    /// Moves the buffers out (leaving empty ones), in order, padded with empty vectors to
    /// two: what a step offered to the model lends it.
    pub(crate) fn lend(&mut self) -> [Vec<T>; 2] {
        let mut out = [Vec::new(), Vec::new()];
        for (slot, b) in out.iter_mut().zip(self.buffers_mut()) {
            *slot = std::mem::take(b);
        }
        out
    }

    /// Moves back what [`lend`](RuleState::lend) took.
    pub(crate) fn restore(&mut self, lent: [Vec<T>; 2]) {
        for (b, v) in self.buffers_mut().into_iter().zip(lent) {
            *b = v;
        }
    }

    /// Whether no step has filled the buffers yet.
    pub fn is_empty(&self) -> bool {
        self.buffers().iter().all(|b| b.is_empty())
    }
}
