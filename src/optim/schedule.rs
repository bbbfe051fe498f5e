//! Learning-rate schedules: large steps while far from a minimum, small ones near it.
//!
//! A fixed learning rate is a compromise: large enough to make progress early, it keeps
//! the last epochs bouncing around the minimum at the scale of the minibatch noise. A
//! [`Schedule`] lowers it as training goes, epoch by epoch (as PyTorch's schedulers do when
//! `scheduler.step()` is called once per epoch):
//!
//! * [`constant`](Schedule::constant) — `lr₀`;
//! * [`step`](Schedule::step) — `lr₀·γ^⌊e/k⌋`: divide by a fixed factor every `k` epochs;
//! * [`exponential`](Schedule::exponential) — `lr₀·γᵉ`;
//! * [`cosine`](Schedule::cosine) — `η_min + (lr₀ − η_min)·(1 + cos(π·e/T))/2`, a smooth
//!   descent to `η_min` over `T` epochs (held there after);
//! * [`plateau`](Schedule::plateau) — multiply by `factor` when the monitored metric has not
//!   improved for more than `patience` epochs (PyTorch's `ReduceLROnPlateau`);
//! * [`with_warmup`](Schedule::with_warmup) — any of them after a linear warm-up from
//!   `start_factor·lr₀` to `lr₀` over `w` epochs (PyTorch's `LinearLR` then the schedule):
//!   Adam's first moment estimates and a random network's first gradients are both
//!   unreliable, so the first steps are kept small.
//!
//! `e` counts the epochs already done (0 for the first). The
//! [`LrScheduler`](crate::train::LrScheduler) observer applies a schedule to an optimizer
//! during a run.
//!
//! ```
//! use downhill::optim::Schedule;
//!
//! let mut s = Schedule::cosine(10, 0.0)?.with_warmup(2, 0.5)?;
//! let lrs: Vec<f64> = (0..4).map(|e| s.learning_rate(0.1, e, None)).collect::<Result<_, _>>()?;
//! // Warm-up from 0.05 to 0.1, then cosine from its start.
//! for (lr, want) in lrs.iter().zip([0.05, 0.075, 0.1]) {
//!     assert!((lr - want).abs() < 1e-12);
//! }
//! assert!(lrs[3] < 0.1);
//! # Ok::<(), downhill::Error>(())
//! ```

use std::f64::consts::PI;

use crate::error::{Error, Result};
use crate::validate::{at_least_one, non_negative, open_unit_interval, positive, unit_interval};

/// A learning rate as a function of the epoch (and, for reduce-on-plateau, of a metric).
/// Built by the constructors, which validate their parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Constant,
    Step {
        every: usize,
        gamma: f64,
    },
    Exponential {
        gamma: f64,
    },
    Cosine {
        t_max: usize,
        eta_min: f64,
    },
    Plateau(Plateau),
    Warmup {
        epochs: usize,
        start_factor: f64,
        then: Box<Schedule>,
    },
}

/// Reduce-on-plateau's settings and the state it carries from epoch to epoch.
#[derive(Debug, Clone, PartialEq)]
struct Plateau {
    factor: f64,
    patience: usize,
    threshold: f64,
    min_lr: f64,
    best: f64,
    bad_epochs: usize,
    scale: f64,
}

impl Schedule {
    /// The same learning rate every epoch.
    pub fn constant() -> Schedule {
        Schedule {
            kind: Kind::Constant,
        }
    }
    /// `lr₀·γ^⌊e/every⌋` (`every` ≥ 1, γ finite and > 0), PyTorch's `StepLR`.
    pub fn step(every: usize, gamma: f64) -> Result<Schedule> {
        Ok(Schedule {
            kind: Kind::Step {
                every: at_least_one("step_size", every)?,
                gamma: positive("gamma", gamma)?,
            },
        })
    }
    /// `lr₀·γᵉ` (γ finite and > 0), PyTorch's `ExponentialLR`.
    pub fn exponential(gamma: f64) -> Result<Schedule> {
        Ok(Schedule {
            kind: Kind::Exponential {
                gamma: positive("gamma", gamma)?,
            },
        })
    }
    /// Cosine annealing from `lr₀` to `eta_min` (finite, ≥ 0) over `t_max` ≥ 1 epochs, then
    /// `eta_min`: PyTorch's `CosineAnnealingLR` for its first `t_max` epochs.
    pub fn cosine(t_max: usize, eta_min: f64) -> Result<Schedule> {
        Ok(Schedule {
            kind: Kind::Cosine {
                t_max: at_least_one("t_max", t_max)?,
                eta_min: non_negative("eta_min", eta_min)?,
            },
        })
    }
    /// Reduce-on-plateau: multiply the learning rate by `factor` (in `(0, 1)`) when the
    /// metric has not improved on its best by a relative `1e-4` for more than `patience`
    /// epochs. Needs a metric each epoch (lower is better).
    pub fn plateau(factor: f64, patience: usize) -> Result<Schedule> {
        Ok(Schedule {
            kind: Kind::Plateau(Plateau {
                factor: open_unit_interval("factor", factor)?,
                patience,
                threshold: 1e-4,
                min_lr: 0.0,
                best: f64::INFINITY,
                bad_epochs: 0,
                scale: 1.0,
            }),
        })
    }
    /// Reduce-on-plateau's relative improvement threshold (finite, in `[0, 1)`; default 1e-4).
    pub fn threshold(self, threshold: f64) -> Result<Schedule> {
        let threshold = unit_interval("threshold", threshold)?;
        self.set_plateau("threshold", |p| p.threshold = threshold)
    }
    /// Reduce-on-plateau's floor for the learning rate (finite, ≥ 0; default 0).
    pub fn min_lr(self, min_lr: f64) -> Result<Schedule> {
        let min_lr = non_negative("min_lr", min_lr)?;
        self.set_plateau("min_lr", |p| p.min_lr = min_lr)
    }
    /// Sets one of reduce-on-plateau's parameters (`name`, already validated); other
    /// schedules refuse it.
    fn set_plateau(
        mut self,
        name: &'static str,
        set: impl FnOnce(&mut Plateau),
    ) -> Result<Schedule> {
        match &mut self.kind {
            Kind::Plateau(p) => set(p),
            _ => {
                return Err(Error::param(
                    name,
                    self.name(),
                    "only the plateau schedule has it",
                ))
            }
        }
        Ok(self)
    }
    /// This schedule after a linear warm-up over `epochs` ≥ 1 epochs that starts at
    /// `start_factor·lr₀` (`start_factor` in `(0, 1]`); the schedule's own epoch count starts
    /// when the warm-up ends.
    pub fn with_warmup(self, epochs: usize, start_factor: f64) -> Result<Schedule> {
        let epochs = at_least_one("warmup_epochs", epochs)?;
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(Error::param(
                "start_factor",
                start_factor,
                "must be in (0, 1]",
            ));
        }
        Ok(Schedule {
            kind: Kind::Warmup {
                epochs,
                start_factor,
                then: Box::new(self),
            },
        })
    }

    /// The schedule's name: `constant`, `step`, `exp`, `cosine`, `plateau`, or `warmup-` and
    /// the name of what follows the warm-up.
    pub fn name(&self) -> String {
        match &self.kind {
            Kind::Constant => "constant".into(),
            Kind::Step { .. } => "step".into(),
            Kind::Exponential { .. } => "exp".into(),
            Kind::Cosine { .. } => "cosine".into(),
            Kind::Plateau(_) => "plateau".into(),
            Kind::Warmup { then, .. } => format!("warmup-{}", then.name()),
        }
    }

    /// Whether the schedule needs a metric every epoch (reduce-on-plateau does).
    pub fn needs_metric(&self) -> bool {
        match &self.kind {
            Kind::Plateau(_) => true,
            Kind::Warmup { then, .. } => then.needs_metric(),
            _ => false,
        }
    }

    /// The learning rate for the epoch after `epochs_done` epochs, from the base rate
    /// `base` (finite, > 0). `metric` (lower is better: a loss, or an error rate) is the last
    /// finished epoch's; reduce-on-plateau updates its state from it, so call this exactly
    /// once per epoch, in order. Fails if a plateau schedule gets no metric after the first
    /// epoch or a non-finite one.
    pub fn learning_rate(
        &mut self,
        base: f64,
        epochs_done: usize,
        metric: Option<f64>,
    ) -> Result<f64> {
        if !(base.is_finite() && base > 0.0) {
            return Err(Error::param(
                "learning_rate",
                base,
                "must be finite and greater than zero",
            ));
        }
        let e = epochs_done as f64;
        Ok(match &mut self.kind {
            Kind::Constant => base,
            Kind::Step { every, gamma } => base * gamma.powf((epochs_done / *every) as f64),
            Kind::Exponential { gamma } => base * gamma.powf(e),
            Kind::Cosine { t_max, eta_min } => {
                let t = e.min(*t_max as f64);
                *eta_min + (base - *eta_min) * (1.0 + (PI * t / *t_max as f64).cos()) / 2.0
            }
            Kind::Plateau(p) => p.learning_rate(base, epochs_done, metric)?,
            Kind::Warmup {
                epochs,
                start_factor,
                then,
            } => {
                if epochs_done < *epochs {
                    let frac = e / *epochs as f64;
                    base * (*start_factor + (1.0 - *start_factor) * frac)
                } else {
                    // The epoch whose metric arrives with the first post-warm-up call was a
                    // warm-up epoch: a plateau schedule may as well start from it.
                    then.learning_rate(base, epochs_done - *epochs, metric)?
                }
            }
        })
    }
}

impl Plateau {
    fn learning_rate(&mut self, base: f64, epochs_done: usize, metric: Option<f64>) -> Result<f64> {
        match metric {
            Some(m) if m.is_finite() => {
                if m < self.best * (1.0 - self.threshold) || self.best == f64::INFINITY {
                    self.best = m;
                    self.bad_epochs = 0;
                } else {
                    self.bad_epochs += 1;
                }
                if self.bad_epochs > self.patience {
                    self.scale *= self.factor;
                    self.bad_epochs = 0;
                }
            }
            Some(m) => {
                return Err(Error::param(
                    "plateau metric",
                    m,
                    "must be finite to compare with the best so far",
                ))
            }
            None if epochs_done > 0 => {
                return Err(Error::param(
                    "plateau metric",
                    "none",
                    "reduce-on-plateau needs a metric every epoch (give a validation set)",
                ))
            }
            None => {}
        }
        Ok((base * self.scale).max(self.min_lr))
    }
}
