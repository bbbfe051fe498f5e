//! Every malformed IDX input is an `Error` whose kind says what is wrong and whose path and
//! position say where — never a panic; the real shipped MNIST subset reads correctly.
//!
//! Inputs that lie about their size, and what reading them allocates, are in
//! `hostile_input.rs`, which counts allocations.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{assert_kind, idx, TempDir, SHIPPED};
use downhill::data::idx::{read_idx, read_images, read_labels};
use downhill::error::{ErrorKind, Position};
use downhill::{Error, Result};
use flate2::read::GzDecoder;

/// `bytes` in the file `name` of a fresh directory (removed with the `TempDir`).
fn file(name: &str, bytes: &[u8]) -> (TempDir, PathBuf) {
    let dir = TempDir::new(&format!("idx-{name}"));
    let path = dir.write(name, bytes);
    (dir, path)
}

fn shipped(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(SHIPPED).join(name)).expect("shipped MNIST file")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).expect("gunzip");
    out
}

/// Asserts `result` is a format error in `file` at `at`; returns it.
#[track_caller]
fn assert_format<T: std::fmt::Debug>(
    result: Result<T>,
    file: &Path,
    at: Option<Position>,
) -> Error {
    assert_kind!(
        result,
        ErrorKind::Format { path: Some(p), position, .. } if p == file && *position == at
    )
}

#[test]
fn wrong_magic() {
    let mut bytes = idx(&[2], &[1, 2]);
    bytes[0] = 0x12;
    bytes[1] = 0x34;
    let (_dir, path) = file("wrong_magic", &bytes);
    assert_format(read_idx(&path), &path, Some(Position::Byte(0)));
}

#[test]
fn element_type_not_u8() {
    let mut bytes = idx(&[1], &[0, 0, 0, 0]);
    bytes[2] = 0x0D;
    let (_dir, path) = file("element_type_not_u8", &bytes);
    assert_format(read_idx(&path), &path, Some(Position::Byte(2)));
}

#[test]
fn zero_dimensions() {
    let (_dir, path) = file("zero_dimensions", &[0, 0, 0x08, 0]);
    assert_format(read_idx(&path), &path, Some(Position::Byte(3)));
}

#[test]
fn data_shorter_than_header_promises() {
    // 12 header bytes, then 5 of the 6 data bytes promised: the data ends at byte 17.
    let (_dir, path) = file("data_too_short", &idx(&[2, 3], &[1, 2, 3, 4, 5]));
    let err = assert_format(read_idx(&path), &path, Some(Position::Byte(17)));
    // The message of a format error, once in full: the file, the place, and the problem.
    assert_eq!(
        err.to_string(),
        format!(
            "{}: byte 17: truncated: header promises 6 bytes of data, file has 5",
            path.display()
        )
    );
}

#[test]
fn data_longer_than_header_promises() {
    // The promised 6 data bytes end at byte 18; the rest is trailing.
    let (_dir, path) = file("data_too_long", &idx(&[2, 3], &[0; 9]));
    assert_format(read_idx(&path), &path, Some(Position::Byte(18)));
}

#[test]
fn dimensions_whose_product_overflows() {
    let bytes = idx(&[u32::MAX, u32::MAX, u32::MAX], &[0; 16]);
    let (_dir, path) = file("huge_dims", &bytes);
    assert_format(read_idx(&path), &path, Some(Position::Byte(4)));
}

#[test]
fn truncated_gzip() {
    let bytes = shipped("t10k-labels-idx1-ubyte.gz");
    let (_dir, path) = file("truncated_gzip.gz", &bytes[..bytes.len() / 2]);
    assert_format(read_idx(&path), &path, None);
}

#[test]
fn corrupt_gzip() {
    let mut bytes = shipped("t10k-images-idx3-ubyte.gz");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xA5;
    }
    let (_dir, path) = file("corrupt_gzip.gz", &bytes);
    assert_format(read_idx(&path), &path, None);
}

#[test]
fn empty_file() {
    let (_dir, path) = file("empty_file", &[]);
    assert_format(read_idx(&path), &path, None);
}

#[test]
fn truncated_magic() {
    let (_dir, path) = file("truncated_magic", &[0, 0, 0x08]);
    assert_format(read_idx(&path), &path, Some(Position::Byte(3)));
}

#[test]
fn truncated_dimensions() {
    // Three dimensions need 16 header bytes; the file stops in the middle of the second.
    let bytes = &idx(&[10, 28, 28], &[])[..10];
    let (_dir, path) = file("truncated_dimensions", bytes);
    assert_format(read_idx(&path), &path, Some(Position::Byte(10)));
}

#[test]
fn label_outside_class_range() {
    let (_dir, path) = file("label_out_of_range", &idx(&[4], &[3, 9, 10, 2]));
    assert_kind!(
        read_labels(&path, 10),
        ErrorKind::Label {
            path: Some(p),
            row: 2,
            label: 10,
            classes: 10,
        } if p == &path
    );
    // The same file is fine with more classes.
    assert_eq!(read_labels(&path, 11).unwrap(), [3, 9, 10, 2]);
}

#[test]
fn labels_or_images_file_with_wrong_number_of_dims() {
    let (_labels_dir, labels) = file("labels_wrong_dims", &idx(&[2, 2], &[0, 1, 2, 3]));
    assert_format(read_labels(&labels, 10), &labels, Some(Position::Byte(3)));
    let (_images_dir, images) = file("images_wrong_dims", &idx(&[4, 4], &[0; 16]));
    assert_format(read_images(&images), &images, Some(Position::Byte(3)));
}

#[test]
fn missing_file_is_io_error() {
    let dir = TempDir::new("idx-missing");
    let path = dir.join("missing.idx");
    assert_kind!(
        read_idx(&path),
        ErrorKind::Io { path: Some(p), source }
            if p == &path && source.kind() == std::io::ErrorKind::NotFound
    );
}

#[test]
fn reads_shipped_mnist_gzipped_and_plain() {
    let images_path = Path::new(SHIPPED).join("train-images-idx3-ubyte.gz");
    let labels_path = Path::new(SHIPPED).join("train-labels-idx1-ubyte.gz");

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
    let dir = TempDir::new("idx-plain-mnist");
    let plain_images = dir.write("train-images-idx3-ubyte", &raw_images);
    let plain_labels = dir.write("train-labels-idx1-ubyte", &raw_labels);
    assert_eq!(read_images(&plain_images).unwrap(), (pixels, count, size));
    assert_eq!(read_labels(&plain_labels, 10).unwrap(), labels);

    // The test split too.
    let (test_pixels, test_count, test_size) =
        read_images(Path::new(SHIPPED).join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(
        (test_count, test_size, test_pixels.len()),
        (2000, 784, 2000 * 784)
    );
    let test_labels =
        read_labels(Path::new(SHIPPED).join("t10k-labels-idx1-ubyte.gz"), 10).unwrap();
    assert_eq!(test_labels.len(), 2000);
}
