//! The nonzero pixels of a byte dataset, row by row: what the sparse first layer reads.
//!
//! MNIST's digits are 81% zero pixels. Each image is kept as the blocks of four
//! neighbouring pixels that have a nonzero one — the block's index (a `u16`) and its four
//! bytes — the form the sparse kernels read (`kernels/sparse.rs`: blocks of neighbours let
//! one row of `W₁` serve every lit pixel next to it). On the shipped digits a row has 41
//! blocks on average for 150 nonzero pixels: a 60,000-image set takes 15 MB next to its
//! 47 MB of dense bytes.
//!
//! The form is built once per dataset, on first use, and only for a dataset whose rows fit
//! `u16` block indices (up to 262,144 features); a model asks for it only when the
//! dataset's measured [`density`](crate::data::Dataset::density) is below the sparse path's
//! crossover (see [`Mlp`](crate::model::Mlp)).

use crate::kernels::sparse::ByteBlock;

/// The blocks of four columns with a nonzero byte, row by row: row `r`'s are
/// `blocks[ptr[r]..ptr[r + 1]]`, block indices increasing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SparseBytes {
    pub ptr: Vec<usize>,
    pub blocks: Vec<ByteBlock>,
    /// How many rows have a nonzero in each block of four columns: the sparse kernels'
    /// work per block (for [`balanced_range`]).
    pub block_rows: Vec<usize>,
}

impl SparseBytes {
    /// The nonzero blocks of `bytes`, rows `width` long; `None` if a block index does not
    /// fit a `u16`.
    pub fn new(bytes: &[u8], width: usize) -> Option<Self> {
        if width == 0 || width.div_ceil(4) > usize::from(u16::MAX) + 1 {
            return None;
        }
        let count = bytes
            .chunks_exact(width)
            .flat_map(|row| row.chunks(4))
            .filter(|b| b.iter().any(|&v| v != 0))
            .count();
        let mut s = SparseBytes {
            ptr: Vec::with_capacity(bytes.len() / width + 1),
            blocks: Vec::with_capacity(count),
            block_rows: vec![0; width.div_ceil(4)],
        };
        s.ptr.push(0);
        for row in bytes.chunks_exact(width) {
            for (j, b) in row.chunks(4).enumerate() {
                if b.iter().any(|&v| v != 0) {
                    let mut four = [0u8; 4];
                    four[..b.len()].copy_from_slice(b);
                    // j < width / 4 ≤ 65,536: it fits.
                    s.blocks.push((j as u16, four));
                    s.block_rows[j] += 1;
                }
            }
            s.ptr.push(s.blocks.len());
        }
        Some(s)
    }

    /// Row `r`'s blocks.
    pub fn row(&self, r: usize) -> &[ByteBlock] {
        &self.blocks[self.ptr[r]..self.ptr[r + 1]]
    }
}

/// Piece `i` of `pieces` of the columns `0..width`, cut on boundaries of the blocks of four
/// so that each piece holds about the same share of `block_rows` (the rows lit in each
/// block: the sparse kernels' work), rather than the same number of columns: a digit's
/// lower half is lit 11% more than its upper half. With no work at all, even pieces.
pub(crate) fn balanced_range(
    block_rows: &[usize],
    pieces: usize,
    i: usize,
    width: usize,
) -> std::ops::Range<usize> {
    let pieces = pieces.max(1);
    let total: usize = block_rows.iter().sum();
    // Without a profile (none measured), even pieces of the blocks of `width`.
    let blocks = match block_rows.len() {
        0 => width.div_ceil(4),
        n => n,
    };
    // The first block at which piece `p` starts: where the running sum reaches p/pieces of
    // the total (or, with no work, p/pieces of the blocks).
    let start_of = |p: usize| -> usize {
        if p == 0 {
            return 0;
        }
        if p >= pieces {
            return blocks;
        }
        if total == 0 {
            return blocks * p / pieces;
        }
        let goal = total as u128 * p as u128;
        let mut sum = 0u128;
        for (j, &c) in block_rows.iter().enumerate() {
            if sum * pieces as u128 >= goal {
                return j;
            }
            sum += c as u128;
        }
        blocks
    };
    let (a, b) = (start_of(i), start_of(i + 1));
    (4 * a).min(width)..(4 * b).min(width)
}

/// The fraction of nonzero bytes.
pub(crate) fn density(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    bytes.iter().filter(|&&b| b != 0).count() as f64 / bytes.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_pieces_cover_the_columns_on_block_boundaries_with_even_work() {
        // Work rising along the columns (a digit's lower half is lit more).
        let width: usize = 783;
        let block_rows: Vec<usize> = (0..width.div_ceil(4)).map(|j| j % 7 + j / 10).collect();
        let total: usize = block_rows.iter().sum();
        for pieces in 1..5 {
            let ranges: Vec<_> = (0..pieces)
                .map(|i| balanced_range(&block_rows, pieces, i, width))
                .collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[pieces - 1].end, width);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert_eq!(w[1].start % 4, 0);
            }
            let heaviest = *block_rows.iter().max().unwrap();
            for r in &ranges {
                let work: usize = block_rows[r.start / 4..r.end.div_ceil(4)].iter().sum();
                let even = total / pieces;
                assert!(
                    work.abs_diff(even) <= heaviest + 1,
                    "{pieces}: {r:?} has {work}"
                );
            }
            // Not the even split of the columns: the work is not even across them.
            if pieces == 2 {
                assert!(ranges[0].end > width / 2 + 8, "{ranges:?}");
            }
        }
        // No work, or no profile: even pieces.
        assert_eq!(balanced_range(&[0; 4], 2, 0, 16), 0..8);
        assert_eq!(balanced_range(&[], 2, 1, 16), 8..16);
        assert_eq!(balanced_range(&[], 1, 0, 10), 0..10);
    }
}
