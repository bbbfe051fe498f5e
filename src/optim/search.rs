//! What random search and random local search share: a try is a whole candidate parameter
//! vector, evaluated in place of the current one and kept only if it is better.
//!
//! The candidate is built in a buffer of the search's own and swapped in (for an
//! [`Mlp`](crate::model::Mlp), through its fast path, which costs nothing). If
//! it is worse, or its loss cannot be evaluated, it is swapped back out: the model holds the
//! best parameters found, always, and an error leaves it where it was.

use crate::error::{Error, Result};
use crate::model::Objective;
use crate::optim::{swap_params, Optimizer, StateDict};
use crate::scalar::Scalar;

/// What [`RandomSearch`](crate::optim::RandomSearch) and
/// [`LocalSearch`](crate::optim::LocalSearch) report as they go: the tries made and the losses
/// seen. It is in the [prelude](crate::prelude), so `search.best_loss()` reads as a method of
/// either; only the crate's searches implement it.
///
/// ```
/// use downhill::model::FnObjective;
/// use downhill::prelude::*;
///
/// // Minimise w² by keeping the better of each random try.
/// let mut f = FnObjective::new(
///     vec![3.0],
///     |w: &[f64]| w[0] * w[0],
///     |w: &[f64], g: &mut [f64]| g[0] = 2.0 * w[0],
/// );
/// let mut search = RandomSearch::new(1.0, 7)?;
/// for _ in 0..20 {
///     search.step(&mut f)?;
/// }
/// assert_eq!(search.tries(), 20);
/// assert!(search.best_loss().unwrap() < 9.0);
/// assert!(search.best_loss() <= search.last_loss());
/// # Ok::<(), downhill::Error>(())
/// ```
pub trait Search<T: Scalar>: Optimizer<T> {
    /// The search's progress (its type is the crate's own).
    #[doc(hidden)]
    fn progress(&self) -> &SearchState<T>;
    /// The lowest loss seen so far: the loss of the parameters the model holds.
    fn best_loss(&self) -> Option<T> {
        self.progress().best_loss
    }
    /// The loss of the most recent try.
    fn last_loss(&self) -> Option<T> {
        self.progress().last_loss
    }
    /// Tries made.
    fn tries(&self) -> usize {
        self.progress().tries
    }
}

/// A search's progress: the tries made and the losses seen.
#[derive(Debug, Clone, Default)]
pub struct SearchState<T> {
    /// Tries made so far (try `k` draws from the stream `(seed, k)`).
    pub tries: usize,
    /// The loss of the parameters the model holds, once measured.
    pub best_loss: Option<T>,
    /// The loss of the most recent try.
    pub last_loss: Option<T>,
}

impl<T: Scalar> SearchState<T> {
    /// Evaluates `candidate` in place of `objective`'s parameters and keeps it if `better`
    /// says its loss beats the best so far. Afterwards `candidate` holds whichever vector
    /// lost. Returns the try's loss.
    pub fn try_candidate(
        &mut self,
        objective: &mut dyn Objective<T>,
        candidate: &mut Vec<T>,
        better: impl Fn(T, Option<T>) -> bool,
    ) -> Result<T> {
        swap_params(objective, candidate)?;
        let loss = match objective.loss() {
            Ok(loss) => loss,
            Err(e) => {
                swap_params(objective, candidate)?;
                return Err(e);
            }
        };
        self.tries += 1;
        self.last_loss = Some(loss);
        if better(loss, self.best_loss) {
            self.best_loss = Some(loss);
        } else {
            swap_params(objective, candidate)?;
        }
        Ok(loss)
    }

    /// The state for a checkpoint, with `extra` scalars.
    pub fn save(&self, extra: &[(&str, f64)]) -> StateDict<T> {
        let mut state = StateDict {
            steps: self.tries as u64,
            ..StateDict::default()
        };
        for (name, loss) in [("best_loss", self.best_loss), ("last_loss", self.last_loss)] {
            if let Some(l) = loss {
                state.scalars.push((name.to_string(), l.to_f64_lossless()));
            }
        }
        for &(name, value) in extra {
            state.scalars.push((name.to_string(), value));
        }
        state
    }

    /// Reads a saved state back, after checking it holds nothing but a search's state and
    /// the `extra` scalars. (Checkpoints of version 0.1 also held the best parameters as a
    /// buffer `best`; they are the model's parameters, which the checkpoint restores, so
    /// the buffer is accepted and not used.)
    pub fn load(saved: &StateDict<T>, who: &'static str, extra: &[&str]) -> Result<Self> {
        if let Some((name, _)) = saved.buffers.iter().find(|(n, _)| n != "best") {
            return Err(Error::optimizer_state(
                who,
                format!("buffer {name:?} is not one a search keeps"),
            ));
        }
        for (name, _) in &saved.scalars {
            if !["best_loss", "last_loss"].contains(&name.as_str())
                && !extra.contains(&name.as_str())
            {
                return Err(Error::optimizer_state(
                    who,
                    format!("scalar {name:?} is not one {who} search keeps"),
                ));
            }
        }
        let tries = usize::try_from(saved.steps).map_err(|_| {
            Error::optimizer_state(who, format!("{} tries do not fit in usize", saved.steps))
        })?;
        Ok(SearchState {
            tries,
            best_loss: saved.scalar("best_loss").map(T::from_f64),
            last_loss: saved.scalar("last_loss").map(T::from_f64),
        })
    }
}
