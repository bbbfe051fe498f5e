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
//! A file may be gzip-compressed (one gzip member), as MNIST is distributed; compression is
//! detected from the gzip magic bytes `1f 8b` at the start of the file, never from its name.
//!
//! # Hostile files
//!
//! Every read is checked: a wrong magic number, an unsupported element type, a header that
//! promises more or less data than the file holds, a corrupt or truncated gzip stream or a
//! label outside the class range is an error naming the file and the problem. A header is
//! never trusted for an allocation:
//!
//! * the size it claims must be within the reader's [`ReadLimit`] (1 GiB by default), or
//!   the read is refused before it starts ([`ErrorKind::TooLarge`]);
//! * for a plain file, the claim must equal the file's length, checked before allocating;
//! * for gzip, the buffer grows only with data actually decompressed, and a claim of more
//!   than 64 MiB must agree with the size the gzip trailer records before anything is
//!   inflated: a small file that claims a large array and inflates to another size fails in
//!   milliseconds.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use downhill::data::idx::{read_idx, read_idx_from};
//! use downhill::data::ReadLimit;
//! use downhill::error::{ErrorKind, Position};
//!
//! // A 2 x 3 array of bytes: magic (u8, 2 dims), dims 2 and 3, then 6 bytes of data.
//! let bytes = [0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6];
//! let array = read_idx_from(&bytes[..], Path::new("inline"))?;
//! assert_eq!(array.dims, vec![2, 3]);
//! assert_eq!(array.data, vec![1, 2, 3, 4, 5, 6]);
//!
//! // One byte too few: the header no longer tells the truth.
//! let err = read_idx_from(&bytes[..17], Path::new("inline")).unwrap_err();
//! assert!(matches!(err.kind(), ErrorKind::Format { position: Some(Position::Byte(17)), .. }));
//! assert_eq!(
//!     err.to_string(),
//!     "inline: byte 17: truncated: header promises 6 bytes of data, file has 5"
//! );
//!
//! // A reader with a lower limit refuses the same header before reading its data.
//! let small = downhill::data::idx::IdxReader::new().limit(ReadLimit::default().max_bytes(4)?);
//! let err = small.read_slice(&bytes, Path::new("inline")).unwrap_err();
//! assert!(matches!(err.kind(), ErrorKind::TooLarge { claimed: 6, limit: 4, .. }));
//!
//! // A missing file is an I/O error, not a format error.
//! assert!(matches!(read_idx("no/such/file.idx").unwrap_err().kind(), ErrorKind::Io { .. }));
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::GzDecoder;

use crate::data::ReadLimit;
use crate::error::{Error, ErrorKind, Position, Result};

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

/// A gzip file whose header claims more than this must agree with its trailer's size before
/// it is inflated.
const TRAILER_CHECK_ABOVE: u64 = 64 << 20;

/// An IDX array of bytes: its dimensions and its data, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension, outermost first (for MNIST images: count, rows, cols).
    pub dims: Vec<usize>,
    /// The elements in row-major order; its length is the product of `dims`.
    pub data: Vec<u8>,
}

/// An IDX reader with a [`ReadLimit`]; the free functions of this module are the default
/// reader's methods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdxReader {
    limit: ReadLimit,
}

/// Reads an IDX file (plain or gzip) from `path` with the default [`IdxReader`].
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    IdxReader::new().read(path)
}

/// Parses IDX from any reader with the default [`IdxReader`]; `path` names it in errors.
pub fn read_idx_from<R: Read>(reader: R, path: &Path) -> Result<IdxArray> {
    IdxReader::new().read_from(reader, path)
}

/// Parses IDX from bytes in memory with the default [`IdxReader`]; `path` names them in
/// errors.
pub fn read_idx_slice(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    IdxReader::new().read_slice(bytes, path)
}

/// Reads an images file with the default [`IdxReader`]; see [`IdxReader::read_images`].
pub fn read_images(path: impl AsRef<Path>) -> Result<(Vec<u8>, usize, usize)> {
    IdxReader::new().read_images(path)
}

/// Reads a labels file with the default [`IdxReader`]; see [`IdxReader::read_labels`].
pub fn read_labels(path: impl AsRef<Path>, classes: usize) -> Result<Vec<usize>> {
    IdxReader::new().read_labels(path, classes)
}

impl IdxReader {
    /// A reader with the default [`ReadLimit`].
    pub fn new() -> Self {
        IdxReader::default()
    }

    /// The same reader with `limit` on the data a header may claim.
    pub fn limit(self, limit: ReadLimit) -> Self {
        IdxReader { limit }
    }

    /// Reads an IDX file (plain or gzip) from `path`.
    ///
    /// Fails with [`ErrorKind::Io`] if the file cannot be opened or read,
    /// [`ErrorKind::TooLarge`] if its header claims more than the limit, and
    /// [`ErrorKind::Format`] if its contents are not a well-formed IDX array of bytes (see
    /// the [module docs](self)).
    pub fn read(&self, path: impl AsRef<Path>) -> Result<IdxArray> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        // Only a regular file's length is known up front (not a pipe's or a device's).
        let len = meta.is_file().then_some(meta.len());
        let trailer = match len {
            Some(len) if len >= 18 => {
                let t = read_trailer(&mut file, len).map_err(|e| Error::io(path, e))?;
                Some(t)
            }
            _ => None,
        };
        self.read_any(file, path, len, trailer)
    }

    /// Parses IDX from any reader; `path` is used only in error messages.
    ///
    /// Gzip-compressed input is detected from its first two bytes and decompressed, exactly
    /// as in [`read`](IdxReader::read). Since the length of a reader is not known in
    /// advance, the data buffer grows with the bytes actually read, never with the size
    /// the header claims.
    pub fn read_from<R: Read>(&self, reader: R, path: &Path) -> Result<IdxArray> {
        self.read_any(reader, path, None, None)
    }

    /// Parses IDX from bytes already in memory; `path` is used only in error messages.
    pub fn read_slice(&self, bytes: &[u8], path: &Path) -> Result<IdxArray> {
        let trailer = bytes
            .len()
            .checked_sub(4)
            .filter(|_| bytes.len() >= 18)
            .and_then(|at| bytes.get(at..))
            .and_then(|t| <[u8; 4]>::try_from(t).ok())
            .map(u32::from_le_bytes);
        self.read_any(bytes, path, Some(bytes.len() as u64), trailer)
    }

    /// Reads an images file: it must have 3 dims (count, rows, cols). Returns
    /// `(pixels, count, rows * cols)`, with image `i` at
    /// `pixels[i * rows * cols..(i + 1) * rows * cols]`.
    pub fn read_images(&self, path: impl AsRef<Path>) -> Result<(Vec<u8>, usize, usize)> {
        let path = path.as_ref();
        let array = self.read(path)?;
        let [count, rows, cols] = array.dims[..] else {
            return Err(wrong_dims(
                path,
                "an images",
                "3 dimensions (count, rows, cols)",
                &array,
            ));
        };
        // With zero images the full product is 0 and was not checked for rows * cols.
        let pixels = rows.checked_mul(cols).ok_or_else(|| {
            Error::format_at(
                path,
                Position::Byte(8),
                format!("image size {rows} x {cols} overflows usize"),
            )
        })?;
        Ok((array.data, count, pixels))
    }

    /// Reads a labels file: it must have 1 dim, and every label must be `< classes`, else
    /// [`ErrorKind::Label`] naming the file, the index and the label.
    pub fn read_labels(&self, path: impl AsRef<Path>, classes: usize) -> Result<Vec<usize>> {
        let path = path.as_ref();
        let array = self.read(path)?;
        if array.dims.len() != 1 {
            return Err(wrong_dims(path, "a labels", "1 dimension (count)", &array));
        }
        let labels: Vec<usize> = array.data.iter().map(|&b| usize::from(b)).collect();
        if let Some((row, &label)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
            return Err(ErrorKind::Label {
                path: Some(path.to_path_buf()),
                row,
                label,
                classes,
            }
            .into());
        }
        Ok(labels)
    }

    /// Sniffs the first bytes for the gzip magic, puts them back, and parses plain or
    /// compressed. `file_len` is the total length when known; `trailer` the last four bytes
    /// as a little-endian `u32` (for gzip: the contents' size mod 2³²).
    fn read_any<R: Read>(
        &self,
        mut reader: R,
        path: &Path,
        file_len: Option<u64>,
        trailer: Option<u32>,
    ) -> Result<IdxArray> {
        let mut sniff = [0u8; 2];
        let got = read_full(&mut reader, &mut sniff).map_err(|e| Error::io(path, e))?;
        let prefix = sniff.get(..got).unwrap_or(&[]);
        let rejoined = io::Cursor::new(prefix).chain(reader);
        if prefix == GZIP_MAGIC {
            // The decompressed length is unknown until the stream is read.
            let source = Source::Gzip { trailer };
            self.parse(GzDecoder::new(rejoined), path, source)
        } else {
            self.parse(rejoined, path, Source::Plain { len: file_len })
        }
    }

    /// Parses header and data from `reader` (already decompressed for gzip).
    fn parse<R: Read>(&self, mut reader: R, path: &Path, source: Source) -> Result<IdxArray> {
        let gzip = matches!(source, Source::Gzip { .. });
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
            return Err(Error::format_at(
                path,
                Position::Byte(got as u64),
                format!("truncated header: the magic number needs 4 bytes, file has {got}"),
            ));
        }
        let [zero0, zero1, elem_type, ndims] = magic;
        if zero0 != 0 || zero1 != 0 {
            return Err(Error::format_at(
                path,
                Position::Byte(0),
                format!(
                    "bad magic number 0x{:08X}: an IDX file starts with two zero bytes",
                    u32::from_be_bytes(magic)
                ),
            ));
        }
        if elem_type != TYPE_U8 {
            return Err(Error::format_at(
                path,
                Position::Byte(2),
                format!(
                    "element type 0x{elem_type:02X} ({}) is not supported: only 0x08 (unsigned byte) is",
                    type_name(elem_type)
                ),
            ));
        }
        if ndims == 0 {
            return Err(Error::format_at(
                path,
                Position::Byte(3),
                "zero dimensions: an IDX array needs at least one",
            ));
        }

        let ndims = usize::from(ndims);
        let mut raw_dims = vec![0u8; 4 * ndims]; // at most 1020 bytes: ndims is a u8
        let got = read_full(&mut reader, &mut raw_dims).map_err(read_err)?;
        if got < raw_dims.len() {
            return Err(Error::format_at(
                path,
                Position::Byte(4 + got as u64),
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
        let header_len = 4 + 4 * ndims as u64;
        // The claimed size (a product of up to 255 u32s, so checked for overflow), refused
        // against the limit before anything else is read.
        let claimed = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| {
                Error::format_at(
                    path,
                    Position::Byte(4),
                    format!(
                        "dimensions {} overflow: the array cannot exist",
                        show_dims(&dims)
                    ),
                )
            })?;
        self.limit.check(path, claimed)?;
        // Within the limit; on a 32-bit platform with a raised limit it may still not fit.
        let expected = usize::try_from(claimed).map_err(|_| {
            Error::format(path, format!("{claimed} bytes do not fit in memory here"))
        })?;

        match source {
            // Plain file of known length: check the promise against the file before allocating.
            Source::Plain { len: Some(len) } => {
                let present = len.saturating_sub(header_len);
                if claimed != present {
                    return Err(length_error(path, header_len, claimed, Some(present)));
                }
            }
            Source::Gzip {
                trailer: Some(isize),
            } if claimed > TRAILER_CHECK_ABOVE => {
                let contents = header_len.wrapping_add(claimed);
                if contents as u32 != isize {
                    return Err(Error::format(
                        path,
                        format!(
                            "the header promises {contents} bytes of contents, but the gzip \
                             trailer records {isize} (mod 2^32): refusing to inflate it"
                        ),
                    ));
                }
            }
            _ => {}
        }

        // Read at most one byte past the promise: enough to detect trailing data, never
        // unbounded.
        let capacity = match source {
            Source::Plain { len: Some(_) } => expected,
            _ => expected.min(MAX_UNCHECKED_CAPACITY),
        };
        let mut data = Vec::with_capacity(capacity);
        // Reading to the end also makes a gzip decoder verify the stream's CRC and length.
        reader
            .by_ref()
            .take(claimed.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(read_err)?;
        if data.len() < expected {
            return Err(length_error(
                path,
                header_len,
                claimed,
                Some(data.len() as u64),
            ));
        }
        if data.len() > expected {
            if gzip {
                // Corruption inside a deflate stream can decode to extra bytes; the CRC at
                // the end tells the two apart. Drain a bounded amount into a sink (no
                // allocation) to reach it.
                io::copy(&mut reader.take(MAX_DRAIN), &mut io::sink()).map_err(read_err)?;
            }
            // Only one byte past the promise was kept: its exact length is unknown.
            return Err(length_error(path, header_len, claimed, None));
        }
        Ok(IdxArray { dims, data })
    }
}

/// Where the bytes come from, and what is known of them in advance.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Uncompressed; `len` is the total length when known.
    Plain { len: Option<u64> },
    /// Gzip; `trailer` is the size its last four bytes record, when known.
    Gzip { trailer: Option<u32> },
}

/// The last four bytes of a file of `len` bytes, as a little-endian `u32`; leaves the file
/// at its start.
fn read_trailer(file: &mut File, len: u64) -> io::Result<u32> {
    let mut t = [0u8; 4];
    file.seek(SeekFrom::Start(len - 4))?;
    file.read_exact(&mut t)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(u32::from_le_bytes(t))
}

/// The error for a data section that is not `expected` bytes long. `present` is its length, or
/// `None` if it is only known to be longer.
fn length_error(path: &Path, header_len: u64, expected: u64, present: Option<u64>) -> Error {
    let at = Position::Byte(header_len + present.unwrap_or(expected).min(expected));
    let problem = match present {
        Some(p) if p < expected => {
            format!("truncated: header promises {expected} bytes of data, file has {p}")
        }
        Some(p) => format!("trailing data: header promises {expected} bytes of data, file has {p}"),
        None => format!("trailing data: header promises {expected} bytes of data, file has more"),
    };
    Error::format_at(path, at, problem)
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
/// (`read_exact` would not say how many bytes a short file had.)
pub(crate) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
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

/// The error for a file whose header has the wrong number of dimensions for what it holds
/// (`kind` is "an images" or "a labels", `want` what it must have).
fn wrong_dims(path: &Path, kind: &str, want: &str, array: &IdxArray) -> Error {
    let (n, dims) = (array.dims.len(), show_dims(&array.dims));
    let what = format!("{kind} file must have {want}, this one has {n} ({dims})");
    Error::format_at(path, Position::Byte(3), what)
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
