//! Checkpoints: a training run saved to disk, to be resumed exactly or its weights used
//! elsewhere.
//!
//! A run is hours of someone's machine; it must survive being stopped. A [`Checkpoint`] holds
//! everything needed to carry on as if nothing had happened: the parameters (one tensor per
//! [parameter group](crate::model::ParamGroup), named `layers.0.weight`, `layers.0.bias`, …),
//! the optimizer's state (momentum and other buffers, step count, scalars), where the run
//! stood (epoch, step, seed: with [`Trainer`](crate::Trainer) that is the whole random
//! state, see [`TrainState`]), the network's architecture and the hyper-parameters.
//!
//! * **A format others read.** The file is [safetensors](mod@format): PyTorch's and candle's
//!   loaders read the weights; everything else is in its string metadata.
//! * **Atomic saves.** [`Checkpoint::save`] writes a temporary file, syncs it and renames it
//!   over the old one ([`atomic`]): killed at any moment, the process leaves the old
//!   checkpoint or the new one, never a torn file.
//! * **Checked loads.** A truncated file, a bad header, another dtype, a missing tensor or a
//!   network of another shape is an [`Error`] that says which — never a panic, and never an
//!   allocation larger than the file.
//!
//! [`CheckpointSaver`] is the [`Observer`](crate::Observer) that saves after every epoch.
//!
//! ```
//! use downhill::checkpoint::Checkpoint;
//! use downhill::prelude::*;
//! use downhill::train::TrainState;
//!
//! let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.9, 0.1, 0.2, 0.8], 4, 2)?;
//! let data = Dataset::from_matrix(x, vec![1, 0, 0, 1], 2)?;
//! let new_mlp = || Mlp::<f64>::builder(2).hidden(4, Activation::Tanh).classes(2).build();
//! let new_sgd = || Sgd::new(0.5)?.momentum(0.9)?.batch_size(2);
//! let dir = std::env::temp_dir().join(format!("downhill-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
//! let path = dir.join("run.safetensors");
//!
//! // Four epochs straight.
//! let (mut straight, mut sgd) = (new_mlp()?, new_sgd()?);
//! Trainer::new(4)?.seed(7).run(&mut straight, &mut sgd, &data, None)?;
//!
//! // Two epochs, saved ...
//! let (mut first, mut sgd) = (new_mlp()?, new_sgd()?);
//! Trainer::new(2)?.seed(7).run(&mut first, &mut sgd, &data, None)?;
//! let state = TrainState { epoch: 2, step: 4, seed: 7 };
//! Checkpoint::capture(&first, &sgd, state).with_architecture(first.architecture()).save(&path)?;
//!
//! // ... and resumed in a fresh model and optimizer, up to four.
//! let ckpt = Checkpoint::<f64>::load(&path)?;
//! let (mut resumed, mut sgd) = (ckpt.build_mlp()?, new_sgd()?);
//! ckpt.restore_optimizer(&mut sgd)?;
//! Trainer::new(4)?.resume(&ckpt.train)?.run(&mut resumed, &mut sgd, &data, None)?;
//! assert_eq!(resumed.params(), straight.params());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), downhill::Error>(())
//! ```

pub mod atomic;
pub mod format;
mod saver;

pub use saver::CheckpointSaver;

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::{Mlp, MlpArchitecture, Model, ParamGroup};
use crate::optim::{Optimizer, OptimizerState};
use crate::train::TrainState;
use crate::Scalar;

/// A saved training state: parameters, optimizer state, where the run stood, and what the
/// network and its hyper-parameters were.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint<T> {
    groups: Vec<ParamGroup>,
    params: Vec<T>,
    /// The network's architecture, when it is an [`Mlp`] (then [`build_mlp`](Self::build_mlp)
    /// rebuilds it).
    pub architecture: Option<MlpArchitecture>,
    /// The [name](Optimizer::name) of the optimizer whose state this is.
    pub optimizer_name: Option<String>,
    /// The optimizer's state.
    pub optimizer: OptimizerState<T>,
    /// Epoch, step and seed of the run.
    pub train: TrainState,
    /// Hyper-parameters, as the program that saved them wrote them (learning rate, batch
    /// size, …), for the record and for a program that resumes.
    pub hyper: BTreeMap<String, String>,
}

impl<T: Scalar> Checkpoint<T> {
    /// Takes a snapshot of `model`'s parameters and `optimizer`'s state at `train`.
    pub fn capture(model: &dyn Model<T>, optimizer: &dyn Optimizer<T>, train: TrainState) -> Self {
        Checkpoint {
            groups: model.param_groups(),
            params: model.params().to_vec(),
            architecture: None,
            optimizer_name: Some(optimizer.name().to_string()),
            optimizer: optimizer.state(),
            train,
            hyper: BTreeMap::new(),
        }
    }

    /// Records the network's architecture (so the checkpoint can rebuild it).
    pub fn with_architecture(mut self, architecture: MlpArchitecture) -> Self {
        self.architecture = Some(architecture);
        self
    }

    /// Records a hyper-parameter.
    pub fn with_hyper(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.hyper.insert(name.into(), value.to_string());
        self
    }

    /// The parameters, flat, in the model's order.
    pub fn params(&self) -> &[T] {
        &self.params
    }

    /// The named tensors the parameters are cut into.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        format::to_bytes(self, Path::new("checkpoint"))
    }

    /// Parses safetensors bytes, validating everything; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        format::from_bytes(bytes, path)
    }

    /// Saves to `path`, atomically: a crash leaves the old file or the new one.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = format::to_bytes(self, path)?;
        atomic::write_atomic(path, &bytes)
    }

    /// Loads and validates a checkpoint file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Builds an [`Mlp`] of the recorded architecture holding the saved parameters.
    pub fn build_mlp(&self) -> Result<Mlp<T>> {
        let arch = self.architecture.as_ref().ok_or_else(|| {
            Error::checkpoint(
                Path::new("checkpoint"),
                "records no MLP architecture to build",
            )
        })?;
        let mut mlp = arch.builder::<T>()?.build()?;
        self.restore_model(&mut mlp)?;
        Ok(mlp)
    }

    /// Copies the saved parameters into `model`, whose tensors must have the same names and
    /// shapes (otherwise an [`Error::Checkpoint`] naming the first that differs; the model is
    /// not touched).
    pub fn restore_model(&self, model: &mut dyn Model<T>) -> Result<()> {
        let mine = &self.groups;
        let theirs = model.param_groups();
        let here = Path::new("checkpoint");
        for (i, g) in theirs.iter().enumerate() {
            match mine.get(i) {
                Some(m) if m.name == g.name && m.shape == g.shape => {}
                Some(m) => {
                    return Err(Error::checkpoint(
                        here,
                        format!(
                            "tensor {i} is {} {:?}, the model has {} {:?}",
                            m.name, m.shape, g.name, g.shape
                        ),
                    ))
                }
                None => {
                    return Err(Error::checkpoint(
                        here,
                        format!("the model's tensor {} {:?} is missing", g.name, g.shape),
                    ))
                }
            }
        }
        if let Some(extra) = mine.get(theirs.len()) {
            return Err(Error::checkpoint(
                here,
                format!(
                    "tensor {} {:?} is not in the model",
                    extra.name, extra.shape
                ),
            ));
        }
        if model.num_params() != self.params.len() {
            return Err(Error::checkpoint(
                here,
                format!(
                    "{} parameters saved, the model has {}",
                    self.params.len(),
                    model.num_params()
                ),
            ));
        }
        model.params_mut().copy_from_slice(&self.params);
        Ok(())
    }

    /// Restores the saved state into `optimizer`, which must be of the same kind (same
    /// [name](Optimizer::name)); its hyper-parameters are its own.
    pub fn restore_optimizer(&self, optimizer: &mut dyn Optimizer<T>) -> Result<()> {
        if let Some(name) = &self.optimizer_name {
            if name != optimizer.name() {
                return Err(Error::checkpoint(
                    Path::new("checkpoint"),
                    format!(
                        "the state is {name}'s, it cannot go into {}",
                        optimizer.name()
                    ),
                ));
            }
        }
        optimizer.load_state(&self.optimizer)
    }
}
