//! The narrow kernels against `gemm`, for every shape and tile edge.

use super::*;
use crate::matrix::Matrix;

/// A deterministic `rows × cols` matrix of values in (−1, 1), about `zeros` of them 0.
fn filled<T: Scalar>(rows: usize, cols: usize, seed: u64, zeros: f64) -> Matrix<T> {
    let mut next = crate::kernels::test_stream(seed);
    let data = (0..rows * cols)
        .map(|_| match next() < zeros {
            true => T::zero(),
            false => T::from_f64(next() * 2.0 - 1.0),
        })
        .collect();
    Matrix::from_vec(data, rows, cols).unwrap()
}

/// `a·b` in f64, element by element: the reference.
fn product(a: &Matrix<f64>, b: &Matrix<f64>) -> Vec<f64> {
    let (n, k, m) = (a.rows(), a.cols(), b.cols());
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[i * m + j] = (0..k)
                .map(|p| a.as_slice()[i * k + p] * b.as_slice()[p * m + j])
                .sum();
        }
    }
    out
}

fn transposed(m: &Matrix<f64>) -> Matrix<f64> {
    let mut t = Vec::new();
    transpose_into(m.as_ref(), &mut t);
    Matrix::from_vec(t, m.cols(), m.rows()).unwrap()
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (e, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "{what}: element {e}: {g} vs {w}"
        );
    }
}

/// `(rows, inner, outputs)`: row groups and their tail, inner dimensions with and
/// without a remainder of the lanes and panels, and every output width up to past
/// [`NARROW_MAX`] (each tile-width list and its tails).
fn shapes() -> Vec<(usize, usize, usize)> {
    let mut s = vec![
        (1, 1, 1),
        (7, 100, 10),
        (9, 1024, 10),
        (3, 33, 17),
        (0, 5, 3),
    ];
    s.extend((1..=18).map(|c| (5, 70 + c, c)));
    s
}

#[test]
fn the_forward_is_the_product_plus_bias_through_the_activation() {
    for (n, k, c) in shapes() {
        let x = filled::<f64>(n, k, 1 + n as u64, 0.3);
        let w = filled::<f64>(k, c, 2 + k as u64, 0.0);
        let b: Vec<f64> = (0..c).map(|j| j as f64 * 0.25 - 1.0).collect();
        let mut want = product(&x, &w);
        for (e, v) in want.iter_mut().enumerate() {
            *v += b[e % c];
        }
        let mut z = Matrix::zeros(n, c).unwrap();
        narrow_forward(x.as_ref(), transposed(&w).as_ref(), &b, None, z.as_mut()).unwrap();
        close(z.as_slice(), &want, &format!("{n}×{k}×{c}"));
        for act in [Activation::Relu, Activation::Sigmoid] {
            let mut a = Matrix::zeros(n, c).unwrap();
            let wt = transposed(&w);
            narrow_forward(x.as_ref(), wt.as_ref(), &b, Some(act), a.as_mut()).unwrap();
            let want: Vec<f64> = want.iter().map(|&v| act.apply(v)).collect();
            close(a.as_slice(), &want, &format!("{n}×{k}×{c} {act}"));
        }
    }
}

#[test]
fn the_input_gradient_is_the_product_through_the_derivative() {
    for (n, k, c) in shapes() {
        let dz = filled::<f64>(n, c, 3 + c as u64, 0.1);
        let w = filled::<f64>(k, c, 4 + k as u64, 0.0);
        let want = product(&dz, &transposed(&w));
        let mut dx = Matrix::zeros(n, k).unwrap();
        let wt = transposed(&w);
        narrow_input_grad(dz.as_ref(), wt.as_ref(), None, dx.as_mut()).unwrap();
        close(dx.as_slice(), &want, &format!("{n}×{c}×{k}"));
        // Through ReLU at outputs a, about half of them zero: dX ⊙ (a > 0).
        let a = filled::<f64>(n, k, 5, 0.5)
            .as_slice()
            .iter()
            .map(|v| v.abs())
            .collect();
        let a = Matrix::from_vec(a, n, k).unwrap();
        let through = Some((Activation::Relu, a.as_ref()));
        narrow_input_grad(dz.as_ref(), wt.as_ref(), through, dx.as_mut()).unwrap();
        let masked: Vec<f64> = want
            .iter()
            .zip(a.as_slice())
            .map(|(&d, &a)| if a > 0.0 { d } else { 0.0 })
            .collect();
        close(dx.as_slice(), &masked, &format!("{n}×{c}×{k} through ReLU"));
    }
}

#[test]
fn the_weight_gradient_is_beta_times_it_plus_the_product() {
    for (n, k, c) in shapes() {
        let x = filled::<f64>(n, k, 6 + n as u64, 0.3);
        let dz = filled::<f64>(n, c, 7, 0.0);
        let want = product(&transposed(&x), &dz);
        let mut dw = filled::<f64>(k, c, 8, 0.0);
        let before = dw.clone();
        narrow_weight_grad(x.as_ref(), dz.as_ref(), 0.0, dw.as_mut()).unwrap();
        close(dw.as_slice(), &want, &format!("{n}×{k}×{c} β = 0"));
        let mut dw = before.clone();
        narrow_weight_grad(x.as_ref(), dz.as_ref(), 0.5, dw.as_mut()).unwrap();
        let want: Vec<f64> = want
            .iter()
            .zip(before.as_slice())
            .map(|(p, b)| 0.5 * b + p)
            .collect();
        close(dw.as_slice(), &want, &format!("{n}×{k}×{c} β = 0.5"));
    }
}

/// What threads do: the forward and input gradient split by rows, the weight gradient
/// by columns of `x`. Every element comes out the same, to the bit (`f32`).
#[test]
fn splitting_rows_or_columns_changes_no_bit() {
    let (n, k, c) = (37, 300, 10);
    let x = filled::<f32>(n, k, 9, 0.5);
    let w = filled::<f32>(k, c, 10, 0.0);
    let dz = filled::<f32>(n, c, 11, 0.0);
    let mut wt = Vec::new();
    transpose_into(w.as_ref(), &mut wt);
    let wt = MatRef::new(&wt, c, k).unwrap();
    let b = vec![0.5f32; c];
    let cut = 13;
    fn rows(m: &Matrix<f32>, r: std::ops::Range<usize>) -> MatRef<'_, f32> {
        let cols = m.cols();
        MatRef::new(&m.as_slice()[r.start * cols..r.end * cols], r.len(), cols).unwrap()
    }

    // `kernel` over rows `0..n` at once, and over `0..cut` and `cut..n` into the same
    // output: (whole, parts), each `n × width`.
    let split_rows = |width: usize, kernel: &dyn Fn(std::ops::Range<usize>, MatMut<'_, f32>)| {
        let mut whole = vec![0f32; n * width];
        kernel(0..n, MatMut::new(&mut whole, n, width).unwrap());
        let mut parts = vec![0f32; n * width];
        let (top, bottom) = parts.split_at_mut(cut * width);
        kernel(0..cut, MatMut::new(top, cut, width).unwrap());
        kernel(cut..n, MatMut::new(bottom, n - cut, width).unwrap());
        (whole, parts)
    };
    let (whole, parts) = split_rows(c, &|r, out| {
        narrow_forward(rows(&x, r), wt, &b, None, out).unwrap()
    });
    assert_eq!(whole, parts, "forward");
    let (whole, parts) = split_rows(k, &|r, out| {
        narrow_input_grad(rows(&dz, r), wt, None, out).unwrap()
    });
    assert_eq!(whole, parts, "input gradient");

    let mut whole = vec![0f32; k * c];
    narrow_weight_grad(
        x.as_ref(),
        dz.as_ref(),
        0.0,
        MatMut::new(&mut whole, k, c).unwrap(),
    )
    .unwrap();
    let mut parts = vec![0f32; k * c];
    let split = 136;
    let (top, bottom) = parts.split_at_mut(split * c);
    let left = MatRef::with_strides(x.as_slice(), n, split, k, 1).unwrap();
    narrow_weight_grad(left, dz.as_ref(), 0.0, MatMut::new(top, split, c).unwrap()).unwrap();
    let right = MatRef::with_strides(&x.as_slice()[split..], n, k - split, k, 1).unwrap();
    let low = MatMut::new(bottom, k - split, c).unwrap();
    narrow_weight_grad(right, dz.as_ref(), 0.0, low).unwrap();
    assert_eq!(whole, parts, "weight gradient");
}

#[test]
fn shapes_and_strided_views_are_refused() {
    let x = Matrix::<f64>::zeros(4, 6).unwrap();
    let wt = Matrix::<f64>::zeros(3, 6).unwrap();
    let mut z = Matrix::<f64>::zeros(4, 3).unwrap();
    let b = [0.0; 3];
    assert!(narrow_forward(x.as_ref(), wt.as_ref(), &b, None, z.as_mut()).is_ok());
    let err = narrow_forward(x.as_ref(), wt.as_ref(), &b[..2], None, z.as_mut());
    assert!(err.unwrap_err().to_string().contains("bias length"));
    let xt = Matrix::<f64>::zeros(6, 4).unwrap();
    let err = narrow_forward(xt.as_ref().t(), wt.as_ref(), &b, None, z.as_mut());
    assert!(err.unwrap_err().to_string().contains("column stride of x"));
    let mut dx = Matrix::<f64>::zeros(4, 5).unwrap();
    let err = narrow_input_grad(z.as_ref(), wt.as_ref(), None, dx.as_mut());
    assert!(err.unwrap_err().to_string().contains("output columns"));
    let mut dw = Matrix::<f64>::zeros(6, 2).unwrap();
    let err = narrow_weight_grad(x.as_ref(), z.as_ref(), 0.0, dw.as_mut());
    assert!(err.unwrap_err().to_string().contains("output columns"));
}
