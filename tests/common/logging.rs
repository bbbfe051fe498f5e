//! A user's wrapper around an `Mlp`: it logs the loss of every gradient it computes, and
//! passes the MLP's fast path on (or, with `forward_fast_path: false`, does not). Shared by
//! `tests/wrappers.rs` and the step benchmark (`benches/kernels.rs`).

use downhill::model::{FastPath, Params};
use downhill::prelude::*;

pub struct Logging {
    pub inner: Mlp<f32>,
    pub losses: Vec<f32>,
    pub forward_fast_path: bool,
}

impl Logging {
    /// `inner`, logged, its fast path forwarded.
    pub fn new(inner: Mlp<f32>) -> Self {
        Logging {
            inner,
            losses: Vec::new(),
            forward_fast_path: true,
        }
    }
}

impl Params<f32> for Logging {
    downhill::forward_params!(f32, inner);
}

impl Model<f32> for Logging {
    fn loss(&mut self, batch: &Batch<'_, f32>) -> Result<f32> {
        self.inner.loss(batch)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f32>, grad: &mut [f32]) -> Result<f32> {
        let loss = self.inner.loss_and_grad(batch, grad)?;
        // The last few thousand, so a long benchmark does not grow it without bound.
        if self.losses.len() == 4096 {
            self.losses.clear();
        }
        self.losses.push(loss);
        Ok(loss)
    }
    // The gradient is the inner model's, unchanged: its fast path stays valid.
    fn fast_path(&mut self) -> Option<FastPath<'_, f32>> {
        match self.forward_fast_path {
            true => self.inner.fast_path(),
            false => None,
        }
    }
}
