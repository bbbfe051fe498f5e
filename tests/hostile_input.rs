//! Hostile input: arbitrary bytes, and valid files with bytes overwritten, cut off or
//! appended, fed to the IDX reader (plain, gzip, and as a stream of unknown length) and to the
//! checkpoint loader. Each must answer `Ok` or `Err` — never panic — and never allocate more
//! than a small multiple of what it was given: a header that claims four billion images in a
//! 100-byte file fails before allocating for them.
//!
//! Allocation is measured by the crate's counting global allocator
//! (`downhill::testing::CountingAllocator`, feature `testing`), per thread: the test harness
//! runs tests on several threads at once.
//!
//! The inputs the fuzzers (`fuzz/`) found interesting are kept in `tests/fuzz_regressions/`
//! and replayed here with the fuzz targets' own checks.
//!
//! Then the bounded reads: a header that claims more than the reader's
//! [`ReadLimit`](downhill::data::ReadLimit) is refused before its data is read (a gzip bomb
//! included), a large gzip claim that its trailer contradicts is refused before it is
//! inflated, the checkpoint loader refuses a file over its limit, and every broken MNIST
//! directory is an error naming the file, each with what it cost printed (run with
//! `--nocapture` to see the table).
//!
//! No test here asserts a time: allocation is what is measured, and times are only printed.

mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{assert_kind, gzip, idx, write_mnist, TempDir, SHIPPED};
use downhill::checkpoint::Checkpoint;
use downhill::data::idx::{read_idx_from, read_idx_slice, IdxArray, IdxReader};
use downhill::data::{Mnist, ReadLimit};
use downhill::error::{ErrorKind, Position};
use downhill::prelude::*;
use downhill::testing::{peak_bytes, CountingAllocator};
use downhill::train::TrainState;
use flate2::{write::GzEncoder, Compression};
use proptest::prelude::*;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The allowance for fixed-size state: the gzip decoder's 32 KiB window and its buffers,
/// the stream reader's first 64 KiB, error messages.
const FIXED: usize = 256 << 10;

const MIB: u64 = 1 << 20;

/// A small valid checkpoint: an MLP 3 → 4 → 2 after one step of momentum SGD, so it has an
/// optimizer buffer too.
fn checkpoint_bytes() -> Vec<u8> {
    let x = Matrix::from_vec(vec![0.5f32, -1.0, 2.0, 1.0, 0.0, -0.5], 2, 3).unwrap();
    let data = Dataset::from_matrix(x, vec![0, 1], 2).unwrap();
    let mut mlp = Mlp::<f32>::builder(3)
        .hidden(4, Activation::Sigmoid)
        .classes(2)
        .build()
        .unwrap();
    let mut sgd = Sgd::new(0.1).unwrap().momentum(0.5).unwrap();
    sgd.step(&mut mlp.on(&data.all())).unwrap();
    let state = TrainState {
        epoch: 1,
        step: 1,
        seed: 5,
    };
    Checkpoint::capture(&mlp, &sgd, state)
        .with_architecture(mlp.architecture())
        .with_hyper("lr", 0.1)
        .to_bytes()
        .unwrap()
}

fn check_idx(result: &downhill::Result<IdxArray>) {
    if let Ok(a) = result {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    }
}

/// Every reader on `bytes`; panics (failing the test) if one panics or allocates too much.
fn read_everything(bytes: &[u8]) {
    let path = Path::new("hostile");
    let n = bytes.len();
    let (plain, peak) = peak_bytes(|| read_idx_slice(bytes, path));
    check_idx(&plain);
    let out = plain
        .as_ref()
        .map_or(0, |a| a.data.len() + 8 * a.dims.len());
    // Plain input of known length: checked against the length before anything is allocated.
    // Gzip input: the output grows only with what is actually decompressed.
    assert!(
        peak <= 4 * (n + out) + FIXED,
        "read_idx_slice on {n} bytes held {peak} bytes"
    );
    let (streamed, peak) = peak_bytes(|| read_idx_from(bytes, path));
    check_idx(&streamed);
    assert_eq!(plain.is_ok(), streamed.is_ok());
    assert!(
        peak <= 4 * (n + out) + FIXED,
        "read_idx_from on {n} bytes held {peak} bytes"
    );
    let (ckpt, peak) = peak_bytes(|| Checkpoint::<f32>::from_bytes(bytes, path));
    assert!(
        peak <= 16 * n + FIXED,
        "Checkpoint::from_bytes on {n} bytes held {peak} bytes"
    );
    if let Ok(c) = ckpt {
        // Whatever is accepted can be restored into the network it describes.
        if let Ok(mut mlp) = c.build_mlp() {
            c.restore_model(&mut mlp).unwrap();
        }
    }
    let _ = Checkpoint::<f64>::from_bytes(bytes, path);
}

/// `valid` with some bytes overwritten, then cut to a length, then extended.
fn mutate(valid: &[u8], writes: &[(usize, u8)], cut: usize, tail: &[u8]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    if !bytes.is_empty() {
        let len = bytes.len();
        for &(i, b) in writes {
            bytes[i % len] = b;
        }
    }
    bytes.truncate(cut % (valid.len() + 1));
    bytes.extend_from_slice(tail);
    bytes
}

fn mutation() -> impl Strategy<Value = (Vec<(usize, u8)>, usize, Vec<u8>)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        prop_oneof![Just(usize::MAX), any::<usize>()],
        prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..8)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_are_ok_or_err(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        read_everything(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_are_ok_or_err(
        dims in prop::collection::vec(any::<u32>(), 1..4),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = idx(&dims, &data);
        read_everything(&bytes);
        read_everything(&gzip(&bytes));
    }

    #[test]
    fn mutated_idx_files_are_ok_or_err((writes, cut, tail) in mutation()) {
        let valid = idx(&[3, 2, 2], &[7; 12]);
        read_everything(&mutate(&valid, &writes, cut, &tail));
    }

    #[test]
    fn mutated_gzip_idx_files_are_ok_or_err((writes, cut, tail) in mutation()) {
        let valid = gzip(&idx(&[3, 2, 2], &[7; 12]));
        read_everything(&mutate(&valid, &writes, cut, &tail));
    }

    #[test]
    fn mutated_checkpoints_are_ok_or_err((writes, cut, tail) in mutation()) {
        let valid = checkpoint_bytes();
        read_everything(&mutate(&valid, &writes, cut, &tail));
    }
}

#[test]
fn the_allocation_counter_counts() {
    // Without this, a counter that always said 0 would pass every bound below.
    let (v, peak) = peak_bytes(|| vec![1u8; 1 << 20]);
    assert!(peak >= 1 << 20, "peak {peak}");
    let ((), after) = peak_bytes(|| drop(v));
    assert_eq!(after, 0);
    let (_, small) = peak_bytes(|| read_idx_slice(&idx(&[3, 2, 2], &[7; 12]), Path::new("x")));
    assert!(small > 0 && small < 4096, "{small}");
}

#[test]
fn valid_inputs_are_read() {
    let bytes = idx(&[3, 2, 2], &[7; 12]);
    assert_eq!(
        read_idx_slice(&bytes, Path::new("x")).unwrap().dims,
        [3, 2, 2]
    );
    assert_eq!(
        read_idx_slice(&gzip(&bytes), Path::new("x")).unwrap().data,
        [7; 12]
    );
    let ckpt = Checkpoint::<f32>::from_bytes(&checkpoint_bytes(), Path::new("x")).unwrap();
    assert_eq!(ckpt.train.seed, 5);
}

#[test]
fn four_billion_images_in_100_bytes_fail_before_allocating() {
    // 0xFFFF_FFFF images of 28 x 28, and 84 bytes of "pixels": over the default limit, so
    // refused from the header alone, whatever follows it.
    let claimed = u64::from(u32::MAX) * 784;
    let too_large = |r: downhill::Result<IdxArray>, name: &str| {
        assert_kind!(
            r,
            ErrorKind::TooLarge { path: Some(p), claimed: c, limit }
                if p == Path::new(name) && *c == claimed && *limit == ReadLimit::DEFAULT_BYTES
        );
    };
    let mut bytes = idx(&[u32::MAX, 28, 28], &[0; 84]);
    assert_eq!(bytes.len(), 100);
    let (r, peak) = peak_bytes(|| read_idx_slice(&bytes, Path::new("liar")));
    too_large(r, "liar");
    assert!(peak < 4 << 10, "a 100-byte file held {peak} bytes");

    let gzipped = gzip(&bytes);
    let (r, peak) = peak_bytes(|| read_idx_slice(&gzipped, Path::new("liar.gz")));
    too_large(r, "liar.gz");
    assert!(peak < FIXED, "a gzipped liar held {peak} bytes");
    eprintln!("a gzipped 4-billion-image header: {peak} bytes at the peak");

    let (r, peak) = peak_bytes(|| read_idx_from(&bytes[..], Path::new("stream")));
    too_large(r, "stream");
    assert!(peak < FIXED, "a streamed liar held {peak} bytes");

    // The same lie one level down: a checkpoint header that claims a huge header.
    bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[b' '; 92]);
    let (r, peak) = peak_bytes(|| Checkpoint::<f32>::from_bytes(&bytes, Path::new("c")));
    assert_kind!(r, ErrorKind::Format { path: Some(p), .. } if p == Path::new("c"));
    assert!(peak < 4 << 10, "a lying checkpoint held {peak} bytes");
}

/// `name` in a fresh directory holding `bytes`.
fn file(dir: &str, name: &str, bytes: &[u8]) -> (TempDir, PathBuf) {
    let dir = TempDir::new(dir);
    let path = dir.write(name, bytes);
    (dir, path)
}

#[test]
fn lying_header_with_four_billion_images_does_not_allocate() {
    // On disk: 0xFFFF_FFFF images of 28 x 28 claimed, one image present. Over the limit:
    // refused from the header.
    let bytes = idx(&[u32::MAX, 28, 28], &[0; 784]);
    let (_dir, path) = file("hostile-four-billion", "images", &bytes);
    let (r, peak) = peak_bytes(|| downhill::data::idx::read_images(&path));
    assert_kind!(
        r,
        ErrorKind::TooLarge { path: Some(p), claimed, limit }
            if p == &path
                && *claimed == u64::from(u32::MAX) * 784
                && *limit == ReadLimit::DEFAULT_BYTES
    );
    assert!(
        peak <= 4 * bytes.len(),
        "reading {} bytes held {peak} bytes",
        bytes.len()
    );

    // Within the limit, the same lie (a million images, 784 MB) is refused by the file's
    // length, also before anything is allocated for the data.
    let bytes = idx(&[1_000_000, 28, 28], &[0; 784]);
    let (_dir, path) = file("hostile-million", "images", &bytes);
    let (r, peak) = peak_bytes(|| downhill::data::idx::read_images(&path));
    assert_kind!(
        r,
        ErrorKind::Format { path: Some(p), position: Some(Position::Byte(800)), .. } if p == &path
    );
    assert!(
        peak <= 4 * bytes.len(),
        "reading {} bytes held {peak} bytes",
        bytes.len()
    );
    // And as a stream of unknown length, the buffer grows only with the data that arrives.
    assert_stream_short_at_800(&bytes, &path);
}

#[test]
fn lying_header_inside_gzip_does_not_allocate() {
    // Inside gzip the data's length is unknown until it is inflated: over the limit, the
    // claim is refused from the header; within it, a claim over 64 MiB must agree with the
    // gzip trailer, and anything else grows the buffer only with the data that arrives.
    let bytes = gzip(&idx(&[u32::MAX, 28, 28], &[7; 784]));
    let (_dir, path) = file("hostile-gzip-four-billion", "images.gz", &bytes);
    let (r, peak) = peak_bytes(|| downhill::data::idx::read_images(&path));
    assert_kind!(
        r,
        ErrorKind::TooLarge { path: Some(p), claimed, .. }
            if p == &path && *claimed == u64::from(u32::MAX) * 784
    );
    assert!(peak <= 4 * bytes.len() + FIXED, "held {peak} bytes");

    let bytes = gzip(&idx(&[1_000_000, 28, 28], &[7; 784]));
    let (_dir, path) = file("hostile-gzip-million", "images.gz", &bytes);
    let (r, peak) = peak_bytes(|| downhill::data::idx::read_images(&path));
    // The trailer's check: no position, nothing inflated.
    assert_kind!(
        r,
        ErrorKind::Format { path: Some(p), position: None, .. } if p == &path
    );
    assert!(peak <= 4 * bytes.len() + FIXED, "held {peak} bytes");
    // A stream has no trailer to read first: inflated, and found short.
    assert_stream_short_at_800(&bytes, &path);
}

/// `bytes` (a claim of a million images, one image of data), read as a stream of unknown
/// length, is found short at byte 800, having grown its buffer only with the data that
/// arrived.
#[track_caller]
fn assert_stream_short_at_800(bytes: &[u8], path: &Path) {
    let (r, peak) = peak_bytes(|| read_idx_from(bytes, path));
    assert_kind!(
        r,
        ErrorKind::Format {
            position: Some(Position::Byte(800)),
            ..
        }
    );
    assert!(
        peak <= 4 * bytes.len() + FIXED,
        "streaming held {peak} bytes"
    );
}

#[test]
fn a_claim_over_the_readers_limit_is_refused_before_reading() {
    // A truthful file: 1 MiB of data behind a header that says so, read with a limit of
    // half that.
    let bytes = idx(&[1024, 1024], &vec![7; 1 << 20]);
    let gzipped = gzip(&bytes);
    let dir = TempDir::new("hostile-limit");
    let plain = dir.write("plain", &bytes);
    let gz = dir.write("data.gz", &gzipped);
    let half = ReadLimit::default().max_bytes(MIB / 2).unwrap();
    let reader = IdxReader::new().limit(half);
    let refused = |r: downhill::Result<IdxArray>, path: &Path| {
        assert_kind!(
            r,
            ErrorKind::TooLarge { path: Some(p), claimed: MIB, limit }
                if p == path && *limit == MIB / 2
        )
    };

    let (r, peak) = peak_bytes(|| reader.read(&plain));
    let err = refused(r, &plain);
    assert!(peak < 4 << 10, "a refused plain file held {peak} bytes");
    // The message of a refusal, once in full: the file, the claim, the limit, and how to
    // raise it.
    assert_eq!(
        err.to_string(),
        format!(
            "{}: reading it takes 1048576 bytes, more than the read limit of \
             524288 bytes (raise it with ReadLimit::max_bytes, or the examples' --max-data-mib)",
            plain.display()
        )
    );
    let (r, peak) = peak_bytes(|| reader.read(&gz));
    refused(r, &gz);
    assert!(peak < FIXED, "a refused gzip file held {peak} bytes");
    let (r, peak) = peak_bytes(|| reader.read_slice(&bytes, &plain));
    refused(r, &plain);
    assert!(peak < 4 << 10, "refused bytes held {peak} bytes");
    let (r, peak) = peak_bytes(|| reader.read_from(&gzipped[..], &gz));
    refused(r, &gz);
    assert!(peak < FIXED, "a refused gzip stream held {peak} bytes");

    // A claim of exactly the limit is read.
    let exact = IdxReader::new().limit(ReadLimit::default().max_bytes(MIB).unwrap());
    for path in [&plain, &gz] {
        let array = exact.read(path).unwrap();
        assert_eq!((array.dims, array.data.len()), (vec![1024, 1024], 1 << 20));
    }
}

/// Writes a gzip file at `path`: `header`, then `zeros` zero bytes streamed through the
/// encoder a MiB at a time (never held whole). Returns the file's size.
fn gzip_zeros(path: &Path, header: &[u8], zeros: u64) -> u64 {
    let file = BufWriter::new(File::create(path).unwrap());
    let mut enc = GzEncoder::new(file, Compression::fast());
    enc.write_all(header).unwrap();
    let chunk = vec![0u8; MIB as usize];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(MIB);
        enc.write_all(&chunk[..n as usize]).unwrap();
        left -= n;
    }
    enc.finish().unwrap().into_inner().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// One line of the printed cost tables.
fn cost(name: &str, started: Instant, peak: usize) {
    eprintln!(
        "{name:<44} {:>9.2} ms {:>10} bytes at the peak",
        started.elapsed().as_secs_f64() * 1e3,
        peak
    );
}

#[test]
fn a_gzip_bomb_is_refused_before_it_is_inflated() {
    // The bomb: a gzip file whose header claims 13,000,000 images of 28 x 28
    // (10.2 GB). Its stream here inflates to 128 MiB of zeros (the real one, to 10 GiB).
    let dir = TempDir::new("hostile-bomb");
    let path = dir.join("train-images-idx3-ubyte.gz");
    let claimed = 13_000_000 * 784;
    let started = Instant::now();
    let size = gzip_zeros(&path, &idx(&[13_000_000, 28, 28], &[]), 128 * MIB);
    eprintln!(
        "the bomb: {size} bytes of gzip inflating to 128 MiB, written in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let bomb = |r: downhill::Result<IdxArray>| {
        assert_kind!(
            r,
            ErrorKind::TooLarge { path: Some(p), claimed: c, limit }
                if p == &path && *c == claimed && *limit == ReadLimit::DEFAULT_BYTES
        );
    };

    let started = Instant::now();
    let (r, peak) = peak_bytes(|| downhill::data::idx::read_idx(&path));
    cost("bomb: read_idx", started, peak);
    bomb(r);
    assert!(peak < FIXED, "the bomb held {peak} bytes");

    // As a stream: no trailer and no length to look at, only the header.
    let compressed = std::fs::read(&path).unwrap();
    let started = Instant::now();
    let (r, peak) = peak_bytes(|| read_idx_from(&compressed[..], &path));
    cost("bomb: read_idx_from (a stream)", started, peak);
    bomb(r);
    assert!(peak < FIXED, "the streamed bomb held {peak} bytes");

    // In an MNIST directory (whose other three files are fine).
    dir.write("train-labels-idx1-ubyte", &idx(&[2], &[0, 1]));
    dir.write(
        "t10k-images-idx3-ubyte",
        &idx(&[2, 28, 28], &[0; 2 * 28 * 28]),
    );
    dir.write("t10k-labels-idx1-ubyte", &idx(&[2], &[0, 1]));
    let started = Instant::now();
    let (r, peak) = peak_bytes(|| Mnist::<f32>::load(dir.path(), ReadLimit::default()));
    cost("bomb: Mnist::load", started, peak);
    assert_kind!(
        r,
        ErrorKind::TooLarge { path: Some(p), claimed: c, .. } if p == &path && *c == claimed
    );
    assert!(peak < FIXED, "loading the bomb held {peak} bytes");

    // With a limit raised past the claim, the trailer (128 MiB + 16 inflated) contradicts
    // the header: refused before inflating.
    let raised = IdxReader::new().limit(ReadLimit::default().max_mib(16 << 10).unwrap());
    let started = Instant::now();
    let (r, peak) = peak_bytes(|| raised.read(&path));
    cost("bomb: read with a 16 GiB limit", started, peak);
    assert_kind!(
        r,
        ErrorKind::Format { path: Some(p), position: None, .. } if p == &path
    );
    assert!(
        peak < FIXED,
        "the bomb held {peak} bytes past a raised limit"
    );
}

#[test]
fn a_large_gzip_claim_its_trailer_contradicts_is_not_inflated() {
    // Claims within the default limit and over the 64 MiB above which the trailer is
    // checked; streams that inflate to much less, and to much more.
    let dir = TempDir::new("hostile-trailer");
    let cases = [
        (
            "900 MiB claimed, 128 MiB inflated",
            [900, 1024, 1024],
            128 * MIB,
        ),
        (
            "900 MiB claimed, 1.5 GiB inflated",
            [900, 1024, 1024],
            1536 * MIB,
        ),
        (
            "100 MiB claimed, 256 MiB inflated",
            [100, 1024, 1024],
            256 * MIB,
        ),
    ];
    // Every case is read and printed before any is judged, so the table is whole.
    let mut wrong = Vec::new();
    for (i, (name, dims, zeros)) in cases.into_iter().enumerate() {
        let path = dir.join(&format!("case-{i}.gz"));
        let started = Instant::now();
        let size = gzip_zeros(&path, &idx(&dims, &[]), zeros);
        eprintln!(
            "{name}: {size} bytes of gzip, written in {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        let started = Instant::now();
        let (r, peak) = peak_bytes(|| downhill::data::idx::read_idx(&path));
        cost(name, started, peak);
        // The trailer's refusal: the file, no position (nothing was inflated to find one).
        let refused = matches!(
            r.as_ref().map_err(|e| e.kind()),
            Err(ErrorKind::Format { path: Some(p), position: None, .. }) if p == &path
        );
        if !refused || peak >= FIXED {
            let got = r.map(|a| a.dims).map_err(downhill::Error::into_kind);
            wrong.push(format!("{name}: held {peak} bytes, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_shipped_digits_need_a_limit_above_their_pixels() {
    // 8000 training images of 784 pixels: 6,272,000 bytes, over 1 MiB.
    let pixels = 8000 * 784;
    let images = Path::new(SHIPPED).join("train-images-idx3-ubyte.gz");
    let one = ReadLimit::default().max_mib(1).unwrap();
    let (r, peak) = peak_bytes(|| Mnist::<f32>::load(SHIPPED, one));
    assert_kind!(
        r,
        ErrorKind::TooLarge { path: Some(p), claimed, limit }
            if p == &images && *claimed == pixels && *limit == MIB
    );
    assert!(peak < FIXED, "a refused load held {peak} bytes");
    let short = ReadLimit::default().max_bytes(pixels - 1).unwrap();
    assert_kind!(
        Mnist::<f32>::load(SHIPPED, short),
        ErrorKind::TooLarge { claimed, .. } if *claimed == pixels
    );

    for limit in [
        ReadLimit::default().max_bytes(pixels).unwrap(),
        ReadLimit::default().max_mib(64).unwrap(),
    ] {
        let mnist = Mnist::<f32>::load(SHIPPED, limit).unwrap();
        assert_eq!((mnist.train.len(), mnist.test.len()), (8000, 2000));
    }
}

#[test]
fn the_checkpoint_loader_refuses_a_file_over_its_limit() {
    let bytes = checkpoint_bytes();
    let len = bytes.len() as u64;
    let (_dir, path) = file("hostile-checkpoint-limit", "run.safetensors", &bytes);
    let short = ReadLimit::default().max_bytes(len - 1).unwrap();
    let (r, peak) = peak_bytes(|| Checkpoint::<f32>::load_with(&path, short));
    assert_kind!(
        r,
        ErrorKind::TooLarge { path: Some(p), claimed, limit }
            if p == &path && *claimed == len && *limit == len - 1
    );
    // Refused from the file's size: not read.
    assert!(peak < bytes.len(), "a refused checkpoint held {peak} bytes");

    let exact = ReadLimit::default().max_bytes(len).unwrap();
    let loaded = Checkpoint::<f32>::load_with(&path, exact).unwrap();
    assert_eq!(
        loaded.params(),
        Checkpoint::<f32>::from_bytes(&bytes, &path)
            .unwrap()
            .params()
    );
}

/// A broken MNIST directory: how it is broken, which file the error must name, and the
/// kind it must be.
struct Broken {
    name: &'static str,
    /// Breaks a valid directory (50 training and 20 test images of 28 x 28, plain files).
    breaks: fn(&TempDir),
    file: &'static str,
    kind: fn(&ErrorKind) -> bool,
}

/// The file an error names, for the kinds that name one.
fn path_of(kind: &ErrorKind) -> Option<&Path> {
    match kind {
        ErrorKind::Io { path, .. }
        | ErrorKind::Format { path, .. }
        | ErrorKind::TooLarge { path, .. }
        | ErrorKind::Label { path, .. } => path.as_deref(),
        _ => None,
    }
}

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Replaces the plain `name` in `dir` with `name.gz` holding `bytes` gzipped.
fn gzip_in_place(dir: &TempDir, name: &str) -> (Vec<u8>, PathBuf) {
    let plain = dir.join(name);
    let bytes = gzip(&std::fs::read(&plain).unwrap());
    std::fs::remove_file(&plain).unwrap();
    let gz = dir.write(&format!("{name}.gz"), &bytes);
    (bytes, gz)
}

/// Applies `f` to the bytes of `name` in `dir`.
fn edit(dir: &TempDir, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let path = dir.join(name);
    let mut bytes = std::fs::read(&path).unwrap();
    f(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
}

/// Makes the training images' header claim a million images (784 MB of pixels).
fn claim_a_million_images(dir: &TempDir) {
    edit(dir, TRAIN_IMAGES, |b| {
        b[4..8].copy_from_slice(&1_000_000u32.to_be_bytes())
    });
}

/// A format error at byte `at`.
fn format_at(k: &ErrorKind, at: u64) -> bool {
    matches!(k, ErrorKind::Format { position: Some(Position::Byte(b)), .. } if *b == at)
}

fn format_at_byte(k: &ErrorKind) -> bool {
    matches!(
        k,
        ErrorKind::Format {
            position: Some(Position::Byte(_)),
            ..
        }
    )
}

fn format_without_position(k: &ErrorKind) -> bool {
    matches!(k, ErrorKind::Format { position: None, .. })
}

fn not_found(k: &ErrorKind) -> bool {
    matches!(k, ErrorKind::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

fn too_large(k: &ErrorKind) -> bool {
    matches!(k, ErrorKind::TooLarge { limit, .. } if *limit == ReadLimit::DEFAULT_BYTES)
}

fn broken_mnist_directories() -> Vec<Broken> {
    vec![
        Broken {
            name: "missing directory",
            breaks: |d| std::fs::remove_dir_all(d.path()).unwrap(),
            file: TRAIN_IMAGES,
            kind: not_found,
        },
        Broken {
            name: "missing training labels",
            breaks: |d| std::fs::remove_file(d.join(TRAIN_LABELS)).unwrap(),
            file: TRAIN_LABELS,
            kind: not_found,
        },
        Broken {
            name: "missing test images",
            breaks: |d| std::fs::remove_file(d.join(TEST_IMAGES)).unwrap(),
            file: TEST_IMAGES,
            kind: not_found,
        },
        Broken {
            name: "empty images file",
            breaks: |d| edit(d, TRAIN_IMAGES, Vec::clear),
            file: TRAIN_IMAGES,
            kind: format_without_position,
        },
        Broken {
            name: "header cut in the dimensions",
            breaks: |d| edit(d, TRAIN_IMAGES, |b| b.truncate(9)),
            file: TRAIN_IMAGES,
            kind: |k| format_at(k, 9),
        },
        Broken {
            name: "truncated images",
            breaks: |d| edit(d, TRAIN_IMAGES, |b| b.truncate(b.len() - 100)),
            file: TRAIN_IMAGES,
            kind: format_at_byte,
        },
        Broken {
            name: "trailing data after the labels",
            breaks: |d| edit(d, TRAIN_LABELS, |b| b.push(0)),
            file: TRAIN_LABELS,
            kind: format_at_byte,
        },
        Broken {
            name: "bad magic in the labels",
            breaks: |d| edit(d, TRAIN_LABELS, |b| b[0] = 0x42),
            file: TRAIN_LABELS,
            kind: |k| format_at(k, 0),
        },
        Broken {
            name: "images of f32 elements",
            breaks: |d| edit(d, TRAIN_IMAGES, |b| b[2] = 0x0D),
            file: TRAIN_IMAGES,
            kind: |k| format_at(k, 2),
        },
        Broken {
            name: "images with two dimensions",
            breaks: |d| {
                d.write(TRAIN_IMAGES, &idx(&[50, 784], &vec![0; 50 * 784]));
            },
            file: TRAIN_IMAGES,
            kind: |k| format_at(k, 3),
        },
        Broken {
            name: "labels with two dimensions",
            breaks: |d| {
                d.write(TRAIN_LABELS, &idx(&[25, 2], &[0; 50]));
            },
            file: TRAIN_LABELS,
            kind: |k| format_at(k, 3),
        },
        Broken {
            name: "dimensions whose product overflows",
            breaks: |d| {
                d.write(TRAIN_IMAGES, &idx(&[u32::MAX; 3], &[0; 64]));
            },
            file: TRAIN_IMAGES,
            kind: |k| format_at(k, 4),
        },
        Broken {
            name: "49 labels for 50 images",
            breaks: |d| {
                d.write(TRAIN_LABELS, &idx(&[49], &[3; 49]));
            },
            file: TRAIN_LABELS,
            kind: format_without_position,
        },
        Broken {
            name: "label 10 of 10 classes",
            breaks: |d| edit(d, TRAIN_LABELS, |b| b[8 + 17] = 10),
            file: TRAIN_LABELS,
            kind: |k| {
                matches!(
                    k,
                    ErrorKind::Label {
                        row: 17,
                        label: 10,
                        classes: 10,
                        ..
                    }
                )
            },
        },
        Broken {
            name: "label 255 in the test split",
            breaks: |d| edit(d, TEST_LABELS, |b| b[8 + 19] = 255),
            file: TEST_LABELS,
            kind: |k| {
                matches!(
                    k,
                    ErrorKind::Label {
                        row: 19,
                        label: 255,
                        ..
                    }
                )
            },
        },
        Broken {
            name: "truncated gzip images",
            breaks: |d| {
                let (bytes, gz) = gzip_in_place(d, TRAIN_IMAGES);
                std::fs::write(gz, &bytes[..bytes.len() / 2]).unwrap();
            },
            file: "train-images-idx3-ubyte.gz",
            kind: format_without_position,
        },
        Broken {
            name: "gzip images with a bad CRC",
            breaks: |d| {
                let (mut bytes, gz) = gzip_in_place(d, TRAIN_IMAGES);
                let crc = bytes.len() - 8;
                bytes[crc] ^= 0xFF;
                std::fs::write(gz, bytes).unwrap();
            },
            file: "train-images-idx3-ubyte.gz",
            kind: format_without_position,
        },
        Broken {
            name: "gzip labels cut inside the header",
            breaks: |d| {
                let (bytes, gz) = gzip_in_place(d, TRAIN_LABELS);
                std::fs::write(gz, &bytes[..12]).unwrap();
            },
            file: "train-labels-idx1-ubyte.gz",
            kind: format_without_position,
        },
        Broken {
            name: "4 billion images claimed (plain)",
            breaks: |d| edit(d, TRAIN_IMAGES, |b| b[4..8].copy_from_slice(&[0xFF; 4])),
            file: TRAIN_IMAGES,
            kind: too_large,
        },
        Broken {
            name: "4 billion images claimed (gzip)",
            breaks: |d| {
                edit(d, TRAIN_IMAGES, |b| b[4..8].copy_from_slice(&[0xFF; 4]));
                gzip_in_place(d, TRAIN_IMAGES);
            },
            file: "train-images-idx3-ubyte.gz",
            kind: too_large,
        },
        Broken {
            name: "1M images claimed (plain, 784 MB)",
            breaks: claim_a_million_images,
            file: TRAIN_IMAGES,
            kind: format_at_byte,
        },
        Broken {
            name: "1M images claimed (gzip, 784 MB)",
            breaks: |d| {
                claim_a_million_images(d);
                gzip_in_place(d, TRAIN_IMAGES);
            },
            file: "train-images-idx3-ubyte.gz",
            kind: format_without_position,
        },
        Broken {
            name: "gzip bomb: 13M images, 16 MiB inflated",
            breaks: |d| {
                std::fs::remove_file(d.join(TRAIN_IMAGES)).unwrap();
                let path = d.join("train-images-idx3-ubyte.gz");
                gzip_zeros(&path, &idx(&[13_000_000, 28, 28], &[]), 16 * MIB);
            },
            file: "train-images-idx3-ubyte.gz",
            kind: too_large,
        },
    ]
}

#[test]
fn every_broken_mnist_directory_names_its_file() {
    let train: Vec<u8> = (0..50).map(|i| (i * 7 % 10) as u8).collect();
    let test: Vec<u8> = (0..20).map(|i| (i * 3 % 10) as u8).collect();
    eprintln!(
        "{:<44} {:>12} {:>10}",
        "broken MNIST directory", "time", "peak"
    );
    // Every case is loaded and printed before any is judged, so the table is whole.
    let mut wrong = Vec::new();
    for (i, case) in broken_mnist_directories().into_iter().enumerate() {
        let dir = TempDir::new(&format!("hostile-mnist-{i}"));
        write_mnist(&dir, 28, 28, &train, &test);
        (case.breaks)(&dir);
        let started = Instant::now();
        let (r, peak) = peak_bytes(|| Mnist::<f32>::load(dir.path(), ReadLimit::default()));
        cost(case.name, started, peak);
        let file = dir.join(case.file);
        match r.map(|_| ()).map_err(downhill::Error::into_kind) {
            Err(kind) if (case.kind)(&kind) && path_of(&kind) == Some(file.as_path()) => {}
            other => wrong.push(format!(
                "{}: expected an error naming {}, got {other:?}",
                case.name,
                file.display()
            )),
        }
        if peak >= 64 << 20 {
            wrong.push(format!("{}: held {peak} bytes", case.name));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The fuzz targets' checks on one kept input (see `fuzz/fuzz_targets/`).
fn replay(target: &str, bytes: &[u8]) {
    match target {
        "idx_plain" => read_everything(bytes),
        "idx_gzip" => {
            let Some((&mode, rest)) = bytes.split_first() else {
                return;
            };
            if mode % 2 == 0 {
                let wrapped = gzip(rest);
                read_everything(&wrapped);
                if !rest.starts_with(&[0x1f, 0x8b]) {
                    let a = read_idx_slice(&wrapped, Path::new("w")).is_ok();
                    let b = read_idx_slice(rest, Path::new("p")).is_ok();
                    assert_eq!(a, b);
                }
            } else {
                let mut raw = vec![0x1f, 0x8b];
                raw.extend_from_slice(rest);
                read_everything(&raw);
            }
        }
        _ => {
            read_everything(bytes);
            if let Ok(c) = Checkpoint::<f32>::from_bytes(bytes, Path::new("kept")) {
                let again = c.to_bytes().unwrap();
                let reread = Checkpoint::<f32>::from_bytes(&again, Path::new("again")).unwrap();
                assert_eq!(reread, c);
            }
        }
    }
}

#[test]
fn inputs_the_fuzzers_kept_are_handled() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut replayed = 0;
    for target in ["idx_plain", "idx_gzip", "checkpoint"] {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no kept inputs in {}", dir.display());
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            replay(target, &bytes);
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} kept fuzz inputs");
}

/// The seed inputs of the checkpoint fuzzer load and round-trip; with `DOWNHILL_SEEDS` set
/// they are also written there
/// (`DOWNHILL_SEEDS=fuzz/corpus/checkpoint cargo test --all-features --test hostile_input seeds`).
#[test]
fn the_checkpoint_fuzzers_seeds_load_and_round_trip() {
    let model = LinearClassifier::<f32>::builder(2, 2).build().unwrap();
    let gd = GradientDescent::new(0.1).unwrap();
    let plain = Checkpoint::capture(&model, &gd, TrainState::default());
    let seeds = [
        ("mlp_sgd", checkpoint_bytes()),
        ("linear_gd", plain.to_bytes().unwrap()),
    ];
    for (name, bytes) in &seeds {
        let ckpt = Checkpoint::<f32>::from_bytes(bytes, Path::new(name)).unwrap();
        let again = Checkpoint::<f32>::from_bytes(&ckpt.to_bytes().unwrap(), Path::new(name));
        assert_eq!(again.unwrap(), ckpt, "{name}");
    }
    if let Some(dir) = std::env::var_os("DOWNHILL_SEEDS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
