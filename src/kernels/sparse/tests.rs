//! The sparse products against the dense ones, for every shape, block width and cut.
#![allow(clippy::needless_range_loop)] // the tests index dense matrices by (row, column)
use super::*;
use crate::activation::Activation;
use crate::kernels::elementwise::activate;
use crate::kernels::sparse::forward::sparse_forward_with_offset;
use crate::matrix::{MatMut, MatRef, Matrix};

/// A deterministic sparse matrix: about `density` of the entries nonzero, as rows of
/// entries and as a dense matrix.
fn sparse(
    rows: usize,
    cols: usize,
    density: f64,
    seed: u64,
) -> (Vec<Vec<(usize, f64)>>, Matrix<f64>) {
    let mut next = crate::kernels::test_stream(seed);
    let mut dense = Matrix::zeros(rows, cols).unwrap();
    let mut entries = Vec::new();
    for r in 0..rows {
        let mut row = Vec::new();
        for c in 0..cols {
            if next() < density {
                let v = next() * 2.0 - 1.0;
                dense.as_mut_slice()[r * cols + c] = v;
                row.push((c, v));
            }
        }
        entries.push(row);
    }
    (entries, dense)
}

/// Shapes with several row groups, panels and tails, widths not a multiple of a block.
const SHAPES: &[(usize, usize, usize, f64)] = &[
    (1, 1, 1, 1.0),
    (5, 7, 3, 0.5),
    (9, 30, 130, 0.2),
    (3, 10, 200, 0.0),
    (17, 41, 67, 1.0),
    (150, 23, 41, 0.3),
];

#[test]
fn the_forward_is_the_dense_product_for_every_shape_block_width_and_cut() {
    for &(rows, inner, cols, density) in SHAPES {
        let (entries, dense_a) = sparse(rows, inner, density, rows as u64 * 7 + 1);
        let (_, w) = sparse(inner, cols, 1.0, 3);
        let bias: Vec<f64> = (0..cols).map(|c| c as f64 * 0.1 - 2.0).collect();
        let mut want = Matrix::zeros(rows, cols).unwrap();
        crate::kernels::gemm(1.0, dense_a.as_ref(), w.as_ref(), 0.0, want.as_mut()).unwrap();
        let mut by_group = Vec::new();
        for group in [2, 4] {
            let whole = ColumnBlocks::from_rows(inner, group, &entries).unwrap();
            for (r, row) in entries.iter().enumerate() {
                assert_eq!(&whole.row_entries(r), row, "{rows}×{inner}, row {r}");
            }
            // The rows in two parts (two threads' gathers), and in one.
            let half = rows / 2;
            let a = ColumnBlocks::from_rows(inner, group, &entries[..half]).unwrap();
            let b = ColumnBlocks::from_rows(inner, group, &entries[half..]).unwrap();
            let mut got = Matrix::zeros(rows, cols).unwrap();
            sparse_forward(
                &[&a, &b],
                0..inner,
                w.as_ref(),
                Some(&bias),
                None,
                got.as_mut(),
            )
            .unwrap();
            let mut one = Matrix::zeros(rows, cols).unwrap();
            sparse_forward(
                &[&whole],
                0..inner,
                w.as_ref(),
                Some(&bias),
                None,
                one.as_mut(),
            )
            .unwrap();
            assert_eq!(got, one, "the parts do not change a bit");
            for r in 0..rows {
                for c in 0..cols {
                    let want = want.as_slice()[r * cols + c] + bias[c];
                    let got = got.as_slice()[r * cols + c];
                    assert!(
                        (want - got).abs() < 1e-12,
                        "{rows}×{inner}×{cols} at ({r}, {c})"
                    );
                }
            }
            // Cut in two ranges of pixels on a block boundary: the halves add up.
            let cut = (inner / 2).next_multiple_of(4).min(inner);
            let mut second = Matrix::zeros(rows, cols).unwrap();
            let mut first = Matrix::zeros(rows, cols).unwrap();
            sparse_forward(
                &[&whole],
                0..cut,
                w.as_ref(),
                Some(&bias),
                None,
                first.as_mut(),
            )
            .unwrap();
            sparse_forward(
                &[&whole],
                cut..inner,
                w.as_ref(),
                None,
                None,
                second.as_mut(),
            )
            .unwrap();
            for (i, (&f, &s)) in first.as_slice().iter().zip(second.as_slice()).enumerate() {
                let (r, c) = (i / cols, i % cols);
                let want = want.as_slice()[i] + bias[c];
                assert!((want - (f + s)).abs() < 1e-12, "cut at {cut}: ({r}, {c})");
            }
            // The second range added onto the first as it is copied out, then the
            // activation: the bits of adding the two afterwards.
            let act = Some(Activation::Relu);
            let mut chained = first.clone();
            let (wv, view) = (w.as_ref(), chained.as_mut());
            sparse_forward_with_offset(&[&whole], cut..inner, wv, None, None, act, true, view)
                .unwrap();
            let mut sum: Vec<f64> = (first.as_slice().iter().zip(second.as_slice()))
                .map(|(&f, &s)| f + s)
                .collect();
            activate(Activation::Relu, &mut sum);
            let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(chained.as_slice()), bits(&sum), "cut at {cut}");
            let mut relu = Matrix::zeros(rows, cols).unwrap();
            sparse_forward(
                &[&whole],
                0..inner,
                w.as_ref(),
                Some(&bias),
                act,
                relu.as_mut(),
            )
            .unwrap();
            for (&z, &y) in got.as_slice().iter().zip(relu.as_slice()) {
                assert_eq!(y, z.max(0.0));
            }
            // An offset o (some of it zero) over the second range adds oᵀ·w[range, :]
            // to every row.
            let o: Vec<f64> = (cut..inner)
                .map(|k| {
                    if k % 3 == 0 {
                        0.0
                    } else {
                        0.5 - k as f64 * 0.01
                    }
                })
                .collect();
            let mut shifted = Matrix::zeros(rows, cols).unwrap();
            let (wv, view) = (w.as_ref(), shifted.as_mut());
            sparse_forward_with_offset(
                &[&whole],
                cut..inner,
                wv,
                None,
                Some(&o),
                None,
                false,
                view,
            )
            .unwrap();
            for (i, (&got, &plain)) in shifted.as_slice().iter().zip(second.as_slice()).enumerate()
            {
                let c = i % cols;
                let shift: f64 = (cut..inner)
                    .map(|k| o[k - cut] * w.as_slice()[k * cols + c])
                    .sum();
                assert!((got - plain - shift).abs() < 1e-12, "offset at {i}");
            }
            by_group.push(got);
        }
        // The same sums in the same order, whatever the block width.
        assert_eq!(by_group[0], by_group[1], "{rows}×{inner}×{cols}");
    }
}

#[test]
fn the_weight_gradient_is_the_dense_product_over_parts_and_pixel_ranges() {
    for &(rows, inner, cols, density) in SHAPES {
        let (entries, dense_a) = sparse(rows, inner, density, rows as u64 * 5 + 2);
        let (_, dz) = sparse(rows, cols, 1.0, 4);
        let mut want = Matrix::zeros(inner, cols).unwrap();
        crate::kernels::gemm(1.0, dense_a.as_ref().t(), dz.as_ref(), 0.0, want.as_mut()).unwrap();
        let u: Vec<f64> = (0..inner).map(|k| 1.0 - k as f64 * 0.3).collect();
        let c: Vec<f64> = (0..cols).map(|j| (j as f64).sin()).collect();
        let mut by_group = Vec::new();
        for group in [2, 4] {
            // Rows split in two parts, as two threads' shares of a block are.
            let half = rows / 2;
            let a = ColumnBlocks::from_rows(inner, group, &entries[..half]).unwrap();
            let b = ColumnBlocks::from_rows(inner, group, &entries[half..]).unwrap();
            let mut got = Matrix::zeros(inner, cols).unwrap();
            // Pixel ranges on block boundaries (the last one ends at the width).
            let cut = (inner / 2).next_multiple_of(4).min(inner);
            for range in [0..cut, cut..inner] {
                let start = range.start;
                let mut out = vec![0.5; range.len() * cols];
                let view = MatMut::new(&mut out, range.len(), cols).unwrap();
                let r1 = Some((&u[range.clone()], &c[..]));
                let peak = sparse_weight_grad(
                    &[&a, &b],
                    range.clone(),
                    dz.as_ref(),
                    2.0,
                    r1,
                    view,
                    &mut Vec::new(),
                )
                .unwrap();
                // It returns the largest magnitude it wrote.
                let top = out.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                assert_eq!(peak, top, "{rows}×{inner}×{cols}, pixels {range:?}");
                got.as_mut_slice()[start * cols..range.end * cols].copy_from_slice(&out);
            }
            for k in 0..inner {
                for j in 0..cols {
                    let want = 1.0 + u[k] * c[j] + want.as_slice()[k * cols + j];
                    let got = got.as_slice()[k * cols + j];
                    assert!(
                        (want - got).abs() < 1e-12,
                        "{rows}×{inner}×{cols} at ({k}, {j})"
                    );
                }
            }
            by_group.push(got);
        }
        assert_eq!(by_group[0], by_group[1], "{rows}×{inner}×{cols}");
    }
}

/// One buffer lent to every shape in turn (so it arrives too small, too big and full of
/// another panel's rows): each result is the fresh-buffer one, to the bit.
#[test]
fn a_lent_packing_buffer_gives_the_same_bits_whatever_it_held() {
    let mut lent = vec![f64::NAN; 7];
    for &(rows, inner, cols, density) in SHAPES {
        let (entries, _) = sparse(rows, inner, density, rows as u64 * 3 + 1);
        let (_, dz) = sparse(rows, cols, 1.0, 9);
        let a = ColumnBlocks::from_rows(inner, 4, &entries).unwrap();
        let mut fresh = vec![0.25; inner * cols];
        let mut reused = fresh.clone();
        let view = MatMut::new(&mut fresh, inner, cols).unwrap();
        let p1 = weight_grad(&[&a], 0..inner, dz.as_ref(), 0.5, view).unwrap();
        let view = MatMut::new(&mut reused, inner, cols).unwrap();
        let p2 =
            sparse_weight_grad(&[&a], 0..inner, dz.as_ref(), 0.5, None, view, &mut lent).unwrap();
        assert_eq!((p1, &fresh), (p2, &reused), "{rows}×{inner}×{cols}");
    }
}

/// An empty range of pixels, even off a block boundary (the second half of a 1-wide
/// input), adds nothing: the forward writes its start rows, the weight gradient nothing.
#[test]
fn an_empty_range_of_pixels_adds_nothing() {
    let (entries, _) = sparse(3, 5, 1.0, 2);
    let (_, w) = sparse(5, 6, 1.0, 3);
    let a = ColumnBlocks::from_rows(5, 4, &entries).unwrap();
    let bias = [0.5; 6];
    for at in [0, 1, 5] {
        let mut out = Matrix::zeros(3, 6).unwrap();
        sparse_forward(&[&a], at..at, w.as_ref(), Some(&bias), None, out.as_mut()).unwrap();
        assert!(out.as_slice().iter().all(|&v| v == 0.5), "{at}..{at}");
    }
}

/// A non-finite value written anywhere (from `dz`, or from `β·out`) makes the returned
/// magnitude infinite.
#[test]
fn the_weight_gradient_reports_a_non_finite_value_it_wrote() {
    let (rows, inner, cols) = (9, 30, 130);
    let (entries, _) = sparse(rows, inner, 1.0, 3);
    let (_, dz) = sparse(rows, cols, 1.0, 4);
    let a = ColumnBlocks::from_rows(inner, 4, &entries).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for at in [0, 77, rows * cols - 1] {
            let mut poisoned = dz.clone();
            poisoned.as_mut_slice()[at] = bad;
            let mut out = vec![0.0; inner * cols];
            let view = MatMut::new(&mut out, inner, cols).unwrap();
            let got = weight_grad(&[&a], 0..inner, poisoned.as_ref(), 0.0, view);
            assert_eq!(got.unwrap(), f64::INFINITY, "dz[{at}] = {bad}");
        }
        let mut out = vec![0.0; inner * cols];
        out[inner * cols / 2] = bad;
        let view = MatMut::new(&mut out, inner, cols).unwrap();
        let got = weight_grad(&[&a], 0..inner, dz.as_ref(), 1.0, view);
        assert_eq!(got.unwrap(), f64::INFINITY, "β·out with {bad}");
    }
}

#[test]
fn the_byte_gather_is_the_checked_build_scaled() {
    // Rows of a 10-wide byte dataset in blocks of four (the last block half past the
    // width), with a per-column scale.
    let bytes: [[u8; 10]; 3] = [
        [0, 0, 3, 0, 0, 0, 0, 0, 9, 1],
        [0; 10],
        [7, 0, 0, 0, 0, 5, 6, 0, 0, 2],
    ];
    let blocks: Vec<Vec<ByteBlock>> = bytes
        .iter()
        .map(|row| {
            row.chunks(4)
                .enumerate()
                .filter(|(_, b)| b.iter().any(|&v| v != 0))
                .map(|(j, b)| {
                    let mut four = [0; 4];
                    four[..b.len()].copy_from_slice(b);
                    (j as u16, four)
                })
                .collect()
        })
        .collect();
    let scale: Vec<f64> = (0..10).map(|c| 1.0 + c as f64).collect();
    for group in [2, 4] {
        let mut got = ColumnBlocks::new();
        got.gather_byte_rows(10, group, 3, |i| &blocks[i], Some(&scale))
            .unwrap();
        let entries: Vec<Vec<(usize, f64)>> = bytes
            .iter()
            .map(|row| {
                (0..10)
                    .filter(|&c| row[c] != 0)
                    .map(|c| (c, f64::from(row[c]) * scale[c]))
                    .collect()
            })
            .collect();
        let want = ColumnBlocks::from_rows(10, group, &entries).unwrap();
        assert_eq!(got, want, "group {group}");
        // Rebuilt in the same buffers: the same matrix.
        got.gather_byte_rows(10, group, 3, |i| &blocks[i], Some(&scale))
            .unwrap();
        assert_eq!(got, want);
    }
}

#[test]
fn bad_rows_ranges_and_shapes_are_refused() {
    let err = |r: Result<ColumnBlocks<f32>>| r.unwrap_err().into_kind();
    use crate::error::ErrorKind::{InvalidParameter, Shape};
    assert!(matches!(
        err(ColumnBlocks::from_rows(3, 2, &[vec![(3, 1.0)]])),
        InvalidParameter { .. }
    ));
    assert!(matches!(
        err(ColumnBlocks::from_rows(3, 2, &[vec![(1, 1.0), (1, 2.0)]])),
        InvalidParameter { .. }
    ));
    assert!(matches!(
        err(ColumnBlocks::from_rows(3, 3, &[])),
        InvalidParameter { .. }
    ));
    let a = ColumnBlocks::from_rows(6, 2, &[vec![(0, 1.0), (5, 2.0)]]).unwrap();
    let w = Matrix::<f32>::zeros(5, 2).unwrap();
    let mut out = Matrix::<f32>::zeros(1, 2).unwrap();
    let fw = |w: MatRef<'_, f32>, b: &[f32], px: Range<usize>, out: MatMut<'_, f32>| {
        sparse_forward(&[&a], px, w, Some(b), None, out)
    };
    let e = fw(w.as_ref(), &[0.0; 2], 0..6, out.as_mut()).unwrap_err();
    assert!(matches!(
        e.kind(),
        Shape {
            expected: 6,
            found: 5,
            ..
        }
    ));
    let w = Matrix::<f32>::zeros(6, 2).unwrap();
    assert!(fw(w.as_ref(), &[0.0; 3], 0..6, out.as_mut()).is_err());
    assert!(
        fw(w.as_ref(), &[0.0; 2], 1..6, out.as_mut()).is_err(),
        "not on a block"
    );
    assert!(
        fw(w.as_ref(), &[0.0; 2], 0..7, out.as_mut()).is_err(),
        "past the width"
    );
    assert!(fw(w.as_ref().t().t(), &[0.0; 2], 0..6, out.as_mut()).is_ok());
    assert!(fw(w.as_ref(), &[0.0; 2], 2..6, out.as_mut()).is_ok());
    let dz = Matrix::<f32>::zeros(1, 2).unwrap();
    let mut dw = Matrix::<f32>::zeros(3, 2).unwrap();
    // 1..4 does not start on a block of two.
    let e = weight_grad(&[&a], 1..4, dz.as_ref(), 0.0, dw.as_mut()).unwrap_err();
    assert!(matches!(e.kind(), InvalidParameter { .. }));
    assert!(weight_grad(&[&a], 2..5, dz.as_ref(), 0.0, dw.as_mut()).is_err());
    assert!(weight_grad(&[&a], 2..8, dz.as_ref(), 0.0, dw.as_mut()).is_err());
    assert!(sparse_weight_grad(
        &[&a, &a],
        2..5,
        dz.as_ref(),
        0.0,
        None,
        dw.as_mut(),
        &mut Vec::new()
    )
    .is_err());
    let mut dw4 = Matrix::<f32>::zeros(4, 2).unwrap();
    assert!(weight_grad(&[&a], 2..6, dz.as_ref(), 0.0, dw4.as_mut()).is_ok());
    assert!(weight_grad::<f32>(&[], 0..0, dz.as_ref(), 0.0, dw4.as_mut()).is_err());
}

/// The weight gradient without the rank-1 term, packing into a buffer of its own.
fn weight_grad<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    dz: MatRef<'_, T>,
    beta: T,
    out: MatMut<'_, T>,
) -> Result<T> {
    sparse_weight_grad(parts, pixels, dz, beta, None, out, &mut Vec::new())
}
