//! One error type for the whole crate.
//!
//! Every fallible operation returns [`Result<T>`](Result). An [`Error`] says *what* went wrong and
//! *where*: the file and the problem for a bad data file, the parameter and its value for a bad
//! hyper-parameter, the operation and both shapes for a shape mismatch. Nothing in the crate
//! panics on user input, so these are the only failures a caller has to handle.
//!
//! ```
//! use downhill::optim::Sgd;
//!
//! let err = Sgd::<f32>::new(f32::NAN).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid learning_rate = NaN: must be finite and greater than zero"
//! );
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The crate's `Result`, with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `downhill`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file failed at the operating-system level (missing file, permissions, ...).
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A data file was read but its contents are not what its format promises: wrong magic
    /// number, a header that lies about the length, a corrupt gzip stream, a label out of range.
    Format {
        /// The file being parsed.
        path: PathBuf,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// Two things that must agree in shape do not.
    Shape {
        /// The operation that found the mismatch, e.g. `"Mlp::loss"`.
        context: &'static str,
        /// What the operation needed.
        expected: String,
        /// What it was given.
        found: String,
    },
    /// A hyper-parameter or setting is outside its valid range (zero, negative or NaN learning
    /// rate, zero batch size, ...). Rejected when the optimizer or model is built.
    InvalidParameter {
        /// The parameter's name, as in the builder method that sets it.
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// The rule it breaks.
        requirement: &'static str,
    },
    /// A label is not a valid class index.
    Label {
        /// The row (example) whose label is wrong.
        row: usize,
        /// The label found there.
        label: usize,
        /// The number of classes; valid labels are `0..classes`.
        classes: usize,
    },
    /// Training produced a loss or a gradient that is not finite (usually: the learning rate
    /// is too large). The update of that step is not applied, so the model keeps the last
    /// parameters at which everything was finite.
    Diverged {
        /// The 1-based epoch in which it happened (0 if not raised by the training loop).
        epoch: usize,
        /// The optimizer step (counted from 0 over the run) at which it happened.
        step: usize,
        /// What was not finite: `"loss"` or `"gradient"`.
        quantity: &'static str,
        /// The value observed (for a gradient, the first non-finite element).
        value: f64,
    },
    /// A checkpoint was read but does not fit what it is restored into: a different
    /// architecture, another optimizer, parameters of another shape.
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What does not fit, in words.
        problem: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, problem: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    pub(crate) fn shape(
        context: &'static str,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> Self {
        Error::Shape {
            context,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    pub(crate) fn checkpoint(path: &Path, problem: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// A non-finite step or gradient found outside the training loop, which knows where it is.
    pub(crate) fn non_finite_gradient(value: f64) -> Self {
        Error::Diverged {
            epoch: 0,
            step: 0,
            quantity: "gradient",
            value,
        }
    }

    /// Fills in the epoch and step of a divergence raised below the training loop.
    pub(crate) fn at(self, at_epoch: usize, at_step: usize) -> Self {
        match self {
            Error::Diverged {
                quantity, value, ..
            } => Error::Diverged {
                epoch: at_epoch,
                step: at_step,
                quantity,
                value,
            },
            other => other,
        }
    }

    pub(crate) fn param(
        name: &'static str,
        value: impl fmt::Display,
        requirement: &'static str,
    ) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            requirement,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Format { path, problem } => write!(f, "{}: {}", path.display(), problem),
            Error::Shape {
                context,
                expected,
                found,
            } => {
                write!(f, "{context}: expected {expected}, found {found}")
            }
            Error::InvalidParameter {
                name,
                value,
                requirement,
            } => {
                write!(f, "invalid {name} = {value}: {requirement}")
            }
            Error::Label {
                row,
                label,
                classes,
            } => write!(
                f,
                "label {label} at row {row} is outside the class range 0..{classes}"
            ),
            Error::Diverged {
                epoch,
                step,
                quantity,
                value,
            } => write!(
                f,
                "training diverged: {quantity} {value} at epoch {epoch}, step {step} \
                 (try a smaller learning rate)"
            ),
            Error::Checkpoint { path, problem } => write!(f, "{}: {}", path.display(), problem),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// More threads than any machine this crate targets; a larger request is a mistake (and
/// would spawn that many OS threads).
pub(crate) const MAX_THREADS: usize = 1024;

/// Checks a requested thread count: 1 to [`MAX_THREADS`].
pub(crate) fn thread_count(threads: usize) -> Result<usize> {
    if threads == 0 || threads > MAX_THREADS {
        return Err(Error::param(
            "threads",
            threads,
            "must be between 1 and 1024",
        ));
    }
    Ok(threads)
}

/// Checks that a floating-point hyper-parameter is finite and strictly positive.
pub(crate) fn positive<T: num_traits::Float + fmt::Display>(
    name: &'static str,
    value: T,
) -> Result<T> {
    if value.is_finite() && value > T::zero() {
        Ok(value)
    } else {
        Err(Error::param(
            name,
            value,
            "must be finite and greater than zero",
        ))
    }
}

/// Checks that a floating-point hyper-parameter is finite and not negative.
pub(crate) fn non_negative<T: num_traits::Float + fmt::Display>(
    name: &'static str,
    value: T,
) -> Result<T> {
    if value.is_finite() && value >= T::zero() {
        Ok(value)
    } else {
        Err(Error::param(name, value, "must be finite and not negative"))
    }
}
