//! Checkpoints: a training run saved to disk, to be resumed exactly or its weights used
//! elsewhere.
//!
//! A run is hours of someone's machine; it must survive being stopped. A [`Checkpoint`] holds
//! everything needed to carry on as if nothing had happened: the parameters (one tensor per
//! [parameter group](crate::model::ParamGroup), named `layers.0.weight`, `layers.0.bias`, …),
//! the optimizer's state (momentum and other buffers, step count, scalars), the state of the
//! observers that keep one (early stopping's best epoch and parameters), where the run stood
//! (epoch, step, seed: with [`Trainer`](crate::Trainer) that is the whole random state, see
//! [`TrainState`]), the network's architecture and the hyper-parameters.
//!
//! * **A format others read.** The file is [safetensors](mod@format), in PyTorch's layout:
//!   `layers.0.weight` is `[out, in]`, as `torch.nn.Linear` and `candle_nn::linear` hold it,
//!   so their loaders take the weights as they are; everything else is in the string
//!   metadata.
//! * **Atomic saves.** [`Checkpoint::save`] writes a temporary file, syncs it and renames it
//!   over the old one ([`atomic`]): killed at any moment, the process leaves the old
//!   checkpoint or the new one, never a torn file.
//! * **Checked loads.** A truncated file, a bad header, another dtype, a missing tensor or a
//!   network of another shape is an [`Error`] that names the file and says which — never a
//!   panic, and never an allocation larger than the file, whose size is checked against a
//!   [`ReadLimit`] before it is read.
//!
//! [`CheckpointSaver`] is the [`Observer`] that saves after every epoch,
//! together with the state of the observers it is given.
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
//! std::fs::create_dir_all(&dir).expect("a temporary directory");
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
use std::path::{Path, PathBuf};

use crate::data::ReadLimit;
use crate::error::{Error, Result};
use crate::model::{Mlp, MlpArchitecture, ParamGroup, Params};
use crate::optim::{Optimizer, StateDict};
use crate::scalar::Scalar;
use crate::train::{Observer, TrainState};

/// A saved training state: parameters, optimizer and observer state, where the run stood,
/// and what the network and its hyper-parameters were.
#[derive(Debug, Clone)]
pub struct Checkpoint<T> {
    /// The file it was loaded from, named in the errors of restoring it.
    source: Option<PathBuf>,
    groups: Vec<ParamGroup>,
    params: Vec<T>,
    /// The network's architecture, when it is an [`Mlp`] (then [`build_mlp`](Self::build_mlp)
    /// rebuilds it).
    pub architecture: Option<MlpArchitecture>,
    /// The [name](Optimizer::name) of the optimizer whose state this is.
    pub optimizer_name: Option<String>,
    /// The optimizer's state.
    pub optimizer: StateDict<T>,
    /// The observers' states, by name (see [`Observer::state`]).
    pub observers: Vec<(String, StateDict<T>)>,
    /// Epoch, step and seed of the run.
    pub train: TrainState,
    /// Hyper-parameters, as the program that saved them wrote them (learning rate, batch
    /// size, …), for the record and for a program that resumes.
    pub hyper: BTreeMap<String, String>,
}

/// Two checkpoints are equal when they hold the same state, wherever they were read from.
impl<T: PartialEq> PartialEq for Checkpoint<T> {
    fn eq(&self, other: &Self) -> bool {
        self.groups == other.groups
            && self.params == other.params
            && self.architecture == other.architecture
            && self.optimizer_name == other.optimizer_name
            && self.optimizer == other.optimizer
            && self.observers == other.observers
            && self.train == other.train
            && self.hyper == other.hyper
    }
}

impl<T: Scalar> Checkpoint<T> {
    /// Takes a snapshot of `model`'s parameters and `optimizer`'s state at `train`.
    pub fn capture(model: &dyn Params<T>, optimizer: &dyn Optimizer<T>, train: TrainState) -> Self {
        Checkpoint {
            source: None,
            groups: model.param_groups(),
            params: model.params().to_vec(),
            architecture: None,
            optimizer_name: Some(optimizer.name().to_string()),
            optimizer: optimizer.state(),
            observers: Vec::new(),
            train,
            hyper: BTreeMap::new(),
        }
    }

    /// Records the network's architecture (so the checkpoint can rebuild it).
    pub fn with_architecture(mut self, architecture: MlpArchitecture) -> Self {
        self.architecture = Some(architecture);
        self
    }

    /// Records the state of `observer` (and, for [`Observers`](crate::train::Observers),
    /// of each of them).
    pub fn with_observer(mut self, observer: &dyn Observer<T>) -> Self {
        self.observers.extend(observer.state());
        self
    }

    /// Records a hyper-parameter.
    pub fn with_hyper(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.hyper.insert(name.into(), value.to_string());
        self
    }

    /// The parameters, flat, in the model's order and layout.
    pub fn params(&self) -> &[T] {
        &self.params
    }

    /// The named tensors the parameters are cut into.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// The file this checkpoint was loaded from, if it was.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        format::to_bytes(self, self.source.as_deref())
    }

    /// Parses safetensors bytes, validating everything; `path` names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        format::from_bytes(bytes, path)
    }

    /// Saves to `path`, atomically: a crash leaves the old file or the new one.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = format::to_bytes(self, Some(path))?;
        atomic::write_atomic(path, &bytes)
    }

    /// Loads and validates a checkpoint file, refusing one larger than the default
    /// [`ReadLimit`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(path, ReadLimit::default())
    }

    /// Loads and validates a checkpoint file, refusing one larger than `limit` before
    /// reading it.
    pub fn load_with(path: impl AsRef<Path>, limit: ReadLimit) -> Result<Self> {
        let path = path.as_ref();
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        limit.check(path, len)?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    fn mismatch(&self, problem: impl Into<String>) -> Error {
        Error::checkpoint(self.source.as_deref(), problem)
    }

    /// `e`, naming this checkpoint's file if it was loaded from one.
    fn located(&self, e: Error) -> Error {
        match &self.source {
            Some(path) => e.in_file(path),
            None => e,
        }
    }

    /// Builds an [`Mlp`] of the recorded architecture holding the saved parameters.
    pub fn build_mlp(&self) -> Result<Mlp<T>> {
        let arch = self
            .architecture
            .as_ref()
            .ok_or_else(|| self.mismatch("records no MLP architecture to build"))?;
        let mut mlp = arch
            .builder::<T>()
            .and_then(|b| b.build())
            .map_err(|e| self.mismatch(format!("its architecture cannot be built: {e}")))?;
        self.restore_model(&mut mlp)?;
        Ok(mlp)
    }

    /// Copies the saved parameters into `model`, whose tensors must have the same names,
    /// shapes and layouts (otherwise an [`ErrorKind::Checkpoint`](crate::error::ErrorKind::Checkpoint)
    /// naming the file and the first tensor that differs; the model is not touched).
    pub fn restore_model(&self, model: &mut dyn Params<T>) -> Result<()> {
        let mine = &self.groups;
        let theirs = model.param_groups();
        for (i, g) in theirs.iter().enumerate() {
            match mine.get(i) {
                Some(m) if m.name == g.name && m.shape == g.shape && m.layout == g.layout => {}
                Some(m) => {
                    return Err(self.mismatch(format!(
                        "tensor {i} is {} {:?}, the model has {} {:?}",
                        m.name, m.shape, g.name, g.shape
                    )))
                }
                None => {
                    return Err(self.mismatch(format!(
                        "the model's tensor {} {:?} is missing",
                        g.name, g.shape
                    )))
                }
            }
        }
        if let Some(extra) = mine.get(theirs.len()) {
            return Err(self.mismatch(format!(
                "tensor {} {:?} is not in the model",
                extra.name, extra.shape
            )));
        }
        if model.params().len() != self.params.len() {
            return Err(self.mismatch(format!(
                "{} parameters saved, the model has {}",
                self.params.len(),
                model.params().len()
            )));
        }
        model.params_mut().copy_from_slice(&self.params);
        Ok(())
    }

    /// Restores the saved state into `optimizer`, which must be of the same kind (same
    /// [name](Optimizer::name)); its hyper-parameters are its own.
    pub fn restore_optimizer(&self, optimizer: &mut dyn Optimizer<T>) -> Result<()> {
        if let Some(name) = &self.optimizer_name {
            if name != optimizer.name() {
                return Err(self.mismatch(format!(
                    "the state is {name}'s, it cannot go into {}",
                    optimizer.name()
                )));
            }
        }
        optimizer
            .load_state(&self.optimizer)
            .map_err(|e| self.located(e))
    }

    /// Restores the saved observer states into `observer` (an
    /// [`Observers`](crate::train::Observers) hands each to the member that kept it). Every
    /// saved state must find its observer: a checkpoint of an early-stopped run resumed
    /// without early stopping is an error, not a silently different run.
    pub fn restore_observer(&self, observer: &mut dyn Observer<T>) -> Result<()> {
        for (name, state) in &self.observers {
            let taken = observer
                .load_state(name, state)
                .map_err(|e| self.located(e))?;
            if !taken {
                return Err(self.mismatch(format!(
                    "it holds the state of {name}, which nothing in this run restores"
                )));
            }
        }
        Ok(())
    }
}
