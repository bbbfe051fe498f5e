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
//! (a branch on which half of the four values is zero) was measured: 0.89× the time at 256
//! columns but 1.5× at 1024 (`first layer` benchmarks, medians of four alternating runs),
//! so the zeros stay multiplied. Sorting a block's entries by which half is zero would avoid
//! the branch, but only for the forward: the weight gradient's sums run in example order.
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

use std::ops::Range;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::kernels::elementwise::activate;
use crate::kernels::lanes::{bigger, tile, tile_mut, Fused, MulAdd, Separate};
use crate::kernels::update::{magnitude, step_tile, Pass};
use crate::matrix::{MatMut, MatRef};
use crate::validate::{contiguous_rows, same_size};
use crate::Scalar;

/// Rows of the output whose panel the forward builds together, in one contiguous tile (32
/// KiB of `f32` at 64 columns). Measured on the `first layer` benchmarks (batch 128, 256
/// hidden; batch 256, 1024 hidden): 64 rows take 1.5× and 2.3× as long (`W₁`'s panel is
/// read once per group), 256 rows 1.2× and 1.05× (the tile no longer fits L1).
pub const GROUP_ROWS: usize = 128;

/// One row's nonzeros as a dataset stores them: blocks of four columns, `(block, bytes)`
/// with the block index `j` covering columns `4j..4j + 4`, blocks increasing, and zeros
/// where a column of the block is zero (or past the width).
pub(crate) type ByteBlock = (u16, [u8; 4]);

/// The nonzeros of a block of rows, transposed and grouped by blocks of `G` columns: for
/// column block `j` (columns `G·j .. G·j + G`), the rows with a nonzero there, increasing,
/// each with its `G` values (zero where that column is zero).
///
/// Built with [`from_rows`](ColumnBlocks::from_rows), which checks every entry, or by the
/// crate's own gather from a dataset's stored nonzeros. Its buffers are kept between
/// builds, so a training loop rebuilds one per block without allocating.
#[derive(Debug, Clone, Default)]
pub struct ColumnBlocks<T> {
    rows: usize,
    cols: usize,
    group: usize,
    /// Entries of column block `j`: `ptr[j]..ptr[j + 1]`.
    ptr: Vec<u32>,
    /// Each entry's row.
    row: Vec<u32>,
    /// Each entry's `group` values.
    val: Vec<T>,
    /// `marks[g·blocks + j]`: the first entry of block `j` at row `GROUP_ROWS·g` or after,
    /// for `g` in `0..=row_groups` (the last is `ptr[j + 1]`).
    marks: Vec<u32>,
    /// The gather's scratch: where each block's next entry goes, and the scales padded to
    /// whole blocks of four.
    next: Vec<u32>,
    scale: Vec<T>,
}

/// The same matrix in the same blocks (the gather's scratch is not compared).
impl<T: PartialEq> PartialEq for ColumnBlocks<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.cols, self.group) == (other.rows, other.cols, other.group)
            && self.ptr == other.ptr
            && self.row == other.row
            && self.val == other.val
            && self.marks == other.marks
    }
}

/// The column-block width the fastest kernel on this CPU wants: 4 with AVX-512 (32 vector
/// registers hold four rows of a 64-column panel), 2 otherwise.
pub fn preferred_group() -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return 4;
    }
    2
}

impl<T: Scalar> ColumnBlocks<T> {
    /// An empty `0 × 0` matrix in blocks of [`preferred_group`] columns.
    pub fn new() -> Self {
        ColumnBlocks {
            rows: 0,
            cols: 0,
            group: preferred_group(),
            ptr: vec![0],
            row: Vec::new(),
            val: Vec::new(),
            marks: Vec::new(),
            next: Vec::new(),
            scale: Vec::new(),
        }
    }

    /// The `rows.len() × cols` matrix whose row `i` has the `(column, value)` entries
    /// `rows[i]` (columns increasing and below `cols`), in blocks of `group` columns (2 or
    /// 4; [`preferred_group`] for the fastest kernel).
    ///
    /// ```
    /// use downhill::kernels::sparse::ColumnBlocks;
    ///
    /// let a = ColumnBlocks::<f32>::from_rows(5, 2, &[vec![(0, 1.0), (4, 2.0)], vec![(1, 3.0)]])?;
    /// assert_eq!((a.rows(), a.cols(), a.entries()), (2, 5, 3));
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn from_rows(cols: usize, group: usize, rows: &[Vec<(usize, T)>]) -> Result<Self> {
        check_group(group)?;
        for (i, r) in rows.iter().enumerate() {
            let mut prev: Option<usize> = None;
            for &(c, _) in r {
                if c >= cols || prev.is_some_and(|p| c <= p) {
                    return Err(Error::param(
                        "ColumnBlocks::from_rows column",
                        format!("{c} in row {i} (width {cols})"),
                        "must be below the width, and increasing along the row",
                    ));
                }
                prev = Some(c);
            }
        }
        let blocks = block_count(cols, group);
        let mut out = ColumnBlocks::new();
        out.reset(rows.len(), cols, group)?;
        let mut count = vec![0u32; blocks + 1];
        for r in rows {
            let mut last = None;
            for &(c, _) in r {
                if last != Some(c / group) {
                    count[c / group + 1] += 1;
                    last = Some(c / group);
                }
            }
        }
        out.place(count, |place| {
            for (i, r) in rows.iter().enumerate() {
                let mut last = None;
                for &(c, v) in r {
                    if last != Some(c / group) {
                        place.start(c / group, i);
                        last = Some(c / group);
                    }
                    place.set(c % group, v);
                }
            }
        })?;
        Ok(out)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Columns per block.
    pub fn group(&self) -> usize {
        self.group
    }

    /// Number of stored entries (row, column block) — each `group` values.
    pub fn entries(&self) -> usize {
        self.row.len()
    }

    /// The largest magnitude among the stored values, `None` if one is not finite.
    pub(crate) fn value_peak(&self) -> Option<T> {
        let stored = self.entries() * self.group;
        magnitude(self.val.get(..stored).unwrap_or(&self.val))
    }

    /// Row `i`'s nonzero `(column, value)` entries, columns increasing (a slow walk over
    /// every block, for tests and debugging).
    pub fn row_entries(&self, i: usize) -> Vec<(usize, T)> {
        let mut out = Vec::new();
        for j in 0..self.blocks() {
            for e in self.block_range(j) {
                if self.row[e] as usize == i {
                    for q in 0..self.group {
                        let v = self.val[e * self.group + q];
                        if v != T::zero() {
                            out.push((j * self.group + q, v));
                        }
                    }
                }
            }
        }
        out
    }

    fn blocks(&self) -> usize {
        self.ptr.len() - 1
    }

    fn block_range(&self, j: usize) -> Range<usize> {
        self.ptr[j] as usize..self.ptr[j + 1] as usize
    }

    /// Empties the matrix (keeping its buffers) for `rows × cols` in blocks of `group`.
    fn reset(&mut self, rows: usize, cols: usize, group: usize) -> Result<()> {
        if u32::try_from(rows).is_err() {
            return Err(Error::param(
                "sparse block rows",
                rows,
                "must be below 2^32",
            ));
        }
        self.rows = rows;
        self.cols = cols;
        self.group = group;
        self.ptr.clear();
        self.row.clear();
        self.val.clear();
        self.marks.clear();
        Ok(())
    }

    /// The second pass of a counting sort: `count[j + 1]` holds how many entries block `j`
    /// gets; `fill` is called once and must start every entry it counted, rows in
    /// increasing order.
    fn place(&mut self, mut count: Vec<u32>, fill: impl FnOnce(&mut Placer<'_, T>)) -> Result<()> {
        for j in 1..count.len() {
            count[j] = count[j].checked_add(count[j - 1]).ok_or_else(|| {
                Error::param(
                    "sparse block",
                    "more than 2^32 entries",
                    "too many nonzeros",
                )
            })?;
        }
        let total = count.last().copied().unwrap_or(0) as usize;
        let group = self.group;
        self.row.resize(total, 0);
        self.val.resize(total * group, T::zero());
        self.val.iter_mut().for_each(|v| *v = T::zero());
        let blocks = count.len() - 1;
        let groups = self.rows.div_ceil(GROUP_ROWS);
        self.marks.resize((groups + 1) * blocks, 0);
        self.ptr.clear();
        self.ptr.extend_from_slice(&count);
        let mut placer = Placer {
            next: count,
            row: &mut self.row,
            val: &mut self.val,
            marks: &mut self.marks,
            blocks,
            group,
            at: 0,
            next_group: 0,
        };
        fill(&mut placer);
        placer.mark_until(groups);
        Ok(())
    }

    /// The crate's gather: `n` rows whose stored nonzeros `row(i)` are [`ByteBlock`]s of a
    /// `cols`-wide dataset, values `byte` or `byte · scale[c]`, in blocks of `group` (2 or
    /// 4). The dataset built every row's blocks, increasing and within the width.
    pub(crate) fn gather_byte_rows<'r>(
        &mut self,
        cols: usize,
        group: usize,
        n: usize,
        row: impl Fn(usize) -> &'r [ByteBlock],
        scale: Option<&[T]>,
    ) -> Result<()> {
        check_group(group)?;
        if let Some(s) = scale {
            same_size("sparse gather", "scales", cols, s.len())?;
        }
        self.reset(n, cols, group)?;
        let blocks = block_count(cols, group);
        // Pass 1: how many entries each column block gets, in ptr[j + 1]. The rows are at
        // random places in the dataset: the next ones are fetched while this one is counted
        // (without it, the first load of each row stalls on L3 or memory: half the gather).
        self.ptr.resize(blocks + 1, 0);
        for i in 0..n {
            if i + PREFETCH_ROWS < n {
                prefetch(row(i + PREFETCH_ROWS));
            }
            for &(j, b) in row(i) {
                let j = usize::from(j);
                if group == 4 {
                    self.ptr[j + 1] += 1;
                } else {
                    self.ptr[2 * j + 1] += u32::from(b[0] | b[1] != 0);
                    self.ptr[2 * j + 2] += u32::from(b[2] | b[3] != 0);
                }
            }
        }
        for j in 1..=blocks {
            self.ptr[j] = self.ptr[j].checked_add(self.ptr[j - 1]).ok_or_else(|| {
                Error::param(
                    "sparse block",
                    "more than 2^32 entries",
                    "too many nonzeros",
                )
            })?;
        }
        let total = self.ptr[blocks] as usize;
        // Room for the most entries `n` rows can have, once: buffers that grew a little at
        // every denser block cost a reallocation and fresh pages each time.
        let most = n.saturating_mul(blocks);
        self.row.reserve(most.saturating_sub(self.row.len()));
        self.val
            .reserve(most.saturating_mul(group).saturating_sub(self.val.len()));
        // Every entry's `group` values are written below: no zeroing needed beyond resize's.
        self.row.resize(total, 0);
        self.val.resize(total * group, T::zero());
        self.next.clear();
        self.next.extend_from_slice(&self.ptr[..blocks]);
        let groups = n.div_ceil(GROUP_ROWS);
        self.marks.resize((groups + 1) * blocks, 0);
        // The scales padded to whole blocks of four (1 without a transform: exact).
        self.scale.clear();
        match scale {
            Some(s) => self.scale.extend_from_slice(s),
            None => self.scale.resize(cols, T::one()),
        }
        self.scale.resize(cols.next_multiple_of(4), T::zero());
        let (scale, _) = self.scale.as_chunks::<4>();
        let marks = |next: &[u32], marks: &mut [u32], g: usize| {
            marks[g * blocks..(g + 1) * blocks].copy_from_slice(next);
        };
        // Pass 2: place them, rows in order, marking where each row group starts.
        for i in 0..n {
            if i % GROUP_ROWS == 0 {
                marks(&self.next, &mut self.marks, i / GROUP_ROWS);
            }
            // i < n < 2^32 (checked by `reset`).
            let r = i as u32;
            if group == 4 {
                let (val, _) = self.val.as_chunks_mut::<4>();
                for &(j, b) in row(i) {
                    let j = usize::from(j);
                    let at = self.next[j] as usize;
                    self.next[j] += 1;
                    self.row[at] = r;
                    let s = &scale[j];
                    val[at] = [0, 1, 2, 3].map(|q| T::from_byte(b[q]) * s[q]);
                }
            } else {
                let (val, _) = self.val.as_chunks_mut::<2>();
                for &(j, b) in row(i) {
                    let j = usize::from(j);
                    let s = &scale[j];
                    for half in 0..2 {
                        let q = 2 * half;
                        if b[q] | b[q + 1] == 0 {
                            continue;
                        }
                        let block = 2 * j + half;
                        let at = self.next[block] as usize;
                        self.next[block] += 1;
                        self.row[at] = r;
                        val[at] = [0, 1].map(|k| T::from_byte(b[q + k]) * s[q + k]);
                    }
                }
            }
        }
        marks(&self.next, &mut self.marks, groups);
        Ok(())
    }
}

/// How many rows ahead the gather prefetches a row's stored blocks.
const PREFETCH_ROWS: usize = 4;

/// Asks the CPU to start loading `data` into the caches: a hint, with no effect on any
/// result.
#[inline(always)]
fn prefetch<U>(data: &[U]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = data.as_ptr().cast::<i8>();
        for offset in (0..std::mem::size_of_val(data)).step_by(64) {
            // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has; a prefetch
            // never faults and changes no memory, and `p + offset` lies within `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Writes entries into their blocks for [`ColumnBlocks::place`].
struct Placer<'a, T> {
    next: Vec<u32>,
    row: &'a mut [u32],
    val: &'a mut [T],
    marks: &'a mut [u32],
    blocks: usize,
    group: usize,
    /// The entry being filled.
    at: usize,
    /// The next row group whose marks are not yet recorded.
    next_group: usize,
}

impl<T: Scalar> Placer<'_, T> {
    /// Starts the entry of row `i` in column block `j`.
    #[inline(always)]
    fn start(&mut self, j: usize, i: usize) {
        let g = i / GROUP_ROWS;
        if g >= self.next_group {
            self.mark_until(g);
        }
        self.at = self.next[j] as usize;
        self.next[j] += 1;
        // i < rows < 2^32 (checked by `reset`).
        self.row[self.at] = i as u32;
    }

    /// Sets value `q` of the current entry.
    #[inline(always)]
    fn set(&mut self, q: usize, v: T) {
        self.val[self.at * self.group + q] = v;
    }

    /// Records where row groups `next_group..=g` start in every block.
    fn mark_until(&mut self, g: usize) {
        while self.next_group <= g {
            let at = self.next_group * self.blocks;
            self.marks[at..at + self.blocks].copy_from_slice(&self.next[..self.blocks]);
            self.next_group += 1;
        }
    }
}

/// Column blocks of `group` for `cols` columns: the width rounded up to whole blocks of
/// four (a dataset's stored blocks), so both widths cover the same padded columns.
fn block_count(cols: usize, group: usize) -> usize {
    cols.next_multiple_of(4) / group
}

fn check_group(group: usize) -> Result<()> {
    if group == 2 || group == 4 {
        Ok(())
    } else {
        Err(Error::param("column block width", group, "must be 2 or 4"))
    }
}

/// `out = act(start + a[:, pixels]·w[pixels, :])` for the row-stacked `parts` (see the
/// [module docs](self)), with `start` the bias row (or zero, `None`): the forward over one
/// range of the pixels, which starts on a column block and ends on one or at the width.
/// The activation applies to what is written, so it belongs with a range of all the
/// pixels; the first layer's forward cut in two (`model/blocked.rs`) adds the halves and
/// activates the sum itself. `w` must have contiguous rows.
///
/// ```
/// use downhill::kernels::sparse::{sparse_forward, ColumnBlocks};
/// use downhill::matrix::Matrix;
///
/// // a = [[0, 2], [1, 0]], w = [[1, 2, 3], [4, 5, 6]], bias [1, 1, 1].
/// let a = ColumnBlocks::from_rows(2, 2, &[vec![(1, 2.0)], vec![(0, 1.0)]])?;
/// let w = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3)?;
/// let mut out = Matrix::<f64>::zeros(2, 3)?;
/// sparse_forward(&[&a], 0..2, w.as_ref(), Some(&[1.0; 3]), None, out.as_mut())?;
/// assert_eq!(out.as_slice(), &[9.0, 11.0, 13.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn sparse_forward<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    w: MatRef<'_, T>,
    bias: Option<&[T]>,
    act: Option<Activation>,
    out: MatMut<'_, T>,
) -> Result<()> {
    sparse_forward_with_offset(parts, pixels, w, bias, None, act, false, out)
}

/// [`sparse_forward`] with every row's start also holding `oᵀ·w[pixels, :]` (`offset = Some(o)`,
/// `o` indexed by pixel within `pixels`): a standardised input's constant offset, folded out of
/// the sparse values (`model/blocked.rs`). It is computed per panel of `w`, just before the
/// panel serves the rows, so `w` is read from memory once for both.
///
/// With `add_to`, each output row is added to the one `out` holds as the panel is copied
/// out (`out + row`, then `act`): the sum of two ranges of pixels, one pass over `out`
/// fewer than writing the second range apart and adding afterwards, and the same bits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sparse_forward_with_offset<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    w: MatRef<'_, T>,
    bias: Option<&[T]>,
    offset: Option<&[T]>,
    act: Option<Activation>,
    add_to: bool,
    mut out: MatMut<'_, T>,
) -> Result<()> {
    const WHERE: &str = "kernels::sparse_forward";
    let (cols, _) = check_parts(WHERE, parts, &pixels)?;
    let n = out.cols();
    let rows: usize = parts.iter().map(|p| p.rows()).sum();
    same_size(WHERE, "rows of w", cols, w.rows())?;
    same_size(WHERE, "output rows (all parts' rows)", rows, out.rows())?;
    same_size(WHERE, "output columns", w.cols(), n)?;
    if let Some(b) = bias {
        same_size(WHERE, "bias length", n, b.len())?;
    }
    if let Some(o) = offset {
        same_size(WHERE, "offset length (the pixels')", pixels.len(), o.len())?;
    }
    contiguous_rows(WHERE, "column stride of w (rows must be contiguous)", &w)?;
    if rows == 0 || n == 0 {
        return Ok(());
    }
    // No pixels: the start rows only (the kernel walks the blocks the range touches, and an
    // empty range off a block boundary would still touch one).
    let pixels = if pixels.is_empty() { 0..0 } else { pixels };
    let x = Forward {
        parts,
        pixels,
        w: w.data(),
        wrs: w.row_stride(),
        bias,
        offset,
        act,
        add_to,
        ors: out.row_stride(),
        out: out.data_mut(),
        n,
    };
    forward_dispatch(x);
    Ok(())
}

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

/// `out[k − pixels.start, :] = β·out[..] + u[k]·c + Σ (parts stacked)ᵀ[k, :]·dz` for the
/// columns `k` in `pixels` of the row-stacked `parts` (see the [module docs](self)): the
/// weight gradient's rows `pixels`. `parts` share width and block width; `pixels` starts on
/// a block boundary and ends on one or at the width; `rank1 = Some((u, c))` adds `u ⊗ c`
/// (`u` indexed by pixel within `pixels`). `dz` and `out` must have contiguous rows.
///
/// Returns the largest magnitude it wrote, `+∞` if any value it wrote is not finite
/// (measured in registers as the tiles are stored: no pass over `out`).
///
/// Each call allocates the buffer it packs `dz`'s panels into (the rows of `dz` × one
/// panel, at most 256 bytes); a caller that calls it in a loop can lend one instead with
/// [`sparse_weight_grad_with`].
///
/// ```
/// use downhill::kernels::sparse::{sparse_weight_grad, ColumnBlocks};
/// use downhill::matrix::Matrix;
///
/// // aᵀ·dz with a = [[0, 2], [1, 0]] and dz = [[1, 2], [3, 4]]: [[3, 4], [2, 4]].
/// let a = ColumnBlocks::from_rows(2, 2, &[vec![(1, 2.0)], vec![(0, 1.0)]])?;
/// let dz = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0], 2, 2)?;
/// let mut dw = Matrix::<f64>::zeros(2, 2)?;
/// sparse_weight_grad(&[&a], 0..2, dz.as_ref(), 0.0, None, dw.as_mut())?;
/// assert_eq!(dw.as_slice(), &[3.0, 4.0, 2.0, 4.0]);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn sparse_weight_grad<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    dz: MatRef<'_, T>,
    beta: T,
    rank1: Option<(&[T], &[T])>,
    out: MatMut<'_, T>,
) -> Result<T> {
    let mut packed = Vec::new();
    sparse_weight_grad_with(parts, pixels, dz, beta, rank1, out, &mut packed)
}

/// [`sparse_weight_grad`] with the buffer it packs `dz`'s panels into lent by the caller:
/// `packed` is resized to the rows of `dz` × one panel (at most 256 bytes; its old contents
/// do not matter), so a training loop that lends the same one every step allocates only on
/// the first.
///
/// ```
/// use downhill::kernels::sparse::{sparse_weight_grad_with, ColumnBlocks};
/// use downhill::matrix::Matrix;
///
/// let a = ColumnBlocks::from_rows(2, 2, &[vec![(1, 2.0)], vec![(0, 1.0)]])?;
/// let dz = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0], 2, 2)?;
/// let (mut dw, mut packed) = (Matrix::<f64>::zeros(2, 2)?, Vec::new());
/// for _ in 0..3 {
///     sparse_weight_grad_with(&[&a], 0..2, dz.as_ref(), 0.0, None, dw.as_mut(), &mut packed)?;
/// }
/// assert_eq!(dw.as_slice(), &[3.0, 4.0, 2.0, 4.0]);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn sparse_weight_grad_with<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    dz: MatRef<'_, T>,
    beta: T,
    rank1: Option<(&[T], &[T])>,
    out: MatMut<'_, T>,
    packed: &mut Vec<T>,
) -> Result<T> {
    const WHERE: &str = "kernels::sparse_weight_grad";
    let checked =
        sparse_weight_grad_checked(WHERE, parts, pixels, dz, beta, rank1, out, packed, None);
    checked.map(|(peak, _)| peak)
}

/// The weight gradient's shape checks and kernel, with or without a step to take.
#[allow(clippy::too_many_arguments)]
fn sparse_weight_grad_checked<T: Scalar>(
    context: &'static str,
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    dz: MatRef<'_, T>,
    beta: T,
    rank1: Option<(&[T], &[T])>,
    mut out: MatMut<'_, T>,
    packed: &mut Vec<T>,
    step: Option<StepRows<'_, T>>,
) -> Result<(T, T)> {
    let _ = check_parts(context, parts, &pixels)?;
    let rows: usize = parts.iter().map(|p| p.rows()).sum();
    let n = out.cols();
    same_size(context, "rows of dz (all parts' rows)", rows, dz.rows())?;
    same_size(context, "output rows", pixels.len(), out.rows())?;
    same_size(context, "output columns", dz.cols(), n)?;
    if let Some((u, c)) = rank1 {
        same_size(context, "rank-1 u length", pixels.len(), u.len())?;
        same_size(context, "rank-1 c length", n, c.len())?;
    }
    contiguous_rows(
        context,
        "column stride of dz (rows must be contiguous)",
        &dz,
    )?;
    if pixels.is_empty() || n == 0 {
        return Ok((T::zero(), T::zero()));
    }
    let x = WeightGrad {
        parts,
        pixels,
        dz: dz.data(),
        dzrs: dz.row_stride(),
        rows,
        packed,
        beta,
        rank1,
        ors: out.row_stride(),
        out: out.data_mut(),
        n,
        peak: T::zero(),
        step,
        step_peak: T::zero(),
    };
    Ok(weight_grad_dispatch(x))
}

/// The parameters whose gradient [`sparse_weight_grad_stepping`] computes, and the update
/// step it applies to them: `w` laid out as the gradient would be (rows of its width,
/// contiguous), the rule's state buffers beside it (each as long as `w`, or empty for a
/// buffer the rule does not keep).
pub(crate) struct StepRows<'a, T> {
    pub(crate) pass: Pass<T>,
    pub(crate) w: &'a mut [T],
    pub(crate) s0: &'a mut [T],
    pub(crate) s1: &'a mut [T],
}

/// [`sparse_weight_grad_with`] that takes `step`'s update of the parameters instead of
/// writing their gradient: each panel row of the gradient, as it leaves the registers,
/// steps the same panel row of `step.w` and its state in place (the rules' own arithmetic,
/// `kernels/update.rs`: the same bits as a pass over the written gradient afterwards),
/// while the row of `w` and its state are read and written once, rather than the gradient
/// written, then read back beside them. `out` is never written (it is read for `β ≠ 0`,
/// the gradient so far). Returns the largest magnitude the step wrote, to the parameters
/// and to their state alike.
///
/// Nothing here checks what the step writes: the caller must have proved it finite
/// ([`stays_finite`](crate::kernels::update::stays_finite)) from a bound on the gradient
/// that holds before it is computed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sparse_weight_grad_stepping<T: Scalar>(
    parts: &[&ColumnBlocks<T>],
    pixels: Range<usize>,
    dz: MatRef<'_, T>,
    beta: T,
    rank1: Option<(&[T], &[T])>,
    out: MatMut<'_, T>,
    packed: &mut Vec<T>,
    step: StepRows<'_, T>,
) -> Result<T> {
    const WHERE: &str = "kernels::sparse_weight_grad_stepping";
    let len = out.rows() * out.cols();
    same_size(
        WHERE,
        "output row stride (rows must be contiguous)",
        out.cols(),
        out.row_stride(),
    )?;
    same_size(WHERE, "parameters (the output's size)", len, step.w.len())?;
    step.pass
        .rule
        .check_state(WHERE, len, [&*step.s0, &*step.s1])?;
    let checked = sparse_weight_grad_checked(
        WHERE,
        parts,
        pixels,
        dz,
        beta,
        rank1,
        out,
        packed,
        Some(step),
    );
    checked.map(|(_, stepped)| stepped)
}

/// Everything the forward body needs, checked by [`sparse_forward`].
struct Forward<'a, 'o, T> {
    parts: &'a [&'a ColumnBlocks<T>],
    pixels: Range<usize>,
    w: &'a [T],
    wrs: usize,
    bias: Option<&'a [T]>,
    /// `o` of the pixels, for the start rows' `oᵀ·w[pixels, :]`.
    offset: Option<&'a [T]>,
    act: Option<Activation>,
    /// Add each output row to what `out` holds (`out + row`, then the activation) instead
    /// of overwriting it.
    add_to: bool,
    out: &'o mut [T],
    ors: usize,
    n: usize,
}

/// Everything the weight-gradient body needs, checked by [`sparse_weight_grad`].
struct WeightGrad<'a, 'o, T> {
    parts: &'a [&'a ColumnBlocks<T>],
    pixels: Range<usize>,
    dz: &'a [T],
    dzrs: usize,
    /// The rows of `dz` (all parts').
    rows: usize,
    /// The panel of `dz` being worked on, its rows contiguous (`W` apart).
    packed: &'o mut Vec<T>,
    beta: T,
    rank1: Option<(&'a [T], &'a [T])>,
    out: &'o mut [T],
    ors: usize,
    n: usize,
    /// The largest magnitude written so far (`+∞` once a written value was not finite).
    peak: T,
    /// The parameters to step instead of writing their gradient, if any.
    step: Option<StepRows<'o, T>>,
    /// The largest magnitude the step wrote, to the parameters and their state alike.
    step_peak: T,
}

/// The forward for one panel of `W` columns at `c0`, one row group of one part (whose rows
/// start at output row `first_row`), over the pixel blocks of the range.
///
/// The group's output panel is built in a contiguous tile, not in place: output rows are a
/// power-of-two apart (1 KiB at 256 columns, 4 KiB at 1024), so their panels fall in the
/// same few L1 sets and evict each other; the tile's rows fall in consecutive sets.
#[inline(always)]
fn forward_panel<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    x: &mut Forward<'_, '_, T>,
    a: &ColumnBlocks<T>,
    first_row: usize,
    c0: usize,
    group: usize,
    start: &[T; W],
) {
    let blocks = a.blocks();
    let first = group * GROUP_ROWS;
    let rows = first..((group + 1) * GROUP_ROWS).min(a.rows);
    let mut out = [*start; GROUP_ROWS];
    for j in x.pixels.start / G..x.pixels.end.div_ceil(G) {
        let from = a.marks[group * blocks + j] as usize;
        let to = a.marks[(group + 1) * blocks + j] as usize;
        if from == to {
            continue;
        }
        // The block's G rows of the panel of w (zero past the last column of a).
        let mut wt = [[T::zero(); W]; G];
        for (q, t) in wt.iter_mut().enumerate() {
            let k = j * G + q;
            if k < a.cols {
                *t = *tile::<T, W>(x.w, k * x.wrs + c0);
            }
        }
        let (vals, _) = a.val[from * G..to * G].as_chunks::<G>();
        for (&i, v) in a.row[from..to].iter().zip(vals) {
            // Entries of this group have rows in `rows`: the marks say so.
            let o = &mut out[i as usize - first];
            let mut acc = *o;
            for q in 0..G {
                for l in 0..W {
                    acc[l] = M::mul_add(v[q], wt[q][l], acc[l]);
                }
            }
            *o = acc;
        }
    }
    for (i, tile) in rows.zip(&mut out) {
        let dst = tile_mut::<T, W>(x.out, (first_row + i) * x.ors + c0);
        if x.add_to {
            for l in 0..W {
                tile[l] = dst[l] + tile[l];
            }
        }
        if let Some(act) = x.act {
            activate(act, tile);
        }
        *dst = *tile;
    }
}

/// The weight gradient for one panel of `W` columns at `c0`, every pixel block of the range.
// Indexed loops over the tile, not iterators: with the tile borrowed by an iterator that
// can stop early the compiler keeps it in memory.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn weight_grad_panel<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    x: &mut WeightGrad<'_, '_, T>,
    c0: usize,
) {
    let p0 = x.pixels.start;
    let end = x.pixels.end.min(x.parts[0].cols);
    // The panel of dz, packed (see the module docs); `weight_grad_body` sized the buffer.
    let dz = &mut x.packed[..x.rows * W];
    for (i, row) in dz.chunks_exact_mut(W).enumerate() {
        row.copy_from_slice(tile::<T, W>(x.dz, i * x.dzrs + c0));
    }
    // The panel's largest magnitudes, lane by lane, and `Σ v·0` (NaN once a value was
    // infinite or NaN), as `magnitude` (kernels/update.rs) keeps them: the caller then
    // needs no pass of its own over what was written.
    let zero = T::zero();
    let (mut top, mut bad) = ([zero; W], [zero; W]);
    for j in p0 / G..x.pixels.end.div_ceil(G) {
        // The block's G rows of the panel of dW, in registers: indexed loops only, so the
        // compiler keeps the tile out of memory.
        let mut acc = [[T::zero(); W]; G];
        for q in 0..G {
            let k = j * G + q;
            if k >= end {
                continue;
            }
            if x.beta != T::zero() {
                let o = tile::<T, W>(x.out, (k - p0) * x.ors + c0);
                for l in 0..W {
                    acc[q][l] = x.beta * o[l];
                }
            }
            if let Some((u, c)) = x.rank1 {
                let (uk, c) = (u[k - p0], tile::<T, W>(c, c0));
                for l in 0..W {
                    acc[q][l] = M::mul_add(uk, c[l], acc[q][l]);
                }
            }
        }
        let mut first_row = 0;
        for part in x.parts {
            acc = accumulate::<T, M, G, W>(acc, part, j, first_row, x.packed);
            first_row += part.rows;
        }
        if let Some(step) = &mut x.step {
            // The block's rows of the parameters stepped from the tile in registers; the
            // gradient is not stored (storing it cost more than the step saves: its rows
            // are out of cache, and each store reads its line first). `top` keeps the
            // largest magnitude the step writes, to the parameters and their state alike.
            // The output's rows are contiguous (checked), so a row of the panel sits at the
            // same place in the parameters and their state.
            for q in 0..G {
                let k = j * G + q;
                if k < end {
                    let at = (k - p0) * x.ors + c0;
                    let (s0, s1) = (piece(step.s0, at, W), piece(step.s1, at, W));
                    let w = tile_mut::<T, W>(step.w, at);
                    step_tile(&step.pass, w, acc[q], s0, s1, &mut top);
                }
            }
            continue;
        }
        for q in 0..G {
            let k = j * G + q;
            if k < end {
                *tile_mut::<T, W>(x.out, (k - p0) * x.ors + c0) = acc[q];
                for l in 0..W {
                    top[l] = bigger(top[l], acc[q][l]);
                    bad[l] = bad[l] + acc[q][l] * zero;
                }
            }
        }
    }
    if x.step.is_some() {
        let panel = top.iter().fold(zero, |m, &t| m.max(t));
        x.step_peak = x.step_peak.max(panel);
        return;
    }
    let finite = bad.iter().fold(zero, |f, &b| f + b).is_finite();
    let panel = top.iter().fold(zero, |m, &t| m.max(t));
    x.peak = if finite {
        x.peak.max(panel)
    } else {
        T::infinity()
    };
}

/// `s[at..at + len]`, or `s` itself when it is empty (a state buffer the rule does not keep).
#[inline(always)]
fn piece<T>(s: &mut [T], at: usize, len: usize) -> &mut [T] {
    if s.is_empty() {
        s
    } else {
        &mut s[at..at + len]
    }
}

/// `acc[q] += v[q]·dz[first_row + i]` over block `j`'s entries `(i, v)` of one part, with
/// `dz` the packed panel (rows `W` apart). The tile goes in and out by value: with it
/// borrowed across the loop the compiler keeps a copy in memory, a store per multiply-add.
#[inline(always)]
fn accumulate<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    mut acc: [[T; W]; G],
    part: &ColumnBlocks<T>,
    j: usize,
    first_row: usize,
    dz: &[T],
) -> [[T; W]; G] {
    let range = part.block_range(j);
    let rows = &part.row[range.clone()];
    let (vals, _) = part.val[range.start * G..range.end * G].as_chunks::<G>();
    for (&r, v) in rows.iter().zip(vals) {
        let d = tile::<T, W>(dz, (first_row + r as usize) * W);
        for q in 0..G {
            let vq = v[q];
            for l in 0..W {
                acc[q][l] = M::mul_add(vq, d[l], acc[q][l]);
            }
        }
    }
    acc
}

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

/// The forward over every panel and row group: panels of `W` columns, then the tail in
/// panels of 8 and of 1. Panels outside, so that a panel of `W₁` (784 rows × 256 bytes)
/// stays in L2 while every row group uses it.
#[inline(always)]
fn forward_body<T: Scalar, M: MulAdd, const G: usize, const W: usize>(mut x: Forward<'_, '_, T>) {
    by_panels!(forward_column, x, T, M, G, W);
}

/// One panel of the forward: every row group of every part. (A function, not a closure:
/// a closure is not always inlined into the target-feature function that calls it, and
/// then it is compiled for the baseline CPU, multiply-adds and all.)
#[inline(always)]
fn forward_column<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    x: &mut Forward<'_, '_, T>,
    c0: usize,
) {
    // The panel of every row's start: the bias (or zero), then oₖ·w[k, panel] for the
    // pixels in order, skipping zeros of o.
    let mut start = match x.bias {
        Some(b) => *tile::<T, W>(b, c0),
        None => [T::zero(); W],
    };
    if let Some(o) = x.offset {
        for (k, &ok) in x.pixels.clone().zip(o) {
            if ok != T::zero() {
                let w = tile::<T, W>(x.w, k * x.wrs + c0);
                for l in 0..W {
                    start[l] = M::mul_add(ok, w[l], start[l]);
                }
            }
        }
    }
    let mut first_row = 0;
    for a in x.parts {
        for g in 0..a.rows.div_ceil(GROUP_ROWS) {
            forward_panel::<T, M, G, W>(x, a, first_row, c0, g, &start);
        }
        first_row += a.rows;
    }
}

/// The weight gradient over every panel, as [`forward_body`] walks them.
#[inline(always)]
fn weight_grad_body<T: Scalar, M: MulAdd, const G: usize, const W: usize>(
    mut x: WeightGrad<'_, '_, T>,
) -> (T, T) {
    // Room for the widest panel's rows (rows ≤ dz's length: the shapes were checked). What
    // the buffer held is kept, not cleared: every panel packs its rows before reading them.
    x.packed.resize(x.rows * W, T::zero());
    by_panels!(weight_grad_panel, x, T, M, G, W);
    match x.step {
        Some(_) => (T::zero(), x.step_peak),
        None => (x.peak, T::zero()),
    }
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

isa_dispatch!(forward_dispatch, Forward, |x| {
    avx512: widths!(forward_body, x, x.parts[0].group, Fused, 256, 256),
    avx2: widths!(forward_body, x, x.parts[0].group, Fused, 64, 128),
    base: widths!(forward_body, x, x.parts[0].group, Separate, 64, 64),
});
isa_dispatch!(weight_grad_dispatch, WeightGrad -> (T, T), |x| {
    avx512: widths!(weight_grad_body, x, x.parts[0].group, Fused, 256, 256),
    avx2: widths!(weight_grad_body, x, x.parts[0].group, Fused, 64, 128),
    base: widths!(weight_grad_body, x, x.parts[0].group, Separate, 64, 64),
});

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // the tests index dense matrices by (row, column)
mod tests {
    use super::*;
    use crate::matrix::Matrix;

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
                for (i, (&got, &plain)) in
                    shifted.as_slice().iter().zip(second.as_slice()).enumerate()
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
            crate::kernels::gemm(1.0, dense_a.as_ref().t(), dz.as_ref(), 0.0, want.as_mut())
                .unwrap();
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
                    let peak =
                        sparse_weight_grad(&[&a, &b], range.clone(), dz.as_ref(), 2.0, r1, view)
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
            let p1 = sparse_weight_grad(&[&a], 0..inner, dz.as_ref(), 0.5, None, view).unwrap();
            let view = MatMut::new(&mut reused, inner, cols).unwrap();
            let p2 =
                sparse_weight_grad_with(&[&a], 0..inner, dz.as_ref(), 0.5, None, view, &mut lent)
                    .unwrap();
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
                let got = sparse_weight_grad(&[&a], 0..inner, poisoned.as_ref(), 0.0, None, view);
                assert_eq!(got.unwrap(), f64::INFINITY, "dz[{at}] = {bad}");
            }
            let mut out = vec![0.0; inner * cols];
            out[inner * cols / 2] = bad;
            let view = MatMut::new(&mut out, inner, cols).unwrap();
            let got = sparse_weight_grad(&[&a], 0..inner, dz.as_ref(), 1.0, None, view);
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
        let e = sparse_weight_grad(&[&a], 1..4, dz.as_ref(), 0.0, None, dw.as_mut()).unwrap_err();
        assert!(matches!(e.kind(), InvalidParameter { .. }));
        assert!(sparse_weight_grad(&[&a], 2..5, dz.as_ref(), 0.0, None, dw.as_mut()).is_err());
        assert!(sparse_weight_grad(&[&a], 2..8, dz.as_ref(), 0.0, None, dw.as_mut()).is_err());
        assert!(sparse_weight_grad(&[&a, &a], 2..5, dz.as_ref(), 0.0, None, dw.as_mut()).is_err());
        let mut dw4 = Matrix::<f32>::zeros(4, 2).unwrap();
        assert!(sparse_weight_grad(&[&a], 2..6, dz.as_ref(), 0.0, None, dw4.as_mut()).is_ok());
        assert!(
            sparse_weight_grad::<f32>(&[], 0..0, dz.as_ref(), 0.0, None, dw4.as_mut()).is_err()
        );
    }
}
