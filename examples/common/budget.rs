//! `--seconds S`, the training-time budget of the examples that race optimizers.

/// Parses a number of seconds that is finite and greater than zero (clap reports anything
/// else as a usage error).
pub fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be a finite number of seconds greater than zero".into()),
        Err(e) => Err(e.to_string()),
    }
}
