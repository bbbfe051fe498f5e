//! Data losses over class scores, and the L2 penalty.
//!
//! A model maps each example to one score per class; a loss says how unhappy we are with
//! those scores given the true label. Two classic choices:
//!
//! * **softmax cross-entropy** — `L_i = −log(e^{s_y} / Σ_j e^{s_j})`, computed as
//!   `logsumexp(s) − s_y` with the maximum subtracted first, so scores of ±1e4 neither
//!   overflow nor produce NaN. Gradient: `softmax(s) − onehot(y)`.
//! * **multiclass SVM hinge** — `L_i = Σ_{j≠y} max(0, s_j − s_y + 1)`. Gradient: `+1` on each
//!   class that violates the margin, `−(number of violators)` on the true class.
//!
//! The data loss of a batch is the mean of `L_i`; [`l2_penalty`] adds `½·λ·‖W‖²` over the
//! weights (not the biases), whose gradient is `λ·W`.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::Scalar;

/// Which data loss a model minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Loss {
    /// Softmax cross-entropy (negative log-likelihood of the true class).
    #[default]
    SoftmaxCrossEntropy,
    /// Multiclass SVM hinge loss with margin 1.
    Hinge,
}

impl Loss {
    /// The loss of one example with scores `s` and true class `y` (`y < s.len()`).
    pub fn row_loss<T: Scalar>(self, s: &[T], y: usize) -> T {
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
        }
    }

    /// Loss of one example, and `scale · ∂L_i/∂s` written into `grad` (as long as `s`).
    pub fn row_loss_and_grad<T: Scalar>(self, s: &[T], y: usize, scale: T, grad: &mut [T]) -> T {
        let n = s.len().min(grad.len());
        let (s, grad) = (&s[..n], &mut grad[..n]);
        match self {
            Loss::SoftmaxCrossEntropy => {
                let m = max(s);
                // Shift by the max before exponentiating: e^{s_j − m} ≤ 1 never overflows,
                // and the loss log Σ e^{s_j − m} − (s_y − m) needs no log of a tiny number.
                let mut sum = T::zero();
                for (g, &v) in grad.iter_mut().zip(s) {
                    *g = (v - m).exp();
                    sum = sum + *g;
                }
                let inv = scale / sum;
                grad.iter_mut().for_each(|g| *g = *g * inv);
                grad[y] = grad[y] - scale;
                sum.ln() - (s[y] - m)
            }
            Loss::Hinge => {
                let sy = s[y];
                let mut loss = T::zero();
                let mut violators = T::zero();
                for (j, (g, &v)) in grad.iter_mut().zip(s).enumerate() {
                    let margin = v - sy + T::one();
                    if j != y && margin > T::zero() {
                        loss = loss + margin;
                        violators = violators + T::one();
                        *g = scale;
                    } else {
                        *g = T::zero();
                    }
                }
                grad[y] = -violators * scale;
                loss
            }
        }
    }
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
        f.write_str(match self {
            Loss::SoftmaxCrossEntropy => "softmax",
            Loss::Hinge => "svm",
        })
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "softmax" | "cross-entropy" => Ok(Loss::SoftmaxCrossEntropy),
            "svm" | "hinge" => Ok(Loss::Hinge),
            _ => Err(Error::param("loss", s, "must be softmax or svm")),
        }
    }
}
