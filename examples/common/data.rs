//! `--data DIR` and `--max-data-mib N`, shared by every example that reads digits.

use std::path::PathBuf;

use downhill::data::{Mnist, ReadLimit};
use downhill::Scalar;

use super::cli::Failure;

/// The 8000 training and 2000 test digits shipped in this repository.
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");

/// The library's default read limit, in MiB.
const DEFAULT_MIB: u64 = ReadLimit::DEFAULT_BYTES / (1 << 20);

/// Where the digits come from, and how much a data file may claim to hold.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// An MNIST-format directory: the four IDX files, plain or .gz (the default is the
    /// 10,000 digits shipped in this repository)
    #[arg(long, value_name = "DIR", default_value = SHIPPED)]
    pub data: PathBuf,
    /// Refuse any data file whose header claims more than this many MiB of data
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MIB)]
    pub max_data_mib: u64,
}

impl DataArgs {
    /// Loads the directory, refusing files over the limit: a bad limit, a missing file or a
    /// header that lies is bad input (exit 2, one line naming the file and the problem).
    pub fn load<T: Scalar>(&self) -> Result<Mnist<T>, Failure> {
        let limit = ReadLimit::default().max_mib(self.max_data_mib)?;
        Ok(Mnist::load(&self.data, limit)?)
    }

    /// The directory as given (or the shipped default), for the `"data"` field of `--json`.
    pub fn dir(&self) -> String {
        self.data.to_string_lossy().into_owned()
    }
}
