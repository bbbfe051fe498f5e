//! Data losses over class scores, and the L2 penalty.
//!
//! A model maps each example to one score per class; a loss says how unhappy we are with
//! those scores given the true label `y`. Two classic choices for scores:
//!
//! * **softmax cross-entropy** — `L_i = −log(e^{s_y} / Σ_j e^{s_j})`, computed as
//!   `logsumexp(s) − s_y` with the maximum subtracted first, so scores of ±1e4 neither
//!   overflow nor produce NaN. Gradient: `softmax(s) − onehot(y)`.
//! * **multiclass SVM hinge** — `L_i = Σ_{j≠y} max(0, s_j − s_y + 1)`. Gradient: `+1` on each
//!   class that violates the margin, `−(number of violators)` on the true class.
//!
//! And two for the lecture's own network, whose outputs `p = σ(·)` are each in `(0, 1)`, read
//! against the one-hot target `t = onehot(y)` (PyTorch's `MSELoss` and `BCELoss`, averaged
//! over the `C` outputs):
//!
//! * **mean squared error** — `L_i = (1/C)·Σ_j (p_j − t_j)²`. Gradient: `2(p − t)/C`.
//! * **binary cross-entropy** — `L_i = −(1/C)·Σ_j [t_j·ln p_j + (1 − t_j)·ln(1 − p_j)]`, each
//!   logarithm clamped at −100 as PyTorch's is, so a saturated output costs 100, not
//!   infinity. Gradient: `(p − t) / (C·max(p(1 − p), 10⁻¹²))`.
//!
//! The data loss of a batch is the mean of `L_i`; [`l2_penalty`] adds `½·λ·‖W‖²` over the
//! weights (not the biases), whose gradient is `λ·W`.

use std::fmt;
use std::str::FromStr;

use crate::activation::Activation;
use crate::error::{Error, ErrorKind, Result};
use crate::scalar::Scalar;
use crate::validate::same_size;

/// Which data loss a model minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Loss {
    /// Softmax cross-entropy (negative log-likelihood of the true class).
    #[default]
    SoftmaxCrossEntropy,
    /// Multiclass SVM hinge loss with margin 1.
    Hinge,
    /// Mean squared error against the one-hot target.
    MeanSquared,
    /// Binary cross-entropy against the one-hot target, for outputs in `(0, 1)`.
    BinaryCrossEntropy,
}

/// The floor of BCE's logarithms (PyTorch's).
const LOG_FLOOR: f64 = -100.0;

/// The floor of `p(1 − p)` in BCE's gradient (PyTorch's).
const BCE_EPS: f64 = 1e-12;

/// `max(ln x, −100)`.
fn clamped_ln<T: Scalar>(x: T) -> T {
    x.ln().max(T::from_f64(LOG_FLOOR))
}

/// `1` for the true class, `0` for the others.
fn target<T: Scalar>(j: usize, y: usize) -> T {
    if j == y {
        T::one()
    } else {
        T::zero()
    }
}

impl Loss {
    /// The loss of one example with scores `s` and true class `y`. An error if `y` is not
    /// a class of `s`.
    pub fn row_loss<T: Scalar>(self, s: &[T], y: usize) -> Result<T> {
        check_label(y, s.len())?;
        Ok(self.loss_of(s, y))
    }

    /// The loss of one example, and `scale · ∂L_i/∂s` written into `grad` (as long as `s`).
    pub fn row_loss_and_grad<T: Scalar>(
        self,
        s: &[T],
        y: usize,
        scale: T,
        grad: &mut [T],
    ) -> Result<T> {
        check_label(y, s.len())?;
        same_size(
            "Loss::row_loss_and_grad",
            "gradient length (one per score)",
            s.len(),
            grad.len(),
        )?;
        grad.copy_from_slice(s);
        Ok(self.grad_in_place(grad, y, scale))
    }

    /// Whether the loss reads outputs in `(0, 1)` (binary cross-entropy), rather than any
    /// scores.
    pub fn needs_probabilities(self) -> bool {
        self == Loss::BinaryCrossEntropy
    }

    /// The name used by `Display` and `FromStr`: `softmax`, `svm`, `mse` or `bce`.
    pub fn name(self) -> &'static str {
        match self {
            Loss::SoftmaxCrossEntropy => "softmax",
            Loss::Hinge => "svm",
            Loss::MeanSquared => "mse",
            Loss::BinaryCrossEntropy => "bce",
        }
    }

    /// [`row_loss`](Loss::row_loss) for a `y` known to be in range.
    pub(crate) fn loss_of<T: Scalar>(self, s: &[T], y: usize) -> T {
        match self {
            Loss::SoftmaxCrossEntropy => log_sum_exp(s) - s[y],
            Loss::Hinge => {
                let sy = s[y];
                s.iter()
                    .enumerate()
                    .filter(|&(j, _)| j != y)
                    .map(|(_, &sj)| (sj - sy + T::one()).max(T::zero()))
                    .fold(T::zero(), |a, b| a + b)
            }
            Loss::MeanSquared => {
                let sum = s.iter().enumerate().fold(T::zero(), |acc, (j, &p)| {
                    let d = p - target(j, y);
                    acc + d * d
                });
                sum / T::from_f64(s.len() as f64)
            }
            Loss::BinaryCrossEntropy => {
                let sum = s.iter().enumerate().fold(T::zero(), |acc, (j, &p)| {
                    let ln = if j == y {
                        clamped_ln(p)
                    } else {
                        clamped_ln(T::one() - p)
                    };
                    acc - ln
                });
                sum / T::from_f64(s.len() as f64)
            }
        }
    }

    /// The loss of scores `s` (with `y` in range), and `scale · ∂L_i/∂s` written over them.
    /// Overwriting the scores saves a buffer: once the loss is known they are not needed.
    pub(crate) fn grad_in_place<T: Scalar>(self, s: &mut [T], y: usize, scale: T) -> T {
        match self {
            Loss::SoftmaxCrossEntropy => {
                let m = max(s);
                // Shift by the max before exponentiating: e^{s_j − m} ≤ 1 never overflows,
                // and the loss log Σ e^{s_j − m} − (s_y − m) needs no log of a tiny number.
                let sy_shifted = s[y] - m;
                let mut sum = T::zero();
                for v in s.iter_mut() {
                    *v = (*v - m).exp();
                    sum = sum + *v;
                }
                let inv = scale / sum;
                s.iter_mut().for_each(|v| *v = *v * inv);
                s[y] = s[y] - scale;
                sum.ln() - sy_shifted
            }
            Loss::Hinge => {
                let sy = s[y];
                let mut loss = T::zero();
                let mut violators = T::zero();
                for (j, v) in s.iter_mut().enumerate() {
                    let margin = *v - sy + T::one();
                    if j != y && margin > T::zero() {
                        loss = loss + margin;
                        violators = violators + T::one();
                        *v = scale;
                    } else {
                        *v = T::zero();
                    }
                }
                s[y] = -violators * scale;
                loss
            }
            Loss::MeanSquared | Loss::BinaryCrossEntropy => {
                let loss = self.loss_of(s, y);
                let per_output = scale / T::from_f64(s.len() as f64);
                let eps = T::from_f64(BCE_EPS);
                for (j, v) in s.iter_mut().enumerate() {
                    let d = *v - target(j, y);
                    *v = match self {
                        Loss::MeanSquared => (per_output + per_output) * d,
                        _ => per_output * d / (*v * (T::one() - *v)).max(eps),
                    };
                }
                loss
            }
        }
    }

    /// The loss of an example whose scores are `f(z)`, `f` the output activation (none:
    /// the identity), computed from `z`; `scratch` (as long as `z`) is overwritten.
    ///
    /// Through a sigmoid, binary cross-entropy is computed from `z` in the stable form
    /// `softplus(z) − t·z` (PyTorch's `BCEWithLogitsLoss`): from `p = σ(z)` itself, `ln(1 − p)`
    /// loses every digit once `p` rounds near 1, and with it the gradient check.
    pub(crate) fn head_loss<T: Scalar>(
        self,
        output: Option<Activation>,
        z: &[T],
        y: usize,
        scratch: &mut [T],
    ) -> T {
        match (self, output) {
            (_, None) => self.loss_of(z, y),
            (Loss::BinaryCrossEntropy, Some(Activation::Sigmoid)) => bce_with_logits(z, y),
            (_, Some(act)) => {
                for (p, &z) in scratch.iter_mut().zip(z) {
                    *p = act.apply(z);
                }
                self.loss_of(scratch, y)
            }
        }
    }

    /// [`head_loss`](Loss::head_loss), and `scale · ∂L_i/∂z` written into `grad` (as long
    /// as `z`): the loss's gradient through the output activation, `∂L/∂p ⊙ f'(z)` with
    /// `f'` taken at `z` (σ'(z) = σ(z)·σ(−z), tanh'(z) = 1/cosh²(z)), exact where the output
    /// saturates. Through a sigmoid, binary cross-entropy's is `(σ(z) − t)/C`.
    pub(crate) fn head_loss_and_grad<T: Scalar>(
        self,
        output: Option<Activation>,
        z: &[T],
        y: usize,
        scale: T,
        grad: &mut [T],
    ) -> T {
        match (self, output) {
            (_, None) => {
                grad.copy_from_slice(z);
                self.grad_in_place(grad, y, scale)
            }
            (Loss::BinaryCrossEntropy, Some(Activation::Sigmoid)) => {
                let per_output = scale / T::from_f64(z.len() as f64);
                for (j, (g, &z)) in grad.iter_mut().zip(z).enumerate() {
                    *g = per_output * (Activation::Sigmoid.apply(z) - target(j, y));
                }
                bce_with_logits(z, y)
            }
            (_, Some(act)) => {
                for (p, &z) in grad.iter_mut().zip(z) {
                    *p = act.apply(z);
                }
                let loss = self.grad_in_place(grad, y, scale);
                for (g, &z) in grad.iter_mut().zip(z) {
                    *g = *g * act.derivative(z);
                }
                loss
            }
        }
    }
}

/// `−(1/C)·Σ_j [t_j·ln σ(z_j) + (1 − t_j)·ln(1 − σ(z_j))]` in the stable form
/// `(1/C)·Σ_j [softplus(z_j) − t_j·z_j]`, `softplus(z) = max(z, 0) + ln(1 + e^{−|z|})`.
fn bce_with_logits<T: Scalar>(z: &[T], y: usize) -> T {
    let sum = z.iter().enumerate().fold(T::zero(), |acc, (j, &z)| {
        let softplus = z.max(T::zero()) + (-z.abs()).exp().ln_1p();
        acc + softplus - target::<T>(j, y) * z
    });
    sum / T::from_f64(z.len() as f64)
}

/// A label must be one of the scores' classes.
fn check_label(y: usize, classes: usize) -> Result<()> {
    if y >= classes {
        return Err(ErrorKind::Label {
            path: None,
            row: 0,
            label: y,
            classes,
        }
        .into());
    }
    Ok(())
}

/// `log Σ_j e^{s_j}`, stable for any finite scores.
pub fn log_sum_exp<T: Scalar>(s: &[T]) -> T {
    let m = max(s);
    let sum = s.iter().fold(T::zero(), |acc, &v| acc + (v - m).exp());
    m + sum.ln()
}

fn max<T: Scalar>(s: &[T]) -> T {
    s.iter().fold(T::neg_infinity(), |m, &v| m.max(v))
}

/// `½·λ·Σ w²` over `weights`.
pub fn l2_penalty<T: Scalar>(lambda: T, weights: &[T]) -> T {
    let sq = weights.iter().fold(T::zero(), |a, &w| a + w * w);
    T::from_f64(0.5) * lambda * sq
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> std::result::Result<Self, Error> {
        match s {
            "softmax" | "cross-entropy" => Ok(Loss::SoftmaxCrossEntropy),
            "svm" | "hinge" => Ok(Loss::Hinge),
            "mse" | "mean-squared" => Ok(Loss::MeanSquared),
            "bce" | "binary-cross-entropy" => Ok(Loss::BinaryCrossEntropy),
            _ => Err(Error::param("loss", s, "must be softmax, svm, mse or bce")),
        }
    }
}
