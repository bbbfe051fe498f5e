//! Replacing a file so that a crash at any moment leaves either the old file or the new one.
//!
//! Writing over a checkpoint in place would leave half a file if the process died in the
//! middle. Instead the bytes go to a temporary file in the same directory (so the rename
//! below stays within one file system), which is flushed and `fsync`ed; only then is it
//! renamed over the target — an atomic replacement on POSIX file systems — and the directory
//! is `fsync`ed so the rename itself survives a power cut. A process killed before the rename
//! leaves the old file untouched (and at worst a stray `.*.tmp` file beside it).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temporary files of several writers within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (see the [module docs](self)).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().ok_or_else(|| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_and_sync(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if written.is_err() {
        // Best effort: the temporary file is useless now; the error that matters is returned.
        let _ = fs::remove_file(&tmp);
        return written;
    }
    sync_dir(&dir)
}

fn write_and_sync(tmp: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(tmp, e))?;
    file.flush().map_err(|e| Error::io(tmp, e))?;
    file.sync_all().map_err(|e| Error::io(tmp, e))
}

/// Makes the rename durable. Directories can be opened and synced on Unix; elsewhere the
/// rename is as durable as the platform makes it.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
