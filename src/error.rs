//! One error type for the whole crate, with a typed kind.
//!
//! Every fallible operation returns [`Result<T>`](Result). An [`Error`] is small (one
//! pointer) and says *what* went wrong and *where* in one line: the file, the record and
//! the problem for a bad data file; the parameter, its value and the rule it breaks for a
//! bad hyper-parameter; the operation, the quantity and both sizes for a shape mismatch;
//! the epoch and the step for a divergence. Nothing in the crate panics on user input, so
//! these are the only failures a caller has to handle.
//!
//! Programs that react to failures match on [`Error::kind`], never on message text:
//!
//! ```
//! use downhill::error::{ErrorKind, Quantity};
//! use downhill::optim::Sgd;
//!
//! let err = Sgd::<f32>::new(f32::NAN).unwrap_err();
//! assert!(matches!(err.kind(), ErrorKind::InvalidParameter { name: "learning_rate", .. }));
//! assert_eq!(
//!     err.to_string(),
//!     "invalid learning_rate = NaN: must be finite and greater than zero"
//! );
//!
//! // A divergence says what diverged; the training loop fills in where.
//! let err = downhill::Error::diverged(Quantity::Gradient, f64::INFINITY).at(3, 41);
//! match err.kind() {
//!     ErrorKind::Diverged { quantity: Quantity::Gradient, epoch: Some(3), step: Some(41), .. } => {}
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The crate's `Result`, with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `downhill`. See [`kind`](Error::kind) for what it was.
pub struct Error {
    kind: Box<ErrorKind>,
}

/// What went wrong, with the numbers and places a program needs to react.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing a file failed at the operating-system level (missing file,
    /// permissions, a full disk).
    Io {
        /// The file, when there is one.
        path: Option<PathBuf>,
        /// The underlying error.
        source: io::Error,
    },
    /// A file was read but its contents are not what its format promises: wrong magic
    /// number, a header that lies about the length, a corrupt gzip stream, a cut record.
    Format {
        /// The file, when the bytes came from one.
        path: Option<PathBuf>,
        /// Where in it, when the reader knows.
        position: Option<Position>,
        /// What is wrong, in words.
        problem: String,
    },
    /// A file would take more memory to read than the reader's limit allows — its header
    /// claims that much decoded data, or the file itself is that long; refused before
    /// anything that size is read or allocated (see [`ReadLimit`](crate::data::ReadLimit)).
    TooLarge {
        /// The file.
        path: Option<PathBuf>,
        /// The bytes it would take, as its header claims or its length says.
        claimed: u64,
        /// The limit it exceeds, in bytes.
        limit: u64,
    },
    /// Two sizes that must agree do not.
    Shape {
        /// The operation that found the mismatch, e.g. `"Mlp::loss"`.
        context: &'static str,
        /// The quantity compared, e.g. `"features"` or `"gradient length"`.
        what: &'static str,
        /// What the operation needed.
        expected: usize,
        /// What it was given.
        found: usize,
    },
    /// A hyper-parameter or setting is outside its valid range (a zero, negative or NaN
    /// learning rate, a zero batch size, ...), rejected when it is set.
    InvalidParameter {
        /// The parameter's name: the method that sets it, or what it is (`"training set"`,
        /// `"resume epoch"`).
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// The rule it breaks.
        requirement: &'static str,
    },
    /// A label is not a valid class index.
    Label {
        /// The labels file, when the labels came from one.
        path: Option<PathBuf>,
        /// The example whose label is wrong.
        row: usize,
        /// The label found there.
        label: usize,
        /// The number of classes; valid labels are `0..classes`.
        classes: usize,
    },
    /// Training produced a loss, a gradient or a step that is not finite (usually: the
    /// learning rate is too large). The step is refused: parameters and optimizer state
    /// stay exactly as they were before it.
    Diverged {
        /// What was not finite.
        quantity: Quantity,
        /// The value observed (for a vector, its first non-finite element or its norm).
        value: f64,
        /// The 1-based epoch, when the training loop saw it.
        epoch: Option<usize>,
        /// The optimizer step (counted from 0 over the run), when the training loop saw it.
        step: Option<usize>,
    },
    /// Saved optimizer state does not fit the optimizer it is loaded into: another update
    /// rule's buffers, buffers of different lengths, a non-finite value.
    OptimizerState {
        /// The checkpoint the state came from, when it came from one.
        path: Option<PathBuf>,
        /// The optimizer (or update rule) loading the state.
        optimizer: &'static str,
        /// What does not fit.
        problem: String,
    },
    /// A checkpoint was read but does not fit what it is restored into: another
    /// architecture, another optimizer, hyper-parameters that contradict the run's.
    Checkpoint {
        /// The checkpoint file, when it came from one.
        path: Option<PathBuf>,
        /// What does not fit.
        problem: String,
    },
    /// A worker thread could not be started, or panicked while evaluating the model.
    Thread {
        /// What happened.
        problem: String,
    },
    /// A line search ([`LineSearch`](crate::optim::LineSearch)) found no step its conditions
    /// accept: its budget of evaluations ran out, the steps it could still tell apart ran
    /// out, or the direction it was given does not go downhill. The parameters are exactly
    /// where they were before the search, and the optimizer's state is unchanged.
    LineSearch {
        /// The search: `"backtracking"` or `"strong Wolfe"`.
        search: &'static str,
        /// Why it found none.
        failure: LineSearchFailure,
        /// Evaluations of the objective it made.
        evaluations: usize,
        /// The last step size it tried (0 if it tried none).
        step: f64,
    },
}

/// Why a [`LineSearch`](ErrorKind::LineSearch) error found no acceptable step.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LineSearchFailure {
    /// The direction does not go downhill: its slope `∇f·d` is not negative (or not finite).
    NotDescent {
        /// The slope `∇f·d` at the start.
        slope: f64,
    },
    /// Every evaluation the search was allowed (its `max_evals`) was spent.
    Budget,
    /// The steps still in question moved the parameters by less than the element type can
    /// resolve: the loss cannot be lowered along the direction at this precision.
    Collapsed,
}

impl fmt::Display for LineSearchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineSearchFailure::NotDescent { slope } => write!(
                f,
                "the direction does not go downhill (its slope ∇f·d is {slope:e}, not negative)"
            ),
            LineSearchFailure::Budget => f.write_str("its budget of evaluations ran out"),
            LineSearchFailure::Collapsed => f.write_str(
                "the steps left to try move the parameters by less than the element type resolves",
            ),
        }
    }
}

/// Where in a file a [`Format`](ErrorKind::Format) problem sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Position {
    /// A byte offset from the start of the (decompressed) contents.
    Byte(u64),
    /// A 0-based record: an image, a label, a CIFAR-10 row.
    Record(u64),
}

/// What a [`Diverged`](ErrorKind::Diverged) error found not finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Quantity {
    /// The loss the step observed.
    Loss,
    /// An element of the gradient.
    Gradient,
    /// The gradient's global norm (while clipping).
    GradientNorm,
    /// An element of the update: the new parameters or optimizer state it would write.
    Step,
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quantity::Loss => "loss",
            Quantity::Gradient => "gradient",
            Quantity::GradientNorm => "gradient norm",
            Quantity::Step => "step",
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Byte(b) => write!(f, "byte {b}"),
            Position::Record(r) => write!(f, "record {r}"),
        }
    }
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> ErrorKind {
        *self.kind
    }

    /// Whether this is a divergence (a failure of the run, not of its input).
    pub fn is_divergence(&self) -> bool {
        matches!(*self.kind, ErrorKind::Diverged { .. })
    }

    /// A divergence of `quantity` with `value`, not yet placed in a run: the training loop
    /// places it with [`at`](Error::at). For implementations of
    /// [`Objective`](crate::model::Objective) that find a non-finite value themselves.
    pub fn diverged(quantity: Quantity, value: f64) -> Self {
        ErrorKind::Diverged {
            quantity,
            value,
            epoch: None,
            step: None,
        }
        .into()
    }

    /// Fills in the epoch and step of a divergence that does not know them yet; any other
    /// error is returned unchanged.
    pub fn at(mut self, at_epoch: usize, at_step: usize) -> Self {
        if let ErrorKind::Diverged { epoch, step, .. } = &mut *self.kind {
            epoch.get_or_insert(at_epoch);
            step.get_or_insert(at_step);
        }
        self
    }

    /// Names the file an error came from, if its kind has a place for one
    /// ([`Io`](ErrorKind::Io), [`Format`](ErrorKind::Format), [`TooLarge`](ErrorKind::TooLarge),
    /// [`Label`](ErrorKind::Label), [`OptimizerState`](ErrorKind::OptimizerState),
    /// [`Checkpoint`](ErrorKind::Checkpoint)) and it does not name one already.
    pub fn in_file(mut self, file: &Path) -> Self {
        match &mut *self.kind {
            ErrorKind::Io { path, .. }
            | ErrorKind::Format { path, .. }
            | ErrorKind::TooLarge { path, .. }
            | ErrorKind::Label { path, .. }
            | ErrorKind::OptimizerState { path, .. }
            | ErrorKind::Checkpoint { path, .. } => {
                path.get_or_insert_with(|| file.to_path_buf());
            }
            _ => {}
        }
        self
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        ErrorKind::Io {
            path: Some(path.to_path_buf()),
            source,
        }
        .into()
    }

    pub(crate) fn format(path: &Path, problem: impl Into<String>) -> Self {
        ErrorKind::Format {
            path: Some(path.to_path_buf()),
            position: None,
            problem: problem.into(),
        }
        .into()
    }

    pub(crate) fn format_at(path: &Path, position: Position, problem: impl Into<String>) -> Self {
        ErrorKind::Format {
            path: Some(path.to_path_buf()),
            position: Some(position),
            problem: problem.into(),
        }
        .into()
    }

    pub(crate) fn shape(
        context: &'static str,
        what: &'static str,
        expected: usize,
        found: usize,
    ) -> Self {
        ErrorKind::Shape {
            context,
            what,
            expected,
            found,
        }
        .into()
    }

    pub(crate) fn param(
        name: &'static str,
        value: impl fmt::Display,
        requirement: &'static str,
    ) -> Self {
        ErrorKind::InvalidParameter {
            name,
            value: value.to_string(),
            requirement,
        }
        .into()
    }

    pub(crate) fn optimizer_state(optimizer: &'static str, problem: impl Into<String>) -> Self {
        ErrorKind::OptimizerState {
            path: None,
            optimizer,
            problem: problem.into(),
        }
        .into()
    }

    pub(crate) fn checkpoint(path: Option<&Path>, problem: impl Into<String>) -> Self {
        ErrorKind::Checkpoint {
            path: path.map(Path::to_path_buf),
            problem: problem.into(),
        }
        .into()
    }

    pub(crate) fn line_search(
        search: &'static str,
        failure: LineSearchFailure,
        evaluations: usize,
        step: f64,
    ) -> Self {
        ErrorKind::LineSearch {
            search,
            failure,
            evaluations,
            step,
        }
        .into()
    }

    pub(crate) fn thread(problem: impl Into<String>) -> Self {
        ErrorKind::Thread {
            problem: problem.into(),
        }
        .into()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error {
            kind: Box::new(kind),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.kind, f)
    }
}

/// `path: ` when there is a path.
struct In<'a>(&'a Option<PathBuf>);

impl fmt::Display for In<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "{}: ", p.display()),
            None => Ok(()),
        }
    }
}

/// Bytes in the most readable binary unit.
fn bytes(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    if n >= 10 * MIB {
        format!("{:.0} MiB", n as f64 / MIB as f64)
    } else {
        format!("{n} bytes")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            ErrorKind::Io { path, source } => write!(f, "{}{source}", In(path)),
            ErrorKind::Format {
                path,
                position,
                problem,
            } => {
                write!(f, "{}", In(path))?;
                if let Some(p) = position {
                    write!(f, "{p}: ")?;
                }
                f.write_str(problem)
            }
            ErrorKind::TooLarge {
                path,
                claimed,
                limit,
            } => write!(
                f,
                "{}reading it takes {}, more than the read limit of {} \
                 (raise it with ReadLimit::max_bytes, or the examples' --max-data-mib)",
                In(path),
                bytes(*claimed),
                bytes(*limit)
            ),
            ErrorKind::Shape {
                context,
                what,
                expected,
                found,
            } => write!(f, "{context}: {what} is {found}, expected {expected}"),
            ErrorKind::InvalidParameter {
                name,
                value,
                requirement,
            } => write!(f, "invalid {name} = {value}: {requirement}"),
            ErrorKind::Label {
                path,
                row,
                label,
                classes,
            } => write!(
                f,
                "{}label {label} at row {row} is outside the class range 0..{classes}",
                In(path)
            ),
            ErrorKind::Diverged {
                quantity,
                value,
                epoch,
                step,
            } => {
                write!(f, "training diverged: {quantity} {value}")?;
                match (epoch, step) {
                    (Some(e), Some(s)) => write!(f, " at epoch {e}, step {s}")?,
                    (None, Some(s)) => write!(f, " at step {s}")?,
                    (Some(e), None) => write!(f, " in epoch {e}")?,
                    (None, None) => {}
                }
                f.write_str(" (try a smaller learning rate)")
            }
            ErrorKind::OptimizerState {
                path,
                optimizer,
                problem,
            } => write!(f, "{}optimizer state for {optimizer}: {problem}", In(path)),
            ErrorKind::Checkpoint { path, problem } => write!(f, "{}{problem}", In(path)),
            ErrorKind::Thread { problem } => f.write_str(problem),
            ErrorKind::LineSearch {
                search,
                failure,
                evaluations,
                step,
            } => write!(
                f,
                "line search ({search}) found no acceptable step after {evaluations} \
                 evaluations (last step tried {step:e}): {failure}; the parameters are unchanged"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
