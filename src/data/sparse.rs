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
    /// work per block (for `partition::balanced_range`).
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
            let first = s.blocks.len();
            push_blocks(row, &mut s.blocks);
            for &(j, _) in &s.blocks[first..] {
                s.block_rows[usize::from(j)] += 1;
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

/// Appends the blocks of four columns of `row` that hold a nonzero byte (the row at most
/// 262,144 wide: its block indices fit a `u16`).
pub(crate) fn push_blocks(row: &[u8], out: &mut Vec<ByteBlock>) {
    for (j, b) in row.chunks(4).enumerate() {
        if b.iter().any(|&v| v != 0) {
            let mut four = [0u8; 4];
            four[..b.len()].copy_from_slice(b);
            // j < width / 4 ≤ 65,536: it fits.
            out.push((j as u16, four));
        }
    }
}

/// The fraction of nonzero bytes.
pub(crate) fn density(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    bytes.iter().filter(|&&b| b != 0).count() as f64 / bytes.len() as f64
}
