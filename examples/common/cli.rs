//! What every example promises on the command line: exit status 0 when it worked, 2 for bad
//! input (clap's usage errors, a bad data directory, a flag value the library refuses) and
//! 1 when the run itself failed (training diverged), with one line on standard error; and
//! with `--json`, one JSON object as the last line of standard output.

use std::process::ExitCode;

use downhill::error::ErrorKind;
use serde::Serialize;

use super::data::DataArgs;

/// Why an example stopped without finishing.
#[derive(Debug)]
pub enum Failure {
    /// The input was wrong: a flag, a file, a checkpoint that does not fit. Exit status 2.
    Input(String),
    /// The run failed on good input: it diverged, a line search found no step, or a worker
    /// thread died. Exit status 1.
    Run(String),
}

/// A library error is bad input unless the run itself went wrong (the library says which).
impl From<downhill::Error> for Failure {
    fn from(e: downhill::Error) -> Self {
        let run = matches!(
            e.kind(),
            ErrorKind::Thread { .. } | ErrorKind::LineSearch { .. }
        );
        if e.is_divergence() || run {
            Failure::Run(e.to_string())
        } else {
            Failure::Input(e.to_string())
        }
    }
}

/// Runs an example's body and turns its outcome into the exit status:
/// `fn main() -> ExitCode { cli::main(|| run(Cli::parse())) }`. (Parsing the flags inside
/// the closure lets clap print `--help` and exit 0, or a usage error and exit 2, itself.)
pub fn main(run: impl FnOnce() -> Result<(), Failure>) -> ExitCode {
    let (code, message) = match run() {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Input(m)) => (2, m),
        Err(Failure::Run(m)) => (1, m),
    };
    // One line, whatever the message holds (a path may contain a newline).
    eprintln!("error: {}", message.replace('\n', "\\n"));
    ExitCode::from(code)
}

/// `--seed` and `--json`, the flags every example but mnist ends with (mnist records its
/// seed in its checkpoints, with the other flags of a run).
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Seed of every random number the example draws: the same seed, the same run
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object as the last line
    #[arg(long)]
    pub json: bool,
}

/// The `--json` line: which example ran on which data directory (`null` for none), then the
/// example's own fields.
#[derive(Serialize)]
struct Tagged<'a, R> {
    example: &'a str,
    data: Option<String>,
    #[serde(flatten)]
    report: &'a R,
}

/// Prints `report`, after `"example"` (this example's name: its file's, which Cargo gives
/// its crate) and `"data"` (the directory `data` names, or `null` for `None`), as one line of JSON: the
/// last thing on standard output. Fields that are `f32` print as the shortest decimal that
/// reads back as the same `f32` (`0.2`, not `0.20000000298023224`); non-finite numbers print
/// as `null`.
pub fn print_json<'a, R: Serialize>(
    data: impl Into<Option<&'a DataArgs>>,
    report: &R,
) -> Result<(), Failure> {
    let tagged = Tagged {
        example: env!("CARGO_CRATE_NAME"),
        data: data.into().map(DataArgs::dir),
        report,
    };
    let line = serde_json::to_string(&tagged).map_err(|e| Failure::Run(e.to_string()))?;
    println!("{line}");
    Ok(())
}
