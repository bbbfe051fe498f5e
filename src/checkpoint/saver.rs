//! Saving a checkpoint after every epoch, as an observer of the training loop.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::model::{MlpArchitecture, Params};
use crate::optim::StateDict;
use crate::scalar::Scalar;
use crate::train::{Control, EpochEnd, Observer, Observers, StepInfo, TrainReport, TrainState};

/// An [`Observer`] that saves a [`Checkpoint`] to one path after every epoch (atomically, so
/// the file always holds a complete epoch). Give it the trainer's seed; it counts the steps.
///
/// Observers whose state belongs in the checkpoint — [`EarlyStopping`](crate::train::EarlyStopping)'s
/// best epoch and parameters — go *inside* the saver ([`including`](CheckpointSaver::including)):
/// it calls them first and saves their state with the epoch they have just seen.
///
/// ```
/// use downhill::checkpoint::{Checkpoint, CheckpointSaver};
/// use downhill::prelude::*;
/// use downhill::train::{EarlyStopping, Monitor};
///
/// let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
/// let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
/// let mut mlp = Mlp::<f32>::builder(2).hidden(3, Activation::Relu).classes(2).build()?;
/// let mut sgd = Sgd::new(0.1)?.batch_size(1)?;
/// let path = std::env::temp_dir().join(format!("downhill-saver-{}.st", std::process::id()));
/// let mut stop = EarlyStopping::new(Monitor::ValidLoss, 5)?;
/// let mut saver = CheckpointSaver::new(&path, 5)
///     .architecture(mlp.architecture())
///     .including(&mut stop);
/// Trainer::new(3)?.seed(5).run_with(&mut mlp, &mut sgd, &data, Some(&data), &mut saver)?;
/// let ckpt = Checkpoint::<f32>::load(&path)?;
/// assert_eq!((ckpt.train.epoch, ckpt.train.step), (3, 6));
/// assert_eq!(ckpt.observers[0].0, "early_stopping");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), downhill::Error>(())
/// ```
pub struct CheckpointSaver<'a, T: Scalar> {
    path: PathBuf,
    seed: u64,
    steps: usize,
    architecture: Option<MlpArchitecture>,
    hyper: BTreeMap<String, String>,
    inner: Observers<'a, T>,
}

impl<'a, T: Scalar> CheckpointSaver<'a, T> {
    /// Saves to `path` after every epoch of a run seeded with `seed`.
    pub fn new(path: impl Into<PathBuf>, seed: u64) -> Self {
        CheckpointSaver {
            path: path.into(),
            seed,
            steps: 0,
            architecture: None,
            hyper: BTreeMap::new(),
            inner: Observers(Vec::new()),
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
    /// Runs `observer` inside the saver (before each save) and saves its
    /// [state](Observer::state) in every checkpoint.
    pub fn including(mut self, observer: &'a mut dyn Observer<T>) -> Self {
        self.inner.0.push(observer);
        self
    }
}

impl<T: Scalar> Observer<T> for CheckpointSaver<'_, T> {
    fn on_step(&mut self, info: &StepInfo) -> Result<Control> {
        // The loop's step counter runs on across a resume, so this is the run's total.
        self.steps = info.step + 1;
        self.inner.on_step(info)
    }
    fn on_epoch(&mut self, end: &mut EpochEnd<'_, T>) -> Result<Control> {
        let control = self.inner.on_epoch(end)?;
        let state = TrainState {
            epoch: end.record.epoch,
            step: self.steps,
            seed: self.seed,
        };
        let mut ckpt =
            Checkpoint::capture(end.params, end.optimizer, state).with_observer(&self.inner);
        ckpt.architecture = self.architecture.clone();
        ckpt.hyper = self.hyper.clone();
        ckpt.save(&self.path)?;
        Ok(control)
    }
    fn on_end(&mut self, report: &TrainReport, params: &mut dyn Params<T>) -> Result<()> {
        self.inner.on_end(report, params)
    }
    fn state(&self) -> Vec<(String, StateDict<T>)> {
        self.inner.state()
    }
    fn load_state(&mut self, name: &str, state: &StateDict<T>) -> Result<bool> {
        self.inner.load_state(name, state)
    }
}
