//! Approach 3 put to work: gradient descent. The analytic gradient says which way is
//! downhill; step that way, `w ← w − lr·∇L(w)`, with `L` the loss over the whole training
//! set. One step is one pass over the data. It is the shared gradient method
//! ([`Descent`]) on full batches: any [`UpdateRule`](crate::optim::UpdateRule) applies, and
//! momentum is the classic cure for the zig-zag of full-batch descent in an
//! ill-conditioned valley.

use crate::error::Result;
use crate::optim::descent::{Descent, FullBatch};
use crate::optim::update::GradientUpdate;
use crate::scalar::Scalar;

/// Full-batch gradient descent: every step follows the gradient of the whole training set.
///
/// ```
/// use downhill::optim::{GradientDescent, Optimizer};
///
/// let gd = GradientDescent::<f64>::new(0.5)?.momentum(0.9)?;
/// assert_eq!((gd.name(), gd.learning_rate()), ("gd", Some(0.5)));
/// # Ok::<(), downhill::Error>(())
/// ```
pub type GradientDescent<T> = Descent<T, FullBatch>;

impl<T: Scalar> Descent<T, FullBatch> {
    /// Gradient descent with step size `learning_rate` (finite, > 0) and the plain rule.
    pub fn new(learning_rate: T) -> Result<Self> {
        Ok(Descent {
            update: GradientUpdate::new(learning_rate)?,
            batches: FullBatch,
        })
    }
}
