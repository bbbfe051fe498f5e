//! What the hand-written product kernels (`sparse`, `narrow`) share: how a multiply-add
//! rounds, and fixed-width tiles of a slice.
//!
//! The kernels are plain Rust over `[T; W]` tiles with `W` a const parameter: every lane
//! loop has a known trip count, so the compiler keeps a tile in vector registers and
//! vectorises the loop for whatever instruction set the enclosing function was compiled for
//! (see `isa_dispatch!` in `kernels/mod.rs`). Which multiply-add the loop uses is a type
//! parameter, so one body serves the builds with FMA and the baseline without.

use crate::scalar::Scalar;

/// How a multiply-add rounds: fused (one rounding; the AVX2 + FMA and AVX-512 builds) or
/// not.
pub(crate) trait MulAdd {
    fn mul_add<T: Scalar>(a: T, b: T, c: T) -> T;
}

/// `a·b + c` with one rounding.
pub(crate) struct Fused;
/// `a·b + c` with two.
pub(crate) struct Separate;

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

/// `W` consecutive elements at `at`, as an array (the caller's bounds are the kernel's
/// invariants: a panel lies within a row).
#[inline(always)]
pub(crate) fn tile<T: Scalar, const W: usize>(s: &[T], at: usize) -> &[T; W] {
    match s[at..at + W].try_into() {
        Ok(t) => t,
        Err(_) => unreachable!("the slice is W long"),
    }
}

/// [`tile`], writable.
#[inline(always)]
pub(crate) fn tile_mut<T: Scalar, const W: usize>(s: &mut [T], at: usize) -> &mut [T; W] {
    match (&mut s[at..at + W]).try_into() {
        Ok(t) => t,
        Err(_) => unreachable!("the slice is W long"),
    }
}

/// `max(m, |x|)` as `if a > m { a } else { m }` rather than `max`: one vector instruction,
/// where `max`'s NaN rule costs three (and the values it sees are finite, or checked apart).
#[inline(always)]
pub(crate) fn bigger<T: Scalar>(m: T, x: T) -> T {
    let a = x.abs();
    if a > m {
        a
    } else {
        m
    }
}
