//! Approach 1: random search. Draw a whole weight vector, `W = randn · scale`, evaluate the
//! loss, keep the best. Hopeless in a space of thousands of dimensions, and the lecture shows
//! it: a starting point that makes everything after it look good.

use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::model::Objective;
use crate::optim::search::{Search, SearchState};
use crate::optim::{Optimizer, StateDict};
use crate::rng::stream_rng;
use crate::scalar::Scalar;
use crate::validate::positive;

/// Random search: each step tries fresh random weights; the model always holds the best found.
///
/// Every parameter is drawn, biases included: for a
/// [`LinearClassifier`](crate::model::LinearClassifier) with 3072 inputs and 10 classes that
/// is the lecture's `W = randn(10, 3073) · scale`, whose last column is the bias. The first
/// try is always kept (the lecture's best loss starts at infinity), unless its loss is NaN.
///
/// Try `k` draws from a generator seeded with `(seed, k)`, so the search's whole random state
/// is its seed and its number of tries, and a resumed search draws what it would have drawn.
#[derive(Debug, Clone)]
pub struct RandomSearch<T> {
    scale: T,
    seed: u64,
    state: SearchState<T>,
    candidate: Vec<T>,
}

impl<T: Scalar> RandomSearch<T> {
    /// Random search drawing `randn · scale` (the lecture uses `scale = 1e-4`), seeded.
    pub fn new(scale: T, seed: u64) -> Result<Self> {
        Ok(RandomSearch {
            scale: positive("scale", scale)?,
            seed,
            state: SearchState::default(),
            candidate: Vec::new(),
        })
    }
}

impl<T: Scalar> Optimizer<T> for RandomSearch<T> {
    fn name(&self) -> &'static str {
        "random"
    }
    /// One try; returns the best loss so far (the loss of the parameters the model holds).
    fn step(&mut self, objective: &mut dyn Objective<T>) -> Result<T> {
        let mut rng = stream_rng(self.seed, self.state.tries as u64);
        self.candidate.clear();
        self.candidate
            .extend((0..objective.params().len()).map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                T::from_f64(z) * self.scale
            }));
        // A NaN loss is never an improvement.
        let loss =
            self.state
                .try_candidate(objective, &mut self.candidate, |loss, best| match best {
                    Some(best) => loss < best || (best.is_nan() && !loss.is_nan()),
                    None => !loss.is_nan(),
                })?;
        Ok(self.state.best_loss.unwrap_or(loss))
    }
    fn state(&self) -> StateDict<T> {
        self.state.save(&[])
    }
    fn load_state(&mut self, state: &StateDict<T>) -> Result<()> {
        self.state = SearchState::load(state, "random", &[])?;
        Ok(())
    }
}

impl<T: Scalar> Search<T> for RandomSearch<T> {
    fn progress(&self) -> &SearchState<T> {
        &self.state
    }
}
