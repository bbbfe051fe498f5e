//! Approach 2: random local search. From the best weights so far, take a step of size
//! `step_size` in a random direction, `W_try = W + randn · step_size`, and move there only if
//! the loss goes down. Blindfolded hiking: better than teleporting at random, still blind.

use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::model::Objective;
use crate::optim::search::{Search, SearchState};
use crate::optim::{Optimizer, StateDict};
use crate::rng::stream_rng;
use crate::scalar::Scalar;
use crate::validate::positive;

/// Random local search around the best parameters; the model always holds the best found.
///
/// Every parameter is perturbed, biases included (the lecture's
/// `W_try = W + randn(10, 3073) · step_size`, the bias its last column). The first step
/// measures the loss of the parameters the model starts with, so a try is kept only if it
/// beats that: one loss evaluation more than the lecture's loop, whose best loss starts at
/// infinity and so always keeps its first try.
///
/// Try `k` draws its direction from a generator seeded with `(seed, k)`, so the search's
/// whole random state is its seed and its number of tries (see
/// [`RandomSearch`](super::RandomSearch)).
#[derive(Debug, Clone)]
pub struct LocalSearch<T> {
    step_size: T,
    seed: u64,
    state: SearchState<T>,
    accepted: usize,
    candidate: Vec<T>,
}

impl<T: Scalar> LocalSearch<T> {
    /// Local search with perturbations `randn · step_size`, seeded.
    pub fn new(step_size: T, seed: u64) -> Result<Self> {
        Ok(LocalSearch {
            step_size: positive("step_size", step_size)?,
            seed,
            state: SearchState::default(),
            accepted: 0,
            candidate: Vec::new(),
        })
    }
    /// Tries that lowered the loss and were kept.
    pub fn accepted(&self) -> usize {
        self.accepted
    }
}

impl<T: Scalar> Optimizer<T> for LocalSearch<T> {
    fn name(&self) -> &'static str {
        "local"
    }
    /// One try; returns the best loss so far (the loss of the parameters the model holds).
    fn step(&mut self, objective: &mut dyn Objective<T>) -> Result<T> {
        // The first step measures where the search starts from.
        let best = match self.state.best_loss {
            Some(best) => best,
            None => {
                let l = objective.loss()?;
                self.state.best_loss = Some(l);
                l
            }
        };
        let mut rng = stream_rng(self.seed, self.state.tries as u64);
        let step = self.step_size;
        self.candidate.clear();
        self.candidate.extend(objective.params().iter().map(|&w| {
            let z: f64 = StandardNormal.sample(&mut rng);
            w + T::from_f64(z) * step
        }));
        let loss = self
            .state
            .try_candidate(objective, &mut self.candidate, |loss, _| loss < best)?;
        if loss < best {
            self.accepted += 1;
        }
        Ok(self.state.best_loss.unwrap_or(best))
    }
    fn state(&self) -> StateDict<T> {
        self.state.save(&[("accepted", self.accepted as f64)])
    }
    fn load_state(&mut self, state: &StateDict<T>) -> Result<()> {
        let search = SearchState::load(state, "local", &["accepted"])?;
        // A count saved as f64 is exact up to 2^53 tries.
        self.accepted = state.scalar("accepted").map_or(0, |a| a.max(0.0) as usize);
        self.state = search;
        Ok(())
    }
}

impl<T: Scalar> Search<T> for LocalSearch<T> {
    fn progress(&self) -> &SearchState<T> {
        &self.state
    }
}
