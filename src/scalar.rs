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

/// Both impls at once: every conversion is exact or rounds to nearest (`as` from `f64`),
/// and a byte and an `f32` widen losslessly.
macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            #[inline(always)]
            fn from_byte(b: u8) -> Self {
                <$t>::from(b)
            }
            #[inline(always)]
            #[allow(clippy::unnecessary_cast)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64_lossless(self) -> f64 {
                f64::from(self)
            }
        }
    )*};
}

scalar!(f32, f64);
