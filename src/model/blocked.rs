//! How an [`Mlp`](super::Mlp) walks a batch for speed: row blocks, and two parallel phases
//! per block. The maths is `backprop.rs`'s, step for step; only the order of the work and
//! who does it differ.
//!
//! A batch is cut into blocks of at most `block_rows` rows (cut evenly, so no block is a
//! sliver). Each block is gathered, goes forward through every layer and straight back,
//! adding its share to the gradient, before the next is gathered: full-batch gradient
//! descent over 60,000 images needs memory for one block, not for every example, and the
//! bias, activation and loss passes touch each block right after the product that wrote it.
//!
//! Within a block the threads share the work in two phases:
//!
//! * **Phase A, split by rows.** Each thread gathers its rows, runs them forward through all
//!   layers, takes their losses and score gradients, and back-propagates `dZ` for every
//!   layer (`dA = dZ·Wᵀ`, then `⊙ act'`). Rows are independent, so no thread waits for
//!   another.
//! * **Phase B, split by weights.** `dW_l = A_{l−1}ᵀ·dZ_l` sums over every row of the block;
//!   instead of giving each thread a partial sum to add up afterwards, each thread computes
//!   a disjoint slice of `dW_l`'s rows (and of `db_l`'s columns) from *all* the block's rows.
//!
//! Every element of every output is therefore computed by exactly one kernel call, with the
//! same operands in the same order whatever the thread count: the same seed gives
//! bit-identical parameters on 1, 2 or 3 threads, with no reduction buffers and no
//! reduction pass.
//!
//! # The sparse first layer
//!
//! When the input is sparse (digits: 81% zero pixels), the first layer reads only its
//! nonzeros ([`FirstLayer::Sparse`]), with the kernels of `kernels/sparse.rs`: no zero is
//! multiplied and `W₁` is never packed. Before phase A, each thread gathers its rows'
//! nonzeros, and the forward `Z₁ = X·W₁ + b₁` runs in two halves of the pixels, cut where
//! the work is even, each over every row: on two threads each thread reads half of `W₁`
//! (split by rows, both would read all of it), and phase A adds the halves. The sum is
//! `(first half) + (second half)` whatever the thread count; on one thread the second half
//! adds itself onto the first as the kernel copies it out, which is the same addition
//! without a buffer for the second half and a pass to add it. Phase B gives each thread
//! its rows of `dW₁` as before, summing, for each pixel in its range, the rows of `dZ₁`
//! where the pixel is lit.
//!
//! A standardised input `x' = x·s + o` keeps its zeros: the scale `s` goes into the sparse
//! values, and the offset `o`, the same for every row, into two terms computed once —
//! `Z₁ = (x·s)·W₁ + (b₁ + oᵀ·W₁)` and `dW₁ = (x·s)ᵀ·dZ₁ + o ⊗ colsum(dZ₁)`. The result is
//! the dense path's to rounding.
//!
//! # Stepping `W₁` in phase B
//!
//! When the optimizer offers its step ([`FirstStep`], from
//! [`StepOffer`](crate::model::StepOffer)) and the batch is one block, phase B's sparse
//! weight-gradient kernel steps each thread's rows of `W₁` and of the rule's state from the
//! gradient tile in registers, instead of storing `dW₁` for the optimizer to read back
//! beside `W₁` and the state: on a 784-256-10 network that is three 800 KB streams fewer
//! per step (storing `dW₁` anyway cost more than the step saved: its rows are out of cache,
//! and each store reads its line first). It is taken only when the whole step is proved
//! finite before phase B writes anything ([`gradient_bound`] and `stays_finite`), since a
//! step moved into `W₁` cannot be taken back.

use std::ops::Range;

use crate::activation::Activation;
use crate::data::sparse::balanced_range;
use crate::data::Batch;
use crate::error::Result;
use crate::kernels::elementwise::{activate, activate_backward, add_assign, flush_subnormal};
use crate::kernels::narrow::{
    narrow_forward, narrow_input_grad, narrow_weight_grad, transpose_into,
};
use crate::kernels::pool::{split_range, ThreadPool};
use crate::kernels::sparse::{
    sparse_forward_with_offset, sparse_weight_grad_stepping, sparse_weight_grad_with, ColumnBlocks,
    StepRows,
};
use crate::kernels::update::{magnitude, stays_finite, Pass};
use crate::kernels::{column_sums_into, dense_forward, gemm};
use crate::loss::Loss;
use crate::matrix::{MatMut, MatRef};
use crate::model::argmax;
use crate::model::mlp::LayerSpec;
use crate::Scalar;

/// The sparse first layer's forward is cut in this many ranges of the pixels, whatever the
/// thread count (see the module docs).
const FORWARD_HALVES: usize = 2;

/// How the first layer reads its input.
#[derive(Debug, Clone, Copy)]
pub(super) enum FirstLayer<'a, T> {
    /// Gathered dense, multiplied by the dense kernels.
    Dense,
    /// Gathered as column blocks of its nonzeros (scaled by the transform), multiplied by
    /// the sparse kernels: `offset` is the transform's `o` when it is not all zero (folded
    /// into the forward's start rows and `dW₁`'s rank-1 term).
    Sparse {
        offset: Option<&'a [T]>,
        /// The column-block width the input is gathered in.
        group: usize,
        /// How many of the dataset's rows are lit in each block of four pixels: the
        /// forward's two halves and phase B's shares of `dW₁` are cut where the work is
        /// even (a property of the data, not of the thread count: the halves' sums stay the
        /// same on any number of threads).
        block_rows: &'a [usize],
    },
}

/// Per-block buffers, sized once for the largest block and reused for every block and batch.
#[derive(Debug, Clone, Default)]
pub(super) struct Workspace<T> {
    rows: usize,
    x: Vec<T>,
    labels: Vec<usize>,
    /// Output of each layer (the last: the class scores).
    acts: Vec<Vec<T>>,
    /// `dZ` of each layer (the last: `∂L/∂scores`).
    deltas: Vec<Vec<T>>,
    losses: Vec<f64>,
    /// Each row's highest-scoring class, when the block was asked for them (evaluation).
    predicted: Vec<usize>,
    /// Each thread's rows, their nonzeros in column blocks (the sparse first layer: phase A
    /// gathers and multiplies its own; phase B reads every thread's).
    sparse_rows: Vec<ColumnBlocks<T>>,
    /// Each thread's `colsum(dZ₁)` (the sparse first layer's phase B).
    colsums: Vec<Vec<T>>,
    /// Each thread's buffer for the panels of `dZ₁` its sparse weight-gradient kernel packs
    /// (`sparse_weight_grad_with`).
    packed: Vec<Vec<T>>,
    /// The second half of the sparse first layer's `Z₁` (the first is `acts[0]`).
    partial: Vec<T>,
    /// Each thread's largest magnitude in the gradient it wrote in the last block (`+∞`
    /// for a non-finite element), when the block measured it.
    grad_peaks: Vec<T>,
    /// Each thread's largest magnitude written by the first layer's fused step, to `W₁`
    /// and the state alike (see [`FirstStep`]).
    step_peaks: Vec<T>,
    /// Each thread's largest magnitudes in its rows of each layer's input and `dZ`, when
    /// a step is offered (what [`gradient_bound`] reads).
    row_peaks: Vec<Vec<T>>,
    /// `Wᵀ` of each narrow layer (empty for the others): what the narrow kernels read,
    /// made by [`transpose_narrow`](Workspace::transpose_narrow) once per batch.
    transposed: Vec<Vec<T>>,
}

impl<T: Scalar> Workspace<T> {
    pub fn ensure(&mut self, layers: &[LayerSpec], rows: usize, threads: usize) {
        if self.sparse_rows.len() < threads {
            self.sparse_rows.resize_with(threads, ColumnBlocks::new);
            self.colsums.resize_with(threads, Vec::new);
            self.packed.resize_with(threads, Vec::new);
            self.grad_peaks.resize(threads, T::zero());
            self.step_peaks.resize(threads, T::zero());
            self.row_peaks.resize_with(threads, Vec::new);
        }
        if self.rows >= rows {
            return;
        }
        let z = T::zero();
        let per_layer = || layers.iter().map(|l| vec![z; rows * l.fan_out]).collect();
        self.rows = rows;
        self.x = vec![z; rows * layers[0].fan_in];
        self.labels = vec![0; rows];
        self.acts = per_layer();
        self.deltas = per_layer();
        self.partial = vec![z; rows * layers[0].fan_out];
        self.losses = vec![0.0; rows];
        self.predicted = vec![0; rows];
    }

    /// Transposes the weights of every narrow layer ([`LayerSpec::narrow`]) for the narrow
    /// kernels: before the first block of every batch, and before scoring, as the
    /// parameters may have changed since.
    pub fn transpose_narrow(&mut self, layers: &[LayerSpec], params: &[T]) -> Result<()> {
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
    pub fn grad_peak(&self, threads: usize) -> T {
        let peaks = self.grad_peaks.iter().take(threads);
        peaks.fold(T::zero(), |top, &p| top.max(p))
    }

    /// The last block's row losses, in row order (for the caller's compensated sum).
    pub fn losses(&self, rows: usize) -> &[f64] {
        &self.losses[..rows]
    }

    /// How many of the last block's rows had their label as the highest-scoring class (a
    /// block run with `predict`).
    pub fn correct(&self, rows: usize) -> usize {
        let pairs = self.predicted[..rows].iter().zip(&self.labels[..rows]);
        pairs.filter(|(p, y)| p == y).count()
    }
}

/// Rows per block for a batch of `n`: as even as possible, at most `max_rows`, multiples of 8.
pub(super) fn block_size(n: usize, max_rows: usize) -> usize {
    let blocks = n.div_ceil(max_rows.max(1)).max(1);
    n.div_ceil(blocks).next_multiple_of(8).min(n.max(1))
}

/// Splits `buf` (rows of `width`) into the pieces `ranges` name, in order.
fn split_rows<'a, U>(
    mut buf: &'a mut [U],
    width: usize,
    ranges: &[Range<usize>],
) -> Vec<&'a mut [U]> {
    let mut out = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for r in ranges {
        let (_, rest) = buf.split_at_mut((r.start - at) * width);
        let (mine, rest) = rest.split_at_mut(r.len() * width);
        out.push(mine);
        buf = rest;
        at = r.end;
    }
    out
}

/// [`split_rows`] of `buf[..len]`, or as many empty pieces for an empty `buf` (a state
/// buffer the rule does not keep).
fn split_rows_or_empty<'a, U>(
    buf: &'a mut [U],
    len: usize,
    width: usize,
    ranges: &[Range<usize>],
) -> Vec<&'a mut [U]> {
    match buf.get_mut(..len) {
        Some(buf) if len > 0 => split_rows(buf, width, ranges),
        _ => ranges.iter().map(|_| &mut [][..]).collect(),
    }
}

/// [`split_rows`] for a shared buffer: the pieces `ranges` name (empty pieces for an
/// empty buffer).
fn split_rows_ref<'a, U>(buf: &'a [U], width: usize, ranges: &[Range<usize>]) -> Vec<&'a [U]> {
    ranges
        .iter()
        .map(|r| buf.get(r.start * width..r.end * width).unwrap_or(&[]))
        .collect()
}

/// One thread's rows in phase A.
struct RowShare<'a, T> {
    start: usize,
    rows: usize,
    x: &'a mut [T],
    /// Its rows' nonzeros (the sparse first layer).
    sparse: Option<&'a ColumnBlocks<T>>,
    /// Where it leaves, when a step is offered, the largest magnitude in its rows of each
    /// layer's input and of each layer's `dZ` (see [`gradient_bound`]).
    peaks: &'a mut Vec<T>,
    /// The sparse first layer's second half of `Z₁` for these rows (empty for the dense
    /// path, and on one thread, where the forward added it).
    partial: &'a [T],
    labels: &'a mut [usize],
    acts: Vec<&'a mut [T]>,
    deltas: Vec<&'a mut [T]>,
    losses: &'a mut [f64],
    predicted: &'a mut [usize],
}

/// One thread's share of phase B: its rows of each layer's `dW` and columns of its `db`,
/// its scratch for the sparse first layer, and where it leaves the magnitude of what it
/// wrote; with the first layer's fused step, its rows of `W₁` and of the rule's state, and
/// where it leaves the magnitudes that step wrote.
struct WeightShare<'a, T> {
    grads: Vec<(&'a mut [T], &'a mut [T])>,
    colsum: &'a mut Vec<T>,
    packed: &'a mut Vec<T>,
    peak: &'a mut T,
    step: Option<StepRows<'a, T>>,
    step_peak: &'a mut T,
}

/// The gradient a block adds its share to: `grad ← beta·grad + (the block's share)`, and
/// with `measure` (the batch's last block), the largest magnitude of what it leaves,
/// measured by each thread on its slices while they are in cache
/// ([`Workspace::grad_peak`]).
pub(super) struct BlockGrad<'g, T> {
    pub grad: &'g mut [T],
    pub beta: T,
    pub measure: bool,
    /// An update step the block may take for `W₁` as phase B writes its gradient.
    pub step: Option<FirstStep<'g, T>>,
}

/// An optimizer's update step, offered for the sparse first layer's weights: phase B steps
/// each row of `W₁` as the sparse weight-gradient kernel writes its gradient, while the row
/// is in L1 ([`sparse_weight_grad_stepping`]), instead of the optimizer reading `W₁`, `dW₁`
/// and the state back afterwards.
///
/// Taken only for a batch of one block (the gradient complete when phase B writes it), and
/// only when the whole step is certain to be finite *before* anything is written: the row
/// losses are finite, and [`stays_finite`] holds for a bound on every gradient element that
/// phase A's outputs give ([`gradient_bound`]) — so the optimizer's own part of the step
/// (every other parameter) is certain too, and nothing can be left half-stepped.
pub(super) struct FirstStep<'g, T> {
    pub pass: Pass<T>,
    /// The largest magnitude in the parameters, and in each state buffer.
    pub w_peak: T,
    pub state_peak: [T; 2],
    /// The state buffers, each as long as the parameters (or empty: not kept by the rule).
    pub state: [&'g mut [T]; 2],
}

/// The largest magnitude in `slices`, `+∞` if any element is not finite.
fn slices_peak<'s, T: Scalar>(slices: impl IntoIterator<Item = &'s [T]>) -> T {
    slices
        .into_iter()
        .fold(T::zero(), |top, s| match magnitude(s) {
            Some(m) => top.max(m),
            None => T::infinity(),
        })
}

/// One block, both phases: leaves the block's row losses (and, with `predict`, each row's
/// highest-scoring class) in the workspace and, with
/// `grad = Some(BlockGrad { grad: g, beta, measure, step })`, writes `g ← beta·g + (the
/// block's share of ∇L)`, scaled by `scale` (1 / batch size). The caller passes `beta = 0`
/// for the first block (so the products overwrite the gradient and no zeroing pass is
/// needed) and 1 after. Returns, if it took the offered [`FirstStep`], the largest magnitude
/// that step wrote, to `W₁` (`params[..layers[0].b]`) and its state alike.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_block<T: Scalar>(
    pool: &ThreadPool,
    layers: &[LayerSpec],
    params: &mut [T],
    loss: Loss,
    first: FirstLayer<'_, T>,
    ws: &mut Workspace<T>,
    batch: &Batch<'_, T>,
    block: Range<usize>,
    scale: T,
    grad: Option<BlockGrad<'_, T>>,
    predict: bool,
) -> Result<Option<T>> {
    let rows = block.len();
    let threads = pool.threads();
    let ranges: Vec<Range<usize>> = (0..threads)
        .map(|t| split_range(rows, threads, t, 8))
        .collect();
    let want_grad = grad.is_some();
    // A step for `W₁` can be taken only with the sparse first layer, and a block that is
    // the whole batch (the gradient complete when phase B writes it).
    let offered = match (&grad, first) {
        (Some(g), FirstLayer::Sparse { .. }) => {
            g.step.is_some() && g.beta == T::zero() && g.measure && layers[0].w == 0
        }
        _ => false,
    };
    let inputs = layers[0].fan_in;

    // The sparse first layer first: each thread gathers its rows, then the forward
    // `Z₁ = X·W₁` runs in two halves of the pixels, each over every row (see the module
    // docs), into `acts[0]` and `partial` (one thread: both into `acts[0]`).
    if let FirstLayer::Sparse {
        offset,
        group,
        block_rows,
    } = first
    {
        let gathers: Vec<_> = ranges
            .iter()
            .zip(ws.sparse_rows.iter_mut())
            .zip(split_rows(&mut ws.labels, 1, &ranges))
            .map(|((r, sparse), labels)| (block.start + r.start, r.len(), sparse, labels))
            .collect();
        pool.run_each(gathers, |_, (start, n, sparse, labels)| {
            batch.gather_sparse(*start..*start + *n, group, sparse, labels)
        })?;
        let l0 = &layers[0];
        let parts: Vec<&ColumnBlocks<T>> = ws.sparse_rows.iter().take(threads).collect();
        let (w1, bias) = (l0.weights(params)?, l0.bias(params));
        let size = rows * l0.fan_out;
        // Half h starts every row from b₁ (the first half) or 0, plus its pixels' share of
        // the offset, Σ_{k in half} o_k·W₁[k, :], which the kernel adds up panel by panel
        // from the rows of W₁ it reads anyway.
        let half = |h: usize, act: Option<Activation>, add_to: bool, out: &mut [T]| {
            let pixels = balanced_range(block_rows, FORWARD_HALVES, h, l0.fan_in);
            let bias = (h == 0).then_some(bias);
            let offset = offset.map(|o| &o[pixels.clone()]);
            let out = MatMut::new(out, rows, l0.fan_out)?;
            sparse_forward_with_offset(&parts, pixels, w1, bias, offset, act, add_to, out)
        };
        if threads == 1 {
            // One thread: the second half adds itself onto the first as the kernel copies
            // it out, and applies the activation (unless the first layer is also the
            // output layer, whose activation the loss applies): phase A's sum, in the same
            // order, without writing `partial` and reading both back.
            let act = l0.act.filter(|_| layers.len() > 1);
            half(0, None, false, &mut ws.acts[0][..size])?;
            half(1, act, true, &mut ws.acts[0][..size])?;
        } else {
            let outs = [&mut ws.acts[0][..size], &mut ws.partial[..size]];
            let mut halves: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
            for (h, out) in outs.into_iter().enumerate() {
                halves[h % threads].push((h, out));
            }
            pool.run_each(halves, |_, halves| {
                halves
                    .iter_mut()
                    .try_for_each(|(h, out)| half(*h, None, false, out))
            })?;
        }
    }

    // Phase A: rows.
    {
        // The second half to add, or none: the dense path, or one thread, whose forward
        // has already added it (and applied the activation).
        let partial = match first {
            FirstLayer::Sparse { .. } if threads > 1 => &ws.partial[..rows * layers[0].fan_out],
            _ => &[],
        };
        let partials = split_rows_ref(partial, layers[0].fan_out, &ranges);
        let sparse = ws.sparse_rows.iter().map(|p| match first {
            FirstLayer::Sparse { .. } => Some(p),
            FirstLayer::Dense => None,
        });
        let mut shares: Vec<RowShare<'_, T>> = ranges
            .iter()
            .zip(split_rows(&mut ws.x, inputs, &ranges))
            .zip(sparse.zip(ws.row_peaks.iter_mut()))
            .zip(partials)
            .zip(split_rows(&mut ws.labels, 1, &ranges))
            .zip(split_rows(&mut ws.losses, 1, &ranges))
            .zip(split_rows(&mut ws.predicted, 1, &ranges))
            .map(
                |((((((r, x), (sparse, peaks)), partial), labels), losses), predicted)| RowShare {
                    start: block.start + r.start,
                    rows: r.len(),
                    x,
                    sparse,
                    peaks,
                    partial,
                    labels,
                    acts: Vec::with_capacity(layers.len()),
                    deltas: Vec::with_capacity(layers.len()),
                    losses,
                    predicted,
                },
            )
            .collect();
        for ((a, d), layer) in ws.acts.iter_mut().zip(ws.deltas.iter_mut()).zip(layers) {
            let pieces = split_rows(a, layer.fan_out, &ranges)
                .into_iter()
                .zip(split_rows(d, layer.fan_out, &ranges));
            for (share, (a, d)) in shares.iter_mut().zip(pieces) {
                share.acts.push(a);
                share.deltas.push(d);
            }
        }
        let transposed = &ws.transposed;
        let wants = Wants {
            grad: want_grad,
            predict,
            bound: offered,
        };
        let params = &*params;
        pool.run_each(shares, |_, share| {
            phase_a(
                layers, params, transposed, loss, first, batch, share, scale, wants,
            )
        })?;
    }

    // Phase B: weights.
    let mut stepped = false;
    if let Some(BlockGrad {
        grad,
        beta,
        measure,
        step,
    }) = grad
    {
        // The first layer's step, if it is offered and certain to be finite: each thread's
        // rows of `W₁` and of the state, where its rows of `dW₁` are.
        let l0 = &layers[0];
        let step = step.filter(|s| {
            let offset = match first {
                FirstLayer::Sparse { offset, .. } => offset,
                FirstLayer::Dense => return false,
            };
            let losses_finite = ws.losses[..rows].iter().all(|l| l.is_finite());
            offered
                && losses_finite
                && gradient_bound(&ws.row_peaks[..threads], rows, offset)
                    .is_some_and(|g| stays_finite(&s.pass, s.w_peak, g, s.state_peak))
        });
        let mut step_rows: Vec<Option<StepRows<'_, T>>> = (0..threads).map(|_| None).collect();
        if let Some(FirstStep { pass, state, .. }) = step {
            let wr: Vec<_> = (0..threads)
                .map(|t| weight_rows(l0, 0, first, threads, t))
                .collect();
            let [s0, s1] = state.map(|s| split_rows_or_empty(s, l0.b, l0.fan_out, &wr));
            let w = split_rows(&mut params[..l0.b], l0.fan_out, &wr);
            for (((slot, w), s0), s1) in step_rows.iter_mut().zip(w).zip(s0).zip(s1) {
                *slot = Some(StepRows { pass, w, s0, s1 });
            }
            stepped = true;
        }
        let gathered: Vec<&ColumnBlocks<T>> = ws.sparse_rows.iter().take(threads).collect();
        let inputs = Inputs {
            x: &ws.x,
            sparse: &gathered,
            acts: &ws.acts,
            deltas: &ws.deltas,
        };
        let mut slices: Vec<WeightShare<'_, T>> = ws
            .colsums
            .iter_mut()
            .zip(ws.packed.iter_mut())
            .zip(ws.grad_peaks.iter_mut())
            .zip(ws.step_peaks.iter_mut())
            .zip(step_rows)
            .take(threads)
            .map(
                |((((colsum, packed), peak), step_peak), step)| WeightShare {
                    grads: Vec::with_capacity(layers.len()),
                    colsum,
                    packed,
                    peak,
                    step,
                    step_peak,
                },
            )
            .collect();
        let mut rest = grad;
        for (l, layer) in layers.iter().enumerate() {
            let (this, tail) = rest.split_at_mut(layer.b + layer.fan_out - layer.w);
            rest = tail;
            let (gw, gb) = this.split_at_mut(layer.b - layer.w);
            let wr: Vec<_> = (0..threads)
                .map(|t| weight_rows(layer, l, first, threads, t))
                .collect();
            let br: Vec<_> = (0..threads)
                .map(|t| split_range(layer.fan_out, threads, t, 8))
                .collect();
            for ((s, w), b) in slices
                .iter_mut()
                .zip(split_rows(gw, layer.fan_out, &wr))
                .zip(split_rows(gb, 1, &br))
            {
                s.grads.push((w, b));
            }
        }
        pool.run_each(slices, |t, share| {
            phase_b(
                layers, first, &inputs, rows, threads, t, beta, measure, share,
            )
        })?;
    }
    Ok(stepped.then(|| {
        ws.step_peaks
            .iter()
            .take(threads)
            .fold(T::zero(), |a, &b| a.max(b))
    }))
}

/// A bound on every element of the gradient phase B writes for a block of `rows` rows that
/// is the whole batch (`β = 0`), from the largest magnitudes phase A's threads left in
/// `peaks` (per thread: each layer's input, then its `dZ`): `dW_l = A_{l−1}ᵀ·dZ_l` sums
/// `rows` products, so `|dW_l| ≤ rows·max|A_{l−1}|·max|dZ_l|`, and `|db_l| ≤
/// rows·max|dZ_l|`; the sparse first layer's input is its scaled values plus the offset `o`
/// (`dW₁ = (x·s)ᵀ·dZ₁ + o ⊗ colsum(dZ₁)`). Widened by the rounding of a sum of `rows` terms.
/// `None` if anything measured is not finite, or the bound overflows `T`.
fn gradient_bound<T: Scalar>(peaks: &[Vec<T>], rows: usize, offset: Option<&[T]>) -> Option<T> {
    let offset = match offset {
        Some(o) => magnitude(o)?.to_f64_lossless(),
        None => 0.0,
    };
    let layers = peaks.first()?.len() / 2;
    let top = |i: usize| -> Option<f64> {
        let m = peaks
            .iter()
            .map(|p| p.get(i).copied())
            .try_fold(T::zero(), |m, p| {
                let p = p?;
                p.is_finite().then(|| m.max(p))
            })?;
        Some(m.to_f64_lossless())
    };
    let n = rows as f64;
    let mut bound = 0.0f64;
    for l in 0..layers {
        let input = top(2 * l)? + if l == 0 { offset } else { 0.0 };
        let dz = top(2 * l + 1)?;
        bound = bound.max(n * dz * input.max(1.0));
    }
    let bound = bound * (1.0 + 2.0 * n * T::epsilon().to_f64_lossless());
    let bound = T::from_f64(bound);
    bound.is_finite().then_some(bound)
}

/// What phase B reads of phase A's work: the block's input (dense, or each thread's
/// compressed rows), every layer's output and every layer's `dZ`.
struct Inputs<'a, T> {
    x: &'a [T],
    sparse: &'a [&'a ColumnBlocks<T>],
    acts: &'a [Vec<T>],
    deltas: &'a [Vec<T>],
}

/// Forward through layers `from..` for `n` rows: `acts[l]` receives layer `l`'s output, the
/// last one the class scores; layer 0 reads `x`, the others the layer before. Shared by
/// training (one thread's rows) and `Mlp::scores`. Training keeps the last layer's
/// pre-activation `z` (`Head::Logits`): the loss reads its output activation from there.
#[allow(clippy::too_many_arguments)]
fn forward_layers<T: Scalar, A: AsRef<[T]> + AsMut<[T]>>(
    layers: &[LayerSpec],
    params: &[T],
    transposed: &[Vec<T>],
    x: &[T],
    acts: &mut [A],
    n: usize,
    from: usize,
    head: Head,
) -> Result<()> {
    let last = layers.len() - 1;
    for (l, layer) in layers.iter().enumerate().skip(from) {
        let (before, rest) = acts.split_at_mut(l);
        let input = match before.last() {
            Some(prev) => MatRef::new(prev.as_ref(), n, layer.fan_in)?,
            None => MatRef::new(x, n, layer.fan_in)?,
        };
        let out = MatMut::new(rest[0].as_mut(), n, layer.fan_out)?;
        let act = if l == last && head == Head::Logits {
            None
        } else {
            layer.act
        };
        match layer.narrow() {
            true => {
                let wt = MatRef::new(&transposed[l], layer.fan_out, layer.fan_in)?;
                narrow_forward(input, wt, layer.bias(params), act, out)?;
            }
            false => dense_forward(input, layer.weights(params)?, layer.bias(params), act, out)?,
        }
    }
    Ok(())
}

/// What the last layer's buffer holds after a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// `z`, before the output activation (training: the loss applies it).
    Logits,
    /// The scores, after it.
    Scores,
}

/// What phase A computes beyond the forward pass and the row losses.
#[derive(Debug, Clone, Copy)]
struct Wants {
    /// `dZ` of every layer (training).
    grad: bool,
    /// Each row's highest-scoring class (evaluation).
    predict: bool,
    /// The magnitudes a step's gradient bound needs ([`RowShare::peaks`]).
    bound: bool,
}

/// Phase A for one thread's rows: gather, forward, loss, and dZ for every layer.
#[allow(clippy::too_many_arguments)]
fn phase_a<T: Scalar>(
    layers: &[LayerSpec],
    params: &[T],
    transposed: &[Vec<T>],
    loss: Loss,
    first: FirstLayer<'_, T>,
    batch: &Batch<'_, T>,
    s: &mut RowShare<'_, T>,
    scale: T,
    wants: Wants,
) -> Result<()> {
    let n = s.rows;
    if n == 0 {
        // No rows, nothing to bound: zeros, not the last block's values.
        if wants.bound {
            s.peaks.clear();
            s.peaks.resize(2 * layers.len(), T::zero());
        }
        return Ok(());
    }
    let rows = s.start..s.start + n;
    // The layers left to run forward after the first layer's own work.
    let from = match first {
        FirstLayer::Dense => {
            batch.gather(rows, s.x, s.labels)?;
            0
        }
        FirstLayer::Sparse { .. } => {
            // Z₁ = (first half) + (second half), then the activation (unless the first
            // layer is also the output layer, whose activation the loss applies); the
            // labels came with the gather. On one thread the forward did both.
            let l0 = &layers[0];
            let z = &mut s.acts[0][..n * l0.fan_out];
            if !s.partial.is_empty() {
                add_assign(z, s.partial);
                if let (Some(act), true) = (l0.act, layers.len() > 1) {
                    activate(act, z);
                }
            }
            1
        }
    };
    forward_layers(
        layers,
        params,
        transposed,
        s.x,
        &mut s.acts,
        n,
        from,
        Head::Logits,
    )?;
    let last = layers.len() - 1;
    let (classes, output) = (layers[last].fan_out, layers[last].act);
    // The loss of each row from the output layer's z, and dZ of the output layer (through
    // its activation, if it has one).
    let logits = s.acts[last].chunks_exact(classes);
    let dlogits = s.deltas[last].chunks_exact_mut(classes);
    for ((((&y, out), z), dz), class) in s
        .labels
        .iter()
        .zip(s.losses.iter_mut())
        .zip(logits)
        .zip(dlogits)
        .zip(s.predicted.iter_mut())
    {
        if wants.predict {
            // The class `argmax_rows` picks from the scores (the output activation of z).
            *class = match output {
                None => argmax(z.iter().copied()),
                Some(act) => argmax(z.iter().map(|&v| act.apply(v))),
            };
        }
        let l = if wants.grad {
            loss.head_loss_and_grad(output, z, y, scale, dz)
        } else {
            loss.head_loss(output, z, y, dz)
        };
        *out = l.to_f64_lossless();
    }
    if !wants.grad {
        return Ok(());
    }
    // dZ_{l−1} = (dZ_l · W_lᵀ) ⊙ act'(A_{l−1}), from the output layer down to the first.
    for l in (1..=last).rev() {
        let layer = &layers[l];
        let (lower, upper) = s.deltas.split_at_mut(l);
        let dz = MatRef::new(&*upper[0], n, layer.fan_out)?;
        let dx = &mut *lower[l - 1];
        if layer.narrow() {
            // dZ_{l−1} in one pass: the product and the derivative, row group by row group.
            let wt = MatRef::new(&transposed[l], layer.fan_out, layer.fan_in)?;
            let below = layers[l - 1].act.map(|act| {
                MatRef::new(&s.acts[l - 1][..n * layer.fan_in], n, layer.fan_in).map(|a| (act, a))
            });
            let dx = MatMut::new(dx, n, layer.fan_in)?;
            narrow_input_grad(dz, wt, below.transpose()?, dx)?;
            continue;
        }
        gemm(
            T::one(),
            dz,
            layer.weights(params)?.t(),
            T::zero(),
            MatMut::new(dx, n, layer.fan_in)?,
        )?;
        if let Some(act) = layers[l - 1].act {
            let a = &s.acts[l - 1][..n * layer.fan_in];
            activate_backward(act, a, &mut dx[..n * layer.fan_in]);
        }
    }
    // Phase B multiplies these by every lit pixel and activation: no subnormals (see
    // `flush_subnormal`).
    for (d, layer) in s.deltas.iter_mut().zip(layers) {
        flush_subnormal(&mut d[..n * layer.fan_out]);
    }
    if wants.bound {
        // Each layer's input (the sparse values, then the layer below's output) and its
        // `dZ`, while these rows are in cache: what `gradient_bound` reads.
        let peak = |xs: &[T]| slices_peak([xs]);
        s.peaks.clear();
        for (l, layer) in layers.iter().enumerate() {
            let input = match l {
                0 => s.sparse.map_or(T::infinity(), |p| {
                    p.value_peak().unwrap_or_else(T::infinity)
                }),
                _ => peak(&s.acts[l - 1][..n * layer.fan_in]),
            };
            s.peaks.push(input);
            s.peaks.push(peak(&s.deltas[l][..n * layer.fan_out]));
        }
    }
    Ok(())
}

/// Thread `t`'s rows of layer `l`'s `dW` (the layer's input columns): by count, except for
/// the sparse first layer, whose pixels are cut where its kernel's work is even (who computes
/// a row of `dW` changes no bit of it).
fn weight_rows<T>(
    layer: &LayerSpec,
    l: usize,
    first: FirstLayer<'_, T>,
    threads: usize,
    t: usize,
) -> Range<usize> {
    match (l, first) {
        (0, FirstLayer::Sparse { block_rows, .. }) => {
            balanced_range(block_rows, threads, t, layer.fan_in)
        }
        _ => split_range(layer.fan_in, threads, t, 8),
    }
}

/// Phase B for thread `t`: its rows of every `dW_l` and its columns of every `db_l`; with
/// `measure`, the largest magnitude of what it wrote into `share.peak` (each slice read just
/// after it is written, in cache, except the sparse first layer's `dW₁` rows: its kernel
/// measures them as it stores them).
#[allow(clippy::too_many_arguments)]
fn phase_b<T: Scalar>(
    layers: &[LayerSpec],
    first: FirstLayer<'_, T>,
    inputs: &Inputs<'_, T>,
    rows: usize,
    threads: usize,
    t: usize,
    beta: T,
    measure: bool,
    share: &mut WeightShare<'_, T>,
) -> Result<()> {
    let mut peak = T::zero();
    for (l, (layer, (gw, gb))) in layers.iter().zip(share.grads.iter_mut()).enumerate() {
        let dz_buf: &[T] = &inputs.deltas[l];
        let dz = MatRef::new(dz_buf, rows, layer.fan_out)?;
        let wr = weight_rows(layer, l, first, threads, t);
        let br = split_range(layer.fan_out, threads, t, 8);
        if let (0, FirstLayer::Sparse { offset, .. }) = (l, first) {
            // dW₁[wr, :] = β·dW₁[wr, :] + (x·s)[:, wr]ᵀ·dZ₁ + o[wr] ⊗ colsum(dZ₁), from the
            // block's nonzeros in pixels wr; db₁ from the same column sums.
            let colsum = &mut *share.colsum;
            colsum.resize(layer.fan_out, T::zero());
            column_sums_into(dz, T::zero(), colsum)?;
            for (g, &c) in gb.iter_mut().zip(&colsum[br]) {
                *g = if beta == T::zero() { c } else { beta * *g + c };
            }
            if !wr.is_empty() {
                let rank1 = offset.map(|o| (&o[wr.clone()], &colsum[..]));
                let dw = MatMut::new(gw, wr.len(), layer.fan_out)?;
                let packed = &mut *share.packed;
                let sparse = inputs.sparse;
                match share.step.take() {
                    // `dW₁` is not written: the kernel steps `W₁` instead.
                    Some(step) => {
                        *share.step_peak = sparse_weight_grad_stepping(
                            sparse, wr, dz, beta, rank1, dw, packed, step,
                        )?;
                    }
                    None => {
                        let written =
                            sparse_weight_grad_with(sparse, wr, dz, beta, rank1, dw, packed)?;
                        peak = peak.max(written);
                    }
                }
            } else {
                *share.step_peak = T::zero();
            }
            if measure {
                peak = peak.max(slices_peak([&gb[..]]));
            }
            continue;
        }
        let input: &[T] = if l == 0 {
            inputs.x
        } else {
            &inputs.acts[l - 1]
        };
        if !wr.is_empty() {
            // Columns wr of the input, transposed: dW[wr, :] ← β·dW[wr, :] + A[:, wr]ᵀ·dZ.
            let a = MatRef::with_strides(&input[wr.start..], rows, wr.len(), layer.fan_in, 1)?;
            let dw = MatMut::new(gw, wr.len(), layer.fan_out)?;
            match layer.narrow() {
                true => narrow_weight_grad(a, dz, beta, dw)?,
                false => gemm(T::one(), a.t(), dz, beta, dw)?,
            }
        }
        if !br.is_empty() {
            let d = MatRef::with_strides(&dz_buf[br.start..], rows, br.len(), layer.fan_out, 1)?;
            column_sums_into(d, beta, gb)?;
        }
        if measure {
            peak = peak.max(slices_peak([&gw[..], &gb[..]]));
        }
    }
    if measure {
        *share.peak = peak;
    }
    Ok(())
}

/// Scores of rows `start..start + rows` of `x` into the same rows of `out`, on one thread:
/// `Mlp::scores`, for any dense matrix of examples (`Mlp::evaluate`, which has the dataset,
/// runs blocks on the training path instead).
pub(super) fn forward_rows<T: Scalar>(
    layers: &[LayerSpec],
    params: &[T],
    ws: &mut Workspace<T>,
    x: MatRef<'_, T>,
    out: &mut MatMut<'_, T>,
    start: usize,
    rows: usize,
) -> Result<()> {
    let inputs = layers[0].fan_in;
    for (r, dst) in ws.x.chunks_exact_mut(inputs).take(rows).enumerate() {
        x.copy_row(start + r, dst)?;
    }
    let transposed = &ws.transposed;
    forward_layers(
        layers,
        params,
        transposed,
        &ws.x,
        &mut ws.acts,
        rows,
        0,
        Head::Scores,
    )?;
    let last = layers.len() - 1;
    let classes = layers[last].fan_out;
    for r in 0..rows {
        if let Some(dst) = out.row_mut(start + r) {
            dst.copy_from_slice(&ws.acts[last][r * classes..(r + 1) * classes]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_finite_element_anywhere_makes_the_peak_infinite() {
        let a = [1.0f32, -3.0, 2.0];
        let b = [0.5f32; 9];
        assert_eq!(slices_peak([&a[..], &b[..]]), 3.0);
        assert_eq!(slices_peak::<f32>([]), 0.0);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut c = [0.25f32; 20];
            c[13] = bad;
            assert_eq!(
                slices_peak([&a[..], &c[..], &b[..]]),
                f32::INFINITY,
                "{bad}"
            );
            assert_eq!(slices_peak([&c[..], &a[..]]), f32::INFINITY, "{bad}");
        }
    }
}
