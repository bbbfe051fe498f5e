//! How an [`Mlp`](super::Mlp) walks a batch: row blocks, and two parallel phases per block.
//!
//! A batch is cut into blocks of at most `block_rows` rows (cut evenly, so no block is a
//! sliver). Each block is gathered, goes forward through every layer and straight back,
//! adding its share to the gradient, before the next is gathered: full-batch gradient descent
//! over 60,000 images needs memory for one block, not for every example, and the bias,
//! activation and loss passes touch each block right after the product that wrote it.
//!
//! Within a block the threads share the work in two phases:
//!
//! * **Phase A, split by rows.** Each thread gathers its rows, runs them forward through all
//!   layers, takes their losses and score gradients, and back-propagates `dZ` for every layer
//!   (`dX = dZ·Wᵀ`, then `⊙ act'`). Rows are independent, so no thread waits for another.
//! * **Phase B, split by weights.** `dW_l += A_{l−1}ᵀ·dZ_l` sums over every row of the block;
//!   instead of giving each thread a partial sum to add up afterwards, each thread computes a
//!   disjoint slice of `dW_l`'s rows (and of `db_l`'s columns) from *all* the block's rows.
//!
//! Every element of every output is therefore computed by exactly one kernel call, with the
//! same operands in the same order whatever the thread count: the same seed gives bit-identical
//! parameters on 1, 2 or 3 threads, with no reduction buffers and no reduction pass.

use std::ops::Range;

use crate::data::Batch;
use crate::error::Result;
use crate::kernels::elementwise::{descend, first_non_finite};
use crate::kernels::pool::split_range;
use crate::kernels::{column_sums_into, dense_forward, gemm, ThreadPool};
use crate::loss::Loss;
use crate::matrix::{MatMut, MatRef};
use crate::model::Activation;
use crate::Scalar;

/// Where one layer lives in the flat parameter vector, and what follows it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layer {
    pub fan_in: usize,
    pub fan_out: usize,
    /// Offset of `W` (`fan_in × fan_out`, row-major); `b` follows it.
    pub w: usize,
    pub b: usize,
    pub act: Option<Activation>,
}

/// Per-block buffers, sized once for the largest block and reused for every block and batch.
#[derive(Debug, Clone, Default)]
pub(super) struct Workspace<T> {
    rows: usize,
    x: Vec<T>,
    labels: Vec<usize>,
    /// Output of each layer (the last: scores, then dScores in place).
    acts: Vec<Vec<T>>,
    /// dZ of each hidden layer.
    deltas: Vec<Vec<T>>,
    losses: Vec<f64>,
}

impl<T: Scalar> Workspace<T> {
    pub fn ensure(&mut self, layers: &[Layer], rows: usize) {
        if self.rows >= rows {
            return;
        }
        let z = T::zero();
        *self = Workspace {
            rows,
            x: vec![z; rows * layers[0].fan_in],
            labels: vec![0; rows],
            acts: layers.iter().map(|l| vec![z; rows * l.fan_out]).collect(),
            deltas: layers[..layers.len() - 1]
                .iter()
                .map(|l| vec![z; rows * l.fan_out])
                .collect(),
            losses: vec![0.0; rows],
        };
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

/// One thread's share of phase B: its rows of each layer's `dW` and columns of its `db`.
type WeightShare<'a, T> = Vec<(&'a mut [T], &'a mut [T])>;

/// One thread's rows in phase A.
struct RowShare<'a, T> {
    start: usize,
    rows: usize,
    x: &'a mut [T],
    labels: &'a mut [usize],
    acts: Vec<&'a mut [T]>,
    deltas: Vec<&'a mut [T]>,
    losses: &'a mut [f64],
}

/// One block, both phases: leaves the block's row losses in the workspace (see
/// [`block_losses`]) and, with `grad`, adds its share of the gradient (already scaled by `scale`, i.e. 1/batch size):
/// `grad ← beta·grad + share`. The caller passes its own `beta` for the first block and 1
/// after, so scaling the old contents costs no pass of its own (it rides on the products' β).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_block<T: Scalar>(
    pool: &ThreadPool,
    layers: &[Layer],
    params: &[T],
    loss: Loss,
    ws: &mut Workspace<T>,
    batch: &Batch<'_, T>,
    block: Range<usize>,
    scale: T,
    grad: Option<(&mut [T], T)>,
) -> Result<()> {
    let rows = block.len();
    let threads = pool.threads();
    let ranges: Vec<Range<usize>> = (0..threads)
        .map(|t| split_range(rows, threads, t, 8))
        .collect();
    let want_grad = grad.is_some();
    let inputs = layers[0].fan_in;

    // Phase A: rows.
    {
        let mut xs = split_rows(&mut ws.x, inputs, &ranges).into_iter();
        let mut ls = split_rows(&mut ws.labels, 1, &ranges).into_iter();
        let mut losses = split_rows(&mut ws.losses, 1, &ranges).into_iter();
        let mut acts: Vec<_> = ws
            .acts
            .iter_mut()
            .zip(layers)
            .map(|(a, l)| split_rows(a, l.fan_out, &ranges).into_iter())
            .collect();
        let mut deltas: Vec<_> = ws
            .deltas
            .iter_mut()
            .zip(layers)
            .map(|(d, l)| split_rows(d, l.fan_out, &ranges).into_iter())
            .collect();
        let shares: Vec<RowShare<'_, T>> = ranges
            .iter()
            .map(|r| RowShare {
                start: block.start + r.start,
                rows: r.len(),
                x: xs.next().unwrap_or_default(),
                labels: ls.next().unwrap_or_default(),
                acts: acts
                    .iter_mut()
                    .map(|a| a.next().unwrap_or_default())
                    .collect(),
                deltas: deltas
                    .iter_mut()
                    .map(|d| d.next().unwrap_or_default())
                    .collect(),
                losses: losses.next().unwrap_or_default(),
            })
            .collect();
        pool.run_each(shares, |_, share| {
            phase_a(layers, params, loss, batch, share, scale, want_grad)
        })?;
    }

    // Phase B: weights.
    if let Some((grad, beta)) = grad {
        let ws = &*ws;
        let mut slices: Vec<WeightShare<'_, T>> = (0..threads).map(|_| Vec::new()).collect();
        let mut rest = grad;
        for layer in layers {
            let (this, tail) = rest.split_at_mut(layer.b + layer.fan_out - layer.w);
            rest = tail;
            let (gw, gb) = this.split_at_mut(layer.b - layer.w);
            let wr: Vec<_> = (0..threads)
                .map(|t| split_range(layer.fan_in, threads, t, 8))
                .collect();
            let br: Vec<_> = (0..threads)
                .map(|t| split_range(layer.fan_out, threads, t, 8))
                .collect();
            for ((s, w), b) in slices
                .iter_mut()
                .zip(split_rows(gw, layer.fan_out, &wr))
                .zip(split_rows(gb, 1, &br))
            {
                s.push((w, b));
            }
        }
        pool.run_each(slices, |t, share| {
            phase_b(layers, ws, rows, threads, t, beta, share)
        })?;
    }
    Ok(())
}

/// Forward through every layer for `n` rows of `x`: `acts[l]` receives layer `l`'s output,
/// the last one the class scores. Shared by training (one thread's rows) and `Mlp::scores`.
fn forward_layers<T: Scalar, A: AsRef<[T]> + AsMut<[T]>>(
    layers: &[Layer],
    params: &[T],
    x: &[T],
    acts: &mut [A],
    n: usize,
) -> Result<()> {
    for (l, layer) in layers.iter().enumerate() {
        let (before, rest) = acts.split_at_mut(l);
        let input = match before.last() {
            Some(prev) => MatRef::new(prev.as_ref(), n, layer.fan_in)?,
            None => MatRef::new(x, n, layer.fan_in)?,
        };
        let w = MatRef::new(&params[layer.w..layer.b], layer.fan_in, layer.fan_out)?;
        let b = &params[layer.b..layer.b + layer.fan_out];
        let out = MatMut::new(rest[0].as_mut(), n, layer.fan_out)?;
        dense_forward(input, w, b, layer.act, out)?;
    }
    Ok(())
}

/// Phase A for one thread's rows: gather, forward, loss, and dZ for every layer.
fn phase_a<T: Scalar>(
    layers: &[Layer],
    params: &[T],
    loss: Loss,
    batch: &Batch<'_, T>,
    s: &mut RowShare<'_, T>,
    scale: T,
    want_grad: bool,
) -> Result<()> {
    let n = s.rows;
    if n == 0 {
        return Ok(());
    }
    batch.gather(s.start..s.start + n, s.x, s.labels)?;
    forward_layers(layers, params, s.x, &mut s.acts, n)?;
    let last = layers.len() - 1;
    let classes = layers[last].fan_out;
    for (r, (&y, out)) in s.labels.iter().zip(s.losses.iter_mut()).enumerate() {
        let scores = &mut s.acts[last][r * classes..(r + 1) * classes];
        let l = if want_grad {
            loss.row_loss_and_grad(scores, y, scale)
        } else {
            loss.row_loss(scores, y)
        };
        *out = l.to_f64_lossless();
    }
    if !want_grad {
        return Ok(());
    }
    // dZ_{l−1} = (dZ_l · W_lᵀ) ⊙ act'(A_{l−1}), from the output layer down to the first.
    for l in (1..=last).rev() {
        let layer = &layers[l];
        let (lower, upper) = s.deltas.split_at_mut(l);
        let dz = if l == last {
            &*s.acts[last]
        } else {
            &*upper[0]
        };
        let dz = MatRef::new(dz, n, layer.fan_out)?;
        let w = MatRef::new(&params[layer.w..layer.b], layer.fan_in, layer.fan_out)?;
        let dx = &mut *lower[l - 1];
        gemm(
            T::one(),
            dz,
            w.t(),
            T::zero(),
            MatMut::new(dx, n, layer.fan_in)?,
        )?;
        if let Some(act) = layers[l - 1].act {
            act.backward_in_place(
                &s.acts[l - 1][..n * layer.fan_in],
                &mut dx[..n * layer.fan_in],
            );
        }
    }
    Ok(())
}

/// Phase B for thread `t`: its rows of every `dW_l` and its columns of every `db_l`.
fn phase_b<T: Scalar>(
    layers: &[Layer],
    ws: &Workspace<T>,
    rows: usize,
    threads: usize,
    t: usize,
    beta: T,
    share: &mut WeightShare<'_, T>,
) -> Result<()> {
    let last = layers.len() - 1;
    for (l, (layer, (gw, gb))) in layers.iter().zip(share.iter_mut()).enumerate() {
        let dz_buf: &[T] = if l == last {
            &ws.acts[last]
        } else {
            &ws.deltas[l]
        };
        let dz = MatRef::new(dz_buf, rows, layer.fan_out)?;
        let input: &[T] = if l == 0 { &ws.x } else { &ws.acts[l - 1] };
        let wr = split_range(layer.fan_in, threads, t, 8);
        if !wr.is_empty() {
            // Columns wr of the input, transposed: dW[wr, :] ← β·dW[wr, :] + A[:, wr]ᵀ·dZ.
            let a = MatRef::with_strides(&input[wr.start..], rows, wr.len(), layer.fan_in, 1)?;
            let dw = MatMut::new(gw, wr.len(), layer.fan_out)?;
            gemm(T::one(), a.t(), dz, beta, dw)?;
        }
        let br = split_range(layer.fan_out, threads, t, 8);
        if !br.is_empty() {
            let d = MatRef::with_strides(&dz_buf[br.start..], rows, br.len(), layer.fan_out, 1)?;
            if beta == T::zero() {
                gb.iter_mut().for_each(|g| *g = T::zero());
            } else if beta != T::one() {
                gb.iter_mut().for_each(|g| *g = beta * *g);
            }
            column_sums_into(d, gb)?;
        }
    }
    Ok(())
}

/// Scores of rows `start..start + rows` of `x` into the same rows of `out`, on one thread
/// (evaluation is a small part of training time).
pub(super) fn forward_rows<T: Scalar>(
    layers: &[Layer],
    params: &[T],
    ws: &mut Workspace<T>,
    x: MatRef<'_, T>,
    out: &mut MatMut<'_, T>,
    start: usize,
    rows: usize,
) -> Result<()> {
    let inputs = layers[0].fan_in;
    for r in 0..rows {
        for c in 0..inputs {
            ws.x[r * inputs + c] = x.data[(start + r) * x.rs + c * x.cs];
        }
    }
    forward_layers(layers, params, &ws.x, &mut ws.acts, rows)?;
    let last = layers.len() - 1;
    let classes = layers[last].fan_out;
    for r in 0..rows {
        if let Some(dst) = out.row_mut(start + r) {
            dst.copy_from_slice(&ws.acts[last][r * classes..(r + 1) * classes]);
        }
    }
    Ok(())
}

/// The block's row losses, in row order (for the caller's compensated sum).
pub(super) fn block_losses<T>(ws: &Workspace<T>, rows: usize) -> &[f64] {
    &ws.losses[..rows]
}

/// `params ← params − lr·step`, each thread taking one contiguous share (elementwise, so the
/// result does not depend on the thread count).
///
/// First every thread checks its share of the step (see
/// [`first_non_finite`](crate::kernels::elementwise::first_non_finite)); only if all of it is
/// finite do they apply it, so a poisoned gradient never reaches the parameters. Returns the
/// first bad element. The check is a second pass over the step, which is usually out of cache
/// by now: on the 784-256-10 MNIST run it costs about a tenth of the throughput (measured
/// against the same build without it); fusing it into the pass that produces the step would
/// make it nearly free.
pub(super) fn apply_step_parallel<T: Scalar>(
    pool: &ThreadPool,
    params: &mut [T],
    step: &[T],
    lr: T,
) -> Result<(), T> {
    let threads = pool.threads();
    let n = params.len().min(step.len());
    // Shares aligned to 16 elements (a cache line of f32) so no line is written by two threads.
    let ranges: Vec<Range<usize>> = (0..threads)
        .map(|t| split_range(n, threads, t, 16))
        .collect();
    pool.run_each(ranges.clone(), |_, r| {
        match first_non_finite(&step[r.clone()], lr) {
            Some(bad) => Err(bad),
            None => Ok(()),
        }
    })?;
    let shares = split_rows(&mut params[..n], 1, &ranges);
    let done: Result<(), std::convert::Infallible> = pool.run_each(shares, |t, w| {
        descend(w, &step[ranges[t].clone()], lr);
        Ok(())
    });
    if let Err(never) = done {
        match never {}
    }
    Ok(())
}
