//! The sparse weight gradient, `dW = β·dW + Xᵀ·dZ (+ u ⊗ c)`, one panel of `dZ`'s columns at
//! a time — or, with an update step to take, the parameters stepped instead of `dW` written.

use std::ops::Range;

use crate::error::Result;
use crate::kernels::lanes::{bigger, tile, tile_mut, Fused, MulAdd, Separate};
use crate::kernels::sparse::{check_parts, ColumnBlocks};
use crate::kernels::update::{step_tile, StepRows};
use crate::matrix::{contiguous_rows, MatMut, MatRef};
use crate::scalar::Scalar;
use crate::validate::same_size;

/// `out[k − pixels.start, :] = β·out[..] + u[k]·c + Σ (parts stacked)ᵀ[k, :]·dz` for the
/// columns `k` in `pixels` of the row-stacked `parts` (see the [module docs](super)): the
/// weight gradient's rows `pixels`. `parts` share width and block width; `pixels` starts on
/// a block boundary and ends on one or at the width; `rank1 = Some((u, c))` adds `u ⊗ c`
/// (`u` indexed by pixel within `pixels`). `dz` and `out` must have contiguous rows.
///
/// Returns the largest magnitude it wrote, `+∞` if any value it wrote is not finite
/// (measured in registers as the tiles are stored: no pass over `out`).
///
/// `packed` is the buffer `dz`'s panels are packed into, lent by the caller: it is resized to
/// the rows of `dz` × one panel (at most 256 bytes; its old contents do not matter), so a
/// training loop that lends the same one every step allocates only on the first.
///
/// ```
/// # #[cfg(feature = "internals")] {
/// use downhill::kernels::sparse::{sparse_weight_grad, ColumnBlocks};
/// use downhill::matrix::Matrix;
///
/// // aᵀ·dz with a = [[0, 2], [1, 0]] and dz = [[1, 2], [3, 4]]: [[3, 4], [2, 4]].
/// let a = ColumnBlocks::from_rows(2, 2, &[vec![(1, 2.0)], vec![(0, 1.0)]])?;
/// let dz = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0], 2, 2)?;
/// let (mut dw, mut packed) = (Matrix::<f64>::zeros(2, 2)?, Vec::new());
/// for _ in 0..3 {
///     sparse_weight_grad(&[&a], 0..2, dz.as_ref(), 0.0, None, dw.as_mut(), &mut packed)?;
/// }
/// assert_eq!(dw.as_slice(), &[3.0, 4.0, 2.0, 4.0]);
/// # }
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn sparse_weight_grad<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    dz: MatRef<'_, T>,
    beta: T,
    rank1: Option<(&[T], &[T])>,
    out: MatMut<'_, T>,
    packed: &mut Vec<T>,
) -> Result<T> {
    let x = Operands {
        parts,
        pixels,
        dz,
        beta,
        rank1,
    };
    let checked = sparse_weight_grad_checked("kernels::sparse_weight_grad", x, out, packed, None);
    checked.map(|(peak, _)| peak)
}

/// What the weight gradient reads: `parts` stacked, their columns `pixels`, `dz`, `β` and
/// the rank-1 term (see [`sparse_weight_grad`]).
pub(crate) struct Operands<'a, T> {
    pub parts: &'a [&'a ColumnBlocks<T>],
    pub pixels: Range<usize>,
    pub dz: MatRef<'a, T>,
    pub beta: T,
    pub rank1: Option<(&'a [T], &'a [T])>,
}

/// The weight gradient's shape checks and kernel, with or without a step to take.
fn sparse_weight_grad_checked<T: Scalar>(
    context: &'static str,
    x: Operands<'_, T>,
    mut out: MatMut<'_, T>,
    packed: &mut Vec<T>,
    step: Option<StepRows<'_, T>>,
) -> Result<(T, T)> {
    let Operands {
        parts,
        pixels,
        dz,
        beta,
        rank1,
    } = x;
    let _ = check_parts(context, parts, &pixels)?;
    let rows: usize = parts.iter().map(|p| p.rows()).sum();
    let n = out.cols();
    same_size(context, "rows of dz (all parts' rows)", rows, dz.rows())?;
    same_size(context, "output rows", pixels.len(), out.rows())?;
    same_size(context, "output columns", dz.cols(), n)?;
    if let Some((u, c)) = rank1 {
        same_size(context, "rank-1 u length", pixels.len(), u.len())?;
        same_size(context, "rank-1 c length", n, c.len())?;
    }
    contiguous_rows(
        context,
        "column stride of dz (rows must be contiguous)",
        &dz,
    )?;
    if pixels.is_empty() || n == 0 {
        return Ok((T::zero(), T::zero()));
    }
    let body = WeightGrad {
        parts,
        pixels,
        dz: dz.data(),
        dzrs: dz.row_stride(),
        rows,
        packed,
        beta,
        rank1,
        ors: out.row_stride(),
        out: out.data_mut(),
        n,
        peak: T::zero(),
        step,
        step_peak: T::zero(),
    };
    Ok(weight_grad_dispatch(body))
}

/// [`sparse_weight_grad`] that takes `step`'s update of the parameters instead of
/// writing their gradient: each panel row of the gradient, as it leaves the registers,
/// steps the same panel row of `step.w` and its state in place (the rules' own arithmetic,
/// `kernels/update`: the same bits as a pass over the written gradient afterwards),
/// while the row of `w` and its state are read and written once, rather than the gradient
/// written, then read back beside them. `out` is never written (it is read for `β ≠ 0`,
/// the gradient so far). Returns the largest magnitude the step wrote, to the parameters
/// and to their state alike.
///
/// Nothing here checks what the step writes: the caller must have proved it finite (the
/// offered step's proof, `fast_path/proof.rs`) from a bound on the gradient that holds
/// before it is computed.
pub(crate) fn sparse_weight_grad_stepping<T: Scalar>(
    x: Operands<'_, T>,
    out: MatMut<'_, T>,
    packed: &mut Vec<T>,
    step: StepRows<'_, T>,
) -> Result<T> {
    const WHERE: &str = "kernels::sparse_weight_grad_stepping";
    let len = out.rows() * out.cols();
    same_size(
        WHERE,
        "output row stride (rows must be contiguous)",
        out.cols(),
        out.row_stride(),
    )?;
    same_size(WHERE, "parameters (the output's size)", len, step.w.len())?;
    // The state was checked against the parameters once, before the step was offered.
    debug_assert!([&step.s0, &step.s1]
        .iter()
        .enumerate()
        .all(|(b, s)| s.len() == if b < step.pass.rule.buffers() { len } else { 0 }));
    let checked = sparse_weight_grad_checked(WHERE, x, out, packed, Some(step));
    checked.map(|(_, stepped)| stepped)
}

/// Everything the weight-gradient body needs, checked by [`sparse_weight_grad`].
struct WeightGrad<'a, 'o, T> {
    parts: &'a [&'a ColumnBlocks<T>],
    pixels: Range<usize>,
    dz: &'a [T],
    dzrs: usize,
    /// The rows of `dz` (all parts').
    rows: usize,
    /// The panel of `dz` being worked on, its rows contiguous (`W` apart).
    packed: &'o mut Vec<T>,
    beta: T,
    rank1: Option<(&'a [T], &'a [T])>,
    out: &'o mut [T],
    ors: usize,
    n: usize,
    /// The largest magnitude written so far (`+∞` once a written value was not finite).
    peak: T,
    /// The parameters to step instead of writing their gradient, if any.
    step: Option<StepRows<'o, T>>,
    /// The largest magnitude the step wrote, to the parameters and their state alike.
    step_peak: T,
}

/// The weight gradient for one panel of `W` columns at `c0`, every pixel block of the range.
// Indexed loops over the tile, not iterators: with the tile borrowed by an iterator that
// can stop early the compiler keeps it in memory.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn weight_grad_panel<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    x: &mut WeightGrad<'_, '_, T>,
    c0: usize,
) {
    let p0 = x.pixels.start;
    let end = x.pixels.end.min(x.parts[0].cols);
    // The panel of dz, packed (see the module docs); `weight_grad_body` sized the buffer.
    let dz = &mut x.packed[..x.rows * W];
    for (i, row) in dz.chunks_exact_mut(W).enumerate() {
        row.copy_from_slice(tile::<T, W>(x.dz, i * x.dzrs + c0));
    }
    // The panel's largest magnitudes, lane by lane, and `Σ v·0` (NaN once a value was
    // infinite or NaN), as `magnitude` (kernels/update.rs) keeps them: the caller then
    // needs no pass of its own over what was written.
    let zero = T::zero();
    let (mut top, mut bad) = ([zero; W], [zero; W]);
    for j in p0 / G..x.pixels.end.div_ceil(G) {
        // The block's G rows of the panel of dW, in registers: indexed loops only, so the
        // compiler keeps the tile out of memory.
        let mut acc = [[T::zero(); W]; G];
        for q in 0..G {
            let k = j * G + q;
            if k >= end {
                continue;
            }
            if x.beta != T::zero() {
                let o = tile::<T, W>(x.out, (k - p0) * x.ors + c0);
                for l in 0..W {
                    acc[q][l] = x.beta * o[l];
                }
            }
            if let Some((u, c)) = x.rank1 {
                let (uk, c) = (u[k - p0], tile::<T, W>(c, c0));
                for l in 0..W {
                    acc[q][l] = M::mul_add(uk, c[l], acc[q][l]);
                }
            }
        }
        let mut first_row = 0;
        for part in x.parts {
            acc = accumulate::<T, M, G, W>(acc, part, j, first_row, x.packed);
            first_row += part.rows;
        }
        if let Some(step) = &mut x.step {
            // The block's rows of the parameters stepped from the tile in registers; the
            // gradient is not stored (storing it cost more than the step saves: its rows
            // are out of cache, and each store reads its line first). `top` keeps the
            // largest magnitude the step writes, to the parameters and their state alike.
            // The output's rows are contiguous (checked), so a row of the panel sits at the
            // same place in the parameters and their state.
            for q in 0..G {
                let k = j * G + q;
                if k < end {
                    let at = (k - p0) * x.ors + c0;
                    let (s0, s1) = (piece(step.s0, at, W), piece(step.s1, at, W));
                    let w = tile_mut::<T, W>(step.w, at);
                    step_tile(&step.pass, w, acc[q], s0, s1, &mut top);
                }
            }
            continue;
        }
        for q in 0..G {
            let k = j * G + q;
            if k < end {
                *tile_mut::<T, W>(x.out, (k - p0) * x.ors + c0) = acc[q];
                for l in 0..W {
                    top[l] = bigger(top[l], acc[q][l]);
                    bad[l] = bad[l] + acc[q][l] * zero;
                }
            }
        }
    }
    if x.step.is_some() {
        let panel = top.iter().fold(zero, |m, &t| m.max(t));
        x.step_peak = x.step_peak.max(panel);
        return;
    }
    let finite = bad.iter().fold(zero, |f, &b| f + b).is_finite();
    let panel = top.iter().fold(zero, |m, &t| m.max(t));
    x.peak = if finite {
        x.peak.max(panel)
    } else {
        T::infinity()
    };
}

/// `s[at..at + len]`, or `s` itself when it is empty (a state buffer the rule does not keep).
#[inline(always)]
fn piece<T>(s: &mut [T], at: usize, len: usize) -> &mut [T] {
    if s.is_empty() {
        s
    } else {
        &mut s[at..at + len]
    }
}

/// `acc[q] += v[q]·dz[first_row + i]` over block `j`'s entries `(i, v)` of one part, with
/// `dz` the packed panel (rows `W` apart). The tile goes in and out by value: with it
/// borrowed across the loop the compiler keeps a copy in memory, a store per multiply-add.
#[inline(always)]
fn accumulate<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    mut acc: [[T; W]; G],
    part: &ColumnBlocks<T>,
    j: usize,
    first_row: usize,
    dz: &[T],
) -> [[T; W]; G] {
    let range = part.block_range(j);
    let rows = &part.row[range.clone()];
    let (vals, _) = part.val[range.start * G..range.end * G].as_chunks::<G>();
    for (&r, v) in rows.iter().zip(vals) {
        let d = tile::<T, W>(dz, (first_row + r as usize) * W);
        for q in 0..G {
            let vq = v[q];
            for l in 0..W {
                acc[q][l] = M::mul_add(vq, d[l], acc[q][l]);
            }
        }
    }
    acc
}

/// The weight gradient over every panel, as [`forward_body`] walks them.
#[inline(always)]
fn weight_grad_body<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    mut x: WeightGrad<'_, '_, T>,
) -> (T, T) {
    // Room for the widest panel's rows (rows ≤ dz's length: the shapes were checked). What
    // the buffer held is kept, not cleared: every panel packs its rows before reading them.
    x.packed.resize(x.rows * W, T::zero());
    by_panels!(weight_grad_panel, x, T, M, G, W);
    match x.step {
        Some(_) => (T::zero(), x.step_peak),
        None => (x.peak, T::zero()),
    }
}

isa_dispatch!(weight_grad_dispatch, WeightGrad -> (T, T), |x| {
    avx512: widths!(weight_grad_body, x, x.parts[0].group, Fused, 256, 256),
    avx2: widths!(weight_grad_body, x, x.parts[0].group, Fused, 64, 128),
    base: widths!(weight_grad_body, x, x.parts[0].group, Separate, 64, 64),
});
