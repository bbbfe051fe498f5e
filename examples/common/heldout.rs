//! Held-out data, kept apart: a validation split of the training images to watch and choose
//! by, and the test set, scored once at the end.
//!
//! Anything chosen by watching a set — the epoch to stop at, a learning rate, which recipe
//! wins — is fitted to that set a little, so its score there is optimistic. The validation
//! split takes that bias; the test set, looked at once, stays an honest estimate.

use std::cell::Cell;

use downhill::model::{Evaluation, Params};
use downhill::prelude::*;

use super::cli::Failure;

/// Training images held out to validate on, by default (of the 8000 shipped).
pub const VALID: usize = 1000;

/// Splits `n` images, drawn with `seed`, off `train`: the rest to train on, and the held-out
/// ones (`None` for `n = 0`). Holding out all of them, or more, is bad input.
pub fn hold_out(
    train: Dataset<f32>,
    n: usize,
    seed: u64,
) -> Result<(Dataset<f32>, Option<Dataset<f32>>), Failure> {
    if n == 0 {
        return Ok((train, None));
    }
    if n >= train.len() {
        return Err(Failure::Input(format!(
            "--valid {n}: the training set has {} images, and some must be left to train on \
             (hold out fewer, or none with --valid 0)",
            train.len()
        )));
    }
    let (rest, held_out) = train.split(n, seed)?;
    Ok((rest, Some(held_out)))
}

/// A network of its own that scores the parameters it is shown: an observer sees the
/// parameters being trained, not the network that holds them.
pub struct Scorer {
    net: Mlp<f32>,
}

impl Scorer {
    /// A scorer for networks shaped like `net`.
    pub fn new(net: &Mlp<f32>) -> Self {
        Scorer { net: net.clone() }
    }

    /// Loss and accuracy on `data` of the network with parameters `params`.
    pub fn evaluate(
        &mut self,
        params: &dyn Params<f32>,
        data: &Dataset<f32>,
    ) -> downhill::Result<Evaluation> {
        self.net.params_mut().copy_from_slice(params.params());
        self.net.evaluate(data)
    }
}

/// The test set, and a count of how often it was scored: once, at the end, unless a run asks
/// for a test curve. An example reports the count, so "scored once" is something a run shows
/// rather than something its docs claim.
pub struct TestSet {
    data: Dataset<f32>,
    scored: Cell<usize>,
}

impl TestSet {
    /// The test set, not yet scored.
    pub fn new(data: Dataset<f32>) -> Self {
        TestSet {
            data,
            scored: Cell::new(0),
        }
    }

    /// The images, to size things by or transform (scoring goes through [`TestSet::evaluate`]).
    pub fn data(&self) -> &Dataset<f32> {
        &self.data
    }

    /// The images, mutable (to set a transform before anything is scored).
    pub fn data_mut(&mut self) -> &mut Dataset<f32> {
        &mut self.data
    }

    /// Scores `net` on the test set, counting it.
    pub fn evaluate(&self, net: &mut Mlp<f32>) -> downhill::Result<Evaluation> {
        self.scored.set(self.scored.get() + 1);
        net.evaluate(&self.data)
    }

    /// Scores the parameters `params` with `scorer`'s network, counting it.
    pub fn evaluate_params(
        &self,
        scorer: &mut Scorer,
        params: &dyn Params<f32>,
    ) -> downhill::Result<Evaluation> {
        self.scored.set(self.scored.get() + 1);
        scorer.evaluate(params, &self.data)
    }

    /// How many times the test set was scored.
    pub fn times_scored(&self) -> usize {
        self.scored.get()
    }
}
