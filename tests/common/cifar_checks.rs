//! What the CIFAR-10 batch reader must make of any bytes, checked in one place for the two
//! that feed it arbitrary input: `tests/cifar.rs` (proptest, and the fuzz target's saved
//! inputs) and the `cifar` fuzz target (`fuzz/fuzz_targets/cifar.rs`, which includes this
//! file by path).

use std::path::Path;

use downhill::data::cifar::{CifarBatch, PIXELS, RECORD_BYTES};
use downhill::error::ErrorKind;
use downhill::Result;

/// `read` is what the reader made of `bytes` read as `path`. Whatever it accepted is a whole
/// number of records whose labels and pixels are the input's, and makes a dataset; whatever
/// it refused is a format error naming `path`, or a label error naming `path` and a record
/// whose label byte is over 9. Panics otherwise.
pub fn check_cifar_read(bytes: &[u8], path: &Path, read: Result<CifarBatch>) {
    match read {
        Ok(batch) => {
            assert_eq!(bytes.len() % RECORD_BYTES, 0);
            assert_eq!(batch.len(), bytes.len() / RECORD_BYTES);
            assert_eq!(batch.pixels.len(), batch.len() * PIXELS);
            for (k, record) in bytes.chunks(RECORD_BYTES).enumerate() {
                assert_eq!(batch.labels[k], usize::from(record[0]));
                assert_eq!(&batch.pixels[k * PIXELS..(k + 1) * PIXELS], &record[1..]);
            }
            let data = batch.into_dataset::<f32>().unwrap();
            assert_eq!(data.len(), bytes.len() / RECORD_BYTES);
        }
        Err(e) => {
            let ok = match e.kind() {
                ErrorKind::Format { path: Some(p), .. } => p == path,
                ErrorKind::Label {
                    path: Some(p),
                    row,
                    label,
                    classes: 10,
                } => {
                    p == path
                        && *label > 9
                        && bytes.get(row * RECORD_BYTES) == Some(&(*label as u8))
                }
                _ => false,
            };
            assert!(ok, "unexpected error {e:?}");
        }
    }
}
