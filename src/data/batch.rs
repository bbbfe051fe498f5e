//! [`Batch`]: a borrowed selection of examples, and [`Minibatches`], the
//! reshuffled-every-epoch order SGD walks them in.
//!
//! A batch is a reference to the data and a list of rows: a contiguous range (the whole
//! set, for gradient descent) or a list of indices (a shuffled minibatch). Nothing is
//! copied; a model reads the rows it needs, when it needs them. Any data type with a
//! length ([`Examples`]) can be batched, so the same optimizers and training loop serve a
//! classifier over a [`Dataset`] and a regression over a user's own points.
//!
//! A batch the training loop builds also says which step of which run it is for (its
//! [`TrainingStep`]): a model with dropout draws its masks from that, and a dataset with an
//! [`Augment`](crate::data::Augment) distorts its images by it. A batch without one — what
//! evaluation and scoring read — sees the deterministic network and the images as stored.

use std::marker::PhantomData;
use std::ops::Range;

use rand::seq::SliceRandom;

use crate::data::augment::{epoch_key, Augment, Scratch};
use crate::data::sparse::push_blocks;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::kernels::sparse::{ByteBlock, ColumnBlocks};
use crate::matrix::Matrix;
use crate::scalar::Scalar;
use crate::validate::{at_least_one, indices_below};

/// Data a [`Batch`] can select rows of: anything that knows how many examples it holds.
///
/// ```
/// use downhill::data::{Batch, Examples};
///
/// /// Points for a regression.
/// struct Points { x: Vec<f64>, y: Vec<f64> }
/// impl Examples for Points {
///     fn len(&self) -> usize { self.x.len() }
/// }
///
/// let pts = Points { x: vec![0.0, 1.0, 2.0], y: vec![1.0, 3.0, 5.0] };
/// let batch = Batch::<f64, Points>::indices(&pts, &[2, 0])?;
/// let xs: Vec<f64> = batch.rows().map(|i| batch.data().x[i]).collect();
/// assert_eq!(xs, [2.0, 0.0]);
/// # Ok::<(), downhill::Error>(())
/// ```
pub trait Examples {
    /// Number of examples.
    fn len(&self) -> usize;
    /// True if there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dataset's batches: what the training loop and the optimizers see of it.
impl<T: Scalar> Dataset<T> {
    /// Every example, as one batch (what gradient descent and the search methods see).
    pub fn all(&self) -> Batch<'_, T> {
        Batch::all(self)
    }

    /// Examples `range` as a batch.
    pub fn range(&self, range: Range<usize>) -> Result<Batch<'_, T>> {
        Batch::range(self, range)
    }

    /// The examples at `indices` (in that order) as a batch, without copying them.
    pub fn batch<'a>(&'a self, indices: &'a [usize]) -> Result<Batch<'a, T>> {
        Batch::indices(self, indices)
    }
}

impl<T: Scalar> Examples for Dataset<T> {
    fn len(&self) -> usize {
        Dataset::len(self)
    }
}

/// Which step of which training run a [`Batch`] is for: the run's seed, the 1-based epoch
/// and the step (counted from 0 over the run, as [`TrainState::step`](crate::TrainState)).
///
/// The [`Trainer`](crate::Trainer) gives every batch it builds one. What is random in a
/// training step and must not be in evaluation is drawn from it, per row: an
/// [`Mlp`](crate::model::Mlp)'s dropout masks from `(seed, epoch, step, row)`, an
/// [`Augment`]'s distortions from `(seed, epoch, image)`. So the same seed gives the same
/// step on any number of threads, a resumed run (whose state holds all three numbers) the
/// same steps as a straight one, and every loss a step's optimizer or a gradient check
/// evaluates on the batch is the same function: the masks do not change between the probes.
///
/// ```
/// use downhill::data::TrainingStep;
/// use downhill::prelude::*;
///
/// let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
/// let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
/// let mut mlp = Mlp::<f64>::builder(2).hidden(16, Activation::Tanh).dropout(0.5).classes(2).build()?;
/// // Evaluation mode: no step, no dropout.
/// let plain = mlp.loss(&data.all())?;
/// // Training mode: the masks of step 3 of epoch 1 of a run seeded with 7 — the same ones
/// // every time the batch is read.
/// let step = data.all().for_step(TrainingStep::new(7, 1, 3));
/// let dropped = mlp.loss(&step)?;
/// assert_eq!(dropped, mlp.loss(&step)?);
/// assert_ne!(dropped, plain);
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrainingStep {
    /// The run's seed.
    pub seed: u64,
    /// The 1-based epoch.
    pub epoch: usize,
    /// The step, counted from 0 over the whole run.
    pub step: usize,
}

impl TrainingStep {
    /// Step `step` (from 0, over the run) in epoch `epoch` (from 1) of a run seeded with
    /// `seed`.
    pub fn new(seed: u64, epoch: usize, step: usize) -> Self {
        TrainingStep { seed, epoch, step }
    }
}

#[derive(Debug, Clone, Copy)]
enum Rows<'a> {
    Range(usize, usize),
    Indices(&'a [usize]),
}

/// Some examples of `D` (a [`Dataset`] unless said otherwise), borrowed, not copied, for a
/// model with elements of type `T`.
///
/// Models read a dataset's batch in row blocks with [`gather`](Batch::gather), which converts
/// and transforms exactly the rows the block needs; so a batch of 60,000 byte images costs
/// no float memory until a model asks for a block of it.
#[derive(Debug)]
pub struct Batch<'a, T, D: ?Sized = Dataset<T>> {
    data: &'a D,
    rows: Rows<'a>,
    step: Option<TrainingStep>,
    element: PhantomData<fn() -> T>,
}

impl<T, D: ?Sized> Clone for Batch<'_, T, D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, D: ?Sized> Copy for Batch<'_, T, D> {}

impl<'a, T, D: Examples + ?Sized> Batch<'a, T, D> {
    /// Every example of `data`.
    pub fn all(data: &'a D) -> Self {
        Batch {
            data,
            rows: Rows::Range(0, data.len()),
            step: None,
            element: PhantomData,
        }
    }
    /// Examples `range` of `data`.
    pub fn range(data: &'a D, range: Range<usize>) -> Result<Self> {
        check_rows("Batch::range", &range, data.len())?;
        Ok(Batch {
            data,
            rows: Rows::Range(range.start, range.end),
            step: None,
            element: PhantomData,
        })
    }
    /// The examples of `data` at `indices`, in that order.
    pub fn indices(data: &'a D, indices: &'a [usize]) -> Result<Self> {
        indices_below("Batch::indices", indices, data.len())?;
        Ok(Batch {
            data,
            rows: Rows::Indices(indices),
            step: None,
            element: PhantomData,
        })
    }
}

impl<'a, T, D: ?Sized> Batch<'a, T, D> {
    /// The same examples as the batch of training step `step` (see [`TrainingStep`]): a
    /// model with dropout drops units, and a dataset with an augmentation distorts images,
    /// as that step draws them. The [`Trainer`](crate::Trainer) builds its batches so.
    pub fn for_step(mut self, step: TrainingStep) -> Self {
        self.step = Some(step);
        self
    }
    /// The training step this batch is for, if it is a training batch (`None`: evaluation).
    pub fn training_step(&self) -> Option<TrainingStep> {
        self.step
    }
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self.rows {
            Rows::Range(start, end) => end - start,
            Rows::Indices(idx) => idx.len(),
        }
    }
    /// True if the batch has no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The data this batch selects from.
    pub fn data(&self) -> &'a D {
        self.data
    }
    /// The index in the data of the batch's example `i` (`i < len()`).
    #[inline]
    pub fn row(&self, i: usize) -> Option<usize> {
        match self.rows {
            Rows::Range(start, end) => (start + i < end).then_some(start + i),
            Rows::Indices(idx) => idx.get(i).copied(),
        }
    }
    /// The indices in the data of the batch's examples, in batch order.
    pub fn rows(&self) -> impl Iterator<Item = usize> + 'a {
        let rows = self.rows;
        (0..self.len()).filter_map(move |i| match rows {
            Rows::Range(start, _) => Some(start + i),
            Rows::Indices(idx) => idx.get(i).copied(),
        })
    }
}

impl<'a, T: Scalar> Batch<'a, T> {
    /// Features per example.
    pub fn num_features(&self) -> usize {
        self.data.num_features()
    }
    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.data.num_classes()
    }
    /// The dataset this batch borrows from.
    pub fn dataset(&self) -> &'a Dataset<T> {
        self.data
    }

    /// The label of the batch's example `i`, or `None` if out of range.
    pub fn label(&self, i: usize) -> Option<usize> {
        self.row(i).map(|r| self.data.labels()[r])
    }

    /// Writes examples `rows` of this batch into `x` (row-major, `num_features()` wide) and
    /// their labels into `labels`.
    pub fn gather(&self, rows: Range<usize>, x: &mut [T], labels: &mut [usize]) -> Result<()> {
        let f = self.num_features();
        check_rows("Batch::gather", &rows, self.len())?;
        let n = rows.end - rows.start;
        if x.len() < n * f {
            return Err(Error::shape(
                "Batch::gather",
                "feature buffer length",
                n * f,
                x.len(),
            ));
        }
        if labels.len() < n {
            return Err(Error::shape(
                "Batch::gather",
                "label buffer length",
                n,
                labels.len(),
            ));
        }
        let augmenting = self.augmenting();
        let mut image = Vec::new();
        let mut scratch = Scratch::default();
        for (k, i) in rows.enumerate() {
            let r = self.index(i);
            let out = &mut x[k * f..(k + 1) * f];
            match augmenting.and_then(|a| Some((a, self.data.row_bytes(r)?))) {
                Some(((aug, key), stored)) => {
                    image.resize(f, 0);
                    aug.distort(stored, &mut image, key, r, &mut scratch);
                    self.data.write_bytes(&image, out);
                }
                None => self.data.write_row(r, out),
            }
            labels[k] = self.data.labels()[r];
        }
        Ok(())
    }

    /// The augmentation a gather of this batch applies, and its epoch's key: only for a
    /// training batch of a dataset with one that distorts.
    fn augmenting(&self) -> Option<(&'a Augment, u64)> {
        let step = self.step?;
        let aug = self.data.augment().filter(|a| !a.is_identity())?;
        Some((aug, epoch_key(step.seed, step.epoch)))
    }

    /// The index in the dataset of the batch's example `i` (`i < len()`, the caller's promise).
    #[inline]
    fn index(&self, i: usize) -> usize {
        match self.rows {
            Rows::Range(start, _) => start + i,
            Rows::Indices(idx) => idx[i],
        }
    }

    /// Writes examples `rows` of this batch into `out` as their nonzero features in blocks
    /// of `group` columns (each value times its feature's scale; the transform's offset is
    /// the caller's to fold in) and their labels into `labels`. Fails for a dataset without
    /// a sparse form (float features, or rows wider than 262,144).
    pub(crate) fn gather_sparse(
        &self,
        rows: Range<usize>,
        group: usize,
        out: &mut ColumnBlocks<T>,
        labels: &mut [usize],
    ) -> Result<()> {
        check_rows("Batch::gather_sparse", &rows, self.len())?;
        if labels.len() < rows.len() {
            return Err(Error::shape(
                "Batch::gather_sparse",
                "label buffer length",
                rows.len(),
                labels.len(),
            ));
        }
        let Some(sparse) = self.data.sparse_bytes() else {
            return Err(Error::param(
                "sparse input",
                "a dataset without a sparse form",
                "needs byte features at most 262,144 wide",
            ));
        };
        let index = |k: usize| self.index(rows.start + k);
        for (k, label) in labels.iter_mut().take(rows.len()).enumerate() {
            *label = self.data.labels()[index(k)];
        }
        let (f, scales) = (self.num_features(), self.data.scales());
        let Some((aug, key)) = self.augmenting() else {
            return out.gather_byte_rows(f, group, rows.len(), |k| sparse.row(index(k)), scales);
        };
        // Each distorted image is still mostly zeros: its nonzero blocks, row after row, are
        // what the kernels read, as they read the stored ones.
        let (mut image, mut scratch) = (vec![0; f], Scratch::default());
        let mut blocks: Vec<ByteBlock> = Vec::new();
        let mut ptr = vec![0];
        for k in 0..rows.len() {
            let r = index(k);
            if let Some(stored) = self.data.row_bytes(r) {
                aug.distort(stored, &mut image, key, r, &mut scratch);
                push_blocks(&image, &mut blocks);
            }
            ptr.push(blocks.len());
        }
        out.gather_byte_rows(
            f,
            group,
            rows.len(),
            |k| &blocks[ptr[k]..ptr[k + 1]],
            scales,
        )
    }

    /// The whole batch as an owned feature matrix and label vector.
    pub fn to_matrix(&self) -> Result<(Matrix<T>, Vec<usize>)> {
        let mut x = Matrix::zeros(self.len(), self.num_features())?;
        let mut labels = vec![0; self.len()];
        self.gather(0..self.len(), x.as_mut_slice(), &mut labels)?;
        Ok((x, labels))
    }
}

/// Rows `rows` of a batch of `len`: in order and in range.
fn check_rows(context: &'static str, rows: &Range<usize>, len: usize) -> Result<()> {
    if rows.start > rows.end {
        return Err(Error::param(
            "batch rows",
            format!("{rows:?}"),
            "must not end before they start",
        ));
    }
    if rows.end > len {
        return Err(Error::shape(
            context,
            "end of the rows (at most the batch size)",
            len,
            rows.end,
        ));
    }
    Ok(())
}

/// The order in which one epoch of minibatch SGD visits the examples: a permutation of
/// `0..n`, reshuffled by [`shuffle`](Minibatches::shuffle) at the start of every epoch, cut
/// into batches of `batch_size`. The last partial batch is dropped (so every step averages
/// over the same number of examples, as PyTorch's `drop_last`), unless the whole set is
/// smaller than one batch.
#[derive(Debug, Clone)]
pub struct Minibatches {
    order: Vec<usize>,
    batch_size: usize,
}

impl Minibatches {
    /// A sampler over `n` examples; `batch_size` must be at least 1.
    pub fn new(n: usize, batch_size: usize) -> Result<Self> {
        Ok(Minibatches {
            order: (0..n).collect(),
            batch_size: at_least_one("batch_size", batch_size)?,
        })
    }

    /// Reshuffles the order (call once per epoch).
    pub fn shuffle<R: rand::Rng + ?Sized>(&mut self, rng: &mut R) {
        self.order.shuffle(rng);
    }

    /// Draws a fresh order from `rng`, independent of earlier epochs' orders: the examples
    /// are put back in `0..n` first. The training loop uses this, so an epoch's batches
    /// depend only on the generator it is given (which makes resuming a run exact).
    pub fn shuffle_fresh<R: rand::Rng + ?Sized>(&mut self, rng: &mut R) {
        for (i, o) in self.order.iter_mut().enumerate() {
            *o = i;
        }
        self.order.shuffle(rng);
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        match self.order.len() / self.batch_size {
            0 if !self.order.is_empty() => 1,
            k => k,
        }
    }

    /// The index lists of this epoch's batches.
    pub fn iter(&self) -> impl Iterator<Item = &[usize]> + '_ {
        let size = self.batch_size.min(self.order.len().max(1));
        self.order.chunks_exact(size).take(self.num_batches())
    }
}
