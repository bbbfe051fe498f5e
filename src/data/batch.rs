//! [`Batch`]: a borrowed selection of a dataset's examples, and [`Minibatches`], the
//! reshuffled-every-epoch order SGD walks them in.

use std::ops::Range;

use rand::seq::SliceRandom;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::Scalar;

#[derive(Debug, Clone, Copy)]
enum Rows<'a> {
    Range(usize),
    Indices(&'a [usize]),
}

/// Some examples of a [`Dataset`], borrowed, not copied: a contiguous range (the whole set,
/// for gradient descent) or a list of indices (a shuffled minibatch).
///
/// Models read a batch in row blocks with [`gather`](Batch::gather), which converts and
/// transforms exactly the rows the block needs; so a batch of 60,000 byte images costs no
/// float memory until a model asks for a block of it.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a, T> {
    data: &'a Dataset<T>,
    rows: Rows<'a>,
    len: usize,
}

impl<'a, T: Scalar> Batch<'a, T> {
    pub(crate) fn range_unchecked(data: &'a Dataset<T>, range: Range<usize>) -> Self {
        Batch {
            data,
            rows: Rows::Range(range.start),
            len: range.end - range.start,
        }
    }

    pub(crate) fn indices_unchecked(data: &'a Dataset<T>, indices: &'a [usize]) -> Self {
        Batch {
            data,
            rows: Rows::Indices(indices),
            len: indices.len(),
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True if the batch has no examples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
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

    #[inline]
    fn dataset_row(&self, i: usize) -> usize {
        match self.rows {
            Rows::Range(start) => start + i,
            Rows::Indices(idx) => idx[i],
        }
    }

    /// The label of the batch's example `i`, or `None` if out of range.
    pub fn label(&self, i: usize) -> Option<usize> {
        (i < self.len).then(|| self.data.labels()[self.dataset_row(i)])
    }

    /// Writes examples `rows` of this batch into `x` (row-major, `num_features()` wide) and
    /// their labels into `labels`.
    pub fn gather(&self, rows: Range<usize>, x: &mut [T], labels: &mut [usize]) -> Result<()> {
        let f = self.num_features();
        let n = rows.end.saturating_sub(rows.start);
        if rows.start > rows.end || rows.end > self.len || x.len() < n * f || labels.len() < n {
            return Err(Error::shape(
                "Batch::gather",
                format!(
                    "rows within 0..{}, x of {} and labels of {n}",
                    self.len,
                    n * f
                ),
                format!(
                    "rows {rows:?}, x of {} and labels of {}",
                    x.len(),
                    labels.len()
                ),
            ));
        }
        for (k, i) in rows.enumerate() {
            let r = self.dataset_row(i);
            self.data.write_row(r, &mut x[k * f..(k + 1) * f]);
            labels[k] = self.data.labels()[r];
        }
        Ok(())
    }

    /// The whole batch as an owned feature matrix and label vector.
    pub fn to_matrix(&self) -> Result<(Matrix<T>, Vec<usize>)> {
        let mut x = Matrix::zeros(self.len, self.num_features())?;
        let mut labels = vec![0; self.len];
        self.gather(0..self.len, x.as_mut_slice(), &mut labels)?;
        Ok((x, labels))
    }
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
        if batch_size == 0 {
            return Err(Error::param("batch_size", 0, "must be at least 1"));
        }
        Ok(Minibatches {
            order: (0..n).collect(),
            batch_size,
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
