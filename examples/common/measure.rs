//! What a run measured besides its loss: peak memory, and a fingerprint of its parameters.

use downhill::Scalar;

/// Peak resident memory of this process in MiB (Linux: VmHWM), or `None` elsewhere.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// FNV-1a (64-bit) over the parameters' little-endian bytes, in hex: a fingerprint to compare
/// runs by (same seed → same hash, whatever the thread count; resumed or straight).
pub fn params_hash<T: Scalar>(params: &[T]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for &p in params {
        let x = p.to_f64_lossless();
        if std::mem::size_of::<T>() == 4 {
            eat(&(x as f32).to_le_bytes());
        } else {
            eat(&x.to_le_bytes());
        }
    }
    format!("{hash:016x}")
}
