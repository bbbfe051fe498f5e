//! The CIFAR-10 reader (`downhill::data::cifar`) on small generated batch files: pixels and
//! labels read back as written, in the file's channel-major order; which training batches a
//! directory is read from; every malformed file an error of the right kind naming the file
//! (and the record, where there is one); and, on counted allocations, that a file over the
//! read limit or of a length no batch can have is refused before anything its size is
//! allocated. The inputs the `cifar` fuzz target keeps (`tests/fuzz_regressions/cifar/`)
//! are replayed with its checks.

#[path = "common/cifar_checks.rs"]
mod cifar_checks;
mod common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use cifar_checks::check_cifar_read;
use common::{assert_kind, cifar_batch, cifar_pixel, write_cifar, TempDir};
use downhill::data::cifar::{
    read_batch, CifarBatch, CifarReader, ARCHIVE_DIR, PIXELS, RECORD_BYTES, TEST_BATCH,
    TRAIN_BATCHES,
};
use downhill::data::{load_cifar10, Cifar10, ReadLimit};
use downhill::error::{ErrorKind, Position};
use downhill::testing::{peak_bytes, CountingAllocator};
use downhill::Result;
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The allowance for fixed-size state: the reader's 64 KiB buffer, error messages.
const FIXED: usize = 256 << 10;

fn labels(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed) % 10) as u8).collect()
}

fn not_found(kind: &ErrorKind, path: &Path) -> bool {
    matches!(kind, ErrorKind::Io { path: Some(p), source }
        if p == path && source.kind() == std::io::ErrorKind::NotFound)
}

#[test]
fn pixels_and_labels_read_back_as_written() {
    let dir = TempDir::new("cifar-round-trip");
    let (train, test) = (labels(30, 0), labels(12, 3));
    write_cifar(dir.path(), &[&train], &test);
    let cifar = Cifar10::<f64>::load(dir.path(), ReadLimit::default()).unwrap();
    assert_eq!(cifar.train_files, [dir.join("data_batch_1.bin")]);
    assert_eq!(cifar.test_file, dir.join("test_batch.bin"));
    for (data, labels, first) in [(&cifar.train, &train, 0), (&cifar.test, &test, 1000)] {
        assert_eq!(data.len(), labels.len());
        assert_eq!((data.num_features(), data.num_classes()), (3072, 10));
        assert!(data.is_bytes(), "pixels are kept as bytes");
        let want: Vec<usize> = labels.iter().map(|&l| usize::from(l)).collect();
        assert_eq!(data.labels(), &want[..]);
        let mut row = vec![0.0; PIXELS];
        for k in 0..data.len() {
            data.gather_row(k, &mut row).unwrap();
            for (j, &x) in row.iter().enumerate() {
                // Scaled to [0, 1] on gather, exactly as MNIST's pixels are.
                assert_eq!(
                    x,
                    f64::from(cifar_pixel(first + k, j)) * (1.0 / 255.0),
                    "image {k}, byte {j}"
                );
            }
        }
    }
}

#[test]
fn features_are_in_the_files_channel_major_order() {
    // One image: red 10, green 20, blue 30 everywhere, except the red and the blue of the
    // pixel at row 1, column 2.
    let mut record = vec![4u8];
    for c in [10u8, 20, 30] {
        record.extend([c; 1024]);
    }
    record[1 + 32 + 2] = 11;
    record[1 + 2048 + 32 + 2] = 33;
    let batch = CifarReader::new()
        .read_slice(&record, Path::new("one"))
        .unwrap();
    assert_eq!(batch.labels, [4]);
    let feature = |c: usize, row: usize, col: usize| batch.pixels[c * 1024 + 32 * row + col];
    assert_eq!(
        (feature(0, 0, 0), feature(1, 0, 0), feature(2, 31, 31)),
        (10, 20, 30)
    );
    assert_eq!(
        (feature(0, 1, 2), feature(1, 1, 2), feature(2, 1, 2)),
        (11, 20, 33)
    );
}

#[test]
fn a_batch_reads_the_same_from_a_file_and_from_bytes() {
    let dir = TempDir::new("cifar-batch");
    let bytes = cifar_batch(5, &labels(7, 1));
    let path = dir.write("data_batch_1.bin", &bytes);
    let from_file = read_batch(&path).unwrap();
    let from_bytes = CifarReader::new().read_slice(&bytes, &path).unwrap();
    assert_eq!(from_file, from_bytes);
    assert_eq!(from_file.len(), 7);
    let mut want = Vec::new();
    for record in bytes.chunks(RECORD_BYTES) {
        want.extend_from_slice(&record[1..]);
    }
    assert_eq!(from_file.pixels, want);
    let data = from_file.into_dataset::<f32>().unwrap();
    assert_eq!(data.len(), 7);
}

#[test]
fn training_batches_2_to_5_are_read_when_present_in_order() {
    let dir = TempDir::new("cifar-batches");
    let parts = [labels(4, 0), labels(5, 1), labels(6, 2)];
    write_cifar(
        dir.path(),
        &[&parts[0], &parts[1], &parts[2]],
        &labels(3, 0),
    );
    let cifar = load_cifar10::<f32>(dir.path()).unwrap();
    let names: Vec<PathBuf> = TRAIN_BATCHES[..3].iter().map(|n| dir.join(n)).collect();
    assert_eq!(cifar.train_files, names);
    let want: Vec<usize> = parts.concat().iter().map(|&l| usize::from(l)).collect();
    assert_eq!(cifar.train.labels(), &want[..]);
    // Image numbers run on from one file to the next: the last image is image 14.
    let mut row = vec![0.0f32; PIXELS];
    cifar.train.gather_row(14, &mut row).unwrap();
    assert_eq!(row[100], f32::from(cifar_pixel(14, 100)) * (1.0 / 255.0));

    // A gap: data_batch_2.bin missing, 1 and 3 read, in order.
    fs::remove_file(dir.join(TRAIN_BATCHES[1])).unwrap();
    let cifar = load_cifar10::<f32>(dir.path()).unwrap();
    assert_eq!(cifar.train_files, [names[0].clone(), names[2].clone()]);
    assert_eq!(cifar.train.len(), 10);
}

#[test]
fn the_archives_nested_directory_is_found() {
    let dir = TempDir::new("cifar-nested");
    let nested = dir.join(ARCHIVE_DIR);
    write_cifar(&nested, &[&labels(3, 0), &labels(2, 0)], &labels(2, 5));
    let cifar = Cifar10::<f32>::load(dir.path(), ReadLimit::default()).unwrap();
    assert_eq!(
        cifar.train_files,
        [
            nested.join("data_batch_1.bin"),
            nested.join("data_batch_2.bin")
        ]
    );
    assert_eq!(cifar.test_file, nested.join(TEST_BATCH));
    assert_eq!((cifar.train.len(), cifar.test.len()), (5, 2));
    // And the nested directory itself, given directly.
    let again = Cifar10::<f32>::load(&nested, ReadLimit::default()).unwrap();
    assert_eq!(again.train_files, cifar.train_files);
}

#[test]
fn a_missing_required_batch_names_every_path_looked_for() {
    let dir = TempDir::new("cifar-missing");
    write_cifar(dir.path(), &[&labels(3, 0)], &labels(2, 0));
    for name in [TEST_BATCH, TRAIN_BATCHES[0]] {
        let path = dir.join(name);
        let bytes = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let err = assert_kind!(
            Cifar10::<f32>::load(dir.path(), ReadLimit::default()),
            k if not_found(k, &path)
        );
        let message = err.to_string();
        let nested = dir.join(ARCHIVE_DIR).join(name);
        for want in [
            path.display().to_string(),
            nested.display().to_string(),
            "data_batch_1.bin and test_batch.bin".into(),
        ] {
            assert!(message.contains(&want), "{message:?} does not name {want}");
        }
        fs::write(&path, bytes).unwrap();
    }
    // No directory at all: the first file looked for is named.
    let gone = dir.join("nowhere");
    assert_kind!(
        load_cifar10::<f32>(&gone),
        k if not_found(k, &gone.join(TRAIN_BATCHES[0]))
    );
}

#[test]
fn a_length_that_is_not_a_whole_number_of_records_names_the_file_and_the_length() {
    let dir = TempDir::new("cifar-length");
    write_cifar(dir.path(), &[&labels(3, 0), &labels(4, 0)], &labels(2, 0));
    // Two records and 100 bytes of a third, in the second training batch.
    let path = dir.join(TRAIN_BATCHES[1]);
    let len = 2 * RECORD_BYTES + 100;
    fs::write(&path, &cifar_batch(0, &labels(3, 0))[..len]).unwrap();
    let err = assert_kind!(
        Cifar10::<f32>::load(dir.path(), ReadLimit::default()),
        ErrorKind::Format { path: Some(p), position: Some(Position::Record(2)), .. } if p == &path
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: record 2: the file is 6246 bytes, not a whole number of 3073-byte records: \
             its last record is cut after 100 bytes",
            path.display()
        )
    );
    // The same bytes from memory, and a file of less than one record.
    let bytes = fs::read(&path).unwrap();
    assert_kind!(
        CifarReader::new().read_slice(&bytes, &path),
        ErrorKind::Format {
            position: Some(Position::Record(2)),
            ..
        }
    );
    let short = dir.write("short.bin", &bytes[..RECORD_BYTES - 1]);
    assert_kind!(
        read_batch(&short),
        ErrorKind::Format { path: Some(p), position: Some(Position::Record(0)), .. } if p == &short
    );
}

#[test]
fn cifar_100s_records_are_named() {
    // 3074 bytes: one CIFAR-100 record (coarse and fine label, then the pixels).
    let err = assert_kind!(
        CifarReader::new().read_slice(&[0u8; RECORD_BYTES + 1], Path::new("train.bin")),
        ErrorKind::Format {
            position: Some(Position::Record(1)),
            ..
        }
    );
    assert!(err.to_string().contains("CIFAR-100"), "{err}");
}

#[test]
fn an_empty_batch_is_refused() {
    let dir = TempDir::new("cifar-empty");
    write_cifar(dir.path(), &[&labels(3, 0)], &[]);
    let test = dir.join(TEST_BATCH);
    let err = assert_kind!(
        Cifar10::<f32>::load(dir.path(), ReadLimit::default()),
        ErrorKind::Format { path: Some(p), position: None, .. } if p == &test
    );
    assert!(err.to_string().contains("empty file"), "{err}");
}

#[test]
fn a_label_over_9_names_the_file_and_the_record() {
    let dir = TempDir::new("cifar-label");
    write_cifar(dir.path(), &[&labels(3, 0), &labels(6, 0)], &labels(4, 0));
    for (name, record, label) in [(TRAIN_BATCHES[1], 4, 10u8), (TEST_BATCH, 3, 255)] {
        let path = dir.join(name);
        let good = fs::read(&path).unwrap();
        let mut bad = good.clone();
        bad[record * RECORD_BYTES] = label;
        fs::write(&path, &bad).unwrap();
        let err = assert_kind!(
            Cifar10::<f32>::load(dir.path(), ReadLimit::default()),
            ErrorKind::Label { path: Some(p), row, label: l, classes: 10 }
                if p == &path && *row == record && *l == usize::from(label)
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: label {label} at row {record} is outside the class range 0..10",
                path.display()
            )
        );
        fs::write(&path, &good).unwrap();
    }
}

#[test]
fn a_file_over_the_read_limit_is_refused_before_it_is_read() {
    let dir = TempDir::new("cifar-limit");
    write_cifar(dir.path(), &[&labels(3, 0)], &labels(2, 0));
    let train = dir.join(TRAIN_BATCHES[0]);
    let len = 3 * RECORD_BYTES as u64;
    let short = ReadLimit::default().max_bytes(len - 1).unwrap();
    // The test batch (2 records) is within the limit; the training batch is not, and nothing
    // is read: not the training batch, nor the test batch.
    let (r, peak) = peak_bytes(|| Cifar10::<f32>::load(dir.path(), short));
    assert_kind!(
        r,
        ErrorKind::TooLarge { path: Some(p), claimed, limit }
            if p == &train && *claimed == len && *limit == len - 1
    );
    assert!(peak < 4 << 10, "a refused directory held {peak} bytes");
    let reader = CifarReader::new().limit(short);
    let (r, peak) = peak_bytes(|| reader.read(&train));
    assert_kind!(r, ErrorKind::TooLarge { claimed, .. } if *claimed == len);
    assert!(peak < 4 << 10, "a refused file held {peak} bytes");
    let bytes = fs::read(&train).unwrap();
    let (r, peak) = peak_bytes(|| reader.read_slice(&bytes, &train));
    assert_kind!(r, ErrorKind::TooLarge { claimed, .. } if *claimed == len);
    assert!(peak < 4 << 10, "refused bytes held {peak} bytes");
    // A limit of exactly the file's length reads it.
    let exact = ReadLimit::default().max_bytes(len).unwrap();
    assert_eq!(
        CifarReader::new().limit(exact).read(&train).unwrap().len(),
        3
    );
    assert_eq!(
        Cifar10::<f32>::load(dir.path(), exact).unwrap().train.len(),
        3
    );
}

/// A sparse file of `len` bytes (nothing written but its first record), named `name`.
fn sparse(dir: &TempDir, name: &str, len: u64) -> PathBuf {
    let path = dir.write(name, &cifar_batch(0, &[1]));
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len)
        .unwrap();
    path
}

#[test]
fn a_file_that_claims_a_lot_allocates_nothing_for_it() {
    let dir = TempDir::new("cifar-sparse");
    // 350,000 records, 1.08 GB: over the default limit of 1 GiB.
    let huge = sparse(&dir, "data_batch_1.bin", 350_000 * RECORD_BYTES as u64);
    let (r, peak) = peak_bytes(|| read_batch(&huge));
    assert_kind!(
        r,
        ErrorKind::TooLarge { path: Some(p), claimed, limit }
            if p == &huge && *claimed == 350_000 * RECORD_BYTES as u64
                && *limit == ReadLimit::DEFAULT_BYTES
    );
    assert!(peak < 4 << 10, "a 1 GB file held {peak} bytes");
    // In a directory, with a good test batch beside it.
    dir.write(TEST_BATCH, &cifar_batch(0, &[2, 3]));
    let (r, peak) = peak_bytes(|| load_cifar10::<f32>(dir.path()));
    assert_kind!(r, ErrorKind::TooLarge { path: Some(p), .. } if p == &huge);
    assert!(
        peak < 4 << 10,
        "a directory with a 1 GB file held {peak} bytes"
    );

    // 900 MB within the limit, but one byte past a whole number of records: refused from
    // its length, before the 900 MB of buffers are allocated.
    let cut = sparse(&dir, "data_batch_1.bin", 300_000 * RECORD_BYTES as u64 + 1);
    let (r, peak) = peak_bytes(|| load_cifar10::<f32>(dir.path()));
    assert_kind!(
        r,
        ErrorKind::Format { path: Some(p), position: Some(Position::Record(300_000)), .. }
            if p == &cut
    );
    assert!(peak < 4 << 10, "a cut 900 MB file held {peak} bytes");
}

#[test]
fn reading_allocates_about_the_files_size() {
    let dir = TempDir::new("cifar-peak");
    // Two training batches of 600 KiB each: a reader that held a whole file besides the
    // pixels it keeps would be over the allowance.
    write_cifar(
        dir.path(),
        &[&labels(200, 0), &labels(200, 1)],
        &labels(50, 0),
    );
    let files = 450 * RECORD_BYTES;
    let (r, peak) = peak_bytes(|| load_cifar10::<f32>(dir.path()));
    let cifar = r.unwrap();
    assert_eq!(cifar.train.len(), 400);
    // The pixels, the labels as usize, the transforms' scales and offsets (f32), buffers.
    let allowance = files + 450 * 8 + 4 * 3072 * 4 + FIXED;
    assert!(
        peak <= allowance,
        "held {peak} bytes for {files} (allowed {allowance})"
    );
    eprintln!("{files} bytes of batches: {peak} bytes at the peak");
}

#[cfg(unix)]
#[test]
fn a_stream_is_read_up_to_the_limit() {
    // A character device: no length to check, so it is read up to one byte past the limit.
    let small = CifarReader::new().limit(ReadLimit::default().max_bytes(100_000).unwrap());
    let (r, peak) = peak_bytes(|| small.read("/dev/zero"));
    assert_kind!(
        r,
        ErrorKind::TooLarge { path: Some(p), claimed: 100_001, limit: 100_000 }
            if p == Path::new("/dev/zero")
    );
    assert!(peak < 4 * 100_000 + FIXED, "a stream held {peak} bytes");
    assert_kind!(
        read_batch("/dev/null"),
        ErrorKind::Format { position: None, .. }
    );
}

/// The `cifar` fuzz target's checks (`tests/common/cifar_checks.rs`) on one input, and a
/// bound on what reading it held.
fn check(bytes: &[u8]) {
    let path = Path::new("fuzz.bin");
    let (r, peak) = peak_bytes(|| CifarReader::new().read_slice(bytes, path));
    assert!(
        peak <= 2 * bytes.len() + FIXED,
        "{} bytes held {peak} bytes",
        bytes.len()
    );
    check_cifar_read(bytes, path, r);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_are_ok_or_err(bytes in prop::collection::vec(any::<u8>(), 0..2 * RECORD_BYTES + 2)) {
        check(&bytes);
    }

    #[test]
    fn mutated_batches_are_ok_or_err(
        writes in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in prop_oneof![Just(usize::MAX), any::<usize>()],
    ) {
        let mut bytes = cifar_batch(0, &[1, 2, 3]);
        let len = bytes.len();
        for (i, b) in writes {
            // Labels are what a mutation most often breaks: aim half the writes at them.
            let at = if b % 2 == 0 { (i % 3) * RECORD_BYTES } else { i % len };
            bytes[at] = b;
        }
        bytes.truncate(cut % (len + 1));
        check(&bytes);
    }
}

#[test]
fn inputs_the_fuzzer_kept_are_handled() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/cifar");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "kept inputs in {}: {files:?}",
        dir.display()
    );
    let mut valid = 0;
    for file in &files {
        let bytes = fs::read(file).unwrap();
        check(&bytes);
        valid += usize::from(CifarReader::new().read_slice(&bytes, file).is_ok());
    }
    assert!(valid >= 1, "no kept input is a valid batch");
    eprintln!("replayed {} kept inputs, {valid} valid", files.len());
}

/// What a seed must read as.
type Expect = fn(&Result<CifarBatch>) -> bool;

/// Writes the fuzzer's seeds (`DOWNHILL_SEEDS=tests/fuzz_regressions/cifar cargo test
/// --all-features --test cifar seeds`); checks them either way.
#[test]
fn the_fuzzers_seeds_are_what_they_say() {
    let one = cifar_batch(0, &[7]);
    let mut label_10 = cifar_batch(0, &[0, 1]);
    label_10[RECORD_BYTES] = 10;
    let seeds: [(&str, Vec<u8>, Expect); 4] = [
        ("one_record", one.clone(), |r| {
            r.as_ref().is_ok_and(|b| b.labels == [7])
        }),
        ("two_records_label_10", label_10, |r| {
            matches!(
                r.as_ref().map_err(|e| e.kind()),
                Err(ErrorKind::Label {
                    row: 1,
                    label: 10,
                    ..
                })
            )
        }),
        ("cut_record", one[..RECORD_BYTES - 1].to_vec(), |r| {
            matches!(
                r.as_ref().map_err(|e| e.kind()),
                Err(ErrorKind::Format {
                    position: Some(Position::Record(0)),
                    ..
                })
            )
        }),
        ("empty", Vec::new(), |r| {
            matches!(
                r.as_ref().map_err(|e| e.kind()),
                Err(ErrorKind::Format { position: None, .. })
            )
        }),
    ];
    for (name, bytes, expected) in &seeds {
        let r = CifarReader::new().read_slice(bytes, Path::new(name));
        assert!(expected(&r), "{name}: {r:?}");
    }
    if let Some(dir) = std::env::var_os("DOWNHILL_SEEDS") {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes, _) in &seeds {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
