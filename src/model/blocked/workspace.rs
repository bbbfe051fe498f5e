//! The buffers a block runs in: sized once for the largest block and reused for every
//! block and batch.

use crate::error::Result;
use crate::kernels::narrow::transpose_into;
use crate::kernels::sparse::ColumnBlocks;
use crate::metrics::ConfusionMatrix;
use crate::model::layer::LayerSpec;
use crate::scalar::Scalar;

/// Per-block buffers, sized once for the largest block and reused for every block and batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Workspace<T> {
    pub(super) rows: usize,
    pub(super) x: Vec<T>,
    pub(super) labels: Vec<usize>,
    /// Output of each layer (the last: the class scores).
    pub(super) acts: Vec<Vec<T>>,
    /// `dZ` of each layer (the last: `∂L/∂scores`).
    pub(super) deltas: Vec<Vec<T>>,
    /// What dropout leaves for the backward pass of each hidden layer, per unit: `f'(a)/(1 −
    /// p)` kept, 0 dropped (empty until a block runs with dropout).
    pub(super) masks: Vec<Vec<T>>,
    pub(super) losses: Vec<f64>,
    /// Each row's highest-scoring class, when the block was asked for them (evaluation).
    pub(super) predicted: Vec<usize>,
    /// Each thread's rows, their nonzeros in column blocks (the sparse first layer: phase A
    /// gathers and multiplies its own; phase B reads every thread's).
    pub(super) sparse_rows: Vec<ColumnBlocks<T>>,
    /// Each thread's `colsum(dZ₁)` (the sparse first layer's phase B).
    pub(super) colsums: Vec<Vec<T>>,
    /// Each thread's buffer for the panels of `dZ₁` its sparse weight-gradient kernel packs
    /// (`sparse_weight_grad`).
    pub(super) packed: Vec<Vec<T>>,
    /// The second half of the sparse first layer's `Z₁` (the first is `acts[0]`).
    pub(super) partial: Vec<T>,
    /// Each thread's largest magnitude in the gradient it wrote in the last block (`+∞`
    /// for a non-finite element), when the block measured it.
    pub(super) grad_peaks: Vec<T>,
    /// Each thread's largest magnitude written by the first layer's fused step, to `W₁`
    /// and the state alike (see [`FirstStep`]).
    pub(super) step_peaks: Vec<T>,
    /// Each thread's largest magnitudes in its rows of each layer's input and `dZ`, when
    /// a step is offered (what [`gradient_bound`] reads).
    pub(super) row_peaks: Vec<Vec<T>>,
    /// `Wᵀ` of each narrow layer (empty for the others): what the narrow kernels read,
    /// made by [`transpose_narrow`](Workspace::transpose_narrow) once per batch.
    pub(super) transposed: Vec<Vec<T>>,
}

impl<T: Scalar> Workspace<T> {
    /// Buffers for blocks of `rows` rows on `threads` threads (and dropout's masks, with
    /// `dropout`).
    pub(crate) fn ensure(
        &mut self,
        layers: &[LayerSpec],
        rows: usize,
        threads: usize,
        dropout: bool,
    ) {
        if self.sparse_rows.len() < threads {
            self.sparse_rows.resize_with(threads, ColumnBlocks::new);
            self.colsums.resize_with(threads, Vec::new);
            self.packed.resize_with(threads, Vec::new);
            self.grad_peaks.resize(threads, T::zero());
            self.step_peaks.resize(threads, T::zero());
            self.row_peaks.resize_with(threads, Vec::new);
        }
        let z = T::zero();
        let per_layer = |rows: usize| layers.iter().map(|l| vec![z; rows * l.fan_out]).collect();
        if self.rows >= rows {
            if dropout && self.masks.is_empty() {
                self.masks = per_layer(self.rows);
            }
            return;
        }
        self.rows = rows;
        if dropout || !self.masks.is_empty() {
            self.masks = per_layer(rows);
        }
        self.x = vec![z; rows * layers[0].fan_in];
        self.labels = vec![0; rows];
        self.acts = per_layer(rows);
        self.deltas = per_layer(rows);
        self.partial = vec![z; rows * layers[0].fan_out];
        self.losses = vec![0.0; rows];
        self.predicted = vec![0; rows];
    }

    /// Transposes the weights of every narrow layer ([`LayerSpec::narrow`]) for the narrow
    /// kernels: before the first block of every batch, and before scoring, as the
    /// parameters may have changed since.
    pub(crate) fn transpose_narrow(&mut self, layers: &[LayerSpec], params: &[T]) -> Result<()> {
        self.transposed.resize_with(layers.len(), Vec::new);
        for (layer, wt) in layers.iter().zip(&mut self.transposed) {
            match layer.narrow() {
                true => transpose_into(layer.weights(params)?, wt),
                false => wt.clear(),
            }
        }
        Ok(())
    }

    /// The largest magnitude in the gradient the last measured block left (`+∞` if any
    /// element is not finite), over its `threads` shares.
    pub(crate) fn grad_peak(&self, threads: usize) -> T {
        let peaks = self.grad_peaks.iter().take(threads);
        peaks.fold(T::zero(), |top, &p| top.max(p))
    }

    /// The last block's row losses, in row order (for the caller's compensated sum).
    pub(crate) fn losses(&self, rows: usize) -> &[f64] {
        &self.losses[..rows]
    }

    /// Counts the last block's rows into `confusion`, each by its label and its
    /// highest-scoring class (a block run with `predict`).
    pub(crate) fn count_predictions(&self, rows: usize, confusion: &mut ConfusionMatrix) {
        confusion.add_pairs(&self.labels[..rows], &self.predicted[..rows]);
    }
}
