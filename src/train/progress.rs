//! Watching a run go by: a progress bar on a terminal, one line per epoch elsewhere.
//!
//! [`Progress`] shows the epoch, the running training loss, the last validation accuracy
//! (when the run has a validation set), examples per second and the time left. On a terminal (standard error, checked with
//! [`std::io::IsTerminal`]) and with the default cargo feature `progress`, it draws an
//! `indicatif` bar; otherwise — in a pipe, a log file, CI — it writes one plain line per
//! epoch, which is what a log wants.
//!
//! ```
//! use downhill::prelude::*;
//! use downhill::train::Progress;
//!
//! let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2)?;
//! let data = Dataset::from_matrix(x, vec![1, 0], 2)?;
//! let mut model = LinearClassifier::<f64>::builder(2, 2).build()?;
//! let mut sgd = Sgd::new(0.5)?.batch_size(2)?;
//! // Lines into a buffer (a test has no terminal to draw on).
//! let mut progress = Progress::lines(3, Vec::new());
//! Trainer::new(3)?.run_with(&mut model, &mut sgd, &data, Some(&data), &mut progress)?;
//! let text = String::from_utf8(progress.into_writer().unwrap()).unwrap();
//! assert_eq!(text.lines().count(), 3);
//! assert!(text.starts_with("epoch   1/3 loss "));
//! # Ok::<(), downhill::Error>(())
//! ```

use std::io::Write;

use crate::error::Result;
use crate::model::Params;
use crate::scalar::Scalar;
use crate::train::{Control, EpochEnd, Observer, StepInfo, TrainReport};

/// An [`Observer`] that reports progress: a bar on a terminal, plain lines otherwise.
pub struct Progress<W: Write = Box<dyn Write + Send>> {
    epochs: usize,
    out: Output<W>,
    /// Training seconds of finished epochs, and examples they processed.
    seconds: f64,
    samples: usize,
    /// The running epoch's loss sum, steps and examples.
    epoch_loss: f64,
    epoch_steps: usize,
    epoch_samples: usize,
    valid_accuracy: Option<f64>,
}

enum Output<W> {
    Lines(W),
    #[cfg(feature = "progress")]
    Bar(indicatif::ProgressBar),
}

impl Progress {
    /// Progress of a run of `epochs` epochs: a bar on standard error if it is a terminal
    /// (and the `progress` feature is on), plain lines on standard output otherwise.
    pub fn new(epochs: usize) -> Self {
        #[cfg(feature = "progress")]
        {
            use std::io::IsTerminal;
            if std::io::stderr().is_terminal() {
                return Progress::with_output(epochs, Output::Bar(bar()));
            }
        }
        Progress::lines(epochs, Box::new(std::io::stdout()) as Box<dyn Write + Send>)
    }
}

impl<W: Write> Progress<W> {
    /// Progress as one plain line per epoch written to `out`, whatever the terminal.
    pub fn lines(epochs: usize, out: W) -> Self {
        Progress::with_output(epochs, Output::Lines(out))
    }

    fn with_output(epochs: usize, out: Output<W>) -> Self {
        Progress {
            epochs,
            out,
            seconds: 0.0,
            samples: 0,
            epoch_loss: 0.0,
            epoch_steps: 0,
            epoch_samples: 0,
            valid_accuracy: None,
        }
    }

    /// The writer of a line-mode progress (`None` when a bar was drawn).
    pub fn into_writer(self) -> Option<W> {
        match self.out {
            Output::Lines(w) => Some(w),
            #[cfg(feature = "progress")]
            Output::Bar(_) => None,
        }
    }

    /// Whether a bar is being drawn (rather than lines written).
    pub fn is_bar(&self) -> bool {
        !matches!(self.out, Output::Lines(_))
    }

    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    fn examples_per_s(&self, extra_seconds: f64, extra_samples: usize) -> f64 {
        (self.samples + extra_samples) as f64 / (self.seconds + extra_seconds).max(1e-9)
    }
}

#[cfg(feature = "progress")]
fn bar() -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {percent:>3}% {msg} ETA {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

impl<T: Scalar, W: Write> Observer<T> for Progress<W> {
    fn on_step(&mut self, info: &StepInfo) -> Result<Control> {
        if info.step_in_epoch == 0 {
            self.epoch_loss = 0.0;
            self.epoch_steps = 0;
            self.epoch_samples = 0;
        }
        self.epoch_loss += info.loss;
        self.epoch_steps += 1;
        self.epoch_samples += info.samples;
        #[cfg(feature = "progress")]
        if let Output::Bar(bar) = &self.out {
            let total = (self.epochs * info.steps_per_epoch) as u64;
            if bar.length() != Some(total) {
                bar.set_length(total);
            }
            bar.set_position(info.step as u64 + 1);
            bar.set_prefix(format!("epoch {}/{}", info.epoch, self.epochs));
            let rate = self.examples_per_s(info.epoch_seconds, self.epoch_samples);
            bar.set_message(format!(
                "loss {:.4} acc {} {:.0} ex/s",
                self.epoch_loss / self.epoch_steps as f64,
                fmt_opt(self.valid_accuracy),
                rate
            ));
        }
        Ok(Control::Continue)
    }

    fn on_epoch(&mut self, end: &mut EpochEnd<'_, T>) -> Result<Control> {
        let record = end.record;
        self.seconds += record.train_seconds;
        self.samples += record.samples;
        self.valid_accuracy = record.valid_accuracy;
        let rate = record.samples as f64 / record.train_seconds.max(1e-9);
        #[cfg(feature = "progress")]
        let overall_rate = self.examples_per_s(0.0, 0);
        match &mut self.out {
            Output::Lines(w) => {
                // Held-out figures only when the run has a validation set.
                let valid = if record.valid_loss.is_some() || record.valid_accuracy.is_some() {
                    format!(
                        " valid_loss {} valid_acc {}",
                        fmt_opt(record.valid_loss),
                        fmt_opt(record.valid_accuracy)
                    )
                } else {
                    String::new()
                };
                // A progress line that cannot be written is not worth failing a run for.
                let _ = writeln!(
                    w,
                    "epoch {:>3}/{} loss {:.4}{valid} lr {} {:.0} ex/s",
                    record.epoch,
                    self.epochs,
                    record.train_loss,
                    record
                        .learning_rate
                        .map_or_else(|| "-".to_string(), |lr| format!("{lr:.3e}")),
                    rate
                );
            }
            #[cfg(feature = "progress")]
            Output::Bar(bar) => bar.set_message(format!(
                "loss {:.4} acc {} {:.0} ex/s",
                record.train_loss,
                fmt_opt(record.valid_accuracy),
                overall_rate
            )),
        }
        Ok(Control::Continue)
    }

    fn on_end(&mut self, report: &TrainReport, _params: &mut dyn Params<T>) -> Result<()> {
        match &mut self.out {
            Output::Lines(w) => {
                if let Some(why) = &report.stopped {
                    let _ = writeln!(w, "stopped: {why}");
                }
                let _ = w.flush();
            }
            #[cfg(feature = "progress")]
            Output::Bar(bar) => {
                bar.abandon();
                if let Some(why) = &report.stopped {
                    eprintln!("stopped: {why}");
                }
            }
        }
        Ok(())
    }
}
