//! Approach 3 put to work: gradient descent. The analytic gradient says which way is
//! downhill; step that way, `w ← w − lr·∇L(w)`, with `L` the loss over the whole training
//! set. One step is one pass over the data. It is the shared gradient method
//! ([`Descent`]) on full batches: any [`UpdateRule`](crate::optim::UpdateRule) applies, and
//! momentum is the classic cure for the zig-zag of full-batch descent in an
//! ill-conditioned valley.

use crate::error::Result;
use crate::optim::descent::{Descent, FullBatch};
use crate::optim::gd_line_search::SearchedDescent;
use crate::optim::line_search::LineSearch;
use crate::optim::update::GradientUpdate;
#[cfg(doc)]
use crate::optim::Optimizer;
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
            search: None,
        })
    }

    /// Gradient descent that picks its own step at every iteration: a `search` along `−∇f`
    /// (see `optim/gd_line_search.rs`). The first search tries the learning rate first (or
    /// the search's [`initial_step`](LineSearch::initial_step)); each later one starts from
    /// Nocedal & Wright's guess, the step that repeats the last iteration's decrease
    /// (`α₀ = 2·(f_k − f_{k−1}) / ∇f_k·d_k`), so a first step that is far off, either way,
    /// costs a few evaluations and no tuning. The learning rate is then no longer the step
    /// ([`learning_rate`](Optimizer::learning_rate) is `None`, and a schedule is refused), and
    /// the rule must stay plain, without weight decay or clipping (a step otherwise is
    /// refused with [`ErrorKind::InvalidParameter`](crate::error::ErrorKind::InvalidParameter)).
    ///
    /// A step is all or nothing: a search that finds no acceptable step
    /// ([`ErrorKind::LineSearch`](crate::error::ErrorKind::LineSearch)) or meets a loss or
    /// gradient that is not finite ([`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged))
    /// leaves the parameters and the state as they were. A step reuses the gradient its
    /// search found at the point it reached (strong Wolfe evaluates it) while the parameters
    /// are still that point, so it suits a full batch that stays the same from step to step.
    ///
    /// ```
    /// use downhill::model::FnObjective;
    /// use downhill::optim::LineSearch;
    /// use downhill::prelude::*;
    ///
    /// // The valley ½(x² + 50·y²): a fixed step above 2/50 = 0.04 diverges. With a line
    /// // search, a first step of 1000 is cut back, and one of 0.001 grows.
    /// for first in [1e-3, 1.0, 1e3] {
    ///     let mut valley = FnObjective::new(
    ///         vec![-10.0, 1.5],
    ///         |p: &[f64]| 0.5 * (p[0] * p[0] + 50.0 * p[1] * p[1]),
    ///         |p: &[f64], g: &mut [f64]| { g[0] = p[0]; g[1] = 50.0 * p[1]; },
    ///     );
    ///     let mut gd = GradientDescent::new(first)?.line_search(LineSearch::backtracking());
    ///     Trainer::new(1000)?.minimize(&mut valley, &mut gd)?;
    ///     assert!(valley.loss()? < 1e-6, "from {first}");
    ///     assert_eq!(gd.learning_rate(), None);
    /// }
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn line_search(mut self, search: LineSearch) -> Self {
        self.search = Some(Box::new(SearchedDescent::new(search)));
        self
    }
}
