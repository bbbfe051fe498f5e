//! The checkpoint loader on arbitrary bytes: `Ok` or `Err`, never a panic; and whatever it
//! accepts, it can restore into a model of the recorded architecture and save again.
#![no_main]

use std::path::Path;

use downhill::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ckpt) = Checkpoint::<f32>::from_bytes(data, Path::new("fuzz.safetensors")) else {
        return;
    };
    if let Ok(mut mlp) = ckpt.build_mlp() {
        ckpt.restore_model(&mut mlp).unwrap();
    }
    let again = ckpt.to_bytes().unwrap();
    let reread = Checkpoint::<f32>::from_bytes(&again, Path::new("again")).unwrap();
    let bits = |c: &Checkpoint<f32>| c.params().iter().map(|p| p.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&reread), bits(&ckpt));
    assert_eq!(reread, ckpt);
});
