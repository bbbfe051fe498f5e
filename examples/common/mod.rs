//! What the examples share: their flags, their exit statuses and `--json` line, the data
//! they read and the figures they draw. Each example starts with
//!
//! ```ignore
//! mod common;
//! use common::prelude::*;
//! ```
//!
//! Each example compiles all of this and uses a different part of it, so unused items are
//! expected here (and only here).
#![allow(dead_code)]

pub mod activation;
pub mod cli;
pub mod data;
pub mod heldout;
pub mod learned;
pub mod measure;
pub mod pictures;
pub mod plot;
pub mod search;
pub mod threads;
pub mod values;

/// What nearly every example names: the flags' derive, the library's prelude, the exit
/// status and the shared flags. (No example uses every name.)
#[allow(unused_imports)]
pub mod prelude {
    pub use std::path::{Path, PathBuf};
    pub use std::process::ExitCode;

    pub use clap::Parser;
    pub use downhill::prelude::*;
    pub use serde::Serialize;

    pub use super::activation::{ActivationArg, HiddenArgs};
    pub use super::cli::{self, Failure, RunArgs};
    pub use super::data::DataArgs;
}
