//! Approach 4: minibatch stochastic gradient descent. The gradient over a random minibatch
//! of 32–256 examples is a noisy but unbiased estimate of the full gradient, and costs a
//! fraction of it: many cheap noisy steps beat few exact ones. It is the shared gradient
//! method ([`Descent`]) on minibatches, reshuffled every epoch by the training loop; with
//! momentum `μ` the step follows a running velocity, `v ← μ·v + ∇L`, `w ← w − lr·v`, which
//! damps the zig-zag across ill-conditioned valleys and keeps moving through flat stretches
//! and saddle points.

use crate::error::Result;
use crate::optim::descent::{Descent, MiniBatch};
use crate::optim::update::GradientUpdate;
use crate::scalar::Scalar;
use crate::validate::at_least_one;

/// Minibatch stochastic gradient descent: the gradient over a random minibatch of 32–256
/// examples is a noisy but unbiased estimate of the full gradient, and costs a fraction of
/// it, so many cheap noisy steps beat few exact ones.
///
/// ```
/// use downhill::optim::{Optimizer, Sgd, UpdateRule};
///
/// let sgd = Sgd::<f32>::new(0.05)?.rule(UpdateRule::nesterov(0.9)?).batch_size(64)?;
/// assert_eq!(sgd.name(), "sgd");
/// assert!(Sgd::<f32>::new(0.05)?.batch_size(0).is_err());
/// # Ok::<(), downhill::Error>(())
/// ```
pub type Sgd<T> = Descent<T, MiniBatch>;

impl<T: Scalar> Descent<T, MiniBatch> {
    /// SGD with step size `learning_rate` (finite, > 0), batch size 128 and the plain rule.
    pub fn new(learning_rate: T) -> Result<Self> {
        Ok(Descent {
            update: GradientUpdate::new(learning_rate)?,
            batches: MiniBatch { size: 128 },
            search: None,
        })
    }
    /// Sets the minibatch size (at least 1; 32–256 is typical).
    pub fn batch_size(mut self, batch_size: usize) -> Result<Self> {
        self.batches.size = at_least_one("batch_size", batch_size)?;
        Ok(self)
    }
}
