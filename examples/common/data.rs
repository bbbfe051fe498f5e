//! `--data DIR` and `--max-data-mib N`, shared by every example that reads images: an
//! MNIST-format directory or a CIFAR-10 one, told apart by the files in it.

use std::path::{Path, PathBuf};

use downhill::data::cifar::{self, TEST_BATCH, TRAIN_BATCHES};
use downhill::data::{Cifar10, Dataset, Mnist, ReadLimit};
use downhill::Scalar;

use super::cli::Failure;

/// The 8000 training and 2000 test digits shipped in this repository.
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");

/// The library's default read limit, in MiB.
const DEFAULT_MIB: u64 = ReadLimit::DEFAULT_BYTES / (1 << 20);

/// The four files of an MNIST-format directory (each plain or `.gz`).
const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Where the images come from, and how much a data file may hold.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// An MNIST-format directory (the four IDX files, plain or .gz) or a CIFAR-10 one
    /// (data_batch_1.bin [… data_batch_5.bin] and test_batch.bin, binary version, or the
    /// directory holding the archive's cifar-10-batches-bin/), told apart by the files in it
    /// (the default is the 10,000 digits shipped in this repository)
    #[arg(long, value_name = "DIR", default_value = SHIPPED)]
    pub data: PathBuf,
    /// Refuse any data file that would take more than this many MiB to read (an IDX header's
    /// claim, a CIFAR-10 batch's length)
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MIB)]
    pub max_data_mib: u64,
}

/// Which kind of directory `--data` named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The four IDX files of MNIST (28 × 28 grey digits, 784 features).
    Mnist,
    /// CIFAR-10's binary batches (32 × 32 colour images, 3072 features, channel-major).
    Cifar10,
}

impl Format {
    /// The name in output and in `--json`: `mnist` or `cifar10`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mnist => "mnist",
            Format::Cifar10 => "cifar10",
        }
    }
}

/// The training and test sets of the `--data` directory, pixels scaled to [0, 1].
pub struct Data<T> {
    /// The training set.
    pub train: Dataset<T>,
    /// The test set.
    pub test: Dataset<T>,
    /// Which kind of directory it was.
    pub format: Format,
}

impl DataArgs {
    /// Loads the directory, refusing files over the limit: a bad limit, a directory that is
    /// neither kind, a missing file or a file that lies is bad input (exit 2, one line naming
    /// the file and the problem). A CIFAR-10 directory prints which batches it read.
    pub fn load<T: Scalar>(&self) -> Result<Data<T>, Failure> {
        let limit = ReadLimit::default().max_mib(self.max_data_mib)?;
        let dir = &self.data;
        Ok(match detect(dir)? {
            Format::Mnist => {
                let Mnist { train, test } = Mnist::load(dir, limit)?;
                Data {
                    train,
                    test,
                    format: Format::Mnist,
                }
            }
            Format::Cifar10 => {
                let cifar = Cifar10::load(dir, limit)?;
                let names: Vec<String> = cifar.train_files.iter().map(|p| file_name(p)).collect();
                let batches = cifar::batches_dir(dir);
                println!(
                    "CIFAR-10 in {}: {} training images from {}, {} test images from {}",
                    batches.display(),
                    cifar.train.len(),
                    names.join(", "),
                    cifar.test.len(),
                    file_name(&cifar.test_file)
                );
                Data {
                    train: cifar.train,
                    test: cifar.test,
                    format: Format::Cifar10,
                }
            }
        })
    }

    /// The directory as given (or the shipped default), for the `"data"` field of `--json`.
    pub fn dir(&self) -> String {
        self.data.to_string_lossy().into_owned()
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Which kind of directory `dir` is, from the files in it: any of MNIST's four files (plain
/// or `.gz`) makes it MNIST, any CIFAR-10 batch (in it or in its `cifar-10-batches-bin/`)
/// makes it CIFAR-10; the loader then names whatever else is missing. Neither, or both, is
/// bad input, and the message lists every name looked for.
fn detect(dir: &Path) -> Result<Format, Failure> {
    let mnist: Vec<&str> = MNIST_FILES
        .into_iter()
        .filter(|n| dir.join(n).is_file() || dir.join(format!("{n}.gz")).is_file())
        .collect();
    let batches = cifar::batches_dir(dir);
    let cifar: Vec<&str> = TRAIN_BATCHES
        .into_iter()
        .chain([TEST_BATCH])
        .filter(|n| batches.join(n).is_file())
        .collect();
    match (mnist.is_empty(), cifar.is_empty()) {
        (false, true) => Ok(Format::Mnist),
        (true, false) => Ok(Format::Cifar10),
        (false, false) => Err(Failure::Input(format!(
            "{}: holds both MNIST files ({}) and CIFAR-10 batches ({}): point --data at a \
             directory of one of them",
            dir.display(),
            mnist.join(", "),
            cifar.join(", ")
        ))),
        (true, true) => {
            let state = if dir.is_dir() {
                "holds none of the files looked for"
            } else if dir.exists() {
                "not a directory"
            } else {
                "no such directory"
            };
            Err(Failure::Input(format!(
                "{}: {state}: --data takes an MNIST-format directory ({}, each plain or .gz) \
                 or a CIFAR-10 one ({}, {}, binary version, in it or in its {}/)",
                dir.display(),
                MNIST_FILES.join(", "),
                TRAIN_BATCHES.join(", "),
                TEST_BATCH,
                cifar::ARCHIVE_DIR
            )))
        }
    }
}
