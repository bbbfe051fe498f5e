//! Reading CIFAR-10, the binary version (`cifar-10-binary.tar.gz` from
//! <https://www.cs.toronto.edu/~kriz/cifar.html>, extracted).
//!
//! The archive holds a directory `cifar-10-batches-bin/` with five training batches,
//! `data_batch_1.bin` … `data_batch_5.bin`, and `test_batch.bin`, 10,000 images each. A batch
//! file is nothing but records, one after another, with no header:
//!
//! | Offset | Size       | Contents                                              |
//! |--------|------------|-------------------------------------------------------|
//! | 0      | 1 byte     | the label, 0–9 (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck) |
//! | 1      | 1024 bytes | the red channel of the 32 × 32 image, row by row       |
//! | 1025   | 1024 bytes | the green channel                                      |
//! | 2049   | 1024 bytes | the blue channel                                       |
//!
//! so a record is [`RECORD_BYTES`] = 3073 bytes and a file is a whole number of them.
//!
//! The pixels are kept as bytes, [`PIXELS`] = 3072 features per image **in the file's
//! channel-major order**: feature `c·1024 + 32·row + col` is channel `c` (0 red, 1 green,
//! 2 blue) of the pixel at (`row`, `col`). (CS231n's loader transposes to 32 × 32 × 3, pixel
//! by pixel; a linear classifier or an MLP does not care about the order, as long as training
//! and test images share it.) [`Cifar10::load`] scales them to [0, 1] when gathered, as
//! [`Mnist::load`](crate::data::Mnist::load) does.
//!
//! # Hostile files
//!
//! There is no header to lie, but the file's length is still never trusted blindly: a file
//! longer than the reader's [`ReadLimit`] is refused ([`ErrorKind::TooLarge`]) before anything
//! is read, a length that is not a whole number of records (or an empty file) is refused
//! before anything is allocated, the buffers are sized from the file's real length, and at
//! most that many bytes are read. A label over 9 is an [`ErrorKind::Label`] naming the file
//! and the record. A file that is not a regular file (a pipe) is read up to the limit, with
//! the buffer growing only as bytes arrive.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use downhill::data::cifar::{CifarReader, PIXELS, RECORD_BYTES};
//! use downhill::error::{ErrorKind, Position};
//!
//! // Two records: a cat (label 3) whose bytes are all 7, and a truck (9) of all 200.
//! let mut bytes = vec![3u8];
//! bytes.extend([7u8; PIXELS]);
//! bytes.push(9);
//! bytes.extend([200u8; PIXELS]);
//! let batch = CifarReader::new().read_slice(&bytes, Path::new("two.bin"))?;
//! assert_eq!(batch.labels, [3, 9]);
//! assert_eq!(batch.pixels[PIXELS], 200);
//!
//! // One byte short: the second record is cut.
//! let err = CifarReader::new().read_slice(&bytes[..2 * RECORD_BYTES - 1], Path::new("cut.bin"));
//! let err = err.unwrap_err();
//! assert!(matches!(err.kind(), ErrorKind::Format { position: Some(Position::Record(1)), .. }));
//! assert_eq!(
//!     err.to_string(),
//!     "cut.bin: record 1: the file is 6145 bytes, not a whole number of 3073-byte \
//!      records: its last record is cut after 3072 bytes"
//! );
//!
//! // A label over 9 names the file and the record.
//! bytes[RECORD_BYTES] = 10;
//! let err = CifarReader::new().read_slice(&bytes, Path::new("bad.bin")).unwrap_err();
//! assert!(matches!(err.kind(), ErrorKind::Label { row: 1, label: 10, classes: 10, .. }));
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::data::idx::read_full;
use crate::data::{Dataset, FeatureTransform, ReadLimit};
use crate::error::{Error, ErrorKind, Position, Result};
use crate::scalar::Scalar;

/// Pixels of one image: 32 × 32 in three channels.
pub const PIXELS: usize = 3 * 32 * 32;

/// Bytes of one record: the label, then [`PIXELS`] bytes.
pub const RECORD_BYTES: usize = 1 + PIXELS;

/// The classes; labels are `0..CLASSES`.
pub const CLASSES: usize = 10;

/// The classes' names, by label.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The training batches, in the order [`Cifar10::load`] reads them. The first is required.
pub const TRAIN_BATCHES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];

/// The test batch (required).
pub const TEST_BATCH: &str = "test_batch.bin";

/// The directory the archive extracts to; [`Cifar10::load`] looks inside it too.
pub const ARCHIVE_DIR: &str = "cifar-10-batches-bin";

/// The bytes of a CIFAR-10 record that CIFAR-100's binary version (two label bytes) has.
const CIFAR100_RECORD: u64 = 2 + PIXELS as u64;

/// When a stream's length is not known, its buffer starts no larger than this and grows only
/// as bytes arrive.
const MAX_UNCHECKED_CAPACITY: usize = 64 << 10;

/// The records of one batch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarBatch {
    /// One label per record, each `< CLASSES`.
    pub labels: Vec<usize>,
    /// [`PIXELS`] bytes per record, record after record, in the file's channel-major order
    /// (see the [module docs](self)).
    pub pixels: Vec<u8>,
}

impl CifarBatch {
    /// An empty batch with room for `records` records (a count the caller has checked
    /// against the read limit, so `records * PIXELS` fits).
    fn with_room(records: usize) -> Self {
        CifarBatch {
            labels: Vec::with_capacity(records),
            pixels: Vec::with_capacity(records * PIXELS),
        }
    }
    /// Number of records.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no records (never, for a batch a reader returned).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The batch as a dataset of byte features, scaled to [0, 1] when gathered.
    ///
    /// ```
    /// use std::path::Path;
    /// use downhill::data::cifar::{CifarReader, PIXELS};
    ///
    /// let mut bytes = vec![5u8];
    /// bytes.extend([255u8; PIXELS]);
    /// let data = CifarReader::new().read_slice(&bytes, Path::new("one"))?.into_dataset::<f32>()?;
    /// assert_eq!((data.len(), data.num_features(), data.num_classes()), (1, 3072, 10));
    /// let mut row = vec![0.0f32; PIXELS];
    /// data.gather_row(0, &mut row)?;
    /// assert!(row.iter().all(|&p| p == 1.0));
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn into_dataset<T: Scalar>(self) -> Result<Dataset<T>> {
        dataset(self.pixels, self.labels)
    }
}

/// Byte features, [0, 1] on gather.
fn dataset<T: Scalar>(pixels: Vec<u8>, labels: Vec<usize>) -> Result<Dataset<T>> {
    Dataset::from_bytes(pixels, PIXELS, labels, CLASSES)?.with_transform(FeatureTransform::uniform(
        PIXELS,
        T::from_f64(1.0 / 255.0),
        T::zero(),
    ))
}

/// A reader of CIFAR-10 batch files with a [`ReadLimit`] on a file's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CifarReader {
    limit: ReadLimit,
}

/// Reads one batch file with the default [`CifarReader`]; see [`CifarReader::read`].
///
/// ```
/// use downhill::data::cifar::{read_batch, RECORD_BYTES};
/// use downhill::error::ErrorKind;
///
/// let path = std::env::temp_dir().join(format!("downhill-doc-batch-{}.bin", std::process::id()));
/// // Three records of label 2, 0 and 9, every pixel 128.
/// let mut bytes = Vec::new();
/// for label in [2u8, 0, 9] {
///     bytes.push(label);
///     bytes.extend([128u8; RECORD_BYTES - 1]);
/// }
/// std::fs::write(&path, &bytes)?;
/// let batch = read_batch(&path)?;
/// assert_eq!(batch.labels, [2, 0, 9]);
/// assert_eq!(batch.pixels.len(), 3 * 3072);
/// std::fs::remove_file(&path)?;
/// // A missing file is an I/O error naming it.
/// assert!(matches!(read_batch(&path).unwrap_err().kind(), ErrorKind::Io { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_batch(path: impl AsRef<Path>) -> Result<CifarBatch> {
    CifarReader::new().read(path)
}

impl CifarReader {
    /// A reader with the default [`ReadLimit`].
    pub fn new() -> Self {
        CifarReader::default()
    }

    /// The same reader with `limit` on a file's length.
    pub fn limit(self, limit: ReadLimit) -> Self {
        CifarReader { limit }
    }

    /// Reads a batch file.
    ///
    /// Fails with [`ErrorKind::Io`] if it cannot be opened or read, [`ErrorKind::TooLarge`]
    /// if it is longer than the limit (before reading it), [`ErrorKind::Format`] at the cut
    /// record if it is empty or not a whole number of records (before allocating), and
    /// [`ErrorKind::Label`] at the first record whose label is over 9.
    pub fn read(&self, path: impl AsRef<Path>) -> Result<CifarBatch> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            // A pipe or a device: its length is known only once it is read, so it is read up
            // to one byte past the limit, the buffer growing only as bytes arrive.
            let mut bytes = Vec::with_capacity(MAX_UNCHECKED_CAPACITY);
            file.take(self.limit.bytes().saturating_add(1))
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(path, e))?;
            return self.read_slice(&bytes, path);
        }
        let len = meta.len();
        let records = self.check_len(path, len)?;
        let mut batch = CifarBatch::with_room(records);
        read_records(file, path, len, records, &mut batch)?;
        Ok(batch)
    }

    /// Reads a batch from bytes in memory; `path` names them in errors. The same checks as
    /// [`read`](CifarReader::read).
    pub fn read_slice(&self, bytes: &[u8], path: &Path) -> Result<CifarBatch> {
        let len = bytes.len() as u64;
        let records = self.check_len(path, len)?;
        let mut batch = CifarBatch::with_room(records);
        read_records(bytes, path, len, records, &mut batch)?;
        Ok(batch)
    }

    /// The number of records in a file of `len` bytes, if that length is acceptable: within
    /// the limit, not empty, a whole number of records.
    fn check_len(&self, path: &Path, len: u64) -> Result<usize> {
        self.limit.check(path, len)?;
        if len == 0 {
            return Err(Error::format(
                path,
                "empty file: a CIFAR-10 batch holds 3073-byte records (a label byte, then \
                 3072 pixel bytes)",
            ));
        }
        let record = RECORD_BYTES as u64;
        let (records, rest) = (len / record, len % record);
        if rest != 0 {
            let hint = if len.is_multiple_of(CIFAR100_RECORD) {
                format!(
                    " (it is a whole number of CIFAR-100's {CIFAR100_RECORD}-byte records: \
                     this reader reads CIFAR-10)"
                )
            } else {
                String::new()
            };
            return Err(Error::format_at(
                path,
                Position::Record(records),
                format!(
                    "the file is {len} bytes, not a whole number of {RECORD_BYTES}-byte \
                     records: its last record is cut after {rest} bytes{hint}"
                ),
            ));
        }
        // Within the limit, so it fits in memory's address space on 64-bit targets.
        usize::try_from(records)
            .ok()
            .filter(|r| r.checked_mul(RECORD_BYTES).is_some())
            .ok_or_else(|| Error::format(path, format!("{len} bytes do not fit in memory here")))
    }
}

/// Reads `records` records (the whole of a source `len` bytes long) from `source`, appending
/// to `batch`. Reads at most `len` bytes, and then checks that the source ended there.
fn read_records<R: Read>(
    source: R,
    path: &Path,
    len: u64,
    records: usize,
    batch: &mut CifarBatch,
) -> Result<()> {
    let mut reader = BufReader::with_capacity(MAX_UNCHECKED_CAPACITY, source);
    let mut record = [0u8; RECORD_BYTES];
    let mut limited = (&mut reader).take(len);
    for k in 0..records {
        let got = read_full(&mut limited, &mut record).map_err(|e| Error::io(path, e))?;
        if got < RECORD_BYTES {
            // The file was cut while it was being read.
            return Err(Error::format_at(
                path,
                Position::Record(k as u64),
                format!(
                    "the file ended after {} bytes, inside record {k} ({got} of its \
                     {RECORD_BYTES} bytes): it was {len} bytes when it was opened",
                    k as u64 * RECORD_BYTES as u64 + got as u64
                ),
            ));
        }
        let label = usize::from(record[0]);
        if label >= CLASSES {
            return Err(ErrorKind::Label {
                path: Some(path.to_path_buf()),
                row: k,
                label,
                classes: CLASSES,
            }
            .into());
        }
        batch.labels.push(label);
        batch.pixels.extend_from_slice(&record[1..]);
    }
    // The file must not have grown since its length was taken.
    let mut probe = [0u8; 1];
    if read_full(&mut reader, &mut probe).map_err(|e| Error::io(path, e))? != 0 {
        return Err(Error::format_at(
            path,
            Position::Byte(len),
            format!("the file grew while it was being read: it was {len} bytes when opened"),
        ));
    }
    Ok(())
}

/// The training and test sets of a CIFAR-10 directory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Cifar10<T> {
    /// The training batches found, one after another (50,000 images in the real set).
    pub train: Dataset<T>,
    /// `test_batch.bin` (10,000 images in the real set).
    pub test: Dataset<T>,
    /// The training batches read, in order: `data_batch_1.bin` and whichever of
    /// `data_batch_2.bin` … `data_batch_5.bin` are present.
    pub train_files: Vec<PathBuf>,
    /// The test batch read.
    pub test_file: PathBuf,
}

/// The directory the batches are in: `dir` itself if it holds either required batch,
/// otherwise `dir/cifar-10-batches-bin` if that is a directory, otherwise `dir`.
///
/// ```
/// use downhill::data::cifar::{batches_dir, ARCHIVE_DIR};
///
/// let dir = std::env::temp_dir().join(format!("downhill-doc-dir-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join(ARCHIVE_DIR))?;
/// assert_eq!(batches_dir(&dir), dir.join(ARCHIVE_DIR));
/// std::fs::write(dir.join("test_batch.bin"), [])?;
/// assert_eq!(batches_dir(&dir), dir);
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn batches_dir(dir: &Path) -> PathBuf {
    let has_batches = |d: &Path| d.join(TRAIN_BATCHES[0]).is_file() || d.join(TEST_BATCH).is_file();
    let nested = dir.join(ARCHIVE_DIR);
    if !has_batches(dir) && nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}

impl<T: Scalar> Cifar10<T> {
    /// Loads a CIFAR-10 directory (or the directory holding the archive's
    /// `cifar-10-batches-bin/`): `test_batch.bin` and `data_batch_1.bin` are required,
    /// `data_batch_2.bin` … `data_batch_5.bin` are read, in order, when present (the real
    /// set has all five; [`train_files`](Cifar10::train_files) says which were read). Every
    /// file is found and its length checked (against `limit`, each file on its own, and for
    /// a whole number of records) before any is read. Pixels stay bytes and are scaled to
    /// [0, 1] when gathered.
    ///
    /// A missing required batch is an [`ErrorKind::Io`] (not found) naming every path
    /// looked for; the other errors are [`CifarReader::read`]'s, naming the file.
    ///
    /// ```
    /// use downhill::data::cifar::{ARCHIVE_DIR, RECORD_BYTES};
    /// use downhill::data::{Cifar10, ReadLimit};
    /// use downhill::error::ErrorKind;
    ///
    /// // A small directory laid out as the archive extracts: two training batches and the test
    /// // batch, each record a label and 3072 pixel bytes.
    /// let dir = std::env::temp_dir().join(format!("downhill-doc-cifar-{}", std::process::id()));
    /// let batches = dir.join(ARCHIVE_DIR);
    /// std::fs::create_dir_all(&batches)?;
    /// let record = |label: u8| [vec![label], vec![label * 20; RECORD_BYTES - 1]].concat();
    /// std::fs::write(batches.join("data_batch_1.bin"), [record(0), record(1)].concat())?;
    /// std::fs::write(batches.join("data_batch_2.bin"), record(2))?;
    /// std::fs::write(batches.join("test_batch.bin"), record(3))?;
    ///
    /// let cifar = Cifar10::<f32>::load(&dir, ReadLimit::default())?;
    /// assert_eq!((cifar.train.len(), cifar.test.len()), (3, 1));
    /// assert_eq!(cifar.train.labels(), [0, 1, 2]);
    /// assert_eq!(cifar.train_files.len(), 2);
    /// assert_eq!(cifar.train.num_features(), 3072);
    ///
    /// // Without the test batch: an I/O error naming the paths looked for.
    /// std::fs::remove_file(batches.join("test_batch.bin"))?;
    /// let err = Cifar10::<f32>::load(&dir, ReadLimit::default()).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::Io { .. }));
    /// assert!(err.to_string().contains("test_batch.bin"));
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(dir: impl AsRef<Path>, limit: ReadLimit) -> Result<Self> {
        let given = dir.as_ref();
        let dir = batches_dir(given);
        let required = |name: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                return Ok(path);
            }
            let mut looked: Vec<String> = vec![given.join(name).display().to_string()];
            let nested = given.join(ARCHIVE_DIR).join(name);
            if nested != given.join(name) {
                looked.push(nested.display().to_string());
            }
            Err(Error::io(
                &path,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "not found (looked for {}): a CIFAR-10 directory needs {} and {}, and \
                         reads {} … {} when present",
                        looked.join(" and "),
                        TRAIN_BATCHES[0],
                        TEST_BATCH,
                        TRAIN_BATCHES[1],
                        TRAIN_BATCHES[4]
                    ),
                ),
            ))
        };
        // Both required files are found before either is read.
        let first = required(TRAIN_BATCHES[0])?;
        let test_file = required(TEST_BATCH)?;
        let mut train_files = vec![first];
        train_files.extend(
            TRAIN_BATCHES[1..]
                .iter()
                .map(|name| dir.join(name))
                .filter(|p| p.is_file()),
        );

        let reader = CifarReader::new().limit(limit);
        // Every length checked before anything is read or allocated.
        let mut lengths = Vec::with_capacity(train_files.len());
        for path in train_files.iter().chain([&test_file]) {
            let len = std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .len();
            lengths.push((len, reader.check_len(path, len)?));
        }
        let test_records = lengths.pop().map_or(0, |(_, r)| r);
        let train_records = lengths
            .iter()
            .try_fold(0usize, |sum, &(_, r)| sum.checked_add(r))
            .filter(|r| r.checked_mul(RECORD_BYTES).is_some())
            .ok_or_else(|| {
                Error::format(
                    &dir,
                    "the training batches together do not fit in memory here",
                )
            })?;
        let mut train = CifarBatch::with_room(train_records);
        for (path, &(len, records)) in train_files.iter().zip(&lengths) {
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            read_records(file, path, len, records, &mut train)?;
        }
        let test = reader.read(&test_file)?;
        if test.len() != test_records {
            // The test file changed between the check and the read.
            return Err(Error::format(
                &test_file,
                format!(
                    "{} records, but it had {test_records} when its length was checked",
                    test.len()
                ),
            ));
        }
        Ok(Cifar10 {
            train: train.into_dataset()?,
            test: test.into_dataset()?,
            train_files,
            test_file,
        })
    }
}

/// Loads a CIFAR-10 directory with the default [`ReadLimit`]; see [`Cifar10::load`].
///
/// ```no_run
/// let cifar = downhill::data::load_cifar10::<f32>("cifar-10-batches-bin")?;
/// println!("{} training images from {} files", cifar.train.len(), cifar.train_files.len());
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn load_cifar10<T: Scalar>(dir: impl AsRef<Path>) -> Result<Cifar10<T>> {
    Cifar10::load(dir, ReadLimit::default())
}
