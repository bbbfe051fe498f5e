//! The sparse forward, `out = act(start + X·W)`, one panel of `W`'s columns at a time.

use std::ops::Range;

use crate::activation::Activation;
use crate::error::Result;
use crate::kernels::elementwise::activate;
use crate::kernels::lanes::{tile, tile_mut, Fused, MulAdd, Separate};
use crate::kernels::sparse::{check_parts, ColumnBlocks, GROUP_ROWS};
use crate::matrix::{contiguous_rows, MatMut, MatRef};
use crate::scalar::Scalar;
use crate::validate::same_size;

/// `out = act(start + a[:, pixels]·w[pixels, :])` for the row-stacked `parts` (see the
/// [module docs](super)), with `start` the bias row (or zero, `None`): the forward over one
/// range of the pixels, which starts on a column block and ends on one or at the width.
/// The activation applies to what is written, so it belongs with a range of all the
/// pixels; the first layer's forward cut in two (`model/blocked.rs`) adds the halves and
/// activates the sum itself. `w` must have contiguous rows.
///
/// ```
/// # #[cfg(feature = "internals")] {
/// use downhill::kernels::sparse::{sparse_forward, ColumnBlocks};
/// use downhill::matrix::Matrix;
///
/// // a = [[0, 2], [1, 0]], w = [[1, 2, 3], [4, 5, 6]], bias [1, 1, 1].
/// let a = ColumnBlocks::from_rows(2, 2, &[vec![(1, 2.0)], vec![(0, 1.0)]])?;
/// let w = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3)?;
/// let mut out = Matrix::<f64>::zeros(2, 3)?;
/// sparse_forward(&[&a], 0..2, w.as_ref(), Some(&[1.0; 3]), None, out.as_mut())?;
/// assert_eq!(out.as_slice(), &[9.0, 11.0, 13.0, 2.0, 3.0, 4.0]);
/// # }
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn sparse_forward<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    w: MatRef<'_, T>,
    bias: Option<&[T]>,
    act: Option<Activation>,
    out: MatMut<'_, T>,
) -> Result<()> {
    sparse_forward_with_offset(parts, pixels, w, bias, None, act, false, out)
}

/// [`sparse_forward`] with every row's start also holding `oᵀ·w[pixels, :]` (`offset = Some(o)`,
/// `o` indexed by pixel within `pixels`): a standardised input's constant offset, folded out of
/// the sparse values (`model/blocked.rs`). It is computed per panel of `w`, just before the
/// panel serves the rows, so `w` is read from memory once for both.
///
/// With `add_to`, each output row is added to the one `out` holds as the panel is copied
/// out (`out + row`, then `act`): the sum of two ranges of pixels, one pass over `out`
/// fewer than writing the second range apart and adding afterwards, and the same bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sparse_forward_with_offset<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    w: MatRef<'_, T>,
    bias: Option<&[T]>,
    offset: Option<&[T]>,
    act: Option<Activation>,
    add_to: bool,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    const WHERE: &str = "kernels::sparse_forward";
    let (cols, _) = check_parts(WHERE, parts, &pixels)?;
    let n = out.cols();
    let rows: usize = parts.iter().map(|p| p.rows()).sum();
    same_size(WHERE, "rows of w", cols, w.rows())?;
    same_size(WHERE, "output rows (all parts' rows)", rows, out.rows())?;
    same_size(WHERE, "output columns", w.cols(), n)?;
    if let Some(b) = bias {
        same_size(WHERE, "bias length", n, b.len())?;
    }
    if let Some(o) = offset {
        same_size(WHERE, "offset length (the pixels')", pixels.len(), o.len())?;
    }
    contiguous_rows(WHERE, "column stride of w (rows must be contiguous)", &w)?;
    if rows == 0 || n == 0 {
        return Ok(());
    }
    // No pixels: the start rows only (the kernel walks the blocks the range touches, and an
    // empty range off a block boundary would still touch one).
    let pixels = if pixels.is_empty() { 0..0 } else { pixels };
    let x = Forward {
        parts,
        pixels,
        w: w.data(),
        wrs: w.row_stride(),
        bias,
        offset,
        act,
        add_to,
        ors: out.row_stride(),
        out: out.data_mut(),
        n,
    };
    forward_dispatch(x);
    Ok(())
}

/// Everything the forward body needs, checked by [`sparse_forward`].
struct Forward<'a, 'o, T> {
    parts: &'a [&'a ColumnBlocks<T>],
    pixels: Range<usize>,
    w: &'a [T],
    wrs: usize,
    bias: Option<&'a [T]>,
    /// `o` of the pixels, for the start rows' `oᵀ·w[pixels, :]`.
    offset: Option<&'a [T]>,
    act: Option<Activation>,
    /// Add each output row to what `out` holds (`out + row`, then the activation) instead
    /// of overwriting it.
    add_to: bool,
    out: &'o mut [T],
    ors: usize,
    n: usize,
}

/// The forward for one panel of `W` columns at `c0`, one row group of one part (whose rows
/// start at output row `first_row`), over the pixel blocks of the range.
///
/// The group's output panel is built in a contiguous tile, not in place: output rows are a
/// power-of-two apart (1 KiB at 256 columns, 4 KiB at 1024), so their panels fall in the
/// same few L1 sets and evict each other; the tile's rows fall in consecutive sets.
#[inline(always)]
fn forward_panel<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    x: &mut Forward<'_, '_, T>,
    a: &ColumnBlocks<T>,
    first_row: usize,
    c0: usize,
    group: usize,
    start: &[T; W],
) {
    let blocks = a.blocks();
    let first = group * GROUP_ROWS;
    let rows = first..((group + 1) * GROUP_ROWS).min(a.rows);
    let mut out = [*start; GROUP_ROWS];
    for j in x.pixels.start / G..x.pixels.end.div_ceil(G) {
        let from = a.marks[group * blocks + j] as usize;
        let to = a.marks[(group + 1) * blocks + j] as usize;
        if from == to {
            continue;
        }
        // The block's G rows of the panel of w (zero past the last column of a).
        let mut wt = [[T::zero(); W]; G];
        for (q, t) in wt.iter_mut().enumerate() {
            let k = j * G + q;
            if k < a.cols {
                *t = *tile::<T, W>(x.w, k * x.wrs + c0);
            }
        }
        let (vals, _) = a.val[from * G..to * G].as_chunks::<G>();
        for (&i, v) in a.row[from..to].iter().zip(vals) {
            // Entries of this group have rows in `rows`: the marks say so.
            let o = &mut out[i as usize - first];
            let mut acc = *o;
            for q in 0..G {
                for l in 0..W {
                    acc[l] = M::mul_add(v[q], wt[q][l], acc[l]);
                }
            }
            *o = acc;
        }
    }
    for (i, tile) in rows.zip(&mut out) {
        let dst = tile_mut::<T, W>(x.out, (first_row + i) * x.ors + c0);
        if x.add_to {
            for l in 0..W {
                tile[l] = dst[l] + tile[l];
            }
        }
        if let Some(act) = x.act {
            activate(act, tile);
        }
        *dst = *tile;
    }
}

/// The forward over every panel and row group: panels of `W` columns, then the tail in
/// panels of 8 and of 1. Panels outside, so that a panel of `W₁` (784 rows × 256 bytes)
/// stays in L2 while every row group uses it.
#[inline(always)]
fn forward_body<T: Scalar, M: MulAdd, const G: usize, const W: usize>(mut x: Forward<'_, '_, T>) {
    by_panels!(forward_column, x, T, M, G, W);
}

/// One panel of the forward: every row group of every part. (A function, not a closure:
/// a closure is not always inlined into the target-feature function that calls it, and
/// then it is compiled for the baseline CPU, multiply-adds and all.)
#[inline(always)]
fn forward_column<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    x: &mut Forward<'_, '_, T>,
    c0: usize,
) {
    // The panel of every row's start: the bias (or zero), then oₖ·w[k, panel] for the
    // pixels in order, skipping zeros of o.
    let mut start = match x.bias {
        Some(b) => *tile::<T, W>(b, c0),
        None => [T::zero(); W],
    };
    if let Some(o) = x.offset {
        for (k, &ok) in x.pixels.clone().zip(o) {
            if ok != T::zero() {
                let w = tile::<T, W>(x.w, k * x.wrs + c0);
                for l in 0..W {
                    start[l] = M::mul_add(ok, w[l], start[l]);
                }
            }
        }
    }
    let mut first_row = 0;
    for a in x.parts {
        for g in 0..a.rows.div_ceil(GROUP_ROWS) {
            forward_panel::<T, M, G, W>(x, a, first_row, c0, g, &start);
        }
        first_row += a.rows;
    }
}

isa_dispatch!(forward_dispatch, Forward, |x| {
    avx512: widths!(forward_body, x, x.parts[0].group, Fused, 256, 256),
    avx2: widths!(forward_body, x, x.parts[0].group, Fused, 64, 128),
    base: widths!(forward_body, x, x.parts[0].group, Separate, 64, 64),
});
