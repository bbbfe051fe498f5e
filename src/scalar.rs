//! The element type: `f32` or `f64`.
//!
//! Everything in the crate is generic over [`Scalar`]: [`num_traits::Float`] plus cheap,
//! explicit conversions from bytes (pixels) and to and from `f64` (where hyper-parameters
//! and reports live). The trait is sealed: the kernels are written for exactly these two
//! types, and `kernels::gemm` picks matrixmultiply's `sgemm` or `dgemm` by asking which of
//! the two it has.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use num_traits::Float;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type: `f32` or `f64` (sealed).
pub trait Scalar:
    Float + Default + Debug + Display + Sum + Send + Sync + sealed::Sealed + 'static
{
    /// Converts a byte (a pixel) exactly.
    fn from_byte(b: u8) -> Self;
    /// Converts an `f64`, rounding to nearest for `f32`.
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64`, exactly.
    fn to_f64_lossless(self) -> f64;
}

impl Scalar for f32 {
    #[inline(always)]
    fn from_byte(b: u8) -> Self {
        f32::from(b)
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        f64::from(self)
    }
}

impl Scalar for f64 {
    #[inline(always)]
    fn from_byte(b: u8) -> Self {
        f64::from(b)
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}
