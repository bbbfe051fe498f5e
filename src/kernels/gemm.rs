//! `C ← α·A·B + β·C` through matrixmultiply, behind a checked, safe signature.
//!
//! matrixmultiply's `sgemm`/`dgemm` take raw pointers and strides and trust them; this file is
//! the one place that turns the crate's checked views ([`MatRef`], [`MatMut`]) into those
//! pointers. Because matrixmultiply accepts any strides, a transpose is just a view with its
//! strides swapped: `Xᵀ·dZ` and `dZ·Wᵀ` never copy a matrix.

use crate::error::{Error, Result};
use crate::matrix::{MatMut, MatRef};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element types matrixmultiply has kernels for (`f32` → `sgemm`, `f64` → `dgemm`).
///
/// Sealed; a supertrait of [`Scalar`](crate::Scalar), which is what user code names.
pub trait GemmScalar: sealed::Sealed + Copy {
    /// Raw matrixmultiply call; see `matrixmultiply::sgemm` for the contract.
    ///
    /// # Safety
    /// `a`, `b` and `c` must address every element their dimensions and strides describe,
    /// and no element of `c` may alias another element of `c` or any element of `a` or `b`.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_gemm_scalar {
    ($t:ty, $f:path) => {
        impl GemmScalar for $t {
            #[inline]
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded verbatim; the caller upholds matrixmultiply's contract,
                // which is exactly this function's documented contract.
                unsafe { $f(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}
impl_gemm_scalar!(f32, matrixmultiply::sgemm);
impl_gemm_scalar!(f64, matrixmultiply::dgemm);

/// `c ← alpha·a·b + beta·c`. With `beta == 0`, `c` is written without being read.
///
/// Errors if the inner dimensions or the output shape do not agree.
pub fn gemm<T: crate::Scalar>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) -> Result<()> {
    if a.cols != b.rows || c.rows != a.rows || c.cols != b.cols {
        return Err(Error::shape(
            "kernels::gemm",
            format!("({m} × k)·(k × {n}) into {m} × {n}", m = c.rows, n = c.cols),
            format!(
                "({} × {})·({} × {}) into {} × {}",
                a.rows, a.cols, b.rows, b.cols, c.rows, c.cols
            ),
        ));
    }
    if c.rows == 0 || c.cols == 0 {
        return Ok(());
    }
    // Strides fit in isize: each view's extent was checked against a slice, and slices never
    // exceed isize::MAX bytes.
    // SAFETY: `MatRef`/`MatMut` constructors guarantee every (r, c) element of each view lies
    // inside its slice (and a view with zero rows or columns is never dereferenced: k == 0 makes
    // matrixmultiply only scale C). `c` is a distinct `&mut` borrow, so it cannot alias `a` or
    // `b`, and `MatMut` has unit column stride with row stride >= cols, so its elements are
    // pairwise distinct.
    unsafe {
        T::gemm_raw(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.rs as isize,
            1,
        );
    }
    Ok(())
}
