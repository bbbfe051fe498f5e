//! Update rules: what a gradient method does with the gradient once it has it.
//!
//! Plain gradient descent steps straight down the slope, `w ← w − lr·g`. In an
//! ill-conditioned valley that zig-zags across and crawls along; at a saddle it stalls; with
//! minibatches every step carries the batch's noise. The remedies keep a little state per
//! parameter between steps. The formulas are PyTorch's (`torch.optim.SGD`, `RMSprop`, `Adam`,
//! `AdamW`), so runs and hyper-parameters carry over:
//!
//! * [`Momentum`](UpdateRule::Momentum) — a velocity `v ← μ·v + g`, step `w ← w − lr·v`: the
//!   zig-zag averages out, the steady component adds up.
//! * [`Nesterov`](UpdateRule::Nesterov) — the same velocity, but the step looks ahead along
//!   it: `w ← w − lr·(g + μ·v)`.
//! * [`RmsProp`](UpdateRule::RmsProp) — a running mean of squared gradients
//!   `s ← α·s + (1 − α)·g²`, step `w ← w − lr·g / (√s + ε)`: each parameter gets its own
//!   step size, large where the slope is shallow, small where it is steep.
//! * [`Adam`](UpdateRule::Adam) — momentum and RMSProp together, with the bias of their zero
//!   start corrected: `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²`,
//!   `w ← w − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)`.
//! * [`AdamW`](UpdateRule::AdamW) — Adam with weight decay taken out of the gradient:
//!   `w ← w·(1 − lr·λ)` before the Adam step, so decay does not get rescaled by `√v`.
//!
//! A rule is configuration only; its state (velocity, moment estimates) lives in the
//! optimizer that uses it and is saved with [`Optimizer::state`](crate::Optimizer::state).
//!
//! ```
//! use downhill::optim::{Sgd, UpdateRule};
//!
//! let adam = UpdateRule::adam().betas(0.9, 0.99)?.eps(1e-7)?;
//! let sgd = Sgd::<f32>::new(1e-3)?.rule(adam).batch_size(64)?;
//! assert_eq!(sgd.update_rule().name(), "adam");
//! assert!(UpdateRule::nesterov(1.5).is_err());
//! assert!(UpdateRule::plain().betas(0.9, 0.999).is_err()); // plain SGD has no betas
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fmt;

use crate::error::{positive, Error, Result};

/// How a gradient method turns gradients into steps. Hyper-parameters are validated by the
/// constructors and setters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum UpdateRule {
    /// `w ← w − lr·g`.
    #[default]
    Plain,
    /// Classical momentum: `v ← μ·v + g`, `w ← w − lr·v`.
    Momentum {
        /// The momentum coefficient μ, in `[0, 1)`.
        mu: f64,
    },
    /// Nesterov momentum: `v ← μ·v + g`, `w ← w − lr·(g + μ·v)`.
    Nesterov {
        /// The momentum coefficient μ, in `(0, 1)`.
        mu: f64,
    },
    /// RMSProp: `s ← α·s + (1 − α)·g²`, `w ← w − lr·g/(√s + ε)`.
    RmsProp {
        /// Smoothing constant α of the squared-gradient average, in `[0, 1)`.
        alpha: f64,
        /// Added to the denominator for numerical stability (> 0).
        eps: f64,
    },
    /// Adam, with bias correction.
    Adam {
        /// Decay β₁ of the first moment, in `[0, 1)`.
        beta1: f64,
        /// Decay β₂ of the second moment, in `[0, 1)`.
        beta2: f64,
        /// Added to the denominator for numerical stability (> 0).
        eps: f64,
    },
    /// AdamW: Adam plus decoupled weight decay `w ← w·(1 − lr·λ)`.
    AdamW {
        /// Decay β₁ of the first moment, in `[0, 1)`.
        beta1: f64,
        /// Decay β₂ of the second moment, in `[0, 1)`.
        beta2: f64,
        /// Added to the denominator for numerical stability (> 0).
        eps: f64,
        /// Decoupled weight decay λ (finite, ≥ 0).
        weight_decay: f64,
    },
}

/// Checks `value ∈ [0, 1)`.
fn unit_interval(name: &'static str, value: f64) -> Result<f64> {
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(Error::param(name, value, "must be in [0, 1)"))
    }
}

impl UpdateRule {
    /// Plain gradient descent.
    pub fn plain() -> UpdateRule {
        UpdateRule::Plain
    }
    /// Classical momentum with coefficient `mu` in `[0, 1)` (PyTorch's SGD with `momentum=mu`).
    pub fn momentum(mu: f64) -> Result<UpdateRule> {
        Ok(UpdateRule::Momentum {
            mu: unit_interval("momentum", mu)?,
        })
    }
    /// Nesterov momentum with coefficient `mu` in `(0, 1)` (PyTorch's SGD with `nesterov=True`).
    pub fn nesterov(mu: f64) -> Result<UpdateRule> {
        if mu > 0.0 && mu < 1.0 {
            Ok(UpdateRule::Nesterov { mu })
        } else {
            Err(Error::param(
                "momentum",
                mu,
                "must be in (0, 1) for Nesterov",
            ))
        }
    }
    /// RMSProp with PyTorch's defaults: α = 0.99, ε = 1e-8.
    pub fn rmsprop() -> UpdateRule {
        UpdateRule::RmsProp {
            alpha: 0.99,
            eps: 1e-8,
        }
    }
    /// Adam with PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8 (use learning rate 1e-3).
    pub fn adam() -> UpdateRule {
        UpdateRule::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
    /// AdamW with PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, weight decay 1e-2.
    pub fn adamw() -> UpdateRule {
        UpdateRule::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }

    /// Sets Adam's or AdamW's moment decays, each in `[0, 1)`.
    pub fn betas(self, beta1: f64, beta2: f64) -> Result<UpdateRule> {
        let (b1, b2) = (
            unit_interval("beta1", beta1)?,
            unit_interval("beta2", beta2)?,
        );
        match self {
            UpdateRule::Adam { eps, .. } => Ok(UpdateRule::Adam {
                beta1: b1,
                beta2: b2,
                eps,
            }),
            UpdateRule::AdamW {
                eps, weight_decay, ..
            } => Ok(UpdateRule::AdamW {
                beta1: b1,
                beta2: b2,
                eps,
                weight_decay,
            }),
            other => Err(Error::param(
                "betas",
                other,
                "only adam and adamw have betas",
            )),
        }
    }
    /// Sets ε (finite, > 0) of RMSProp, Adam or AdamW.
    pub fn eps(mut self, value: f64) -> Result<UpdateRule> {
        let value = positive("eps", value)?;
        match &mut self {
            UpdateRule::RmsProp { eps, .. }
            | UpdateRule::Adam { eps, .. }
            | UpdateRule::AdamW { eps, .. } => *eps = value,
            other => {
                return Err(Error::param(
                    "eps",
                    *other,
                    "only rmsprop, adam and adamw have eps",
                ))
            }
        }
        Ok(self)
    }
    /// Sets RMSProp's smoothing constant α, in `[0, 1)`.
    pub fn alpha(mut self, value: f64) -> Result<UpdateRule> {
        let value = unit_interval("alpha", value)?;
        match &mut self {
            UpdateRule::RmsProp { alpha, .. } => *alpha = value,
            other => return Err(Error::param("alpha", *other, "only rmsprop has alpha")),
        }
        Ok(self)
    }
    /// Sets AdamW's decoupled weight decay λ (finite, ≥ 0). For L2 weight decay added to the
    /// gradient (any rule), see [`Sgd::weight_decay`](crate::optim::Sgd::weight_decay).
    pub fn weight_decay(mut self, value: f64) -> Result<UpdateRule> {
        if !(value.is_finite() && value >= 0.0) {
            return Err(Error::param(
                "weight_decay",
                value,
                "must be finite and not negative",
            ));
        }
        match &mut self {
            UpdateRule::AdamW { weight_decay, .. } => *weight_decay = value,
            other => {
                return Err(Error::param(
                    "weight_decay",
                    *other,
                    "only adamw decouples weight decay (use the optimizer's weight_decay)",
                ))
            }
        }
        Ok(self)
    }

    /// The rule's name: `plain`, `momentum`, `nesterov`, `rmsprop`, `adam` or `adamw`.
    pub fn name(&self) -> &'static str {
        match self {
            UpdateRule::Plain => "plain",
            UpdateRule::Momentum { .. } => "momentum",
            UpdateRule::Nesterov { .. } => "nesterov",
            UpdateRule::RmsProp { .. } => "rmsprop",
            UpdateRule::Adam { .. } => "adam",
            UpdateRule::AdamW { .. } => "adamw",
        }
    }

    /// The names of the per-parameter buffers the rule keeps, as they appear in
    /// [`OptimizerState::buffers`](crate::optim::OptimizerState::buffers): `velocity` for the
    /// momentum rules, `square_avg` for RMSProp, `exp_avg` and `exp_avg_sq` for Adam(W).
    pub fn buffer_names(&self) -> &'static [&'static str] {
        match self {
            UpdateRule::Plain => &[],
            UpdateRule::Momentum { .. } | UpdateRule::Nesterov { .. } => &["velocity"],
            UpdateRule::RmsProp { .. } => &["square_avg"],
            UpdateRule::Adam { .. } | UpdateRule::AdamW { .. } => &["exp_avg", "exp_avg_sq"],
        }
    }
}

impl fmt::Display for UpdateRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UpdateRule::Plain => write!(f, "plain"),
            UpdateRule::Momentum { mu } => write!(f, "momentum(mu={mu})"),
            UpdateRule::Nesterov { mu } => write!(f, "nesterov(mu={mu})"),
            UpdateRule::RmsProp { alpha, eps } => write!(f, "rmsprop(alpha={alpha}, eps={eps})"),
            UpdateRule::Adam { beta1, beta2, eps } => {
                write!(f, "adam(betas=({beta1}, {beta2}), eps={eps})")
            }
            UpdateRule::AdamW {
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
