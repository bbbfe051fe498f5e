//! `C ← α·A·B + β·C` through matrixmultiply, behind a checked, safe signature.
//!
//! matrixmultiply's `sgemm`/`dgemm` take raw pointers and strides and trust them; this file
//! is the one place that turns the crate's checked views ([`MatRef`], [`MatMut`]) into those
//! pointers. Because matrixmultiply accepts any strides, a transpose is just a view with its
//! strides swapped: `Xᵀ·dZ` and `dZ·Wᵀ` never copy a matrix.
//!
//! The element type picks the routine: [`Scalar`] is sealed to `f32` and `f64`, and the
//! comparison of type ids below is decided at compile time for each of them.

use std::any::TypeId;

use crate::error::Result;
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;
use crate::validate::same_size;

/// `c ← alpha·a·b + beta·c`. With `beta == 0`, `c` is written without being read.
///
/// Errors if the inner dimensions or the output shape do not agree.
///
/// ```
/// # #[cfg(feature = "internals")] {
/// use downhill::kernels::gemm;
/// use downhill::matrix::Matrix;
///
/// let a = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0], 2, 2)?;
/// let mut c = Matrix::<f64>::zeros(2, 2)?;
/// gemm(1.0, a.as_ref(), a.as_ref().t(), 0.0, c.as_mut())?; // A·Aᵀ
/// assert_eq!(c.as_slice(), &[5.0, 11.0, 11.0, 25.0]);
/// # }
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn gemm<T: Scalar>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    mut c: MatMut<'_, T>,
) -> Result<()> {
    same_size(
        "kernels::gemm",
        "inner dimension (rows of b)",
        a.cols(),
        b.rows(),
    )?;
    same_size("kernels::gemm", "output rows", a.rows(), c.rows())?;
    same_size("kernels::gemm", "output columns", b.cols(), c.cols())?;
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if m == 0 || n == 0 {
        return Ok(());
    }
    // Strides fit in isize: each view's extent was checked against a slice, and slices never
    // exceed isize::MAX bytes.
    let (rsa, csa) = (a.row_stride() as isize, a.col_stride() as isize);
    let (rsb, csb) = (b.row_stride() as isize, b.col_stride() as isize);
    let rsc = c.row_stride() as isize;
    let (pa, pb) = (a.data().as_ptr(), b.data().as_ptr());
    let pc = c.data_mut().as_mut_ptr();
    let (alpha, beta) = (alpha.to_f64_lossless(), beta.to_f64_lossless());
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: `T` is `f32` (the type ids are equal), so the pointer casts change nothing
        // and `alpha as f32` is exact. The `MatRef`/`MatMut` constructors (the only way to
        // build a view: their fields are private) guarantee that every `(r, c)` element of
        // each view lies inside its slice; with `k == 0` matrixmultiply only scales C. `c`
        // is a distinct `&mut` borrow, so it cannot alias `a` or `b`, and a `MatMut` has unit
        // column stride with row stride ≥ cols, so its elements are pairwise distinct.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha as f32,
                pa.cast::<f32>(),
                rsa,
                csa,
                pb.cast::<f32>(),
                rsb,
                csb,
                beta as f32,
                pc.cast::<f32>(),
                rsc,
                1,
            );
        }
    } else if TypeId::of::<T>() == TypeId::of::<f64>() {
        // SAFETY: as above, with `T` = `f64`.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                alpha,
                pa.cast::<f64>(),
                rsa,
                csa,
                pb.cast::<f64>(),
                rsb,
                csb,
                beta,
                pc.cast::<f64>(),
                rsc,
                1,
            );
        }
    } else {
        unreachable!("Scalar is sealed to f32 and f64");
    }
    Ok(())
}
