//! The column-block format both sparse products read, and the gather that builds it from
//! a dataset's stored nonzeros.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::kernels::sparse::GROUP_ROWS;
use crate::kernels::update::magnitude;
use crate::scalar::Scalar;
use crate::validate::same_size;

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
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) group: usize,
    /// Entries of column block `j`: `ptr[j]..ptr[j + 1]`.
    pub(super) ptr: Vec<u32>,
    /// Each entry's row.
    pub(super) row: Vec<u32>,
    /// Each entry's `group` values.
    pub(super) val: Vec<T>,
    /// `marks[g·blocks + j]`: the first entry of block `j` at row `GROUP_ROWS·g` or after,
    /// for `g` in `0..=row_groups` (the last is `ptr[j + 1]`).
    pub(super) marks: Vec<u32>,
    /// The gather's scratch: where each block's next entry goes, and the scales padded to
    /// whole blocks of four.
    pub(super) next: Vec<u32>,
    pub(super) scale: Vec<T>,
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
    /// # #[cfg(feature = "internals")] {
    /// use downhill::kernels::sparse::ColumnBlocks;
    ///
    /// let a = ColumnBlocks::<f32>::from_rows(5, 2, &[vec![(0, 1.0), (4, 2.0)], vec![(1, 3.0)]])?;
    /// assert_eq!((a.rows(), a.cols(), a.entries()), (2, 5, 3));
    /// # }
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

    pub(super) fn blocks(&self) -> usize {
        self.ptr.len() - 1
    }

    pub(super) fn block_range(&self, j: usize) -> Range<usize> {
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
