//! Parsers for flag values that a type alone does not check (`--seconds`, a learning rate, a
//! count): clap reports what they refuse as a usage error.

/// A finite number for which `ok` holds; `what` says what else it must be, in the message.
pub fn number(s: &str, ok: impl Fn(f64) -> bool, what: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && ok(v) => Ok(v),
        Ok(_) => Err(format!("must be {what}")),
        Err(e) => Err(e.to_string()),
    }
}

/// A finite number greater than zero.
pub fn positive(s: &str) -> Result<f64, String> {
    number(s, |v| v > 0.0, "a finite number greater than zero")
}

/// A finite number ≥ 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    number(s, |v| v >= 0.0, "a finite number ≥ 0")
}

/// `--seconds S`, the training-time budget of the examples that race optimizers: a finite
/// number of seconds greater than zero.
pub fn seconds(s: &str) -> Result<f64, String> {
    number(
        s,
        |v| v > 0.0,
        "a finite number of seconds greater than zero",
    )
}

/// A count of at least `min`; `why`, if not empty, says why in the message.
pub fn count(s: &str, min: usize, why: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(format!("must be at least {min}{why}")),
        Err(e) => Err(e.to_string()),
    }
}
