//! Saving a checkpoint after every epoch, as an observer of the training loop.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::model::{MlpArchitecture, Model};
use crate::optim::Optimizer;
use crate::train::{Control, EpochRecord, Observer, StepInfo, TrainState};
use crate::Scalar;

/// An [`Observer`] that saves a [`Checkpoint`] to one path after every epoch (atomically, so
/// the file always holds a complete epoch). Give it the trainer's seed; it counts the steps.
///
/// ```
/// use downhill::checkpoint::{Checkpoint, CheckpointSaver};
/// use downhill::prelude::*;
///
/// let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
/// let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
/// let mut mlp = Mlp::<f32>::builder(2).hidden(3, Activation::Relu).classes(2).build()?;
/// let mut sgd = Sgd::new(0.1)?.batch_size(1)?;
/// let path = std::env::temp_dir().join(format!("downhill-saver-{}.st", std::process::id()));
/// let mut saver = CheckpointSaver::new(&path, 5).architecture(mlp.architecture());
/// Trainer::new(3)?.seed(5).run_with(&mut mlp, &mut sgd, &data, None, &mut saver)?;
/// let ckpt = Checkpoint::<f32>::load(&path)?;
/// assert_eq!((ckpt.train.epoch, ckpt.train.step), (3, 6));
/// assert_eq!(ckpt.params(), mlp.params());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CheckpointSaver {
    path: PathBuf,
    seed: u64,
    steps: usize,
    architecture: Option<MlpArchitecture>,
    hyper: BTreeMap<String, String>,
}

impl CheckpointSaver {
    /// Saves to `path` after every epoch of a run seeded with `seed`.
    pub fn new(path: impl Into<PathBuf>, seed: u64) -> Self {
        CheckpointSaver {
            path: path.into(),
            seed,
            steps: 0,
            architecture: None,
            hyper: BTreeMap::new(),
        }
    }
    /// Records the network's architecture in every checkpoint.
    pub fn architecture(mut self, architecture: MlpArchitecture) -> Self {
        self.architecture = Some(architecture);
        self
    }
    /// Records a hyper-parameter in every checkpoint.
    pub fn hyper(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.hyper.insert(name.into(), value.to_string());
        self
    }
}

impl<T: Scalar> Observer<T> for CheckpointSaver {
    fn on_step(&mut self, info: &StepInfo) -> Result<Control> {
        // The loop's step counter runs on across a resume, so this is the run's total.
        self.steps = info.step + 1;
        Ok(Control::Continue)
    }
    fn on_epoch(
        &mut self,
        record: &EpochRecord,
        model: &mut dyn Model<T>,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Result<Control> {
        let state = TrainState {
            epoch: record.epoch,
            step: self.steps,
            seed: self.seed,
        };
        let mut ckpt = Checkpoint::capture(model, optimizer, state);
        ckpt.architecture = self.architecture.clone();
        ckpt.hyper = self.hyper.clone();
        ckpt.save(&self.path)?;
        Ok(Control::Continue)
    }
}
