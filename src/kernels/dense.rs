//! One dense layer's forward pass, with the cheap elementwise work fused in, and the column
//! sums of its bias gradient.
//!
//! Forward: `A = act(X·W + b)`. The bias is written into the output first and the product
//! accumulated onto it (`β = 1`), then the activation is applied row by row while the block
//! just written is still in cache: no separate pass over a large `Z`. (The backward
//! products are plain [`gemm`] calls with transposed views; `model/backprop.rs` shows them.)

use crate::activation::Activation;
use crate::error::Result;
use crate::kernels::elementwise::{activate, add_assign, axpy};
use crate::kernels::gemm::gemm;
use crate::matrix::{MatMut, MatRef};
use crate::validate::same_size;
use crate::Scalar;

/// `out ← b + xᵀ·w` for one row vector `x`, skipping its zeros: a layer's bias with a
/// constant input folded in (the sparse first layer's standardisation offset, `b₁ + oᵀ·W₁`,
/// once per step). One pass down `w`'s rows; a [`gemm`] of one row would pack all of `w`
/// first, every call.
///
/// ```
/// use downhill::kernels::vector_matrix;
/// use downhill::matrix::Matrix;
///
/// let w = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2)?;
/// let mut out = [0.0; 2];
/// vector_matrix(&[1.0, 0.0, 2.0], w.as_ref(), &[0.5, 0.5], &mut out)?;
/// assert_eq!(out, [1.0 + 10.0 + 0.5, 2.0 + 12.0 + 0.5]);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn vector_matrix<T: Scalar>(x: &[T], w: MatRef<'_, T>, b: &[T], out: &mut [T]) -> Result<()> {
    same_size("kernels::vector_matrix", "bias length", w.cols(), b.len())?;
    if out.len() == b.len() {
        out.copy_from_slice(b);
    }
    add_vector_matrix(x, w, out)
}

/// `out ← out + xᵀ·w`, skipping the zeros of `x` (see [`vector_matrix`]).
fn add_vector_matrix<T: Scalar>(x: &[T], w: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
    const WHERE: &str = "kernels::vector_matrix";
    same_size(WHERE, "rows of w", x.len(), w.rows())?;
    same_size(WHERE, "output length", w.cols(), out.len())?;
    let mut row = Vec::new();
    for (k, &xk) in x.iter().enumerate() {
        if xk == T::zero() {
            continue;
        }
        match w.row(k) {
            Some(r) => axpy(out, xk, r),
            None => {
                // A strided row (a transposed view): gathered once into a buffer.
                row.resize(w.cols(), T::zero());
                w.copy_row(k, &mut row)?;
                axpy(out, xk, &row);
            }
        }
    }
    Ok(())
}

/// `out ← act(x·w + b)`; with `act == None` the layer is affine (the output layer's scores).
pub fn dense_forward<T: Scalar>(
    x: MatRef<'_, T>,
    w: MatRef<'_, T>,
    b: &[T],
    act: Option<Activation>,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    same_size("kernels::dense_forward", "bias length", w.cols(), b.len())?;
    same_size(
        "kernels::dense_forward",
        "output columns",
        w.cols(),
        out.cols(),
    )?;
    for r in 0..out.rows() {
        if let Some(row) = out.row_mut(r) {
            row.copy_from_slice(b);
        }
    }
    gemm(T::one(), x, w, T::one(), out.rb())?;
    if let Some(act) = act {
        for r in 0..out.rows() {
            if let Some(row) = out.row_mut(r) {
                activate(act, row);
            }
        }
    }
    Ok(())
}

/// `db ← β·db + colsum(dz)`, summing rows in order (the result does not depend on how the
/// caller splits work elsewhere). `β = 0` overwrites `db` without reading it.
pub fn column_sums_into<T: Scalar>(dz: MatRef<'_, T>, beta: T, db: &mut [T]) -> Result<()> {
    same_size(
        "kernels::column_sums_into",
        "bias gradient length",
        dz.cols(),
        db.len(),
    )?;
    if beta == T::zero() {
        db.fill(T::zero());
    } else if beta != T::one() {
        db.iter_mut().for_each(|g| *g = beta * *g);
    }
    for r in 0..dz.rows() {
        match dz.row(r) {
            // Contiguous rows: one vectorised add of each row into the accumulator.
            Some(row) => add_assign(db, row),
            None => {
                for (c, acc) in db.iter_mut().enumerate() {
                    if let Some(v) = dz.get(r, c) {
                        *acc = *acc + v;
                    }
                }
            }
        }
    }
    Ok(())
}
