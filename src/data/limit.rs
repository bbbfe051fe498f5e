//! How much a reader may decode: the bound that keeps a lying header from driving memory.
//!
//! Every reader in [`data`](crate::data) (and the checkpoint loader) works out, from a
//! file's header, how many bytes of data it is about to decode, and refuses with
//! [`ErrorKind::TooLarge`](crate::error::ErrorKind::TooLarge) before reading or allocating
//! them if that is more than its [`ReadLimit`]. A 10 MiB gzip file whose header claims
//! thirteen million images (10 GiB of pixels) fails at once, not after filling the
//! machine's memory.
//!
//! The default, 1 GiB, is generous for real data — the whole of MNIST is 55 MB of pixels,
//! CIFAR-10 180 MB — and far below a machine's memory. Raise it for bigger sets:
//!
//! ```
//! use downhill::data::ReadLimit;
//!
//! let limit = ReadLimit::default().max_mib(4096)?;
//! assert_eq!(limit.bytes(), 4 << 30);
//! assert!(ReadLimit::default().max_mib(0).is_err());
//! # Ok::<(), downhill::Error>(())
//! ```

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// The most decoded data a reader may produce from one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    bytes: u64,
}

impl Default for ReadLimit {
    /// [`ReadLimit::DEFAULT_BYTES`].
    fn default() -> Self {
        ReadLimit {
            bytes: Self::DEFAULT_BYTES,
        }
    }
}

impl ReadLimit {
    /// The default limit: 1 GiB.
    pub const DEFAULT_BYTES: u64 = 1 << 30;

    /// A limit of `bytes` (at least 1).
    pub fn max_bytes(self, bytes: u64) -> Result<Self> {
        if bytes == 0 {
            return Err(Error::param("read limit", 0, "must be at least 1 byte"));
        }
        Ok(ReadLimit { bytes })
    }

    /// A limit of `mib` MiB (at least 1).
    pub fn max_mib(self, mib: u64) -> Result<Self> {
        let bytes = mib
            .checked_mul(1 << 20)
            .ok_or_else(|| Error::param("read limit", format!("{mib} MiB"), "overflows 64 bits"))?;
        self.max_bytes(bytes)
    }

    /// The limit in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Refuses a file whose header claims `claimed` bytes of data, if that is over the limit.
    pub(crate) fn check(&self, path: &Path, claimed: u64) -> Result<()> {
        if claimed > self.bytes {
            return Err(ErrorKind::TooLarge {
                path: Some(path.to_path_buf()),
                claimed,
                limit: self.bytes,
            }
            .into());
        }
        Ok(())
    }
}
