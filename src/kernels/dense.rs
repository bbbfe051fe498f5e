//! One dense layer, forward and backward, with the cheap elementwise work fused in.
//!
//! Forward: `A = act(X·W + b)`. The bias is written into the output first and the product
//! accumulated onto it (`β = 1`), then the activation is applied row by row, while the block
//! just written is still in cache — no separate pass over a large `Z`.
//!
//! Backward, given `dZ` (the caller has already multiplied by `act'`):
//! `dW += Xᵀ·dZ`, `db += colsum(dZ)`, `dX = dZ·Wᵀ`. Both transposes are stride swaps.
//! `dW` and `db` accumulate (`β = 1`) so a large batch can be walked in row blocks.

use crate::error::{Error, Result};
use crate::kernels::elementwise::add_assign;
use crate::kernels::gemm::gemm;
use crate::matrix::{MatMut, MatRef};
use crate::model::Activation;
use crate::Scalar;

/// `out ← act(x·w + b)`; with `act == None` the layer is affine (the output layer's scores).
pub fn dense_forward<T: Scalar>(
    x: MatRef<'_, T>,
    w: MatRef<'_, T>,
    b: &[T],
    act: Option<Activation>,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    if b.len() != w.cols() || out.cols() != w.cols() || out.rows() != x.rows() {
        return Err(Error::shape(
            "kernels::dense_forward",
            format!(
                "bias of {} and output {} × {}",
                w.cols(),
                x.rows(),
                w.cols()
            ),
            format!(
                "bias of {} and output {} × {}",
                b.len(),
                out.rows(),
                out.cols()
            ),
        ));
    }
    for r in 0..out.rows() {
        if let Some(row) = out.row_mut(r) {
            row.copy_from_slice(b);
        }
    }
    gemm(T::one(), x, w, T::one(), out.rb())?;
    if let Some(act) = act {
        for r in 0..out.rows() {
            if let Some(row) = out.row_mut(r) {
                act.forward_in_place(row);
            }
        }
    }
    Ok(())
}

/// `db += colsum(dz)`, summing rows in order (the result does not depend on how the caller
/// splits work elsewhere).
pub fn column_sums_into<T: Scalar>(dz: MatRef<'_, T>, db: &mut [T]) -> Result<()> {
    if db.len() != dz.cols() {
        return Err(Error::shape(
            "kernels::column_sums_into",
            dz.cols(),
            db.len(),
        ));
    }
    let (rows, cols) = (dz.rows(), dz.cols());
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    if dz.cs == 1 {
        // Contiguous rows: one vectorised add of each row into the accumulator.
        for r in 0..rows {
            add_assign(db, &dz.data[r * dz.rs..r * dz.rs + cols]);
        }
    } else {
        for r in 0..rows {
            for (c, acc) in db.iter_mut().enumerate() {
                *acc = *acc + dz.data[r * dz.rs + c * dz.cs];
            }
        }
    }
    Ok(())
}

/// `dw += xᵀ·dz`, `db += colsum(dz)`, and, when `dx` is given, `dx ← dz·wᵀ`.
pub fn dense_backward<T: Scalar>(
    x: MatRef<'_, T>,
    w: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    dw: MatMut<'_, T>,
    db: &mut [T],
    dx: Option<MatMut<'_, T>>,
) -> Result<()> {
    gemm(T::one(), x.t(), dz, T::one(), dw)?;
    column_sums_into(dz, db)?;
    if let Some(dx) = dx {
        gemm(T::one(), dz, w.t(), T::zero(), dx)?;
    }
    Ok(())
}
