//! Approach 2: random local search. From the best weights so far, take a step of size
//! `step_size` in a random direction, `W_try = W + randn · step_size`, and move there only if
//! the loss goes down. Blindfolded hiking: better than teleporting at random, still blind.

use rand_distr::{Distribution, StandardNormal};

use crate::data::Batch;
use crate::error::{positive, Result};
use crate::model::Model;
use crate::optim::{ensure_len, Batching, Optimizer, OptimizerState, SearchState};
use crate::{stream_rng, Scalar};

/// Random local search around the best parameters; the model always holds the best found.
///
/// Try `k` draws its direction from a generator seeded with `(seed, k)`, so the search's whole
/// random state is its seed and its number of tries (see [`RandomSearch`](super::RandomSearch)).
#[derive(Debug, Clone)]
pub struct LocalSearch<T> {
    step_size: T,
    seed: u64,
    best: Vec<T>,
    best_loss: Option<T>,
    last_loss: Option<T>,
    accepted: usize,
    tries: usize,
}

impl<T: Scalar> LocalSearch<T> {
    /// Local search with perturbations `randn · step_size`, seeded.
    pub fn new(step_size: T, seed: u64) -> Result<Self> {
        Ok(LocalSearch {
            step_size: positive("step_size", step_size)?,
            seed,
            best: Vec::new(),
            best_loss: None,
            last_loss: None,
            accepted: 0,
            tries: 0,
        })
    }
    /// The lowest loss seen so far.
    pub fn best_loss(&self) -> Option<T> {
        self.best_loss
    }
    /// The loss of the most recent try.
    pub fn last_loss(&self) -> Option<T> {
        self.last_loss
    }
    /// Tries that lowered the loss and were kept.
    pub fn accepted(&self) -> usize {
        self.accepted
    }
    /// Tries made.
    pub fn tries(&self) -> usize {
        self.tries
    }
}

impl<T: Scalar> Optimizer<T> for LocalSearch<T> {
    fn name(&self) -> &'static str {
        "local"
    }
    fn batching(&self) -> Batching {
        Batching::FullBatch
    }
    fn step(&mut self, model: &mut dyn Model<T>, batch: &Batch<'_, T>) -> Result<T> {
        // The first step measures where we start from (and any change of model or data
        // between runs resets the search).
        let best_loss = match self.best_loss {
            Some(l) if self.best.len() == model.num_params() => l,
            _ => {
                let l = model.loss(batch)?;
                ensure_len(&mut self.best, model.num_params());
                self.best.copy_from_slice(model.params());
                self.best_loss = Some(l);
                l
            }
        };
        let mut rng = stream_rng(self.seed, self.tries as u64);
        for (w, &b) in model.params_mut().iter_mut().zip(&self.best) {
            let z: f64 = StandardNormal.sample(&mut rng);
            *w = b + T::of(z) * self.step_size;
        }
        let loss = model.loss(batch)?;
        self.tries += 1;
        self.last_loss = Some(loss);
        if loss < best_loss {
            self.best.copy_from_slice(model.params());
            self.best_loss = Some(loss);
            self.accepted += 1;
            Ok(loss)
        } else {
            model.params_mut().copy_from_slice(&self.best);
            Ok(best_loss)
        }
    }
    fn state(&self) -> OptimizerState<T> {
        let mut state = SearchState::save(self.tries, &self.best, self.best_loss, self.last_loss);
        state
            .scalars
            .push(("accepted".to_string(), self.accepted as f64));
        state
    }
    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<()> {
        let saved = SearchState::load(state, "local", &["accepted"])?;
        self.tries = saved.tries;
        self.best = saved.best;
        self.best_loss = saved.best_loss;
        self.last_loss = saved.last_loss;
        // A count saved as f64 is exact up to 2^53 tries.
        self.accepted = state.scalar("accepted").map_or(0, |a| a.max(0.0) as usize);
        Ok(())
    }
}
