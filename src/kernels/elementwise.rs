//! The elementwise loops of a training step, compiled twice: for the baseline CPU and, picked
//! at run time, for AVX2.
//!
//! A crate built for generic x86-64 gets SSE2 code, four `f32` lanes wide. The matrix
//! products do not care (matrixmultiply selects its own AVX/AVX-512 kernels at run time), but
//! everything around them — converting and normalising pixels as a batch is gathered, bias,
//! ReLU and column sums — would run at half the width the CPU has. Each function here has
//! one plain-Rust body, `#[inline(always)]`, which the compiler vectorises once in a baseline
//! wrapper and once inside a `#[target_feature(enable = "avx2")]` wrapper (see the
//! `dispatch!` macro in `kernels/mod.rs`). The arithmetic is the same (no FMA contraction),
//! so results do not depend on which ran.

use crate::activation::Activation;
use crate::scalar::Scalar;

/// `out[j] = byte[j] · scale[j] + offset[j]`: one gathered row of pixels.
#[inline(always)]
fn affine_bytes_body<T: Scalar>(out: &mut [T], src: &[u8], scale: &[T], offset: &[T]) {
    let n = out.len().min(src.len()).min(scale.len()).min(offset.len());
    let (out, src, scale, offset) = (&mut out[..n], &src[..n], &scale[..n], &offset[..n]);
    for j in 0..n {
        out[j] = T::from_byte(src[j]) * scale[j] + offset[j];
    }
}

/// `out[j] = x[j] · scale[j] + offset[j]`.
#[inline(always)]
fn affine_body<T: Scalar>(out: &mut [T], src: &[T], scale: &[T], offset: &[T]) {
    let n = out.len().min(src.len()).min(scale.len()).min(offset.len());
    let (out, src, scale, offset) = (&mut out[..n], &src[..n], &scale[..n], &offset[..n]);
    for j in 0..n {
        out[j] = src[j] * scale[j] + offset[j];
    }
}

/// `acc[j] += x[j]`.
#[inline(always)]
fn add_assign_body<T: Scalar>(acc: &mut [T], x: &[T]) {
    let n = acc.len().min(x.len());
    let (acc, x) = (&mut acc[..n], &x[..n]);
    for j in 0..n {
        acc[j] = acc[j] + x[j];
    }
}

/// `acc[j] *= x[j]`.
#[inline(always)]
fn mul_assign_body<T: Scalar>(acc: &mut [T], x: &[T]) {
    let n = acc.len().min(x.len());
    let (acc, x) = (&mut acc[..n], &x[..n]);
    for j in 0..n {
        acc[j] = acc[j] * x[j];
    }
}

/// `z[j] = max(z[j], 0)` (written as a select: NaN-propagation is not wanted here).
#[inline(always)]
fn relu_body<T: Scalar>(z: &mut [T]) {
    for v in z.iter_mut() {
        *v = if *v > T::zero() { *v } else { T::zero() };
    }
}

/// `d[j] = a[j] > 0 ? d[j] : 0`: ReLU's derivative through its output.
#[inline(always)]
fn relu_backward_body<T: Scalar>(a: &[T], d: &mut [T]) {
    let n = a.len().min(d.len());
    let (a, d) = (&a[..n], &mut d[..n]);
    for j in 0..n {
        d[j] = if a[j] > T::zero() { d[j] } else { T::zero() };
    }
}

dispatch!(
    /// `out[j] = byte[j] · scale[j] + offset[j]` over the common length: one gathered row.
    pub(crate) affine_bytes, affine_bytes_avx2, affine_bytes_body,
    (out: &mut [T], src: &[u8], scale: &[T], offset: &[T])
);
dispatch!(
    /// `out[j] = x[j] · scale[j] + offset[j]` over the common length.
    pub(crate) affine, affine_avx2, affine_body,
    (out: &mut [T], src: &[T], scale: &[T], offset: &[T])
);
dispatch!(
    /// `acc[j] += x[j]` over the common length.
    pub(crate) add_assign, add_assign_avx2, add_assign_body,
    (acc: &mut [T], x: &[T])
);
dispatch!(
    /// `acc[j] *= x[j]` over the common length.
    pub(crate) mul_assign, mul_assign_avx2, mul_assign_body,
    (acc: &mut [T], x: &[T])
);
/// A value below the smallest normal magnitude becomes a zero of its sign.
#[inline(always)]
fn flush_subnormal_body<T: Scalar>(xs: &mut [T]) {
    let smallest = T::min_positive_value();
    for x in xs {
        if x.abs() < smallest {
            *x = *x * T::zero();
        }
    }
}

dispatch!(
    /// Flushes subnormal values to zero (of their sign): what the weight-gradient products
    /// read of `dZ`. On x86 every multiply-add with a subnormal operand takes a microcode
    /// assist, and a confident model's `dZ` holds them (softmax probabilities below 1e-38;
    /// the README's performance section says what they cost). They are below any value the
    /// sums can resolve next to a normal one.
    pub(crate) flush_subnormal, flush_subnormal_avx2, flush_subnormal_body,
    (xs: &mut [T])
);
dispatch!(
    /// `z ← max(z, 0)`.
    pub(crate) relu, relu_avx2, relu_body,
    (z: &mut [T])
);
dispatch!(
    /// `d ← d ⊙ [a > 0]`.
    pub(crate) relu_backward, relu_backward_avx2, relu_backward_body,
    (a: &[T], d: &mut [T])
);

/// `z ← f(z)` for every element.
pub(crate) fn activate<T: Scalar>(act: Activation, z: &mut [T]) {
    match act {
        // ReLU is memory-bound and vectorises; the others are dominated by exp/tanh.
        Activation::Relu => relu(z),
        _ => z.iter_mut().for_each(|v| *v = act.apply(*v)),
    }
}

/// `d ← d ⊙ f'(z)`, with f' computed from the outputs `a`.
pub(crate) fn activate_backward<T: Scalar>(act: Activation, a: &[T], d: &mut [T]) {
    match act {
        Activation::Relu => relu_backward(a, d),
        _ => d
            .iter_mut()
            .zip(a)
            .for_each(|(d, &a)| *d = *d * act.derivative_from_output(a)),
    }
}

/// `Σ x²` in `f64`, in eight independent lanes (so it vectorises without reassociating
/// anything the compiler may not).
pub(crate) fn sum_squares<T: Scalar>(xs: &[T]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            let x = x.to_f64_lossless();
            *lane += x * x;
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| x.to_f64_lossless() * x.to_f64_lossless())
        .sum();
    lanes.iter().sum::<f64>() + tail
}

/// The first element of `xs` that is NaN or infinite, if any.
pub(crate) fn first_non_finite<T: Scalar>(xs: &[T]) -> Option<T> {
    xs.iter().copied().find(|x| !x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_and_baseline_agree_bit_for_bit() {
        let src: Vec<u8> = (0..1000u32).map(|i| (i * 37 % 256) as u8).collect();
        let scale: Vec<f32> = (0..1000).map(|i| 0.01 + i as f32 * 1e-4).collect();
        let offset: Vec<f32> = (0..1000).map(|i| -0.5 + i as f32 * 1e-3).collect();
        let (mut a, mut b) = (vec![0.0f32; 1000], vec![0.0f32; 1000]);
        affine_bytes(&mut a, &src, &scale, &offset);
        affine_bytes_body(&mut b, &src, &scale, &offset);
        assert_eq!(a, b);
        assert_eq!(a[3], 111.0 * scale[3] + offset[3]);

        let mut z = offset.clone();
        relu(&mut z);
        assert!(z.iter().zip(&offset).all(|(&r, &o)| r == o.max(0.0)));
        let mut d = vec![1.0f32; 1000];
        relu_backward(&z, &mut d);
        assert!(d
            .iter()
            .zip(&z)
            .all(|(&d, &z)| d == if z > 0.0 { 1.0 } else { 0.0 }));
    }

    #[test]
    fn subnormals_become_zeros_of_their_sign_and_nothing_else_changes() {
        let tiny = f32::MIN_POSITIVE;
        let mut xs: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) * 0.37).collect();
        let cases = [
            (tiny / 2.0, 0.0),
            (-tiny / 4.0, -0.0),
            (f32::from_bits(1), 0.0),
            (tiny, tiny),
            (-tiny, -tiny),
            (f32::INFINITY, f32::INFINITY),
        ];
        for (i, &(x, _)) in cases.iter().enumerate() {
            xs[7 * i + 3] = x;
        }
        xs[90] = f32::NAN;
        let before = xs.clone();
        flush_subnormal(&mut xs);
        for (i, &(_, want)) in cases.iter().enumerate() {
            let got = xs[7 * i + 3];
            assert_eq!(got.to_bits(), want.to_bits(), "case {i}");
        }
        assert!(xs[90].is_nan());
        let flushed = [3, 10, 17];
        for (j, (&x, &b)) in xs.iter().zip(&before).enumerate() {
            if !flushed.contains(&j) && j != 90 {
                assert_eq!(x.to_bits(), b.to_bits(), "element {j} changed");
            }
        }
        assert!(!xs.iter().any(|x| x.is_subnormal()));
    }

    #[test]
    fn sum_squares_matches_the_plain_sum() {
        let xs: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let plain: f64 = xs.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        assert!((sum_squares(&xs) - plain).abs() < 1e-9);
    }
}
