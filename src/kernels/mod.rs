//! The compute kernels, and the only `unsafe` code in the crate (`unsafe_code` is denied
//! everywhere else by the compiler, and every block here carries its `// SAFETY:` argument).
//!
//! * [`gemm`](gemm()) — `C ← α·A·B + β·C` on matrixmultiply's `sgemm`/`dgemm`, behind
//!   checked views. Transposes are strides, never copies.
//! * [`dense_forward`] — a dense layer forward, `act(X·W + b)`, with bias and activation
//!   fused onto the block while it is in cache; [`column_sums_into`] for the bias gradient.
//! * [`sparse`] — the first layer's products with a sparse input, `X·W₁` and `Xᵀ·dZ₁`, that
//!   skip the zero pixels.
//! * [`narrow`] — the three products of a layer with few outputs (the class scores), which
//!   `gemm` would spend packing: forward, input gradient (with the activation's derivative)
//!   and weight gradient.
//! * `lanes` — what `sparse` and `narrow` share: fixed-width tiles and how a multiply-add
//!   rounds.
//! * `elementwise` — the loops around the products (gathering pixels, ReLU, column sums),
//!   built for AVX2 when the CPU has it.
//! * `update` — each update rule as one fused, self-checking pass over a share of the
//!   parameters.
//!
//! The public functions check every shape and return an error on a mismatch, so nothing
//! outside this folder can reach an unchecked pointer.

/// Defines a function `$name` that runs `$body` compiled for AVX-512F or AVX2 when the CPU
/// has them, and the baseline build of the same body otherwise. The bodies are plain
/// arithmetic with no fused multiply-adds (the compiler does not contract `a * b + c`), so
/// every build gives the same bits.
macro_rules! dispatch {
    ($(#[$doc:meta])* $vis:vis $name:ident, $avx2:ident, $body:ident,
     ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn $avx2<T: Scalar>($($arg: $ty),*) $(-> $ret)? {
            $body($($arg),*)
        }

        $(#[$doc])*
        #[inline]
        $vis fn $name<T: Scalar>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512<T: Scalar>($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the only requirement of an `avx512f` target-feature function
                    // is that the CPU supports AVX-512F, detected at run time just above.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the only requirement of an `avx2` target-feature function is
                    // that the CPU supports AVX2, which was detected at run time just above.
                    return unsafe { $avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// Defines `$dispatch(x: $args)`, which evaluates one of three expressions over `x` — the
/// same kernel body with the tile sizes of one instruction set — compiled for AVX-512F, for
/// AVX2 with FMA, or for the baseline: the best the CPU has, detected at run time. The first
/// two fuse their multiply-adds ([`lanes::Fused`]); the baseline has no FMA and keeps the
/// multiply and the add apart ([`lanes::Separate`]).
macro_rules! isa_dispatch {
    ($dispatch:ident, $args:ident $(-> $ret:ty)?, |$x:ident| {
        avx512: $e512:expr, avx2: $e2:expr, base: $eb:expr $(,)?
    }) => {
        fn $dispatch<T: Scalar>($x: $args<'_, '_, T>) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512<T: Scalar>($x: $args<'_, '_, T>) $(-> $ret)? {
                    $e512
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<T: Scalar>($x: $args<'_, '_, T>) $(-> $ret)? {
                    $e2
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the only requirement of an `avx512f` target-feature function
                    // is that the CPU supports AVX-512F, detected at run time just above.
                    return unsafe { avx512($x) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the only requirement of an `avx2,fma` target-feature function
                    // is that the CPU supports both, detected at run time just above.
                    return unsafe { avx2($x) };
                }
            }
            $eb
        }
    };
}

mod dense;
pub(crate) mod elementwise;
mod gemm;
mod lanes;
pub mod narrow;
pub mod sparse;
pub(crate) mod update;

pub use dense::{column_sums_into, dense_forward};
pub use gemm::gemm;

/// The kernels' tests' numbers: a deterministic stream of `f64` in `[0, 1)` (xorshift).
#[cfg(test)]
pub(crate) fn test_stream(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    }
}
