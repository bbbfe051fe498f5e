//! One dense layer's forward pass, with the cheap elementwise work fused in, and the column
//! sums of its bias gradient.
//!
//! Forward: `A = act(X·W + b)`. The bias is written into the output first and the product
//! accumulated onto it (`β = 1`), then the activation is applied row by row while the block
//! just written is still in cache: no separate pass over a large `Z`. (The backward
//! products are plain [`gemm`] calls with transposed views; `model/backprop.rs` shows them.)

use crate::activation::Activation;
use crate::error::Result;
use crate::kernels::elementwise::{activate, add_assign};
use crate::kernels::gemm::gemm;
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;
use crate::validate::same_size;

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
