//! Reading IDX files, the format MNIST ships in.
//!
//! An IDX file is a header followed by one dense, row-major array. All header integers are
//! big-endian. This module reads arrays of unsigned bytes (element type `0x08`), which is what
//! the MNIST images and labels are; any other element type is rejected with an error that names
//! the type code.
//!
//! | Offset    | Size                  | Contents                                       |
//! |-----------|-----------------------|------------------------------------------------|
//! | 0         | 2 bytes               | always zero                                    |
//! | 2         | 1 byte                | element type: `0x08` = unsigned byte           |
//! | 3         | 1 byte                | number of dimensions `d`                       |
//! | 4         | `4 * d` bytes         | the dimensions, one big-endian `u32` each      |
//! | `4 + 4*d` | product of dimensions | the data, row-major, one byte per element      |
//!
//! The other element types of the format (`0x09` i8, `0x0B` i16, `0x0C` i32, `0x0D` f32,
//! `0x0E` f64) are recognised only to name them in the error.
//!
//! For MNIST, images have three dimensions (count, rows, cols) and labels have one (count).
//! A file may be gzip-compressed, as MNIST is distributed; compression is detected from the
//! gzip magic bytes `1f 8b` at the start of the file, never from the file name.
//!
//! Every read is checked: a wrong magic number, an unsupported element type, a header that
//! promises more or less data than the file holds, a corrupt or truncated gzip stream or a label
//! outside the class range is an [`Error::Format`] naming the file and the problem. A header is
//! never trusted for an allocation: the promised size is compared with the file's length (or,
//! for gzip, the buffer only grows with the data actually decompressed), so a header claiming
//! four billion images fails fast instead of allocating gigabytes.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use downhill::data::idx::{read_idx, read_idx_from};
//!
//! // A 2 x 3 array of bytes: magic (u8, 2 dims), dims 2 and 3, then 6 bytes of data.
//! let bytes = [0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6];
//! let array = read_idx_from(&bytes[..], Path::new("inline")).unwrap();
//! assert_eq!(array.dims, vec![2, 3]);
//! assert_eq!(array.data, vec![1, 2, 3, 4, 5, 6]);
//!
//! // One byte too few: the header no longer tells the truth.
//! let err = read_idx_from(&bytes[..17], Path::new("inline")).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "inline: truncated: header promises 6 bytes of data, file has 5"
//! );
//!
//! // A missing file is an I/O error, not a format error.
//! assert!(matches!(read_idx("no/such/file.idx"), Err(downhill::Error::Io { .. })));
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::{Error, Result};

/// The element type code for unsigned bytes, the only one this reader accepts.
const TYPE_U8: u8 = 0x08;

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// When the data length is not known in advance (gzip, arbitrary readers), the buffer starts no
/// larger than this; beyond it, it grows only as data actually arrives (doubling, so a large
/// file costs a handful of reallocations, and a lying header costs nothing).
const MAX_UNCHECKED_CAPACITY: usize = 64 << 10;

/// How much of a gzip stream past the promised data is decompressed (into a sink, not memory)
/// to reach its CRC, which tells corruption from trailing data.
const MAX_DRAIN: u64 = 64 << 20;

/// An IDX array of bytes: its dimensions and its data, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension, outermost first (for MNIST images: count, rows, cols).
    pub dims: Vec<usize>,
    /// The elements in row-major order; its length is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads an IDX file (plain or gzip) from `path`.
///
/// Fails with [`Error::Io`] if the file cannot be opened or read, and with [`Error::Format`] if
/// its contents are not a well-formed IDX array of bytes (see the [module docs](self)).
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    // Only a regular file's length is known up front (not a pipe's or a device's).
    let len = meta.is_file().then_some(meta.len());
    read_any(file, path, len)
}

/// Parses IDX from any reader; `path` is used only in error messages.
///
/// Gzip-compressed input is detected from its first two bytes and decompressed, exactly as in
/// [`read_idx`]. Since the length of a reader is not known in advance, the data buffer grows
/// with the bytes actually read rather than with the size the header claims.
pub fn read_idx_from<R: Read>(reader: R, path: &Path) -> Result<IdxArray> {
    read_any(reader, path, None)
}

/// Parses IDX from bytes already in memory; `path` is used only in error messages.
///
/// The length is known, so a plain array's header is checked against it before anything is
/// allocated, exactly as [`read_idx`] does for a file.
pub fn read_idx_slice(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    read_any(bytes, path, Some(bytes.len() as u64))
}

/// Reads an images file: must have 3 dims (count, rows, cols); returns
/// (pixels, count, rows*cols).
///
/// The pixels are row-major: image `i` is `pixels[i * rows * cols..(i + 1) * rows * cols]`.
pub fn read_images(path: impl AsRef<Path>) -> Result<(Vec<u8>, usize, usize)> {
    let path = path.as_ref();
    let array = read_idx(path)?;
    let [count, rows, cols] = array.dims[..] else {
        return Err(Error::format(
            path,
            format!(
                "an images file must have 3 dimensions (count, rows, cols), this one has {} ({})",
                array.dims.len(),
                show_dims(&array.dims)
            ),
        ));
    };
    // With zero images the full product is 0 and was not checked for rows * cols.
    let pixels = rows.checked_mul(cols).ok_or_else(|| {
        Error::format(path, format!("image size {rows} x {cols} overflows usize"))
    })?;
    Ok((array.data, count, pixels))
}

/// Reads a labels file: must have 1 dim; every label must be < `classes`, else
/// [`Error::Format`] naming the index and the label.
pub fn read_labels(path: impl AsRef<Path>, classes: usize) -> Result<Vec<usize>> {
    let path = path.as_ref();
    let array = read_idx(path)?;
    if array.dims.len() != 1 {
        return Err(Error::format(
            path,
            format!(
                "a labels file must have 1 dimension (count), this one has {} ({})",
                array.dims.len(),
                show_dims(&array.dims)
            ),
        ));
    }
    let labels: Vec<usize> = array.data.iter().map(|&b| usize::from(b)).collect();
    if let Some((index, label)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
        return Err(Error::format(
            path,
            format!("label {label} at index {index} is outside the class range 0..{classes}"),
        ));
    }
    Ok(labels)
}

/// Sniffs the first bytes for the gzip magic, puts them back, and parses plain or compressed.
/// `file_len` is the total length of a plain file when known, used to check the header before
/// allocating.
fn read_any<R: Read>(mut reader: R, path: &Path, file_len: Option<u64>) -> Result<IdxArray> {
    let mut sniff = [0u8; 2];
    let got = read_full(&mut reader, &mut sniff).map_err(|e| Error::io(path, e))?;
    let prefix = sniff.get(..got).unwrap_or(&[]);
    let rejoined = io::Cursor::new(prefix).chain(reader);
    if prefix == GZIP_MAGIC {
        // The decompressed length is unknown until the stream is read.
        parse(GzDecoder::new(rejoined), path, None, true)
    } else {
        parse(rejoined, path, file_len, false)
    }
}

/// Parses header and data from `reader` (already decompressed if `gzip`).
fn parse<R: Read>(
    mut reader: R,
    path: &Path,
    file_len: Option<u64>,
    gzip: bool,
) -> Result<IdxArray> {
    // Read errors from a gzip decoder mean the stream is bad, not that the OS failed.
    let read_err = |e: io::Error| -> Error {
        if !gzip {
            Error::io(path, e)
        } else if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::format(path, format!("truncated gzip stream: {e}"))
        } else {
            Error::format(path, format!("corrupt gzip stream: {e}"))
        }
    };

    let mut magic = [0u8; 4];
    let got = read_full(&mut reader, &mut magic).map_err(read_err)?;
    if got == 0 {
        return Err(Error::format(path, "empty file: expected an IDX header"));
    }
    if got < magic.len() {
        return Err(Error::format(
            path,
            format!("truncated header: the magic number needs 4 bytes, file has {got}"),
        ));
    }
    let [zero0, zero1, elem_type, ndims] = magic;
    if zero0 != 0 || zero1 != 0 {
        return Err(Error::format(
            path,
            format!(
                "bad magic number 0x{:08X}: an IDX file starts with two zero bytes",
                u32::from_be_bytes(magic)
            ),
        ));
    }
    if elem_type != TYPE_U8 {
        return Err(Error::format(
            path,
            format!(
                "element type 0x{elem_type:02X} ({}) is not supported: only 0x08 (unsigned byte) is",
                type_name(elem_type)
            ),
        ));
    }
    if ndims == 0 {
        return Err(Error::format(
            path,
            "zero dimensions: an IDX array needs at least one",
        ));
    }

    let ndims = usize::from(ndims);
    let mut raw_dims = vec![0u8; 4 * ndims]; // at most 1020 bytes: ndims is a u8
    let got = read_full(&mut reader, &mut raw_dims).map_err(read_err)?;
    if got < raw_dims.len() {
        return Err(Error::format(
            path,
            format!(
                "truncated header: {ndims} dimensions need {} header bytes, file has {}",
                4 + raw_dims.len(),
                4 + got
            ),
        ));
    }
    let mut dims = Vec::with_capacity(ndims);
    for chunk in raw_dims.chunks_exact(4) {
        let mut be = [0u8; 4];
        be.copy_from_slice(chunk);
        // u32 -> usize cannot fail on 32- and 64-bit targets; on 16-bit, reject.
        let dim = usize::try_from(u32::from_be_bytes(be)).map_err(|_| {
            Error::format(path, "a dimension does not fit in usize on this platform")
        })?;
        dims.push(dim);
    }
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "dimensions {} overflow: the array cannot exist",
                    show_dims(&dims)
                ),
            )
        })?;

    // Plain file of known length: check the promise against the file before allocating.
    let header_len = 4 + 4 * ndims as u64;
    let expected_u64 = expected as u64;
    if let Some(len) = file_len {
        let present = len.saturating_sub(header_len);
        if expected_u64 != present {
            return Err(length_error(path, expected_u64, Some(present)));
        }
    }

    // Read at most one byte past the promise: enough to detect trailing data, never unbounded.
    let capacity = if file_len.is_some() {
        expected
    } else {
        expected.min(MAX_UNCHECKED_CAPACITY)
    };
    let mut data = Vec::with_capacity(capacity);
    // Reading to the end also makes a gzip decoder verify the stream's CRC and length trailer.
    reader
        .by_ref()
        .take(expected_u64.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() < expected {
        return Err(length_error(path, expected_u64, Some(data.len() as u64)));
    }
    if data.len() > expected {
        if gzip {
            // Corruption inside a deflate stream can decode to extra bytes; the CRC at the end
            // tells the two apart. Drain a bounded amount into a sink (no allocation) to reach it.
            io::copy(&mut reader.take(MAX_DRAIN), &mut io::sink()).map_err(read_err)?;
        }
        // Only one byte past the promise was kept: its exact length is unknown.
        return Err(length_error(path, expected_u64, None));
    }
    Ok(IdxArray { dims, data })
}

/// The error for a data section that is not `expected` bytes long. `present` is its length, or
/// `None` if it is only known to be longer.
fn length_error(path: &Path, expected: u64, present: Option<u64>) -> Error {
    let problem = match present {
        Some(p) if p < expected => {
            format!("truncated: header promises {expected} bytes of data, file has {p}")
        }
        Some(p) => format!("trailing data: header promises {expected} bytes of data, file has {p}"),
        None => format!("trailing data: header promises {expected} bytes of data, file has more"),
    };
    Error::format(path, problem)
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
/// (`read_exact` would not say how many bytes a short file had.)
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Formats dimensions as `a x b x c`.
fn show_dims(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    parts.join(" x ")
}

/// The name of an IDX element type code, for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown type",
    }
}
