//! Phase B: each thread computes a disjoint slice of every layer's weight gradient from all
//! of the block's rows — for the sparse first layer, possibly stepping `W₁` instead.

use std::ops::Range;

use crate::error::Result;
use crate::kernels::column_sums_into;
use crate::kernels::gemm;
use crate::kernels::narrow::narrow_weight_grad;
use crate::kernels::sparse::{
    sparse_weight_grad, sparse_weight_grad_stepping, ColumnBlocks, Operands,
};
use crate::kernels::update::StepRows;
use crate::matrix::{MatMut, MatRef};
use crate::model::blocked::rows::slices_peak;
use crate::model::blocked::{BlockJob, FirstLayer};
use crate::model::layer::LayerSpec;
use crate::partition::{balanced_range, split_range};
use crate::scalar::Scalar;

/// One thread's share of phase B: its rows of each layer's `dW` and columns of its `db`,
/// its scratch for the sparse first layer, and where it leaves the magnitude of what it
/// wrote; with the first layer's fused step, its rows of `W₁` and of the rule's state, and
/// where it leaves the magnitudes that step wrote.
pub(super) struct WeightShare<'a, T> {
    pub grads: Vec<(&'a mut [T], &'a mut [T])>,
    pub colsum: &'a mut Vec<T>,
    pub packed: &'a mut Vec<T>,
    pub peak: &'a mut T,
    pub step: Option<StepRows<'a, T>>,
    pub step_peak: &'a mut T,
}

/// What phase B reads of phase A's work: the block's input (dense, or each thread's
/// compressed rows), every layer's output and every layer's `dZ`.
pub(super) struct Inputs<'a, T> {
    pub x: &'a [T],
    pub sparse: &'a [&'a ColumnBlocks<T>],
    pub acts: &'a [Vec<T>],
    pub deltas: &'a [Vec<T>],
}

/// Thread `t`'s rows of layer `l`'s `dW` (the layer's input columns): by count, except for
/// the sparse first layer, whose pixels are cut where its kernel's work is even (who computes
/// a row of `dW` changes no bit of it).
pub(super) fn weight_rows<T>(
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
pub(super) fn phase_b<T: Scalar>(
    job: &BlockJob<'_, '_, T>,
    inputs: &Inputs<'_, T>,
    t: usize,
    beta: T,
    measure: bool,
    share: &mut WeightShare<'_, T>,
) -> Result<()> {
    let (layers, first, rows) = (job.layers, job.first, job.block.len());
    let threads = job.pool.threads();
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
                        let x = Operands {
                            parts: sparse,
                            pixels: wr,
                            dz,
                            beta,
                            rank1,
                        };
                        *share.step_peak = sparse_weight_grad_stepping(x, dw, packed, step)?;
                    }
                    None => {
                        let written = sparse_weight_grad(sparse, wr, dz, beta, rank1, dw, packed)?;
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
