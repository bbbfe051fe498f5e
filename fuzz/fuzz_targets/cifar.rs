//! The CIFAR-10 batch reader on arbitrary bytes: `Ok` or `Err`, never a panic. Whatever it
//! accepts is a whole number of records whose labels and pixels are the input's, and makes a
//! dataset; whatever it refuses with a label error names a record whose label byte is over 9.
#![no_main]

use std::path::Path;

use downhill::data::cifar::{CifarReader, PIXELS, RECORD_BYTES};
use downhill::error::ErrorKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.bin");
    match CifarReader::new().read_slice(data, path) {
        Ok(batch) => {
            assert_eq!(data.len() % RECORD_BYTES, 0);
            assert_eq!(batch.len(), data.len() / RECORD_BYTES);
            assert_eq!(batch.pixels.len(), batch.len() * PIXELS);
            for (k, record) in data.chunks(RECORD_BYTES).enumerate() {
                assert_eq!(batch.labels[k], usize::from(record[0]));
                assert_eq!(&batch.pixels[k * PIXELS..(k + 1) * PIXELS], &record[1..]);
            }
            let n = batch.len();
            assert_eq!(batch.into_dataset::<f32>().unwrap().len(), n);
        }
        Err(e) => match e.kind() {
            ErrorKind::Format { path: Some(p), .. } => assert_eq!(p, path),
            ErrorKind::Label {
                path: Some(p),
                row,
                label,
                classes: 10,
            } => {
                assert_eq!(p, path);
                assert!(*label > 9);
                assert_eq!(data.get(row * RECORD_BYTES).copied(), Some(*label as u8));
            }
            other => panic!("unexpected error {other:?}"),
        },
    }
});
