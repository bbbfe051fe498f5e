//! How work is cut between threads: every partition of rows, columns and parameters the
//! crate makes, in one place.
//!
//! Bit-identical results on any thread count rest on these cuts: each output element is
//! computed by exactly one kernel call, so a cut decides *who* computes an element, never
//! *how*. Three kinds of cut serve that:
//!
//! * [`split_range`] — near-equal contiguous pieces of `0..len`, boundaries aligned (rows of
//!   a block between threads; columns of a bias; elements of a parameter vector);
//! * [`balanced_range`] — pieces of the pixels with equal *work*: about the same number of
//!   lit (nonzero) entries in each, measured per block of four pixels (the sparse first
//!   layer's forward halves and weight-gradient shares);
//! * [`split_rows`] and its two variants — a buffer of rows cut into the disjoint mutable
//!   pieces a list of ranges names, which is how each thread gets its own slice to write.

use std::ops::Range;

/// The `part`-th of `parts` near-equal contiguous pieces of `0..len`, as a range; pieces
/// differ in length by at most `align`, and every boundary but the last is a multiple of
/// `align` (so a matrix kernel's tiles line up).
pub(crate) fn split_range(len: usize, parts: usize, part: usize, align: usize) -> Range<usize> {
    let parts = parts.max(1);
    let align = align.max(1);
    let units = len.div_ceil(align);
    let bound = |p: usize| ((units * p / parts) * align).min(len);
    bound(part)..bound(part + 1)
}

/// All `parts` pieces of [`split_range`], in order.
pub(crate) fn split_ranges(len: usize, parts: usize, align: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    (0..parts)
        .map(|p| split_range(len, parts, p, align))
        .collect()
}

/// Piece `i` of `pieces` of the columns `0..width`, cut on boundaries of the blocks of four
/// so that each piece holds about the same share of `block_rows` (the rows lit in each
/// block: the sparse kernels' work), rather than the same number of columns: a digit's
/// lower half is lit more than its upper half. With no work at all, even pieces.
pub(crate) fn balanced_range(
    block_rows: &[usize],
    pieces: usize,
    i: usize,
    width: usize,
) -> Range<usize> {
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

/// Splits `buf` (rows of `width`) into the disjoint pieces `ranges` names (increasing, not
/// overlapping), in order.
///
/// # Panics
/// If a range reaches past `buf`: the callers size their buffers for the ranges they cut.
pub(crate) fn split_rows<'a, U>(
    mut buf: &'a mut [U],
    width: usize,
    ranges: &[Range<usize>],
) -> Vec<&'a mut [U]> {
    let mut out = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for r in ranges {
        let (_, rest) = buf.split_at_mut((r.start - at) * width);
        let (mine, rest) = rest.split_at_mut(r.len() * width);
        out.push(mine);
        buf = rest;
        at = r.end;
    }
    out
}

/// [`split_rows`] of `buf[..len]`, or as many empty pieces for an empty `buf` (a state
/// buffer the update rule does not keep).
pub(crate) fn split_rows_or_empty<'a, U>(
    buf: &'a mut [U],
    len: usize,
    width: usize,
    ranges: &[Range<usize>],
) -> Vec<&'a mut [U]> {
    match buf.get_mut(..len) {
        Some(buf) if len > 0 => split_rows(buf, width, ranges),
        _ => ranges.iter().map(|_| &mut [][..]).collect(),
    }
}

/// [`split_rows`] for a shared buffer: the pieces `ranges` names (empty pieces for an
/// empty buffer).
pub(crate) fn split_rows_ref<'a, U>(
    buf: &'a [U],
    width: usize,
    ranges: &[Range<usize>],
) -> Vec<&'a [U]> {
    ranges
        .iter()
        .map(|r| buf.get(r.start * width..r.end * width).unwrap_or(&[]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_range_covers_and_aligns() {
        for len in [0, 1, 7, 8, 100, 784] {
            for parts in 1..5 {
                let pieces = split_ranges(len, parts, 8);
                assert_eq!(pieces[0].start, 0);
                assert_eq!(pieces[parts - 1].end, len);
                for w in pieces.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].end % 8 == 0 || w[0].end == len);
                }
            }
        }
    }

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

    #[test]
    fn split_rows_gives_each_range_its_rows() {
        let mut buf: Vec<u32> = (0..12).collect();
        let pieces = split_rows(&mut buf, 2, &[0..1, 1..4, 4..6]);
        assert_eq!(
            pieces,
            [&[0, 1][..], &[2, 3, 4, 5, 6, 7][..], &[8, 9, 10, 11][..]]
        );
        let mut none: Vec<u32> = Vec::new();
        assert!(split_rows_or_empty(&mut none, 0, 2, &[0..1, 1..2])
            .iter()
            .all(|p| p.is_empty()));
        let second = [1..2, 3..4];
        assert_eq!(
            split_rows_ref(&buf, 3, &second),
            [&[3, 4, 5][..], &[9, 10, 11][..]]
        );
    }
}
