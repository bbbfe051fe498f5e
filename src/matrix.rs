//! A small row-major matrix and borrowed, strided views of one.
//!
//! The crate needs very little from a matrix type: an owned buffer with a shape, read-only
//! views whose strides can express a transpose (so `Xᵀ·dZ` needs no transposed copy), and
//! mutable views of row-major output. Those three are [`Matrix`], [`MatRef`] and [`MatMut`].
//!
//! The views' fields are private and every constructor checks that the shape and strides
//! fit the buffer. That invariant is what the `unsafe` matrix product in `kernels/gemm.rs`
//! rests on, so it is established here and nowhere else.
//!
//! ```
//! use downhill::matrix::{Matrix, MatRef};
//!
//! let m = Matrix::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3)?;
//! let t: MatRef<'_, f64> = m.as_ref().t();
//! assert_eq!((t.rows(), t.cols()), (3, 2));
//! assert_eq!(t.get(2, 1), Some(6.0));
//! # Ok::<(), downhill::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::validate::same_size;

/// An owned row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
}

fn checked_len(rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols).ok_or_else(|| {
        Error::param(
            "matrix shape",
            format!("{rows} × {cols}"),
            "rows × cols overflows usize",
        )
    })
}

impl<T: Copy + Default> Matrix<T> {
    /// A `rows × cols` matrix of zeros (`T::default()`).
    pub fn zeros(rows: usize, cols: usize) -> Result<Self> {
        let len = checked_len(rows, cols)?;
        Ok(Matrix {
            data: vec![T::default(); len],
            rows,
            cols,
        })
    }
}

impl<T> Matrix<T> {
    /// Wraps `data` (row-major, `rows * cols` long) as a matrix.
    pub fn from_vec(data: Vec<T>, rows: usize, cols: usize) -> Result<Self> {
        let len = checked_len(rows, cols)?;
        same_size(
            "Matrix::from_vec",
            "element count (rows × cols)",
            len,
            data.len(),
        )?;
        Ok(Matrix { data, rows, cols })
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// The elements, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }
    /// The elements, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }
    /// Row `r`, or `None` if out of range.
    pub fn row(&self, r: usize) -> Option<&[T]> {
        (r < self.rows).then(|| &self.data[r * self.cols..(r + 1) * self.cols])
    }
    /// Gives back the row-major buffer.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }
    /// A read-only view of the whole matrix.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        // A matrix's buffer is exactly rows × cols: the view's invariant holds.
        MatRef {
            data: &self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.cols,
            cs: 1,
        }
    }
    /// A mutable view of the whole matrix.
    pub fn as_mut(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: &mut self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.cols,
        }
    }
}

/// The shape accessors [`MatRef`] and [`MatMut`] share.
macro_rules! shape_accessors {
    () => {
        /// Number of rows.
        pub fn rows(&self) -> usize {
            self.rows
        }
        /// Number of columns.
        pub fn cols(&self) -> usize {
            self.cols
        }
        /// Distance between consecutive rows, in elements.
        pub fn row_stride(&self) -> usize {
            self.rs
        }
    };
}

/// A read-only view of a matrix with arbitrary (non-negative) row and column strides.
///
/// Invariant, checked on construction: every element `(r, c)` with `r < rows`, `c < cols`
/// sits at `r * row_stride + c * col_stride < data.len()`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// Checks that every element of a `rows × cols` view with strides `(rs, cs)` lies inside a
/// buffer of `len` elements.
fn check_extent(
    context: &'static str,
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)));
    match last {
        Some(last) if last < len => Ok(()),
        Some(last) => Err(Error::shape(context, "buffer length", last + 1, len)),
        None => Err(Error::param(
            "view strides",
            format!("{rows} × {cols} with strides ({rs}, {cs})"),
            "the extent overflows usize",
        )),
    }
}

impl<'a, T: Copy> MatRef<'a, T> {
    /// A row-major view of `data` as `rows × cols`; `data` must hold at least `rows * cols`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        Self::with_strides(data, rows, cols, cols, 1)
    }
    /// A view with explicit strides: element `(r, c)` is `data[r * row_stride + c * col_stride]`.
    pub fn with_strides(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        check_extent(
            "MatRef::with_strides",
            data.len(),
            rows,
            cols,
            row_stride,
            col_stride,
        )?;
        Ok(MatRef {
            data,
            rows,
            cols,
            rs: row_stride,
            cs: col_stride,
        })
    }
    /// An empty `0 × 0` view.
    pub fn empty() -> Self {
        MatRef {
            data: &[],
            rows: 0,
            cols: 0,
            rs: 0,
            cs: 1,
        }
    }
    shape_accessors!();
    /// Distance between consecutive columns, in elements.
    pub fn col_stride(&self) -> usize {
        self.cs
    }
    /// The buffer the view reads (element `(r, c)` is at `r * row_stride + c * col_stride`).
    pub fn data(&self) -> &'a [T] {
        self.data
    }
    /// The transpose, as a view of the same memory (strides swapped, nothing copied).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    /// Element `(r, c)`, or `None` if out of range.
    pub fn get(&self, r: usize, c: usize) -> Option<T> {
        (r < self.rows && c < self.cols).then(|| self.data[r * self.rs + c * self.cs])
    }
    /// Row `r` as a slice, when the view's columns are contiguous (`col_stride == 1`).
    pub fn row(&self, r: usize) -> Option<&'a [T]> {
        (r < self.rows && (self.cs == 1 || self.cols <= 1))
            .then(|| &self.data[r * self.rs..r * self.rs + self.cols])
    }
    /// Copies row `r` into `dst`, which must be `cols()` long.
    pub fn copy_row(&self, r: usize, dst: &mut [T]) -> Result<()> {
        if r >= self.rows {
            return Err(Error::shape(
                "MatRef::copy_row",
                "row (below the number of rows)",
                self.rows,
                r,
            ));
        }
        same_size(
            "MatRef::copy_row",
            "destination length (columns)",
            self.cols,
            dst.len(),
        )?;
        for (c, d) in dst.iter_mut().enumerate() {
            *d = self.data[r * self.rs + c * self.cs];
        }
        Ok(())
    }
    /// Rows `start..end` as a view, or `None` if the range is out of bounds.
    pub fn row_range(self, start: usize, end: usize) -> Option<Self> {
        if start > end || end > self.rows {
            return None;
        }
        let offset = if end > start { start * self.rs } else { 0 };
        Some(MatRef {
            data: &self.data[offset.min(self.data.len())..],
            rows: end - start,
            ..self
        })
    }
    /// Copies the view into an owned row-major matrix.
    pub fn to_matrix(&self) -> Matrix<T> {
        let mut data = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            data.extend((0..self.cols).map(|c| self.data[r * self.rs + c * self.cs]));
        }
        Matrix {
            data,
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// A mutable row-major view: columns are contiguous, rows `row_stride` apart
/// (`row_stride >= cols`, so no two elements alias).
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    rs: usize,
}

impl<'a, T: Copy> MatMut<'a, T> {
    /// A row-major view of `data` as `rows × cols`; `data` must hold at least `rows * cols`.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self> {
        Self::with_row_stride(data, rows, cols, cols)
    }
    /// A view whose rows are `row_stride >= cols` elements apart.
    pub fn with_row_stride(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Result<Self> {
        if row_stride < cols && rows > 1 {
            return Err(Error::shape(
                "MatMut::with_row_stride",
                "row stride (at least the columns, so rows do not alias)",
                cols,
                row_stride,
            ));
        }
        check_extent(
            "MatMut::with_row_stride",
            data.len(),
            rows,
            cols,
            row_stride,
            1,
        )?;
        Ok(MatMut {
            data,
            rows,
            cols,
            rs: row_stride,
        })
    }
    shape_accessors!();
    /// Row `r` as a slice, or `None` if out of range.
    pub fn row_mut(&mut self, r: usize) -> Option<&mut [T]> {
        (r < self.rows).then(|| &mut self.data[r * self.rs..r * self.rs + self.cols])
    }
    /// A read-only view of the same elements.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: 1,
        }
    }
    /// Reborrows the view for a shorter lifetime.
    pub fn rb(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
        }
    }
    /// The buffer the view writes, for the kernels (element `(r, c)` is at
    /// `r * row_stride + c`).
    pub(crate) fn data_mut(&mut self) -> &mut [T] {
        self.data
    }
}

/// A view a kernel reads row by row, as slices: its columns must be contiguous (column
/// stride 1, or a single column), else [`ErrorKind::Shape`](crate::error::ErrorKind::Shape)
/// with `what` naming the view's column stride. A transpose is refused, not copied.
pub(crate) fn contiguous_rows<T: Copy>(
    context: &'static str,
    what: &'static str,
    m: &MatRef<'_, T>,
) -> Result<()> {
    if m.col_stride() != 1 && m.cols() > 1 {
        return Err(Error::shape(context, what, 1, m.col_stride()));
    }
    Ok(())
}
