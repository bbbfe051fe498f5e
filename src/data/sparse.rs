//! The nonzero pixels of a byte dataset, row by row: what the sparse first layer reads.
//!
//! MNIST's digits are 81% zero pixels. Kept in compressed rows — for each image the column
//! of each nonzero pixel (a `u16`) and its byte — a 60,000-image set takes 27 MB next to
//! its 47 MB of dense bytes, and a batch's first layer touches only the nonzeros.
//!
//! The form is built once per dataset, on first use, and only for a dataset whose rows fit
//! `u16` columns (up to 65,536 features); a model asks for it only when the dataset's
//! measured [`density`](crate::data::Dataset::density) is below the sparse path's
//! crossover (see [`Mlp`](crate::model::Mlp)).

/// The nonzero bytes of each row: row `r`'s are `idx[ptr[r]..ptr[r + 1]]` (columns,
/// increasing) and `val[..]` (their values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SparseBytes {
    pub ptr: Vec<usize>,
    pub idx: Vec<u16>,
    pub val: Vec<u8>,
}

impl SparseBytes {
    /// The compressed rows of `bytes`, rows `width` long; `None` if a column does not fit a
    /// `u16`.
    pub fn new(bytes: &[u8], width: usize) -> Option<Self> {
        if width == 0 || width > usize::from(u16::MAX) + 1 {
            return None;
        }
        let nnz = bytes.iter().filter(|&&b| b != 0).count();
        let mut s = SparseBytes {
            ptr: Vec::with_capacity(bytes.len() / width + 1),
            idx: Vec::with_capacity(nnz),
            val: Vec::with_capacity(nnz),
        };
        s.ptr.push(0);
        for row in bytes.chunks_exact(width) {
            for (c, &b) in row.iter().enumerate() {
                if b != 0 {
                    // c < width ≤ 65,536: it fits.
                    s.idx.push(c as u16);
                    s.val.push(b);
                }
            }
            s.ptr.push(s.idx.len());
        }
        Some(s)
    }

    /// Row `r`'s nonzeros, as `(column, byte)`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = (u16, u8)> + '_ {
        let range = self.ptr[r]..self.ptr[r + 1];
        self.idx[range.clone()]
            .iter()
            .copied()
            .zip(self.val[range].iter().copied())
    }
}

/// The fraction of nonzero bytes.
pub(crate) fn density(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    bytes.iter().filter(|&&b| b != 0).count() as f64 / bytes.len() as f64
}
