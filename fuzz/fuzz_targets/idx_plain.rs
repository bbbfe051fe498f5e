//! The IDX reader on arbitrary bytes, both with the length known (a file) and unknown (a
//! stream): it must return `Ok` or `Err`, never panic, and agree between the two.
#![no_main]

use std::path::Path;

use downhill::data::idx::{read_idx_from, read_idx_slice};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx");
    let known = read_idx_slice(data, path);
    let streamed = read_idx_from(data, path);
    if let Ok(array) = &known {
        let expected: usize = array.dims.iter().product();
        assert_eq!(array.data.len(), expected);
    }
    assert_eq!(known.is_ok(), streamed.is_ok());
    if let (Ok(a), Ok(b)) = (known, streamed) {
        assert_eq!(a, b);
    }
});
