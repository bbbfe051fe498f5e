//! What every example shares: flag parsing, loading the digits, and the `--json` line.
//! (Hand-written so the crate needs no argument-parsing or JSON dependency.)
#![allow(dead_code)]

pub mod plot;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;

use downhill::data::{load_mnist, Mnist, SHIPPED_MNIST_DIR};
use downhill::Scalar;

/// Prints one line on stderr and exits with status 2 (bad usage or bad input).
pub fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// `--name value` options and `--name` switches.
pub struct Args {
    values: HashMap<String, String>,
    switches: Vec<String>,
}

impl Args {
    /// Parses the command line; `options` take a value, `switches` do not. Anything else
    /// is a usage error.
    pub fn parse(usage: &str, options: &[&str], switches: &[&str]) -> Args {
        let mut args = Args {
            values: HashMap::new(),
            switches: Vec::new(),
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let name = a.trim_start_matches("--");
            if a == "--help" || a == "-h" {
                println!("{usage}");
                std::process::exit(0);
            } else if options.contains(&name) && a.starts_with("--") {
                match it.next() {
                    Some(v) => drop(args.values.insert(name.to_string(), v)),
                    None => fail(format!("{a} needs a value\n{usage}")),
                }
            } else if switches.contains(&name) && a.starts_with("--") {
                args.switches.push(name.to_string());
            } else if a == "--bench" {
                // passed by `cargo bench` to every target; ignore
            } else {
                fail(format!("unknown argument {a}\n{usage}"));
            }
        }
        args
    }

    /// The value of `--name`, or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|e| fail(format!("--{name} {v}: {e}"))),
            None => default,
        }
    }

    /// The raw string value of `--name`, if given.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// True if the switch `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

/// Loads `--data DIR` (default: the digits shipped in this repository); exits 2 on any
/// problem with one line naming the file and what is wrong with it.
pub fn load_data<T: Scalar>(args: &Args) -> Mnist<T> {
    let dir = args.string("data").unwrap_or(SHIPPED_MNIST_DIR);
    load_mnist(dir).unwrap_or_else(|e| fail(e))
}

/// One JSON object, printed as the last line of standard output.
#[derive(Default)]
pub struct Json(String);

impl Json {
    fn key(&mut self, k: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        let _ = write!(self.0, "\"{k}\":");
    }
    /// A number (non-finite numbers become `null`, which JSON can represent).
    pub fn num(mut self, k: &str, v: f64) -> Self {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.0, "{v}");
        } else {
            self.0.push_str("null");
        }
        self
    }
    /// An optional number.
    pub fn opt(self, k: &str, v: Option<f64>) -> Self {
        self.num(k, v.unwrap_or(f64::NAN))
    }
    /// A string (no escaping needed for the identifiers the examples print).
    pub fn str(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        let _ = write!(self.0, "{v:?}");
        self
    }
    /// A list of numbers.
    pub fn list(mut self, k: &str, v: &[f64]) -> Self {
        self.key(k);
        let items: Vec<String> = v
            .iter()
            .map(|x| {
                if x.is_finite() {
                    x.to_string()
                } else {
                    "null".into()
                }
            })
            .collect();
        let _ = write!(self.0, "[{}]", items.join(","));
        self
    }
    /// Prints the object on one line.
    pub fn print(mut self) {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        println!("{}", self.0);
    }
}

/// Peak resident memory of this process in MiB (Linux: VmHWM), or `None` elsewhere.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// FNV-1a (64-bit) over the parameters' little-endian bytes, in hex: a fingerprint to compare
/// runs by (same seed → same hash, whatever the thread count; resumed or straight).
pub fn params_hash<T: Scalar>(params: &[T]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for &p in params {
        let x = p.to_f64_lossless();
        if std::mem::size_of::<T>() == 4 {
            eat(&(x as f32).to_le_bytes());
        } else {
            eat(&x.to_le_bytes());
        }
    }
    format!("{hash:016x}")
}
