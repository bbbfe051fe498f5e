//! The three products of a narrow layer — one with few outputs, such as the ten class scores
//! of the output layer — written for that shape.
//!
//! For a layer `Z = X·W + b` with `W` of `k × c` and `c` small (`c ≤` [`NARROW_MAX`]):
//!
//! ```text
//! forward         Z[i, j]  = b[j] + Σ_p X[i, p]·Wᵀ[j, p]     (n × c: dot products of length k)
//! input gradient  dX[i, :] = Σ_j dZ[i, j]·Wᵀ[j, :]           (n × k: an inner dimension of c)
//! weight gradient dW[p, j] = β·dW[p, j] + Σ_i X[i, p]·dZ[i, j]
//! ```
//!
//! # Why not `gemm`
//!
//! matrixmultiply packs both operands into panels and runs a 16 × 16 register tile
//! (AVX-512, `f32`). With ten outputs the tile is 10/16 full, and the packing is most of the
//! work: the forward and the weight gradient each copy all of `X` (the hidden layer's
//! `n × k` output, 1 MiB at 256 rows × 1024) to do 10 multiply-adds per element, and the
//! input gradient, with an inner dimension of 10, loads and stores each output tile for 10
//! multiply-adds per element: the three `gemm` calls of a 784-1024-10 network's output layer
//! take twice the share of a step that its arithmetic is (`cargo bench --features internals
//! --bench kernels -- "output layer"`; figures in the README's performance section). Here
//! nothing is packed: `W` is read through its transpose `Wᵀ` (`c × k`, 40 KiB at 1024 × 10, made once per batch with
//! [`transpose_into`]), whose rows are contiguous along `k`, as are `X`'s and `dX`'s.
//!
//! # Tiles
//!
//! * **Forward**: `R` rows of `X` × `C` rows of `Wᵀ` in `R·C` accumulators of `L` lanes
//!   along `k` (`L` = one 64-byte vector: 16 `f32`), then each accumulator summed across its
//!   lanes by halving (`L/2`, `L/4`, …, 1), and the bias added. With AVX-512, `R = 4` and
//!   `C = 5`: 20 of the 32 vector registers, and 9 loads for 20 multiply-adds.
//! * **Input gradient**: `R` rows × a panel of `W` columns of `dX`; for each of the `c`
//!   outputs, one panel row of `Wᵀ` is loaded and multiplied by `R` broadcasts of `dZ`. The
//!   activation's derivative is applied to the `R` rows as soon as they are complete, while
//!   they are in L1. With AVX-512, `R = 4` and 64 `f32` columns: 16 accumulators.
//! * **Weight gradient**: a panel of `W` rows of `dW` (columns of `X`) × `C` outputs, built
//!   over every row `i` of the block: one panel of row `i` of `X` and `C` broadcasts of
//!   `dZ`. With AVX-512, 32 `f32` columns and `C = 5`: 10 accumulators.
//!
//! # Rounding, instruction sets and threads
//!
//! Each output element is one sum in a fixed order: the forward's over `k` in `L` lanes
//! (`L` the same in every build, so the lanes and their halving are too), the input
//! gradient's over `j` from 0, the weight gradient's `β·dW` then `i` from 0. Tile sizes only
//! decide which elements are computed together. So the AVX-512 and AVX2 builds (fused
//! multiply-adds) agree to the bit, the baseline (separate) to rounding, and splitting the
//! rows (forward, input gradient) or the columns of `X` (weight gradient) between threads
//! changes no bit.

use crate::activation::Activation;
use crate::error::Result;
use crate::kernels::elementwise::{activate, activate_backward};
use crate::kernels::lanes::{tile, tile_mut, Fused, MulAdd, Separate};
use crate::matrix::contiguous_rows;
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;
use crate::validate::same_size;

/// The widest layer (outputs) these kernels are used for by [`Mlp`](crate::model::Mlp):
/// above it the tiles of `gemm` are full and its packing is a small part of the work.
pub const NARROW_MAX: usize = 16;

/// `out ← wᵀ`, row-major (`w.cols() × w.rows()`), reusing `out`'s allocation.
///
/// ```
/// # #[cfg(feature = "internals")] {
/// use downhill::kernels::narrow::transpose_into;
/// use downhill::matrix::Matrix;
///
/// let w = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2)?;
/// let mut wt = Vec::new();
/// transpose_into(w.as_ref(), &mut wt);
/// assert_eq!(wt, [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
/// # }
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn transpose_into<T: Scalar>(w: MatRef<'_, T>, out: &mut Vec<T>) {
    out.clear();
    out.reserve(w.rows() * w.cols());
    let t = w.t();
    for r in 0..t.rows() {
        out.extend((0..t.cols()).filter_map(|c| t.get(r, c)));
    }
}

/// `out ← act(x·w + b)`, given `wt = wᵀ` (`c × k`) for `x` of `n × k`: a narrow layer's
/// forward. `act == None` leaves the affine scores.
///
/// Errors if a shape disagrees or a view's rows are not contiguous.
///
/// ```
/// # #[cfg(feature = "internals")] {
/// use downhill::kernels::narrow::narrow_forward;
/// use downhill::matrix::Matrix;
///
/// // x = [[1, 2, 3]], w = [[1, 0], [0, 1], [1, 1]] given as wᵀ, b = [10, 20].
/// let x = Matrix::from_vec(vec![1.0, 2.0, 3.0], 1, 3)?;
/// let wt = Matrix::from_vec(vec![1.0, 0.0, 1.0, 0.0, 1.0, 1.0], 2, 3)?;
/// let mut z = Matrix::<f64>::zeros(1, 2)?;
/// narrow_forward(x.as_ref(), wt.as_ref(), &[10.0, 20.0], None, z.as_mut())?;
/// assert_eq!(z.as_slice(), &[14.0, 25.0]);
/// # }
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn narrow_forward<T: Scalar>(
    x: MatRef<'_, T>,
    wt: MatRef<'_, T>,
    b: &[T],
    act: Option<Activation>,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    const WHERE: &str = "kernels::narrow_forward";
    same_size(
        WHERE,
        "inner dimension (columns of wᵀ)",
        x.cols(),
        wt.cols(),
    )?;
    same_size(WHERE, "output rows", x.rows(), out.rows())?;
    same_size(WHERE, "output columns (rows of wᵀ)", wt.rows(), out.cols())?;
    same_size(WHERE, "bias length", wt.rows(), b.len())?;
    contiguous_rows(WHERE, "column stride of x (rows must be contiguous)", &x)?;
    contiguous_rows(WHERE, "column stride of wᵀ (rows must be contiguous)", &wt)?;
    if out.rows() == 0 || out.cols() == 0 {
        return Ok(());
    }
    forward_dispatch(Forward {
        x: x.data(),
        xrs: x.row_stride(),
        wt: wt.data(),
        wtrs: wt.row_stride(),
        b,
        act,
        ors: out.row_stride(),
        out: out.data_mut(),
        n: x.rows(),
        k: x.cols(),
        c: wt.rows(),
    });
    Ok(())
}

/// `out ← dz·wᵀ`, given `wt = wᵀ` (`c × k`) for `dz` of `n × c`: the gradient of a narrow
/// layer's input. With `through = Some((act, a))`, each row is then multiplied by the
/// derivative of `act` at the layer below's output `a` (`n × k`): `dZ` of the layer below.
///
/// Errors if a shape disagrees or a view's rows are not contiguous.
///
/// ```
/// # #[cfg(feature = "internals")] {
/// use downhill::kernels::narrow::narrow_input_grad;
/// use downhill::matrix::Matrix;
///
/// // dz = [[1, 2]], wᵀ = [[1, 0, 1], [0, 1, 1]]: dz·wᵀ = [1, 2, 3].
/// let dz = Matrix::from_vec(vec![1.0, 2.0], 1, 2)?;
/// let wt = Matrix::from_vec(vec![1.0, 0.0, 1.0, 0.0, 1.0, 1.0], 2, 3)?;
/// let mut dx = Matrix::<f64>::zeros(1, 3)?;
/// narrow_input_grad(dz.as_ref(), wt.as_ref(), None, dx.as_mut())?;
/// assert_eq!(dx.as_slice(), &[1.0, 2.0, 3.0]);
/// # }
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn narrow_input_grad<T: Scalar>(
    dz: MatRef<'_, T>,
    wt: MatRef<'_, T>,
    through: Option<(Activation, MatRef<'_, T>)>,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    const WHERE: &str = "kernels::narrow_input_grad";
    same_size(WHERE, "inner dimension (rows of wᵀ)", dz.cols(), wt.rows())?;
    same_size(WHERE, "output rows", dz.rows(), out.rows())?;
    same_size(
        WHERE,
        "output columns (columns of wᵀ)",
        wt.cols(),
        out.cols(),
    )?;
    contiguous_rows(WHERE, "column stride of dz (rows must be contiguous)", &dz)?;
    contiguous_rows(WHERE, "column stride of wᵀ (rows must be contiguous)", &wt)?;
    let through = match through {
        Some((act, a)) => {
            same_size(WHERE, "rows of the activations", out.rows(), a.rows())?;
            same_size(WHERE, "columns of the activations", out.cols(), a.cols())?;
            contiguous_rows(
                WHERE,
                "column stride of the activations (rows must be contiguous)",
                &a,
            )?;
            Some((act, a.data(), a.row_stride()))
        }
        None => None,
    };
    if out.rows() == 0 || out.cols() == 0 {
        return Ok(());
    }
    input_grad_dispatch(InputGrad {
        dz: dz.data(),
        dzrs: dz.row_stride(),
        wt: wt.data(),
        wtrs: wt.row_stride(),
        through,
        ors: out.row_stride(),
        out: out.data_mut(),
        n: dz.rows(),
        k: wt.cols(),
        c: wt.rows(),
    });
    Ok(())
}

/// `out ← β·out + xᵀ·dz` for `x` of `n × k` and a narrow `dz` (`n × c`): a narrow layer's
/// weight gradient (`k × c`, the layout of its `W`). `β = 0` writes `out` without reading
/// it. `x` may be a range of another matrix's columns (a thread's rows of `dW`).
///
/// Errors if a shape disagrees or a view's rows are not contiguous.
///
/// ```
/// # #[cfg(feature = "internals")] {
/// use downhill::kernels::narrow::narrow_weight_grad;
/// use downhill::matrix::Matrix;
///
/// // x = [[1, 2], [3, 4]], dz = [[1], [1]]: xᵀ·dz = [[4], [6]].
/// let x = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0], 2, 2)?;
/// let dz = Matrix::from_vec(vec![1.0, 1.0], 2, 1)?;
/// let mut dw = Matrix::<f64>::zeros(2, 1)?;
/// narrow_weight_grad(x.as_ref(), dz.as_ref(), 0.0, dw.as_mut())?;
/// assert_eq!(dw.as_slice(), &[4.0, 6.0]);
/// # }
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn narrow_weight_grad<T: Scalar>(
    x: MatRef<'_, T>,
    dz: MatRef<'_, T>,
    beta: T,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    const WHERE: &str = "kernels::narrow_weight_grad";
    same_size(WHERE, "rows of dz", x.rows(), dz.rows())?;
    same_size(WHERE, "output rows (columns of x)", x.cols(), out.rows())?;
    same_size(
        WHERE,
        "output columns (columns of dz)",
        dz.cols(),
        out.cols(),
    )?;
    contiguous_rows(WHERE, "column stride of x (rows must be contiguous)", &x)?;
    contiguous_rows(WHERE, "column stride of dz (rows must be contiguous)", &dz)?;
    if out.rows() == 0 || out.cols() == 0 {
        return Ok(());
    }
    weight_grad_dispatch(WeightGrad {
        x: x.data(),
        xrs: x.row_stride(),
        dz: dz.data(),
        dzrs: dz.row_stride(),
        beta,
        ors: out.row_stride(),
        out: out.data_mut(),
        n: x.rows(),
        k: x.cols(),
        c: dz.cols(),
    });
    Ok(())
}

/// Everything the forward body needs, checked by [`narrow_forward`].
struct Forward<'a, 'o, T> {
    x: &'a [T],
    xrs: usize,
    wt: &'a [T],
    wtrs: usize,
    b: &'a [T],
    act: Option<Activation>,
    out: &'o mut [T],
    ors: usize,
    n: usize,
    k: usize,
    c: usize,
}

/// Everything the input-gradient body needs, checked by [`narrow_input_grad`].
struct InputGrad<'a, 'o, T> {
    dz: &'a [T],
    dzrs: usize,
    wt: &'a [T],
    wtrs: usize,
    through: Option<(Activation, &'a [T], usize)>,
    out: &'o mut [T],
    ors: usize,
    n: usize,
    k: usize,
    c: usize,
}

/// Everything the weight-gradient body needs, checked by [`narrow_weight_grad`].
struct WeightGrad<'a, 'o, T> {
    x: &'a [T],
    xrs: usize,
    dz: &'a [T],
    dzrs: usize,
    beta: T,
    out: &'o mut [T],
    ors: usize,
    n: usize,
    k: usize,
    c: usize,
}

/// `a`'s lanes summed by halving: `a[l] += a[l + L/2]`, then `L/4`, …, down to one (`L` a
/// power of two). The same order in every build.
#[inline(always)]
fn lane_sum<T: Scalar, const L: usize>(mut a: [T; L]) -> T {
    let mut half = L / 2;
    while half > 0 {
        for l in 0..half {
            a[l] = a[l] + a[l + half];
        }
        half /= 2;
    }
    a[0]
}

/// The forward for rows `r0..r0 + R` and outputs `c0..c0 + C`.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn forward_tile<T: Scalar, M: MulAdd, const L: usize, const R: usize, const C: usize>(
    x: &mut Forward<'_, '_, T>,
    r0: usize,
    c0: usize,
) {
    let full = x.k / L * L;
    let acc = [[[T::zero(); L]; C]; R];
    let mut acc = forward_lanes::<T, M, L, R, C>(acc, x, r0, c0, full);
    // The last k mod L columns go into the first lanes.
    for l in 0..x.k - full {
        for i in 0..R {
            let xv = x.x[(r0 + i) * x.xrs + full + l];
            for j in 0..C {
                let wv = x.wt[(c0 + j) * x.wtrs + full + l];
                acc[i][j][l] = M::mul_add(xv, wv, acc[i][j][l]);
            }
        }
    }
    for i in 0..R {
        for j in 0..C {
            x.out[(r0 + i) * x.ors + c0 + j] = x.b[c0 + j] + lane_sum(acc[i][j]);
        }
    }
}

/// The forward's accumulators over the first `full` columns, `L` at a time. They go in and
/// out by value, indexed loops only: borrowed across the loop, the compiler keeps them in
/// memory.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn forward_lanes<T: Scalar, M: MulAdd, const L: usize, const R: usize, const C: usize>(
    mut acc: [[[T; L]; C]; R],
    x: &Forward<'_, '_, T>,
    r0: usize,
    c0: usize,
    full: usize,
) -> [[[T; L]; C]; R] {
    let xr: [&[T]; R] = std::array::from_fn(|i| &x.x[(r0 + i) * x.xrs..][..full]);
    let wr: [&[T]; C] = std::array::from_fn(|j| &x.wt[(c0 + j) * x.wtrs..][..full]);
    let mut p = 0;
    while p < full {
        let xs: [[T; L]; R] = std::array::from_fn(|i| *tile::<T, L>(xr[i], p));
        for j in 0..C {
            let w = tile::<T, L>(wr[j], p);
            for i in 0..R {
                for l in 0..L {
                    acc[i][j][l] = M::mul_add(xs[i][l], w[l], acc[i][j][l]);
                }
            }
        }
        p += L;
    }
    acc
}

/// Runs `$tile::<…, $w>(&mut x, a, start)` for consecutive starts from 0 until `$len`, `$w`
/// at a time for each width of the list in turn (the last width must be 1): the widths
/// are const parameters of the tile.
macro_rules! in_tiles {
    ($len:expr, |$start:ident, $w:ident| $run:expr, [$($width:literal),+]) => {{
        let len = $len;
        let mut $start = 0;
        $(
            {
                const $w: usize = $width;
                while $start + $w <= len {
                    $run;
                    $start += $w;
                }
            }
        )+
    }};
}

/// The forward: groups of `R` rows (then single rows), each over the outputs in tiles of
/// the widths `$cs`, then the activation on the finished rows.
macro_rules! forward_body {
    ($x:ident, $T:ty, $M:ty, $L:literal, $R:literal, $cs:tt) => {{
        let mut x = $x;
        let rows = |x: &mut Forward<'_, '_, $T>, r0: usize, r: usize| {
            if let Some(act) = x.act {
                for i in r0..r0 + r {
                    let c = x.c;
                    activate(act, &mut x.out[i * x.ors..i * x.ors + c]);
                }
            }
        };
        in_tiles!(
            x.n,
            |r0, RW| {
                if RW == $R {
                    in_tiles!(
                        x.c,
                        |c0, CW| forward_tile::<$T, $M, $L, $R, CW>(&mut x, r0, c0),
                        $cs
                    );
                } else {
                    in_tiles!(
                        x.c,
                        |c0, CW| forward_tile::<$T, $M, $L, 1, CW>(&mut x, r0, c0),
                        $cs
                    );
                }
                rows(&mut x, r0, RW);
            },
            [$R, 1]
        );
    }};
}

/// The input gradient for rows `r0..r0 + R` and columns `p0..p0 + W` of `dX`.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn input_grad_tile<T: Scalar, M: MulAdd, const R: usize, const W: usize>(
    x: &mut InputGrad<'_, '_, T>,
    r0: usize,
    p0: usize,
) {
    let mut acc = [[T::zero(); W]; R];
    for j in 0..x.c {
        // By value: a reference gets folded into each multiply-add, one load per row.
        let w: [T; W] = *tile::<T, W>(x.wt, j * x.wtrs + p0);
        for i in 0..R {
            let d = x.dz[(r0 + i) * x.dzrs + j];
            for l in 0..W {
                acc[i][l] = M::mul_add(d, w[l], acc[i][l]);
            }
        }
    }
    for i in 0..R {
        *tile_mut::<T, W>(x.out, (r0 + i) * x.ors + p0) = acc[i];
    }
}

/// The input gradient: groups of `R` rows (then single rows), each across `dX` in panels of
/// the widths `$ws`, then the activation's derivative on the finished rows.
macro_rules! input_grad_body {
    ($x:ident, $T:ty, $M:ty, $R:literal, $ws:tt) => {{
        let mut x = $x;
        in_tiles!(
            x.n,
            |r0, RW| {
                if RW == $R {
                    in_tiles!(
                        x.k,
                        |p0, PW| input_grad_tile::<$T, $M, $R, PW>(&mut x, r0, p0),
                        $ws
                    );
                } else {
                    in_tiles!(
                        x.k,
                        |p0, PW| input_grad_tile::<$T, $M, 1, PW>(&mut x, r0, p0),
                        $ws
                    );
                }
                if let Some((act, a, ars)) = x.through {
                    for i in r0..r0 + RW {
                        let k = x.k;
                        activate_backward(
                            act,
                            &a[i * ars..i * ars + k],
                            &mut x.out[i * x.ors..i * x.ors + k],
                        );
                    }
                }
            },
            [$R, 1]
        );
    }};
}

/// The weight gradient for rows `p0..p0 + W` and outputs `c0..c0 + C` of `dW`: `β·dW`, then
/// every row of the block in order.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn weight_grad_tile<T: Scalar, M: MulAdd, const W: usize, const C: usize>(
    x: &mut WeightGrad<'_, '_, T>,
    p0: usize,
    c0: usize,
) {
    let mut acc = [[T::zero(); W]; C];
    if x.beta != T::zero() {
        for j in 0..C {
            for l in 0..W {
                acc[j][l] = x.beta * x.out[(p0 + l) * x.ors + c0 + j];
            }
        }
    }
    let acc = weight_grad_rows::<T, M, W, C>(acc, x, p0, c0);
    for j in 0..C {
        for l in 0..W {
            x.out[(p0 + l) * x.ors + c0 + j] = acc[j][l];
        }
    }
}

/// The weight gradient's accumulators over every row of the block. They go in and out by
/// value, indexed loops only: borrowed across the loop, the compiler keeps them in memory.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn weight_grad_rows<T: Scalar, M: MulAdd, const W: usize, const C: usize>(
    mut acc: [[T; W]; C],
    x: &WeightGrad<'_, '_, T>,
    p0: usize,
    c0: usize,
) -> [[T; W]; C] {
    for i in 0..x.n {
        let xv: [T; W] = *tile::<T, W>(x.x, i * x.xrs + p0);
        let d = tile::<T, C>(x.dz, i * x.dzrs + c0);
        for j in 0..C {
            let dj = d[j];
            for l in 0..W {
                acc[j][l] = M::mul_add(dj, xv[l], acc[j][l]);
            }
        }
    }
    acc
}

/// The weight gradient: panels of `dW`'s rows of the widths `$ws`, each over the outputs in
/// tiles of the widths `$cs`.
macro_rules! weight_grad_body {
    ($x:ident, $T:ty, $M:ty, $ws:tt, $cs:tt) => {{
        let mut x = $x;
        in_tiles!(
            x.k,
            |p0, PW| {
                in_tiles!(
                    x.c,
                    |c0, CW| weight_grad_tile::<$T, $M, PW, CW>(&mut x, p0, c0),
                    $cs
                );
            },
            $ws
        );
    }};
}

// Tile sizes per instruction set (`f32`; `f64` the same bytes, half the columns), chosen so
// the accumulators and a row of each operand fit the vector registers with room to spare
// (larger tiles — the forward at R = 2, C = 10, the weight gradient at 128 B × 10 or
// 256 B × 5 — ran much slower on the `output layer` benchmarks: the compiler kept the
// accumulators in memory):
//
// | build   | registers | forward (lanes L = 64 B)  | input grad        | weight grad        |
// |---------|-----------|---------------------------|-------------------|--------------------|
// | AVX-512 | 32 × 64 B | R = 4, C ≤ 5 (20 acc)     | R = 4, 256 B (16) | 128 B, C ≤ 5 (10)  |
// | AVX2    | 16 × 32 B | R = 1, C ≤ 5 (10 acc)     | R = 2, 128 B (8)  | 64 B, C ≤ 5 (10)   |
// | base    | 16 × 16 B | R = 1, C ≤ 2 (8 acc)      | R = 2, 64 B (8)   | 32 B, C ≤ 5 (10)   |
//
// The forward's lanes are the same 64 bytes in every build (its sum order depends on them);
// everything else is free to differ between builds.

/// `$e` with `$T` the element type and `$f32` true for `f32` (else `f64`).
macro_rules! by_size {
    (|$f32:ident| $e:expr) => {{
        let $f32 = std::mem::size_of::<T>() == 4;
        $e
    }};
}

isa_dispatch!(forward_dispatch, Forward, |x| {
    avx512: by_size!(|f32| if f32 {
        forward_body!(x, T, Fused, 16, 4, [5, 2, 1])
    } else {
        forward_body!(x, T, Fused, 8, 4, [5, 2, 1])
    }),
    avx2: by_size!(|f32| if f32 {
        forward_body!(x, T, Fused, 16, 1, [5, 2, 1])
    } else {
        forward_body!(x, T, Fused, 8, 1, [5, 2, 1])
    }),
    base: by_size!(|f32| if f32 {
        forward_body!(x, T, Separate, 16, 1, [2, 1])
    } else {
        forward_body!(x, T, Separate, 8, 1, [2, 1])
    }),
});

isa_dispatch!(input_grad_dispatch, InputGrad, |x| {
    avx512: by_size!(|f32| if f32 {
        input_grad_body!(x, T, Fused, 4, [64, 16, 1])
    } else {
        input_grad_body!(x, T, Fused, 4, [32, 8, 1])
    }),
    avx2: by_size!(|f32| if f32 {
        input_grad_body!(x, T, Fused, 2, [32, 8, 1])
    } else {
        input_grad_body!(x, T, Fused, 2, [16, 4, 1])
    }),
    base: by_size!(|f32| if f32 {
        input_grad_body!(x, T, Separate, 2, [16, 4, 1])
    } else {
        input_grad_body!(x, T, Separate, 2, [8, 2, 1])
    }),
});

isa_dispatch!(weight_grad_dispatch, WeightGrad, |x| {
    avx512: by_size!(|f32| if f32 {
        weight_grad_body!(x, T, Fused, [32, 16, 1], [5, 2, 1])
    } else {
        weight_grad_body!(x, T, Fused, [16, 8, 1], [5, 2, 1])
    }),
    avx2: by_size!(|f32| if f32 {
        weight_grad_body!(x, T, Fused, [16, 8, 1], [5, 2, 1])
    } else {
        weight_grad_body!(x, T, Fused, [8, 4, 1], [5, 2, 1])
    }),
    base: by_size!(|f32| if f32 {
        weight_grad_body!(x, T, Separate, [8, 4, 1], [5, 2, 1])
    } else {
        weight_grad_body!(x, T, Separate, [4, 2, 1], [5, 2, 1])
    }),
});

#[cfg(test)]
mod tests;
