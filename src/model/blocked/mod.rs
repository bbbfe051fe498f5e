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
//! When the optimizer offers its step (a `StepOffer`, `fast_path/offer.rs`) and the batch
//! is one block, phase B's sparse weight-gradient kernel steps each thread's rows of `W₁`
//! and of the rule's state from the gradient tile in registers, instead of storing `dW₁`
//! for the optimizer to read back beside `W₁` and the state: on a 784-256-10 network that
//! is three streams the size of `W₁` fewer per step (storing `dW₁` anyway cost more than
//! the step saved: its rows are out of cache, and each store reads its line first). It is
//! taken only when the whole step is proved finite before phase B writes anything (the
//! offer's proof, from a bound on every gradient element that phase A's magnitudes give),
//! since a step moved into `W₁` cannot be taken back.
//!
//! The files: `workspace.rs` (the buffers), `rows.rs` (phase A, and the forward pass that
//! scoring shares), `weights.rs` (phase B); this one runs a block through both.

mod rows;
mod weights;
mod workspace;

pub(super) use rows::forward_rows;
pub(super) use workspace::Workspace;

use std::ops::Range;

use crate::activation::Activation;
use crate::data::Batch;
use crate::error::Result;
use crate::fast_path::{gradient_bound, StepOffer};
use crate::kernels::sparse::{sparse_forward_with_offset, ColumnBlocks};
use crate::kernels::update::StepRows;
use crate::loss::Loss;
use crate::matrix::MatMut;
use crate::model::dropout::Dropout;
use crate::model::layer::LayerSpec;
use crate::partition::{balanced_range, split_ranges, split_rows, split_rows_ref};
use crate::pool::ThreadPool;
use crate::scalar::Scalar;

use rows::{phase_a, RowShare, Wants};
use weights::{phase_b, weight_rows, Inputs, WeightShare};

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

/// Rows per block for a batch of `n`: as even as possible, at most `max_rows`, multiples of 8.
pub(super) fn block_size(n: usize, max_rows: usize) -> usize {
    let blocks = n.div_ceil(max_rows.max(1)).max(1);
    n.div_ceil(blocks).next_multiple_of(8).min(n.max(1))
}

/// One block's work: what every phase reads.
pub(super) struct BlockJob<'a, 'b, T> {
    pub pool: &'a ThreadPool,
    pub layers: &'a [LayerSpec],
    pub loss: Loss,
    pub first: FirstLayer<'a, T>,
    pub batch: &'a Batch<'b, T>,
    /// The block's rows of the batch.
    pub block: Range<usize>,
    /// `1 / batch size`, the factor each row's loss gradient carries.
    pub scale: T,
    /// Whether to find each row's highest-scoring class (evaluation).
    pub predict: bool,
    /// A training batch's dropout, applied in phase A (see `model/dropout.rs`).
    pub dropout: Option<Dropout<T>>,
}

/// The gradient a block adds its share to: `grad ← beta·grad + (the block's share)`, and
/// with `measure` (the batch's last block), the largest magnitude of what it leaves,
/// measured by each thread on its slices while they are in cache
/// ([`Workspace::grad_peak`]).
pub(super) struct BlockGrad<'g, T> {
    pub grad: &'g mut [T],
    pub beta: T,
    pub measure: bool,
    /// An update step offered for the whole batch, which the block may take for `W₁` as
    /// phase B writes its gradient (see the module docs).
    pub step: Option<&'g mut StepOffer<T>>,
}

/// One block, both phases: leaves the block's row losses (and, with `job.predict`, each
/// row's highest-scoring class) in the workspace and, with
/// `grad = Some(BlockGrad { grad: g, beta, measure, step })`, writes `g ← beta·g + (the
/// block's share of ∇L)`, scaled by `job.scale` (1 / batch size). The caller passes
/// `beta = 0` for the first block (so the products overwrite the gradient and no zeroing
/// pass is needed) and 1 after. If it takes the offered step, it records so in the offer.
pub(super) fn run_block<T: Scalar>(
    job: &BlockJob<'_, '_, T>,
    params: &mut [T],
    ws: &mut Workspace<T>,
    grad: Option<BlockGrad<'_, T>>,
) -> Result<()> {
    let threads = job.pool.threads();
    let ranges = split_ranges(job.block.len(), threads, 8);
    // A step for `W₁` can be taken only with the sparse first layer, and a block that is
    // the whole batch (the gradient complete when phase B writes it).
    let offered = match (&grad, job.first) {
        (Some(g), FirstLayer::Sparse { .. }) => {
            g.step.is_some() && g.beta == T::zero() && g.measure && job.layers[0].w == 0
        }
        _ => false,
    };
    if let FirstLayer::Sparse { .. } = job.first {
        sparse_forward(job, params, ws, &ranges)?;
    }
    let wants = Wants {
        grad: grad.is_some(),
        predict: job.predict,
        bound: offered,
    };
    rows_phase(job, params, ws, &ranges, wants)?;
    if let Some(grad) = grad {
        weights_phase(job, params, ws, grad, offered)?;
    }
    Ok(())
}

/// The sparse first layer's forward: each thread gathers its rows, then `Z₁ = X·W₁` runs in
/// two halves of the pixels, each over every row (see the module docs), into `acts[0]` and
/// `partial` (one thread: both into `acts[0]`).
fn sparse_forward<T: Scalar>(
    job: &BlockJob<'_, '_, T>,
    params: &[T],
    ws: &mut Workspace<T>,
    ranges: &[Range<usize>],
) -> Result<()> {
    let FirstLayer::Sparse {
        offset,
        group,
        block_rows,
    } = job.first
    else {
        return Ok(());
    };
    let (pool, layers, rows) = (job.pool, job.layers, job.block.len());
    let threads = pool.threads();
    let gathers: Vec<_> = ranges
        .iter()
        .zip(ws.sparse_rows.iter_mut())
        .zip(split_rows(&mut ws.labels, 1, ranges))
        .map(|((r, sparse), labels)| (job.block.start + r.start, r.len(), sparse, labels))
        .collect();
    pool.run_each(gathers, |_, (start, n, sparse, labels)| {
        job.batch
            .gather_sparse(*start..*start + *n, group, sparse, labels)
    })?;
    let l0 = &layers[0];
    let parts: Vec<&ColumnBlocks<T>> = ws.sparse_rows.iter().take(threads).collect();
    let (w1, bias) = (l0.weights(params)?, l0.bias(params));
    let size = rows * l0.fan_out;
    // Half h starts every row from b₁ (the first half) or 0, plus its pixels' share of the
    // offset, Σ_{k in half} o_k·W₁[k, :], which the kernel adds up panel by panel from the
    // rows of W₁ it reads anyway.
    let half = |h: usize, act: Option<Activation>, add_to: bool, out: &mut [T]| {
        let pixels = balanced_range(block_rows, FORWARD_HALVES, h, l0.fan_in);
        let bias = (h == 0).then_some(bias);
        let offset = offset.map(|o| &o[pixels.clone()]);
        let out = MatMut::new(out, rows, l0.fan_out)?;
        sparse_forward_with_offset(&parts, pixels, w1, bias, offset, act, add_to, out)
    };
    if threads == 1 {
        // One thread: the second half adds itself onto the first as the kernel copies it
        // out, and applies the activation (unless the first layer is also the output
        // layer, whose activation the loss applies): phase A's sum, in the same order,
        // without writing `partial` and reading both back.
        let act = l0.act.filter(|_| layers.len() > 1);
        half(0, None, false, &mut ws.acts[0][..size])?;
        return half(1, act, true, &mut ws.acts[0][..size]);
    }
    let outs = [&mut ws.acts[0][..size], &mut ws.partial[..size]];
    let mut halves: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    for (h, out) in outs.into_iter().enumerate() {
        halves[h % threads].push((h, out));
    }
    pool.run_each(halves, |_, halves| {
        halves
            .iter_mut()
            .try_for_each(|(h, out)| half(*h, None, false, out))
    })
}

/// Phase A over the block: each thread its rows.
fn rows_phase<T: Scalar>(
    job: &BlockJob<'_, '_, T>,
    params: &[T],
    ws: &mut Workspace<T>,
    ranges: &[Range<usize>],
    wants: Wants,
) -> Result<()> {
    let (layers, rows) = (job.layers, job.block.len());
    let sparse_first = matches!(job.first, FirstLayer::Sparse { .. });
    // The second half to add, or none: the dense path, or one thread, whose forward has
    // already added it (and applied the activation).
    let partial = match sparse_first && job.pool.threads() > 1 {
        true => &ws.partial[..rows * layers[0].fan_out],
        false => &[],
    };
    let partials = split_rows_ref(partial, layers[0].fan_out, ranges);
    let sparse = ws.sparse_rows.iter().map(|p| sparse_first.then_some(p));
    let mut shares: Vec<RowShare<'_, T>> = ranges
        .iter()
        .zip(split_rows(&mut ws.x, layers[0].fan_in, ranges))
        .zip(sparse.zip(ws.row_peaks.iter_mut()))
        .zip(partials)
        .zip(split_rows(&mut ws.labels, 1, ranges))
        .zip(split_rows(&mut ws.losses, 1, ranges))
        .zip(split_rows(&mut ws.predicted, 1, ranges))
        .map(
            |((((((r, x), (sparse, peaks)), partial), labels), losses), predicted)| RowShare {
                start: job.block.start + r.start,
                rows: r.len(),
                x,
                sparse,
                peaks,
                partial,
                labels,
                acts: Vec::with_capacity(layers.len()),
                deltas: Vec::with_capacity(layers.len()),
                masks: Vec::new(),
                losses,
                predicted,
            },
        )
        .collect();
    for ((a, d), layer) in ws.acts.iter_mut().zip(ws.deltas.iter_mut()).zip(layers) {
        let pieces = split_rows(a, layer.fan_out, ranges)
            .into_iter()
            .zip(split_rows(d, layer.fan_out, ranges));
        for (share, (a, d)) in shares.iter_mut().zip(pieces) {
            share.acts.push(a);
            share.deltas.push(d);
        }
    }
    if job.dropout.is_some() {
        for (m, layer) in ws.masks.iter_mut().zip(layers) {
            for (share, m) in shares.iter_mut().zip(split_rows(m, layer.fan_out, ranges)) {
                share.masks.push(m);
            }
        }
    }
    let transposed = &ws.transposed;
    job.pool.run_each(shares, |_, share| {
        phase_a(job, params, transposed, share, wants)
    })
}

/// Phase B over the block: each thread its rows of every `dW` (and, when the offered step
/// is proved finite, the same rows of `W₁` and its state, stepped instead of `dW₁` written).
fn weights_phase<T: Scalar>(
    job: &BlockJob<'_, '_, T>,
    params: &mut [T],
    ws: &mut Workspace<T>,
    grad: BlockGrad<'_, T>,
    offered: bool,
) -> Result<()> {
    let (layers, first, rows) = (job.layers, job.first, job.block.len());
    let threads = job.pool.threads();
    let BlockGrad {
        grad,
        beta,
        measure,
        step,
    } = grad;
    let l0 = &layers[0];
    // The offered step, if phase A's magnitudes prove it finite: the one proof.
    let mut proved = match (step, first) {
        (Some(offer), FirstLayer::Sparse { offset, .. }) if offered => {
            let losses_finite = ws.losses[..rows].iter().all(|l| l.is_finite());
            let bound = gradient_bound(&ws.row_peaks[..threads], rows, offset);
            (losses_finite && bound.is_some_and(|g| offer.proves(g))).then_some(offer)
        }
        _ => None,
    };
    // Each thread's rows of `W₁` and of the state, where its rows of `dW₁` are.
    let mut step_rows: Vec<Option<StepRows<'_, T>>> = (0..threads).map(|_| None).collect();
    if let Some(offer) = proved.as_deref_mut() {
        let wr: Vec<_> = (0..threads)
            .map(|t| weight_rows(l0, 0, first, threads, t))
            .collect();
        let cut = offer.cut(&mut params[..l0.b], l0.fan_out, &wr);
        for (slot, rows) in step_rows.iter_mut().zip(cut) {
            *slot = Some(rows);
        }
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
        let br = split_ranges(layer.fan_out, threads, 8);
        for ((s, w), b) in slices
            .iter_mut()
            .zip(split_rows(gw, layer.fan_out, &wr))
            .zip(split_rows(gb, 1, &br))
        {
            s.grads.push((w, b));
        }
    }
    job.pool.run_each(slices, |t, share| {
        phase_b(job, &inputs, t, beta, measure, share)
    })?;
    if let Some(offer) = proved {
        let peaks = ws.step_peaks.iter().take(threads);
        offer.record_taken(l0.b, peaks.fold(T::zero(), |a, &b| a.max(b)));
    }
    Ok(())
}
