//! The element type: `f32` or `f64`.
//!
//! Everything in the crate is generic over [`Scalar`]. It is [`num_traits::Float`] plus the
//! two things the crate needs that `Float` does not give: a general matrix product that
//! dispatches to matrixmultiply's `sgemm` or `dgemm` (through the sealed
//! [`GemmScalar`](crate::kernels::GemmScalar) supertrait, which keeps the `unsafe` call inside
//! `kernels/`), and cheap conversions from bytes and `f64` for the data path.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use num_traits::{Float, FromPrimitive, ToPrimitive};

use crate::kernels::GemmScalar;

/// A floating-point element type: `f32` or `f64`.
///
/// Sealed: the kernels are written for exactly these two types.
pub trait Scalar:
    Float
    + FromPrimitive
    + ToPrimitive
    + GemmScalar
    + Default
    + Debug
    + Display
    + Sum
    + Send
    + Sync
    + 'static
{
    /// Converts a byte (a pixel) exactly.
    fn from_byte(b: u8) -> Self;
    /// Converts an `f64`, rounding to nearest for `f32`.
    fn of(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64_lossless(self) -> f64;
}

impl Scalar for f32 {
    #[inline(always)]
    fn from_byte(b: u8) -> Self {
        b as f32
    }
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    #[inline(always)]
    fn from_byte(b: u8) -> Self {
        b as f64
    }
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}
