//! The checks every builder and setter runs on its hyper-parameters, in one place, so a
//! rule reads the same and fails with the same [`ErrorKind::InvalidParameter`] wherever it
//! applies.
//!
//! [`ErrorKind::InvalidParameter`]: crate::error::ErrorKind::InvalidParameter

use std::fmt::Display;

use num_traits::Float;

use crate::error::{Error, Result};

/// More threads than any machine this crate targets; a larger request is a mistake (and
/// would spawn that many OS threads).
pub(crate) const MAX_THREADS: usize = 1024;

/// A finite value greater than zero.
pub(crate) fn positive<T: Float + Display>(name: &'static str, value: T) -> Result<T> {
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

/// A finite value that is not negative.
pub(crate) fn non_negative<T: Float + Display>(name: &'static str, value: T) -> Result<T> {
    if value.is_finite() && value >= T::zero() {
        Ok(value)
    } else {
        Err(Error::param(name, value, "must be finite and not negative"))
    }
}

/// A value in `[0, 1)` (a decay, a momentum).
pub(crate) fn unit_interval(name: &'static str, value: f64) -> Result<f64> {
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(Error::param(name, value, "must be in [0, 1)"))
    }
}

/// A value in `(0, 1)`.
pub(crate) fn open_unit_interval(name: &'static str, value: f64) -> Result<f64> {
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(Error::param(name, value, "must be in (0, 1)"))
    }
}

/// A count of at least one (a batch size, a patience, a sample size).
pub(crate) fn at_least_one(name: &'static str, value: usize) -> Result<usize> {
    if value >= 1 {
        Ok(value)
    } else {
        Err(Error::param(name, value, "must be at least 1"))
    }
}

/// A thread count: 1 to [`MAX_THREADS`].
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

/// A size that must equal what the context expects: `found` against `expected`, else
/// [`ErrorKind::Shape`](crate::error::ErrorKind::Shape) naming where and what.
pub(crate) fn same_size(
    context: &'static str,
    what: &'static str,
    expected: usize,
    found: usize,
) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::shape(context, what, expected, found))
    }
}

/// Indices into `len` examples: the first one at or past `len`, else
/// [`ErrorKind::Shape`](crate::error::ErrorKind::Shape) naming where.
pub(crate) fn indices_below(context: &'static str, indices: &[usize], len: usize) -> Result<()> {
    match indices.iter().find(|&&i| i >= len) {
        Some(&bad) => Err(Error::shape(
            context,
            "index (below the number of examples)",
            len,
            bad,
        )),
        None => Ok(()),
    }
}

/// A set of examples that holds at least one (`len` of them): an empty one is an
/// [`ErrorKind::InvalidParameter`](crate::error::ErrorKind::InvalidParameter) naming it.
pub(crate) fn not_empty(name: &'static str, len: usize) -> Result<()> {
    if len == 0 {
        return Err(Error::param(
            name,
            "0 examples",
            "must hold at least one example",
        ));
    }
    Ok(())
}

/// `ok`, else [`ErrorKind::InvalidParameter`](crate::error::ErrorKind::InvalidParameter):
/// `name` was `value`, and `requirement` says what it must be. For the rules the helpers
/// above do not spell.
pub(crate) fn require(
    ok: bool,
    name: &'static str,
    value: impl Display,
    requirement: &'static str,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::param(name, value, requirement))
    }
}
