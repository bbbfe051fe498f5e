//! Every malformed IDX input is an `Error` with a message naming the file and the problem,
//! never a panic or a huge allocation; the real shipped MNIST subset reads correctly.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use downhill::data::idx::{read_idx, read_images, read_labels};
use downhill::Error;
use flate2::read::GzDecoder;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");

/// A temp file unique to this test and process, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(test: &str, bytes: &[u8]) -> TempFile {
        let name = format!("downhill-idx-{test}-{}.idx", std::process::id());
        let path = std::env::temp_dir().join(name);
        fs::write(&path, bytes).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn name(&self) -> String {
        self.0.file_name().unwrap().to_string_lossy().into_owned()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// An IDX u8 file with the given dims and data.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn shipped(name: &str) -> Vec<u8> {
    fs::read(Path::new(DATA).join(name)).expect("shipped MNIST file")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).expect("gunzip");
    out
}

/// Asserts `err` is `Error::Format` for `file` and its message mentions every one of `facts`.
fn assert_format(err: Error, file: &TempFile, facts: &[&str]) {
    let message = err.to_string();
    match err {
        Error::Format { path, problem } => {
            assert_eq!(path, file.path(), "wrong path in {message:?}");
            for fact in facts {
                assert!(
                    problem.contains(fact),
                    "{problem:?} does not mention {fact:?}"
                );
            }
        }
        other => panic!("expected Error::Format, got {other:?}"),
    }
    assert!(
        message.contains(&file.name()),
        "{message:?} does not name the file"
    );
}

#[test]
fn wrong_magic() {
    let mut bytes = idx_bytes(&[2], &[1, 2]);
    bytes[0] = 0x12;
    bytes[1] = 0x34;
    let file = TempFile::new("wrong_magic", &bytes);
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["magic", "0x12340801"]);
}

#[test]
fn element_type_not_u8() {
    let mut bytes = idx_bytes(&[1], &[0, 0, 0, 0]);
    bytes[2] = 0x0D;
    let file = TempFile::new("element_type_not_u8", &bytes);
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["element type", "0x0D", "f32"]);
}

#[test]
fn zero_dimensions() {
    let file = TempFile::new("zero_dimensions", &[0, 0, 0x08, 0]);
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["zero dimensions"]);
}

#[test]
fn data_shorter_than_header_promises() {
    let file = TempFile::new("data_too_short", &idx_bytes(&[2, 3], &[1, 2, 3, 4, 5]));
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["truncated", "promises 6 bytes", "has 5"]);
}

#[test]
fn data_longer_than_header_promises() {
    let file = TempFile::new("data_too_long", &idx_bytes(&[2, 3], &[0; 9]));
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["trailing data", "promises 6 bytes", "has 9"]);
}

#[test]
fn lying_header_with_huge_dims_fails_fast() {
    let bytes = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[0; 16]);
    let file = TempFile::new("huge_dims", &bytes);
    let start = Instant::now();
    let err = read_idx(file.path()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_format(
        err,
        &file,
        &["overflow", "4294967295 x 4294967295 x 4294967295"],
    );
}

#[test]
fn lying_header_with_four_billion_images_does_not_allocate() {
    // The product fits in usize (on 64-bit) but the file is tiny: rejected before allocating.
    let bytes = idx_bytes(&[u32::MAX, 28, 28], &[0; 784]);
    let file = TempFile::new("four_billion_images", &bytes);
    let start = Instant::now();
    let err = read_images(file.path()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    let expected = (u32::MAX as u64 * 784).to_string();
    assert_format(err, &file, &["truncated", &expected, "has 784"]);
}

#[test]
fn lying_header_inside_gzip_does_not_allocate() {
    // Inside gzip the length is unknown in advance: the buffer must grow with the data instead.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &idx_bytes(&[u32::MAX, 28, 28], &[7; 784])).unwrap();
    let file = TempFile::new("gzip_four_billion_images", &gz.finish().unwrap());
    let start = Instant::now();
    let err = read_images(file.path()).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    let expected = (u32::MAX as u64 * 784).to_string();
    assert_format(err, &file, &["truncated", &expected, "has 784"]);
}

#[test]
fn truncated_gzip() {
    let bytes = shipped("t10k-labels-idx1-ubyte.gz");
    let file = TempFile::new("truncated_gzip", &bytes[..bytes.len() / 2]);
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["truncated gzip"]);
}

#[test]
fn corrupt_gzip() {
    let mut bytes = shipped("t10k-images-idx3-ubyte.gz");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xA5;
    }
    let file = TempFile::new("corrupt_gzip", &bytes);
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["corrupt gzip"]);
}

#[test]
fn empty_file() {
    let file = TempFile::new("empty_file", &[]);
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["empty file"]);
}

#[test]
fn truncated_magic() {
    let file = TempFile::new("truncated_magic", &[0, 0, 0x08]);
    let err = read_idx(file.path()).unwrap_err();
    assert_format(err, &file, &["truncated header", "has 3"]);
}

#[test]
fn truncated_dimensions() {
    // Three dimensions need 16 header bytes; the file stops in the middle of the second.
    let bytes = &idx_bytes(&[10, 28, 28], &[])[..10];
    let file = TempFile::new("truncated_dimensions", bytes);
    let err = read_idx(file.path()).unwrap_err();
    assert_format(
        err,
        &file,
        &["truncated header", "16 header bytes", "has 10"],
    );
}

#[test]
fn label_outside_class_range() {
    let file = TempFile::new("label_out_of_range", &idx_bytes(&[4], &[3, 9, 10, 2]));
    let err = read_labels(file.path(), 10).unwrap_err();
    assert_format(err, &file, &["label 10", "index 2", "0..10"]);
}

#[test]
fn labels_file_with_wrong_number_of_dims() {
    let file = TempFile::new("labels_wrong_dims", &idx_bytes(&[2, 2], &[0, 1, 2, 3]));
    let err = read_labels(file.path(), 10).unwrap_err();
    assert_format(err, &file, &["1 dimension", "has 2", "2 x 2"]);
}

#[test]
fn images_file_with_wrong_number_of_dims() {
    let file = TempFile::new("images_wrong_dims", &idx_bytes(&[4, 4], &[0; 16]));
    let err = read_images(file.path()).unwrap_err();
    assert_format(err, &file, &["3 dimensions", "has 2", "4 x 4"]);
}

#[test]
fn missing_file_is_io_error() {
    let path =
        std::env::temp_dir().join(format!("downhill-idx-missing-{}.idx", std::process::id()));
    let err = read_idx(&path).unwrap_err();
    let message = err.to_string();
    match err {
        Error::Io { path: p, source } => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert!(
        message.contains("downhill-idx-missing-"),
        "{message:?} does not name the file"
    );
}

#[test]
fn reads_shipped_mnist_gzipped_and_plain() {
    let images_path = Path::new(DATA).join("train-images-idx3-ubyte.gz");
    let labels_path = Path::new(DATA).join("train-labels-idx1-ubyte.gz");

    let (pixels, count, size) = read_images(&images_path).unwrap();
    assert_eq!((count, size), (8000, 784));
    assert_eq!(pixels.len(), 8000 * 784);
    let labels = read_labels(&labels_path, 10).unwrap();
    assert_eq!(labels.len(), 8000);
    assert!(labels.iter().all(|&l| l < 10));

    // Independently: gunzip and read the bytes after the 8-byte labels header, and the first
    // image after the 16-byte images header.
    let raw_labels = gunzip(&shipped("train-labels-idx1-ubyte.gz"));
    let raw_images = gunzip(&shipped("train-images-idx3-ubyte.gz"));
    assert_eq!(&raw_labels[..4], &[0, 0, 8, 1]);
    let first: Vec<usize> = raw_labels[8..18].iter().map(|&b| b as usize).collect();
    assert_eq!(labels[..10], first[..]);
    assert_eq!(pixels[..784], raw_images[16..16 + 784]);

    // The same data through plain (gunzipped) copies.
    let plain_images = TempFile::new("plain_images", &raw_images);
    let plain_labels = TempFile::new("plain_labels", &raw_labels);
    assert_eq!(
        read_images(plain_images.path()).unwrap(),
        (pixels, count, size)
    );
    assert_eq!(read_labels(plain_labels.path(), 10).unwrap(), labels);

    // The test split too.
    let (test_pixels, test_count, test_size) =
        read_images(Path::new(DATA).join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(
        (test_count, test_size, test_pixels.len()),
        (2000, 784, 2000 * 784)
    );
    let test_labels = read_labels(Path::new(DATA).join("t10k-labels-idx1-ubyte.gz"), 10).unwrap();
    assert_eq!(test_labels.len(), 2000);
}
