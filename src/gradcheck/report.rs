//! What a gradient check found: per coordinate, per named group, and a verdict.

use std::fmt;

/// What a check probed the loss along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Probe {
    /// Single coordinates: `∂f/∂wᵢ` against `(f(w + h·eᵢ) − f(w − h·eᵢ))/2h`.
    Coordinates,
    /// Seeded random unit directions `v` through all the parameters at once: `vᵀ·∇f`
    /// against `(f(w + h·v) − f(w − h·v))/2h` (see
    /// [`GradCheck::directions`](crate::gradcheck::GradCheck::directions)).
    Directions {
        /// How many directions.
        count: usize,
        /// The seed they were drawn from.
        seed: u64,
    },
}

/// One comparison: a coordinate, or (in directional mode) a direction.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Coordinate {
    /// Its index in [`Params::params`](crate::model::Params::params), or the direction's
    /// number.
    pub index: usize,
    /// The index of its group in [`GradReport::groups`].
    pub group: usize,
    /// The analytic derivative (a partial, or `vᵀ·∇f`).
    pub analytic: f64,
    /// The numeric derivative.
    pub numeric: f64,
    /// `|a − n| / max(|a|, |n|, floor)`.
    pub rel_error: f64,
}

/// The check's findings for one named parameter group (`layers.0.weight`, …).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GroupReport {
    /// The group's name, from [`Params::param_groups`](crate::model::Params::param_groups).
    pub name: String,
    /// Parameters in the group.
    pub len: usize,
    /// Coordinates of the group that were compared.
    pub checked: usize,
    /// Largest relative error among them, kinks excluded.
    pub max_rel_error: f64,
    /// Mean relative error among them, kinks excluded.
    pub mean_rel_error: f64,
    /// The coordinate with the largest relative error, kinks excluded.
    pub worst: Option<Coordinate>,
    /// Coordinates where the probe crossed a kink.
    pub kinks: usize,
}

/// The standard reading of a gradient check's largest relative error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Below 1e-7: what a correct gradient of a smooth objective gives in `f64`.
    Good,
    /// 1e-7 to 1e-4: fine for objectives with kinks (ReLU, hinge) and for `f32`; for a
    /// smooth objective in `f64`, worth a second look at `h`.
    Fine,
    /// 1e-4 to 1e-2: probably a bug, unless the network is deep or the type is `f32`.
    Suspicious,
    /// Above 1e-2 (or NaN): the analytic gradient is wrong.
    Wrong,
}

impl Verdict {
    /// The verdict for a largest relative error of `max_rel_error`.
    pub fn of(max_rel_error: f64) -> Verdict {
        match max_rel_error {
            e if e < 1e-7 => Verdict::Good,
            e if e < 1e-4 => Verdict::Fine,
            e if e <= 1e-2 => Verdict::Suspicious,
            _ => Verdict::Wrong,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Good => "good",
            Verdict::Fine => "fine",
            Verdict::Suspicious => "suspicious",
            Verdict::Wrong => "wrong",
        })
    }
}

/// The outcome of a gradient check. `Display` prints a table: one row per group, or, in
/// directional mode, one per direction.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GradReport {
    /// Length of the parameter vector.
    pub num_params: usize,
    /// What was probed: coordinates or directions.
    pub probe: Probe,
    /// Evaluations of the loss the check made (the analytic gradient's call included).
    pub evaluations: usize,
    /// The compared coordinates, in index order (all of them, or the sample).
    pub coordinates: Vec<Coordinate>,
    /// Per named parameter group, in the model's order.
    pub groups: Vec<GroupReport>,
    /// The indices (into `coordinates`) of the coordinates where the probe crossed a kink;
    /// they are reported here and left out of every error statistic.
    pub kinks: Vec<usize>,
    /// Largest relative error over the compared coordinates, kinks excluded (NaN if any
    /// gradient was NaN).
    pub max_rel_error: f64,
    /// Mean relative error over the compared coordinates, kinks excluded.
    pub mean_rel_error: f64,
    /// Largest absolute difference `|a − n|`, kinks excluded.
    pub max_abs_error: f64,
    /// The coordinate with the largest relative error, kinks excluded.
    pub worst: Option<Coordinate>,
    /// The tolerance [`passed`](GradReport::passed) compares against.
    pub tolerance: f64,
    /// The finite-difference step used.
    pub h: f64,
    /// The loss at the checked parameters.
    pub loss: f64,
}

impl GradReport {
    /// Assembles a report from the compared coordinates and which of them were kinks.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        num_params: usize,
        probe: Probe,
        evaluations: usize,
        coordinates: Vec<Coordinate>,
        group_names: Vec<(String, usize)>,
        is_kink: &[bool],
        tolerance: f64,
        h: f64,
        loss: f64,
    ) -> GradReport {
        let mut groups: Vec<GroupReport> = group_names
            .into_iter()
            .map(|(name, len)| GroupReport {
                name,
                len,
                checked: 0,
                max_rel_error: 0.0,
                mean_rel_error: 0.0,
                worst: None,
                kinks: 0,
            })
            .collect();
        let mut kinks = Vec::new();
        let (mut max_rel, mut max_abs, mut sum, mut counted) = (0.0f64, 0.0f64, 0.0f64, 0usize);
        let mut worst: Option<Coordinate> = None;
        for (k, c) in coordinates.iter().enumerate() {
            let g = &mut groups[c.group];
            g.checked += 1;
            if is_kink.get(k).copied().unwrap_or(false) {
                g.kinks += 1;
                kinks.push(k);
                continue;
            }
            // NaN compares false with everything: test for it so that it becomes the worst.
            let worse = |e: f64, than: f64| e.is_nan() || (!than.is_nan() && e > than);
            if g.worst.is_none() || worse(c.rel_error, g.max_rel_error) {
                g.max_rel_error = c.rel_error;
                g.worst = Some(*c);
            }
            g.mean_rel_error += c.rel_error;
            if worst.is_none() || worse(c.rel_error, max_rel) {
                max_rel = c.rel_error;
                worst = Some(*c);
            }
            let abs = (c.analytic - c.numeric).abs();
            if worse(abs, max_abs) {
                max_abs = abs;
            }
            sum += c.rel_error;
            counted += 1;
        }
        for g in &mut groups {
            let n = g.checked - g.kinks;
            g.mean_rel_error = if n == 0 {
                0.0
            } else {
                g.mean_rel_error / n as f64
            };
        }
        GradReport {
            num_params,
            probe,
            evaluations,
            coordinates,
            groups,
            kinks,
            max_rel_error: max_rel,
            mean_rel_error: if counted == 0 {
                0.0
            } else {
                sum / counted as f64
            },
            max_abs_error: max_abs,
            worst,
            tolerance,
            h,
            loss,
        }
    }

    /// The standard reading of [`max_rel_error`](GradReport::max_rel_error).
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.max_rel_error)
    }

    /// Whether every compared coordinate, kinks excluded, is within the tolerance.
    pub fn passed(&self) -> bool {
        self.max_rel_error <= self.tolerance
    }

    /// The name of the group holding the worst coordinate.
    pub fn worst_group(&self) -> Option<&str> {
        self.worst
            .and_then(|c| self.groups.get(c.group))
            .map(|g| g.name.as_str())
    }

    /// The coordinates where the probe crossed a kink.
    pub fn kink_coordinates(&self) -> impl Iterator<Item = &Coordinate> + '_ {
        self.kinks.iter().filter_map(|&k| self.coordinates.get(k))
    }

    /// How many coordinates were compared.
    pub fn checked(&self) -> usize {
        self.coordinates.len()
    }
}

impl fmt::Display for GradReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Probe::Directions { count, seed } = self.probe {
            return self.fmt_directions(f, count, seed);
        }
        let name_width = self
            .groups
            .iter()
            .map(|g| g.name.len())
            .chain([5])
            .max()
            .unwrap_or(5);
        writeln!(
            f,
            "{:<name_width$}  {:>9}  {:>9}  {:>9}  {:>9}  {:>5}  worst (index: analytic vs numeric)",
            "group", "params", "checked", "max rel", "mean rel", "kinks"
        )?;
        for g in &self.groups {
            write!(
                f,
                "{:<name_width$}  {:>9}  {:>9}  {:>9.2e}  {:>9.2e}  {:>5}",
                g.name, g.len, g.checked, g.max_rel_error, g.mean_rel_error, g.kinks
            )?;
            match g.worst {
                Some(c) => writeln!(f, "  {}: {:.6e} vs {:.6e}", c.index, c.analytic, c.numeric)?,
                None => writeln!(f, "  -")?,
            }
        }
        write!(
            f,
            "{} of {} coordinates, h = {:.1e}: max relative error {:.3e}",
            self.checked(),
            self.num_params,
            self.h,
            self.max_rel_error
        )?;
        if let (Some(c), Some(g)) = (self.worst, self.worst_group()) {
            write!(f, " at parameter {} ({g})", c.index)?;
        }
        write!(f, ", mean {:.3e}, ", self.mean_rel_error)?;
        self.fmt_verdict(f)
    }
}

impl GradReport {
    /// `N kinks — verdict (within tolerance t)`.
    fn fmt_verdict(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} kink{} — {} ({} tolerance {:.0e})",
            self.kinks.len(),
            if self.kinks.len() == 1 { "" } else { "s" },
            self.verdict(),
            if self.passed() { "within" } else { "OUTSIDE" },
            self.tolerance
        )
    }

    /// The directional report: one row per direction.
    fn fmt_directions(&self, f: &mut fmt::Formatter<'_>, count: usize, seed: u64) -> fmt::Result {
        writeln!(
            f,
            "{:>9}  {:>14}  {:>14}  {:>9}  kink",
            "direction", "analytic v·∇f", "numeric", "rel error"
        )?;
        for (k, c) in self.coordinates.iter().enumerate() {
            writeln!(
                f,
                "{:>9}  {:>14.6e}  {:>14.6e}  {:>9.2e}  {}",
                c.index,
                c.analytic,
                c.numeric,
                c.rel_error,
                if self.kinks.contains(&k) { "yes" } else { "" }
            )?;
        }
        write!(
            f,
            "{count} random directions (seed {seed}) through all {} parameters, {} loss \
             evaluations, h = {:.1e}: max relative error {:.3e}, ",
            self.num_params, self.evaluations, self.h, self.max_rel_error
        )?;
        self.fmt_verdict(f)?;
        write!(
            f,
            "; an error orthogonal to every direction drawn would not show"
        )
    }
}
