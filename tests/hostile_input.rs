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

use common::{assert_kind, gzip, idx, idx_images, write_mnist, TempDir, SHIPPED};
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
    // 0xFFFF_FFFF images of 28 x 28, and 84 bytes of "pixels".
    let mut bytes = idx(&[u32::MAX, 28, 28], &[0; 84]);
    assert_eq!(bytes.len(), 100);
    let (r, peak) = peak_bytes(|| read_idx_slice(&bytes, Path::new("liar")));
    assert!(r.unwrap_err().to_string().contains("truncated"));
    assert!(peak < 4 << 10, "a 100-byte file held {peak} bytes");

    let gzipped = gzip(&bytes);
    let (r, peak) = peak_bytes(|| read_idx_slice(&gzipped, Path::new("liar.gz")));
    assert!(r.unwrap_err().to_string().contains("truncated"));
    assert!(peak < FIXED, "a gzipped liar held {peak} bytes");
    eprintln!("a gzipped 4-billion-image header: {peak} bytes at the peak");

    let (r, peak) = peak_bytes(|| read_idx_from(&bytes[..], Path::new("stream")));
    assert!(r.is_err());
    assert!(peak < FIXED, "a streamed liar held {peak} bytes");

    // The same lie one level down: a checkpoint header that claims a huge header.
    bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[b' '; 92]);
    let (r, peak) = peak_bytes(|| Checkpoint::<f32>::from_bytes(&bytes, Path::new("c")));
    assert!(r.is_err());
    assert!(peak < 4 << 10, "a lying checkpoint held {peak} bytes");
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

/// Writes the seed inputs of the checkpoint fuzzer (run by hand:
/// `DOWNHILL_SEEDS=fuzz/corpus/checkpoint cargo test --test hostile_input -- --ignored`).
#[test]
#[ignore = "writes fuzzing seeds; run by hand"]
fn write_checkpoint_seeds() {
    let Some(dir) = std::env::var_os("DOWNHILL_SEEDS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mlp_sgd"), checkpoint_bytes()).unwrap();
    let model = LinearClassifier::<f32>::builder(2, 2).build().unwrap();
    let gd = GradientDescent::new(0.1).unwrap();
    let plain = Checkpoint::capture(&model, &gd, TrainState::default());
    std::fs::write(dir.join("linear_gd"), plain.to_bytes().unwrap()).unwrap();
}
