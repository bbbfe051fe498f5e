//! The elementwise loops of a training step, compiled twice: for the baseline CPU and, picked
//! at run time, for AVX2.
//!
//! A crate built for generic x86-64 gets SSE2 code, four `f32` lanes wide. The matrix
//! products do not care (matrixmultiply selects its own AVX/AVX-512 kernels at run time), but
//! everything around them — converting and normalising pixels as a batch is gathered, the
//! gradient step on every parameter, bias, ReLU and column sums — would run at half the
//! width the CPU has. Each function here has one plain-Rust body, `#[inline(always)]`, which the
//! compiler vectorises once in a baseline wrapper and once inside a
//! `#[target_feature(enable = "avx2")]` wrapper; the public function picks the wrapper once per
//! call. The arithmetic is the same (no FMA contraction), so results do not depend on which ran.

use crate::Scalar;

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

/// `w[j] ← w[j] − lr·step[j]`.
#[inline(always)]
fn descend_body<T: Scalar>(w: &mut [T], step: &[T], lr: T) {
    let n = w.len().min(step.len());
    let (w, step) = (&mut w[..n], &step[..n]);
    for j in 0..n {
        w[j] = w[j] - lr * step[j];
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

/// Defines `pub fn $name` dispatching to an AVX2 build of `$body` when the CPU has it.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $avx2:ident, $body:ident, ($($arg:ident : $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        unsafe fn $avx2<T: Scalar>($($arg: $ty),*) {
            $body($($arg),*)
        }

        $(#[$doc])*
        #[inline]
        pub fn $name<T: Scalar>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the only requirement of an `avx2` target-feature function is that
                // the CPU supports AVX2, which was detected at run time just above.
                return unsafe { $avx2($($arg),*) };
            }
            $body($($arg),*)
        }
    };
}

dispatch!(
    /// `out[j] = byte[j] · scale[j] + offset[j]` over the common length: one gathered row.
    affine_bytes, affine_bytes_avx2, affine_bytes_body,
    (out: &mut [T], src: &[u8], scale: &[T], offset: &[T])
);
dispatch!(
    /// `out[j] = x[j] · scale[j] + offset[j]` over the common length.
    affine, affine_avx2, affine_body,
    (out: &mut [T], src: &[T], scale: &[T], offset: &[T])
);
dispatch!(
    /// The gradient step `w ← w − lr·step` over the common length.
    descend, descend_avx2, descend_body,
    (w: &mut [T], step: &[T], lr: T)
);
dispatch!(
    /// `acc[j] += x[j]` over the common length.
    add_assign, add_assign_avx2, add_assign_body,
    (acc: &mut [T], x: &[T])
);
dispatch!(
    /// `z ← max(z, 0)`.
    relu, relu_avx2, relu_body,
    (z: &mut [T])
);
dispatch!(
    /// `d ← d ⊙ [a > 0]`.
    relu_backward, relu_backward_avx2, relu_backward_body,
    (a: &[T], d: &mut [T])
);

/// The first element `x` of `xs` for which `scale · x` is NaN or infinite, if any.
///
/// The training loop asks this of every update (`scale` = the learning rate) before it is
/// applied, so it must cost little next to the step: `(scale · x) · 0` is `0` when the scaled
/// element is finite and NaN otherwise, summed in eight independent lanes the compiler keeps in
/// vector registers: one pass and no branch per element. Only when the sum says something is
/// wrong is the slice searched.
pub fn first_non_finite<T: Scalar>(xs: &[T], scale: T) -> Option<T> {
    let mut lanes = [T::zero(); 8];
    let mut chunks = xs.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = *lane + scale * x * T::zero();
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::zero(), |acc, &x| acc + scale * x * T::zero());
    let total = lanes.iter().fold(tail, |acc, &l| acc + l);
    if total.is_finite() {
        None
    } else {
        xs.iter().copied().find(|&x| !(scale * x).is_finite())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_non_finite_finds_nan_and_infinities_anywhere() {
        let mut xs = vec![1.5f32; 37];
        assert_eq!(first_non_finite(&xs, 1.0), None);
        for (i, bad) in [(0, f32::INFINITY), (20, f32::NEG_INFINITY), (36, f32::NAN)] {
            let mut ys = xs.clone();
            ys[i] = bad;
            let found = first_non_finite(&ys, 1.0).map(f32::to_bits);
            assert_eq!(found, Some(bad.to_bits()), "at {i}");
        }
        xs[5] = f32::MAX;
        assert_eq!(first_non_finite(&xs, 1.0), None, "large but finite");
        assert_eq!(
            first_non_finite(&xs, 10.0),
            Some(f32::MAX),
            "lr · step overflows"
        );
    }

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

        let (mut w1, mut w2) = (scale.clone(), scale.clone());
        descend(&mut w1, &offset, 0.1);
        descend_body(&mut w2, &offset, 0.1);
        assert_eq!(w1, w2);
        assert_eq!(w1[7], scale[7] - 0.1 * offset[7]);

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
}
