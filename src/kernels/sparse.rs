//! Sparse × dense products for the first layer: most of a digit's pixels are zero.
//!
//! 81% of MNIST's pixels are exactly zero, and the first layer's two products — the forward
//! `Z₁ = X·W₁` and the weight gradient `dW₁ = Xᵀ·dZ₁` — are nearly all of a 784-256-10
//! step. Both can skip the zeros: row `i` of `X·W₁` is the sum of the rows of `W₁` at row
//! `i`'s nonzero pixels, each scaled by the pixel; and row `j` of `Xᵀ·dZ₁` is the sum of
//! the rows of `dZ₁` at the examples where pixel `j` is nonzero. So both are one operation
//! on a sparse matrix `A` in compressed rows ([`Csr`]) and a dense `B` with contiguous rows:
//!
//! ```text
//! out[r, :] = init[r, :] + u[r]·v + Σ_{k : A[r, k] ≠ 0} A[r, k] · B[k, :]
//! ```
//!
//! with `init` a bias row (the forward pass) or `β·out` (accumulating a gradient over row
//! blocks), and the optional rank-1 term `u ⊗ v` (a standardised input's mean, folded out
//! of the sparse values: see `model/blocked.rs`).
//!
//! # Blocking
//!
//! The columns of `B` and `out` are walked in panels of [`PANEL`] columns (`f32`: 128, half
//! a KiB a row), every row of `A` against one panel before the next: a panel of a
//! 784-row `W₁` is 392 KiB and stays in the L2 cache while all the block's rows use it,
//! where walking whole rows of a 1024-wide `W₁` would stream 3 MiB through it per row.
//! Within a panel each output row is built in registers, [`REG`] columns at a time (`f32`:
//! 64 columns, eight AVX registers), by one pass over the row's nonzeros: per nonzero, one
//! broadcast of `A[r, k]`, `REG/8` loads of `B[k, ..]` and as many fused multiply-adds.
//!
//! # Instruction sets, rounding, and threads
//!
//! The body is plain Rust, compiled twice (see `kernels/mod.rs`): with AVX2 and FMA when the
//! CPU has them, where the multiply-add is fused (`mul_add`, one rounding), and for the
//! baseline, where it is a multiply and an add. The two round differently, so the results
//! agree with each other — and with the dense path — to rounding, not to the bit; on one
//! machine they are always the same. Every output element is computed by one call, in the
//! order of `A`'s entries: splitting the rows of `out` between threads changes nothing.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::matrix::{MatMut, MatRef};
use crate::Scalar;

/// Columns per L2 panel, in bytes of `B` per row: 512 bytes (128 `f32`, 64 `f64`).
const PANEL_BYTES: usize = 512;

/// Columns built in registers at once, in bytes: 256 (64 `f32`, 32 `f64`: eight 256-bit
/// registers, leaving the other eight for `B`'s loads).
const REG_BYTES: usize = 256;

/// Columns per L2 panel for `T`.
pub const fn panel<T>() -> usize {
    PANEL_BYTES / std::mem::size_of::<T>()
}

/// Columns built in registers at once for `T`.
pub const fn reg<T>() -> usize {
    REG_BYTES / std::mem::size_of::<T>()
}

/// Columns per L2 panel for `f32`.
pub const PANEL: usize = panel::<f32>();
/// Columns built in registers at once for `f32`.
pub const REG: usize = reg::<f32>();

/// A sparse matrix in compressed rows: row `r`'s nonzeros are `idx[ptr[r]..ptr[r + 1]]`
/// (their columns, increasing) and `val[..]` (their values).
///
/// Built a row at a time with [`push_row`](Csr::push_row), which checks every column, so a
/// `Csr` always describes a valid matrix and the kernel needs no checks of its own. Its
/// buffers are kept across [`clear`](Csr::clear), so a training loop rebuilds one per block
/// without allocating.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Csr<T> {
    cols: usize,
    ptr: Vec<u32>,
    idx: Vec<u32>,
    val: Vec<T>,
}

impl<T: Scalar> Csr<T> {
    /// An empty `0 × cols` matrix.
    pub fn new(cols: usize) -> Self {
        Csr {
            cols,
            ptr: vec![0],
            idx: Vec::new(),
            val: Vec::new(),
        }
    }

    /// Empties the matrix (keeping its buffers) and sets its width.
    pub fn clear(&mut self, cols: usize) {
        self.cols = cols;
        self.ptr.clear();
        self.ptr.push(0);
        self.idx.clear();
        self.val.clear();
    }

    /// Appends a row of `(column, value)` entries, columns increasing and below
    /// [`cols`](Csr::cols). Nothing is appended if an entry is out of range or out of order.
    pub fn push_row(&mut self, entries: impl IntoIterator<Item = (usize, T)>) -> Result<()> {
        let start = self.idx.len();
        let mut prev: Option<usize> = None;
        for (c, v) in entries {
            if c >= self.cols || prev.is_some_and(|p| c <= p) {
                self.idx.truncate(start);
                self.val.truncate(start);
                return Err(Error::shape(
                    "Csr::push_row",
                    "column (increasing, below the width)",
                    self.cols,
                    c,
                ));
            }
            prev = Some(c);
            // The width fits in u32 (checked below for the whole matrix), so c does.
            self.idx.push(c as u32);
            self.val.push(v);
        }
        let end = u32::try_from(self.idx.len()).map_err(|_| {
            self.idx.truncate(start);
            Error::param("sparse block", self.idx.len(), "more than 2^32 nonzeros")
        })?;
        self.ptr.push(end);
        Ok(())
    }

    /// Appends a row whose columns are already known to be increasing and below the width
    /// (the crate's own gathers, whose column lists were checked when they were built).
    pub(crate) fn push_row_trusted(&mut self, entries: impl IntoIterator<Item = (u32, T)>) {
        for (c, v) in entries {
            debug_assert!((c as usize) < self.cols);
            self.idx.push(c);
            self.val.push(v);
        }
        self.ptr.push(self.idx.len() as u32);
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.ptr.len() - 1
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.idx.len()
    }

    /// Row `r`'s entries, as `(column, value)`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, T)> + '_ {
        let range = self.range(r);
        self.idx[range.clone()]
            .iter()
            .zip(&self.val[range])
            .map(|(&c, &v)| (c as usize, v))
    }

    fn range(&self, r: usize) -> Range<usize> {
        match (self.ptr.get(r), self.ptr.get(r + 1)) {
            (Some(&a), Some(&b)) => a as usize..b as usize,
            _ => 0..0,
        }
    }

    /// Writes into `out` the rows `rows` of this matrix's transpose: a `rows.len() ×
    /// self.rows()` matrix whose row `j − rows.start` holds the entries of column `j`.
    pub fn transpose_into(&self, rows: Range<usize>, out: &mut Csr<T>) {
        Csr::transpose_parts_into(&[self], rows, out)
    }

    /// [`transpose_into`](Csr::transpose_into) for the matrix made of `parts` stacked in
    /// order (the row shares of a block): the transpose of a block's rows, one share of
    /// columns at a time, is what the weight gradient walks. A counting sort: one pass to
    /// count, one to place; rows are visited in order, so each transposed row's columns
    /// come out increasing.
    pub fn transpose_parts_into(parts: &[&Csr<T>], rows: Range<usize>, out: &mut Csr<T>) {
        let cols = parts.first().map_or(0, |p| p.cols);
        let rows = rows.start.min(cols)..rows.end.min(cols).max(rows.start.min(cols));
        let height: usize = parts.iter().map(|p| p.rows()).sum();
        out.clear(height);
        out.ptr.clear();
        out.ptr.resize(rows.len() + 1, 0);
        for part in parts {
            for &c in &part.idx {
                let c = c as usize;
                if rows.contains(&c) {
                    out.ptr[c - rows.start + 1] += 1;
                }
            }
        }
        for j in 1..out.ptr.len() {
            out.ptr[j] += out.ptr[j - 1];
        }
        let total = out.ptr.last().copied().unwrap_or(0) as usize;
        out.idx.resize(total, 0);
        out.val.resize(total, T::zero());
        // `next[j]` is where column j's next entry goes.
        let mut next = out.ptr.clone();
        let mut first_row = 0;
        for part in parts {
            for r in 0..part.rows() {
                for (c, v) in part.row(r) {
                    if rows.contains(&c) {
                        let at = &mut next[c - rows.start];
                        out.idx[*at as usize] = (first_row + r) as u32;
                        out.val[*at as usize] = v;
                        *at += 1;
                    }
                }
            }
            first_row += part.rows();
        }
    }
}

/// What each output row starts from.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a, T> {
    /// The same row vector for every output row (a layer's bias).
    Row(&'a [T]),
    /// `β` times what the output holds (0: overwrite, without reading it).
    Scaled(T),
}

/// `out[r, :] = start[r] + u[r]·v + Σ_k a[r, k]·b[k, :]` (see the [module docs](self));
/// `rank1 = Some((u, v))` adds the rank-1 term. `b` must have contiguous rows.
///
/// ```
/// use downhill::kernels::sparse::{spmm, Csr, Start};
/// use downhill::matrix::Matrix;
///
/// // a = [[0, 2], [1, 0]], b = [[1, 2, 3], [4, 5, 6]], bias [1, 1, 1].
/// let mut a = Csr::new(2);
/// a.push_row([(1, 2.0)])?;
/// a.push_row([(0, 1.0)])?;
/// let b = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3)?;
/// let mut out = Matrix::<f64>::zeros(2, 3)?;
/// spmm(&a, b.as_ref(), Start::Row(&[1.0; 3]), None, out.as_mut())?;
/// assert_eq!(out.as_slice(), &[9.0, 11.0, 13.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn spmm<T: Scalar>(
    a: &Csr<T>,
    b: MatRef<'_, T>,
    start: Start<'_, T>,
    rank1: Option<(&[T], &[T])>,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    let n = out.cols();
    if a.cols() != b.rows() {
        return Err(Error::shape(
            "kernels::spmm",
            "inner dimension (rows of b)",
            a.cols(),
            b.rows(),
        ));
    }
    if out.rows() != a.rows() {
        return Err(Error::shape(
            "kernels::spmm",
            "output rows",
            a.rows(),
            out.rows(),
        ));
    }
    if n != b.cols() {
        return Err(Error::shape("kernels::spmm", "output columns", b.cols(), n));
    }
    if b.col_stride() != 1 && b.cols() > 1 {
        return Err(Error::shape(
            "kernels::spmm",
            "column stride of b (its rows must be contiguous)",
            1,
            b.col_stride(),
        ));
    }
    if let Start::Row(row) = start {
        if row.len() != n {
            return Err(Error::shape(
                "kernels::spmm",
                "start row length",
                n,
                row.len(),
            ));
        }
    }
    if let Some((u, v)) = rank1 {
        if u.len() != a.rows() {
            return Err(Error::shape(
                "kernels::spmm",
                "rank-1 u length",
                a.rows(),
                u.len(),
            ));
        }
        if v.len() != n {
            return Err(Error::shape("kernels::spmm", "rank-1 v length", n, v.len()));
        }
    }
    if a.rows() == 0 || n == 0 {
        return Ok(());
    }
    let rs = out.row_stride();
    let args = Args {
        a,
        b: b.data(),
        brs: b.row_stride(),
        start,
        rank1,
        out: out.data_mut(),
        ors: rs,
        n,
    };
    spmm_dispatch(args);
    Ok(())
}

/// Everything the body needs, checked by [`spmm`].
struct Args<'a, 'o, T> {
    a: &'a Csr<T>,
    b: &'a [T],
    brs: usize,
    start: Start<'a, T>,
    rank1: Option<(&'a [T], &'a [T])>,
    out: &'o mut [T],
    ors: usize,
    n: usize,
}

/// How a multiply-add rounds: fused (one rounding; the AVX2 + FMA build) or not.
trait MulAdd {
    fn mul_add<T: Scalar>(a: T, b: T, c: T) -> T;
}

/// `a·b + c` with one rounding.
struct Fused;
/// `a·b + c` with two.
struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add<T: Scalar>(a: T, b: T, c: T) -> T {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add<T: Scalar>(a: T, b: T, c: T) -> T {
        a * b + c
    }
}

/// One register block: columns `c0..c0 + W` of output row `r`.
#[inline(always)]
fn block<T: Scalar, M: MulAdd, const W: usize>(x: &mut Args<'_, '_, T>, r: usize, c0: usize) {
    let mut acc = [T::zero(); W];
    let o = r * x.ors + c0;
    match x.start {
        Start::Row(row) => acc.copy_from_slice(&row[c0..c0 + W]),
        Start::Scaled(beta) if beta == T::zero() => {}
        Start::Scaled(beta) => {
            for (a, &v) in acc.iter_mut().zip(&x.out[o..o + W]) {
                *a = beta * v;
            }
        }
    }
    if let Some((u, v)) = x.rank1 {
        let ur = u[r];
        for (a, &v) in acc.iter_mut().zip(&v[c0..c0 + W]) {
            *a = M::mul_add(ur, v, *a);
        }
    }
    let range = x.a.range(r);
    for (&k, &v) in x.a.idx[range.clone()].iter().zip(&x.a.val[range]) {
        let at = k as usize * x.brs + c0;
        let brow: &[T; W] = match x.b[at..at + W].try_into() {
            Ok(row) => row,
            Err(_) => unreachable!("the slice is W long"),
        };
        for l in 0..W {
            acc[l] = M::mul_add(v, brow[l], acc[l]);
        }
    }
    x.out[o..o + W].copy_from_slice(&acc);
}

/// The columns `c0..c1` of output row `r`, in register blocks of `R`, `R/2`, …, 1.
#[inline(always)]
fn columns<T: Scalar, M: MulAdd, const R: usize>(
    x: &mut Args<'_, '_, T>,
    r: usize,
    c0: usize,
    c1: usize,
) {
    let mut c = c0;
    while c + R <= c1 {
        block::<T, M, R>(x, r, c);
        c += R;
    }
    // The tail of a panel whose width is not a multiple of R.
    while c + 8 <= c1 {
        block::<T, M, 8>(x, r, c);
        c += 8;
    }
    while c < c1 {
        block::<T, M, 1>(x, r, c);
        c += 1;
    }
}

#[inline(always)]
fn spmm_body<T: Scalar, M: MulAdd>(mut x: Args<'_, '_, T>) {
    let panel = panel::<T>();
    for p0 in (0..x.n).step_by(panel) {
        let p1 = (p0 + panel).min(x.n);
        for r in 0..x.a.rows() {
            // One register width per element type: 64 f32 or 32 f64.
            if std::mem::size_of::<T>() == 4 {
                columns::<T, M, 64>(&mut x, r, p0, p1);
            } else {
                columns::<T, M, 32>(&mut x, r, p0, p1);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn spmm_avx2_fma<T: Scalar>(x: Args<'_, '_, T>) {
    spmm_body::<T, Fused>(x)
}

fn spmm_dispatch<T: Scalar>(x: Args<'_, '_, T>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the only requirement of an `avx2,fma` target-feature function is that the
        // CPU supports both, which was detected at run time just above.
        return unsafe { spmm_avx2_fma(x) };
    }
    spmm_body::<T, Separate>(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    /// A deterministic sparse matrix: about `density` of the entries nonzero.
    fn sparse(rows: usize, cols: usize, density: f64, seed: u64) -> (Csr<f64>, Matrix<f64>) {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut dense = Matrix::zeros(rows, cols).unwrap();
        let mut csr = Csr::new(cols);
        for r in 0..rows {
            let mut row = Vec::new();
            for c in 0..cols {
                if next() < density {
                    let v = next() * 2.0 - 1.0;
                    dense.as_mut_slice()[r * cols + c] = v;
                    row.push((c, v));
                }
            }
            csr.push_row(row).unwrap();
        }
        (csr, dense)
    }

    #[test]
    fn spmm_is_the_dense_product_for_every_shape_and_start() {
        for &(rows, inner, cols, density) in &[
            (1, 1, 1, 1.0),
            (5, 7, 3, 0.5),
            (9, 30, 130, 0.2),
            (3, 10, 200, 0.0),
            (17, 40, 67, 1.0),
        ] {
            let (a, dense_a) = sparse(rows, inner, density, rows as u64 * 7 + 1);
            let (_, b) = sparse(inner, cols, 1.0, 3);
            let bias: Vec<f64> = (0..cols).map(|c| c as f64 * 0.1).collect();
            let u: Vec<f64> = (0..rows).map(|r| 1.0 - r as f64 * 0.3).collect();
            let v: Vec<f64> = (0..cols).map(|c| (c as f64).sin()).collect();
            let mut want = Matrix::zeros(rows, cols).unwrap();
            crate::kernels::gemm(1.0, dense_a.as_ref(), b.as_ref(), 0.0, want.as_mut()).unwrap();
            let mut got = Matrix::zeros(rows, cols).unwrap();
            spmm(
                &a,
                b.as_ref(),
                Start::Row(&bias),
                Some((&u, &v)),
                got.as_mut(),
            )
            .unwrap();
            for (r, &ur) in u.iter().enumerate() {
                for c in 0..cols {
                    let w = want.as_slice()[r * cols + c] + bias[c] + ur * v[c];
                    let g = got.as_slice()[r * cols + c];
                    assert!((w - g).abs() < 1e-12, "{rows}×{inner}×{cols} at ({r}, {c})");
                }
            }
            // β = 0.5 keeps half of what was there.
            let before = got.clone();
            spmm(&a, b.as_ref(), Start::Scaled(0.5), None, got.as_mut()).unwrap();
            for (i, (&g, &o)) in got.as_slice().iter().zip(before.as_slice()).enumerate() {
                let w = 0.5 * o + want.as_slice()[i];
                assert!((w - g).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn the_transpose_of_a_column_range_is_exact() {
        let (a, dense) = sparse(11, 23, 0.3, 5);
        let mut t = Csr::new(0);
        a.transpose_into(4..19, &mut t);
        assert_eq!((t.rows(), t.cols()), (15, 11));
        for j in 0..15 {
            let col: Vec<(usize, f64)> = (0..11)
                .filter_map(|r| {
                    let v = dense.as_slice()[r * 23 + j + 4];
                    (v != 0.0).then_some((r, v))
                })
                .collect();
            assert_eq!(t.row(j).collect::<Vec<_>>(), col);
        }
    }

    #[test]
    fn bad_rows_and_shapes_are_refused() {
        let mut a = Csr::<f32>::new(3);
        assert!(a.push_row([(3, 1.0)]).is_err(), "column out of range");
        assert!(a.push_row([(1, 1.0), (1, 2.0)]).is_err(), "not increasing");
        assert_eq!((a.rows(), a.nnz()), (0, 0), "nothing appended");
        a.push_row([(0, 1.0), (2, 2.0)]).unwrap();
        let b = Matrix::<f32>::zeros(4, 2).unwrap();
        let mut out = Matrix::<f32>::zeros(1, 2).unwrap();
        assert!(spmm(&a, b.as_ref(), Start::Scaled(0.0), None, out.as_mut()).is_err());
        let b = Matrix::<f32>::zeros(3, 2).unwrap();
        assert!(spmm(
            &a,
            b.as_ref().t().t(),
            Start::Row(&[0.0]),
            None,
            out.as_mut()
        )
        .is_err());
        assert!(spmm(&a, b.as_ref(), Start::Scaled(0.0), None, out.as_mut()).is_ok());
    }
}
