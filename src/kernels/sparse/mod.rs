//! Sparse × dense products for the first layer: most of a digit's pixels are zero.
//!
//! 81% of MNIST's pixels are exactly zero, and the first layer's two products — the forward
//! `Z₁ = X·W₁` and the weight gradient `dW₁ = Xᵀ·dZ₁` — are nearly all of a 784-256-10
//! step. Both can skip the zeros. Both read the block's input in one form, [`ColumnBlocks`]:
//! the columns (pixels) cut into blocks of `G` neighbours (`G` = 2 or 4), and for each
//! block the rows (examples) with a nonzero pixel there, each with its `G` values.
//!
//! ```text
//! forward      out[i, :] = bias + Σ_blocks j Σ_{entries (i, v) of j} Σ_q v[q] · W[G·j + q, :]
//! weight grad  dW[k, :]  = β·dW[k, :] + u[k]·c + Σ_{entries (i, v) of k's block} v[k − G·j] · dZ[i, :]
//! ```
//!
//! with the optional rank-1 term `u ⊗ c` (a standardised input's mean, folded out of the
//! sparse values: see `model/blocked.rs`).
//!
//! # Why blocks of neighbouring pixels
//!
//! A sparse product does one multiply-add per nonzero and column, and, done row by row,
//! loads one element of the dense operand for each: it runs at the speed of those loads,
//! from L2 for a `W₁` of 784 KiB, a quarter of what the multiply-add units can do and no
//! faster than the dense product on a CPU with AVX-512. Reuse needs the same dense row to
//! serve several nonzeros while it sits in registers. Pixels next to each other in a digit
//! are lit together (a stroke is two or three pixels wide), so a block of `G` neighbours
//! holds `G` rows of `W₁` (forward) or `G` rows of `dW₁` (weight gradient) in registers and
//! serves every example lit there: `G` multiply-adds per load. The price is the zeros inside
//! a block, multiplied as if they were not: on the shipped digits, 1.17 multiply-adds per
//! nonzero with `G = 2` and 1.48 with `G = 4`. Skipping an entry's zero half in the forward
//! (a branch on which half of the four values is zero) was tried and measured (the
//! `first layer` benchmarks; figures in the README's performance section): a little faster
//! at 256 columns, much slower at 1024, where the branch, which depends on the data,
//! mispredicts and each flush throws away the loads of `W₁` in flight from L3. So the zeros
//! stay multiplied. Sorting a block's entries by which half is zero would avoid the branch,
//! but only for the forward: the weight gradient's sums run in example order.
//!
//! # Blocking and registers
//!
//! Both kernels walk the columns of the dense operand in panels (`f32`: 64 columns with
//! AVX-512, 32 with AVX2 and `G = 2`; see the table above `forward_avx512`), sized so the
//! register tile (`G` panel rows, plus one row of the other operand) fits the register file.
//!
//! * **Forward**: per panel and pixel block, the `G` rows of `W₁`'s panel are loaded into
//!   registers once; each entry `(i, v)` then reads, updates and writes row `i` of the
//!   output panel. The output panel of a group of [`GROUP_ROWS`] rows is a contiguous tile
//!   (32 KiB at 64 `f32` columns) that stays in L1 while every pixel block passes over it,
//!   and is copied out (through the activation) at the end; each block's entries for the
//!   group are found from marks the gather left ([`ColumnBlocks`] records where each group
//!   starts). Panels are the outer loop, so a panel of `W₁` stays in L2 across groups.
//! * **Weight gradient**: per panel, the block's rows of `dZ₁`'s panel are first copied into
//!   a contiguous buffer (read in place they are a power of two apart — 1 KiB at 256
//!   columns, 4 KiB at 1024 — so they share a few L1 sets and, at 4 KiB, a page each: the
//!   entries of a pixel block, which jump from row to row, missed L1 and the TLB). Then, per
//!   pixel block, the `G` rows of `dW₁`'s panel are built in registers; each entry `(i, v)`
//!   loads row `i` of the packed panel once and adds it `G` times. The packed panel (32 KiB
//!   for 128 rows) stays in L1 or L2. With an update step to take (`StepRows`), the `G`
//!   finished rows step the same rows of the parameters and their state from the registers
//!   instead of being stored.
//!
//! # Instruction sets, rounding, and threads
//!
//! The bodies are plain Rust, compiled three times (`isa_dispatch!`, below): for AVX-512F
//! (`G = 4`) and for AVX2 + FMA (`G = 2`) when the CPU has them, where the multiply-add is
//! fused (`mul_add`, one rounding), and for the baseline, where it is a multiply and an add.
//! Every output element is the same sum in the same order — the bias or `β·out` and the
//! rank-1 term first, then the entries in increasing pixel order (forward) or increasing
//! example order (weight gradient) — whichever `G` and panel width ran: a zero inside a
//! block adds `0·w`, which changes nothing (for a finite `w`). So the fused builds agree
//! with each other to the bit, and with the baseline and the dense path to rounding. Every
//! output element is computed by one call: splitting the forward's rows, or the weight
//! gradient's pixels, between threads changes nothing.
//!
//! The files: `blocks.rs` (the column-block format and the gather that builds it),
//! `forward.rs` and `weight_grad.rs` (the two products, each with its panel loop and its
//! dispatch), this one (what both share: the check of the parts, the panel walk and the
//! panel widths per instruction set).

use std::ops::Range;

use crate::error::{Error, Result};
use crate::scalar::Scalar;

/// Calls `$panel::<T, M, G, width>(&mut x, c0)` for each panel of `x.n` output columns from
/// the left: panels `W` wide while they fit, then the tail in panels of 8 and of 1 (a macro,
/// as the width is a const parameter of the panel function).
macro_rules! by_panels {
    ($panel:ident, $x:ident, $T:ty, $M:ty, $G:ident, $W:ident) => {
        let n = $x.n;
        let mut c0 = 0;
        while c0 + $W <= n {
            $panel::<$T, $M, $G, $W>(&mut $x, c0);
            c0 += $W;
        }
        while c0 + 8 <= n {
            $panel::<$T, $M, $G, 8>(&mut $x, c0);
            c0 += 8;
        }
        while c0 < n {
            $panel::<$T, $M, $G, 1>(&mut $x, c0);
            c0 += 1;
        }
    };
}

/// Instantiates a kernel body for each block width and element size with the panel widths
/// of one instruction set: `$wide` bytes per panel row with `G = 4`... see the table in
/// each use. (`f32` and `f64` panels of the same bytes.)
macro_rules! widths {
    ($body:ident, $x:expr, $group:expr, $M:ty, $g4:literal, $g2:literal) => {{
        let f32 = std::mem::size_of::<T>() == 4;
        match ($group, f32) {
            (4, true) => $body::<T, $M, 4, { $g4 / 4 }>($x),
            (4, false) => $body::<T, $M, 4, { $g4 / 8 }>($x),
            (_, true) => $body::<T, $M, 2, { $g2 / 4 }>($x),
            (_, false) => $body::<T, $M, 2, { $g2 / 8 }>($x),
        }
    }};
}

// Panel bytes per instruction set, chosen so the register tile fits (G rows of the panel,
// plus a row of the other operand and the broadcasts):
//
// | build   | registers  | G = 4          | G = 2           |
// |---------|------------|----------------|-----------------|
// | AVX-512 | 32 × 64 B  | 256 B (16 reg) | 256 B (8 reg)   |
// | AVX2    | 16 × 32 B  | 64 B (8 reg)   | 128 B (8 reg)   |
// | base    | 16 × 16 B  | 64 B (16 reg)  | 64 B (8 reg)    |

mod blocks;
mod forward;
mod weight_grad;

pub(crate) use blocks::ByteBlock;
pub use blocks::{preferred_group, ColumnBlocks};
pub use forward::sparse_forward;
pub(crate) use forward::sparse_forward_with_offset;
pub use weight_grad::sparse_weight_grad;
pub(crate) use weight_grad::{sparse_weight_grad_stepping, Operands};

/// Rows of the output whose panel the forward builds together, in one contiguous tile (32
/// KiB of `f32` at 64 columns): fewer rows read `W₁`'s panel more often (once per group),
/// more no longer fit the tile in L1. Chosen on the `first layer` benchmarks (figures in
/// the README's performance section).
pub const GROUP_ROWS: usize = 128;

/// The parts' common width and block width, with `pixels` a range of whole blocks.
fn check_parts<T: Scalar>(
    context: &'static str,
    parts: &[&ColumnBlocks<T>],
    pixels: &Range<usize>,
) -> Result<(usize, usize)> {
    let Some(first) = parts.first() else {
        return Err(Error::param(
            "sparse parts",
            0,
            "at least one part is needed",
        ));
    };
    let (cols, group) = (first.cols(), first.group());
    if let Some(p) = parts.iter().find(|p| p.cols() != cols) {
        return Err(Error::shape(context, "width of every part", cols, p.cols()));
    }
    if let Some(p) = parts.iter().find(|p| p.group() != group) {
        return Err(Error::shape(
            context,
            "block width of every part",
            group,
            p.group(),
        ));
    }
    // An empty range (no pixels) is fine anywhere within the width.
    let on_blocks = pixels.is_empty()
        || (pixels.start.is_multiple_of(group)
            && (pixels.end.is_multiple_of(group) || pixels.end == cols));
    if pixels.start > pixels.end || pixels.end > cols || !on_blocks {
        return Err(Error::param(
            "sparse pixel range",
            format!("{pixels:?} of {cols} columns in blocks of {group}"),
            "must lie within the width, start on a block and end on one or at the width",
        ));
    }
    Ok((cols, group))
}

#[cfg(test)]
mod tests;
