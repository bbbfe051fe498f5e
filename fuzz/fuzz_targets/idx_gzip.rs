//! The IDX reader behind gzip. The first byte picks the mode:
//! * even: the rest is compressed with a valid gzip wrapper, so the IDX parser sees arbitrary
//!   decompressed content whose length it cannot know in advance;
//! * odd: the rest follows the gzip magic bytes raw, so the decoder sees corrupt streams.
//!
//! Either way the reader returns `Ok` or `Err`, never panics, and a valid wrapper around
//! bytes gives the same answer as the bytes themselves.
#![no_main]

use std::io::Write;
use std::path::Path;

use downhill::data::idx::{read_idx_slice, IdxArray};
use downhill::Result;
use flate2::{write::GzEncoder, Compression};
use libfuzzer_sys::fuzz_target;

fn check(result: &Result<IdxArray>) {
    if let Ok(array) = result {
        let expected: usize = array.dims.iter().product();
        assert_eq!(array.data.len(), expected);
    }
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx.gz");
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(rest).unwrap();
        let gz = enc.finish().unwrap();
        let wrapped = read_idx_slice(&gz, path);
        check(&wrapped);
        // The plain bytes, unless they themselves start like gzip (then it is gzip-in-gzip).
        if !rest.starts_with(&[0x1f, 0x8b]) {
            let plain = read_idx_slice(rest, path);
            assert_eq!(wrapped.is_ok(), plain.is_ok(), "{wrapped:?} vs {plain:?}");
        }
    } else {
        let mut bytes = vec![0x1f, 0x8b];
        bytes.extend_from_slice(rest);
        check(&read_idx_slice(&bytes, path));
    }
});
