//! The CIFAR-10 batch reader on arbitrary bytes: `Ok` or `Err`, never a panic. Whatever it
//! accepts is a whole number of records whose labels and pixels are the input's, and makes a
//! dataset; whatever it refuses with a label error names a record whose label byte is over 9
//! (the checks are `tests/cifar.rs`'s too).
#![no_main]

use std::path::Path;

use downhill::data::cifar::CifarReader;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/cifar_checks.rs"]
mod cifar_checks;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.bin");
    cifar_checks::check_cifar_read(data, path, CifarReader::new().read_slice(data, path));
});
