//! `--threads N`, for the examples that train on the model's thread pool.

/// How many threads the model may use.
#[derive(clap::Args, Debug)]
pub struct ThreadsArg {
    /// Threads the model may use (the result is bit-identical whatever the count)
    #[arg(long, value_name = "N", default_value_t = all_cores())]
    pub threads: usize,
}

/// The cores this process may use (1 if the system cannot say).
fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
