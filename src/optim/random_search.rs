//! Approach 1: random search. Draw a whole weight vector, `W = randn · scale`, evaluate the
//! loss, keep the best. Hopeless in a space of thousands of dimensions, and the lecture shows
//! it: a starting point that makes everything after it look good.

use rand_distr::{Distribution, StandardNormal};

use crate::data::Batch;
use crate::error::{positive, Result};
use crate::model::Model;
use crate::optim::{Batching, Optimizer, OptimizerState, SearchState};
use crate::{stream_rng, Scalar};

/// Random search: each step tries fresh random weights; the model always holds the best found.
///
/// Try `k` draws from a generator seeded with `(seed, k)`, so the search's whole random state
/// is its seed and its number of tries, and a resumed search draws what it would have drawn.
#[derive(Debug, Clone)]
pub struct RandomSearch<T> {
    scale: T,
    seed: u64,
    best: Vec<T>,
    best_loss: Option<T>,
    last_loss: Option<T>,
    tries: usize,
}

impl<T: Scalar> RandomSearch<T> {
    /// Random search drawing `randn · scale` (the lecture uses `scale = 1e-4`), seeded.
    pub fn new(scale: T, seed: u64) -> Result<Self> {
        Ok(RandomSearch {
            scale: positive("scale", scale)?,
            seed,
            best: Vec::new(),
            best_loss: None,
            last_loss: None,
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
    /// How many weight vectors have been tried.
    pub fn tries(&self) -> usize {
        self.tries
    }
}

impl<T: Scalar> Optimizer<T> for RandomSearch<T> {
    fn name(&self) -> &'static str {
        "random"
    }
    fn batching(&self) -> Batching {
        Batching::FullBatch
    }
    fn step(&mut self, model: &mut dyn Model<T>, batch: &Batch<'_, T>) -> Result<T> {
        let mut rng = stream_rng(self.seed, self.tries as u64);
        for w in model.params_mut() {
            let z: f64 = StandardNormal.sample(&mut rng);
            *w = T::of(z) * self.scale;
        }
        let loss = model.loss(batch)?;
        self.tries += 1;
        self.last_loss = Some(loss);
        // A NaN loss is never an improvement.
        let improved = match self.best_loss {
            Some(best) => loss < best || (best.is_nan() && !loss.is_nan()),
            None => !loss.is_nan(),
        };
        match improved {
            false if !self.best.is_empty() => model.params_mut().copy_from_slice(&self.best),
            _ => {
                self.best.clear();
                self.best.extend_from_slice(model.params());
                self.best_loss = Some(loss);
            }
        }
        Ok(self.best_loss.unwrap_or(loss))
    }
    fn state(&self) -> OptimizerState<T> {
        SearchState::save(self.tries, &self.best, self.best_loss, self.last_loss)
    }
    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<()> {
        let saved = SearchState::load(state, "random", &[])?;
        self.tries = saved.tries;
        self.best = saved.best;
        self.best_loss = saved.best_loss;
        self.last_loss = saved.last_loss;
        Ok(())
    }
}
