//! Following the slope, numerically — and checking the analytic gradient against it.
//!
//! The numeric gradient nudges one parameter at a time and watches the loss:
//! forward differences `(f(w + h) − f(w)) / h` (one extra loss per parameter, error O(h)) or
//! centred differences `(f(w + h) − f(w − h)) / 2h` (two per parameter, error O(h²)). It is
//! slow — a full loss evaluation per coordinate — and approximate, but it is hard to get
//! wrong. The analytic gradient is exact and fast but easy to get wrong; so the rule is:
//! always *use* the analytic gradient, and always *check* it against the numeric one.
//!
//! ```
//! use downhill::gradcheck::{GradCheck, Verdict};
//! use downhill::prelude::*;
//!
//! let x = Matrix::from_vec(vec![0.5, -1.0, 2.0, 0.1, 0.3, -0.7], 3, 2)?;
//! let data = Dataset::from_matrix(x, vec![0, 2, 1], 3)?;
//! let mut mlp = Mlp::<f64>::builder(2).hidden(4, Activation::Tanh).classes(3).l2(0.1).build()?;
//! let report = GradCheck::new().run(&mut mlp, &data.all())?;
//! assert!(report.passed(), "{report}");
//! assert_eq!(report.verdict(), Verdict::Good);
//! println!("{report}"); // one row per tensor: layers.0.weight, layers.0.bias, ...
//! # Ok::<(), downhill::Error>(())
//! ```
//!
//! # Reading the report
//!
//! Each coordinate's disagreement is measured as the relative error
//! `|a − n| / max(|a|, |n|, tiny)` ([`relative_error`]): a gradient of 1e-9 that is off by
//! 1e-9 matters as much as a gradient of 3 off by 3. The standard reading ([`Verdict`]):
//! above 1e-2 the gradient is wrong; 1e-2 to 1e-4 is suspicious; below 1e-4 is fine for
//! objectives with kinks (ReLU, hinge) and for `f32`; below 1e-7 is what a correct gradient
//! of a smooth objective gives in `f64`. The report breaks the numbers down per named
//! parameter group ([`Model::param_groups`]), so a wrong bias gradient shows up as one bad
//! row, and names the worst coordinate.
//!
//! Kinks get special treatment: where a probe `w ± h` straddles ReLU's corner or the hinge's
//! margin, no finite difference agrees with any derivative. Such coordinates are detected
//! from the loss alone (see `kink.rs`: the one-sided slopes disagree by a jump that does not
//! shrink with `h`) and reported separately, not counted as failures.
//!
//! # Choosing `f64`, the difference and `h`
//!
//! Check in **`f64`**. The numeric gradient's error has two parts: truncation (the
//! difference is not the derivative: `h²·f'''/6` for centred differences) and rounding (the
//! loss is known to about `ε·|f|`, and dividing by `h` magnifies that to `ε·|f|/h`). Their sum
//! is smallest at `h ≈ ε^(1/3)` for centred differences — 6e-6 in `f64`, where both parts are
//! near 1e-11 — but 5e-3 in `f32`, where both are near 1e-5: an `f32` check cannot tell a
//! subtle bug from noise. **Centred** differences are the default because they buy two
//! orders of truncation for one extra loss evaluation; forward differences are the
//! lecture's first version and are noticeably worse; five-point differences help when many
//! coordinates nearly cancel over the batch. Leave `h` unset and the check picks the
//! balancing step for the type and the difference ([`Difference::default_h`]). Rounding
//! still leaves the numeric gradient a noise of about `8·ε·max(|f|, 1)/h` — 3e-10 for a
//! loss near 1 in `f64` — which is a large *relative* error on a coordinate of 1e-7. So the
//! relative error's denominator has a floor of `noise / tolerance`: a coordinate too small
//! for the numeric side to resolve passes exactly when the two agree within the noise, and
//! a coordinate that is zero up to rounding does not read as a 100% error. A network with
//! kinks may prefer a smaller `h` (fewer probes straddle a corner).
//!
//! # Checking part of a big model
//!
//! A full numeric gradient costs two loss evaluations per parameter — minutes for a
//! 200,000-parameter MLP. [`GradCheck::sample`] checks a seeded random sample instead,
//! shared equally between the parameter groups (so a 10-element bias is checked as
//! thoroughly as a 200,000-element weight matrix), and [`GradCheck::run_parallel`] spreads
//! the numeric side over threads, each with its own clone of the model.

mod kink;
mod numeric;
mod report;

pub use numeric::{numeric_gradient, numeric_partial, relative_error, Difference};
pub use report::{Coordinate, GradReport, GroupReport, Verdict};

use rand::seq::index;
use rand::SeedableRng;

use crate::data::Batch;
use crate::error::{non_negative, positive, thread_count, Error, Result};
use crate::model::{Model, ParamGroup};
use crate::{DefaultRng, Scalar};

/// Which coordinates a check compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coordinates {
    /// Every parameter.
    #[default]
    All,
    /// A seeded random sample of `n` parameters, shared equally between the groups.
    Sample {
        /// How many (all of them if the model has fewer).
        n: usize,
        /// The seed of the draw.
        seed: u64,
    },
}

/// How to run a gradient check; every setting is validated when it is made.
///
/// The defaults: centred differences, `h` and the relative-error floor chosen for the
/// scalar type (see the [module docs](self)), every coordinate, kink detection on, and a
/// tolerance of 1e-4 in `f64` and 1e-2 in `f32`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradCheck {
    h: Option<f64>,
    difference: Difference,
    floor: Option<f64>,
    tolerance: Option<f64>,
    coordinates: Coordinates,
    threads: usize,
    detect_kinks: bool,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck::new()
    }
}

impl GradCheck {
    /// The default check (see the type's docs).
    pub fn new() -> Self {
        GradCheck {
            h: None,
            difference: Difference::Central,
            floor: None,
            tolerance: None,
            coordinates: Coordinates::All,
            threads: 1,
            detect_kinks: true,
        }
    }
    /// The finite-difference step (finite, > 0). Unset, it is
    /// [`Difference::default_h`] for the scalar type.
    pub fn h(mut self, h: f64) -> Result<Self> {
        self.h = Some(positive("h", h)?);
        Ok(self)
    }
    /// Forward, centred or five-point differences.
    pub fn difference(mut self, difference: Difference) -> Self {
        self.difference = difference;
        self
    }
    /// The floor of the relative error's denominator (see [`relative_error`]); finite and
    /// ≥ 0. Unset, it is `noise / tolerance`, where `noise = 8·ε·max(|f|, 1)/h` is the
    /// rounding noise of the numeric gradient: a coordinate too small for the numeric side
    /// to resolve to the tolerance then passes exactly when the two agree within that noise.
    pub fn floor(mut self, floor: f64) -> Result<Self> {
        self.floor = Some(non_negative("floor", floor)?);
        Ok(self)
    }
    /// The largest relative error [`GradReport::passed`] accepts (finite, > 0).
    pub fn tolerance(mut self, tolerance: f64) -> Result<Self> {
        self.tolerance = Some(positive("tolerance", tolerance)?);
        Ok(self)
    }
    /// Check a seeded random sample of `n` coordinates (at least 1) instead of all.
    pub fn sample(mut self, n: usize, seed: u64) -> Result<Self> {
        if n == 0 {
            return Err(Error::param("sample", 0, "must be at least 1"));
        }
        self.coordinates = Coordinates::Sample { n, seed };
        Ok(self)
    }
    /// Check every coordinate (the default).
    pub fn all(mut self) -> Self {
        self.coordinates = Coordinates::All;
        self
    }
    /// Threads for the numeric side of [`run_parallel`](GradCheck::run_parallel)
    /// (1 to 1024).
    pub fn threads(mut self, threads: usize) -> Result<Self> {
        self.threads = thread_count(threads)?;
        Ok(self)
    }
    /// Whether to look for kinks among the failing coordinates (default on). Off, every
    /// disagreement counts.
    pub fn detect_kinks(mut self, on: bool) -> Self {
        self.detect_kinks = on;
        self
    }

    /// Compares the analytic and numeric gradients of `model` on `batch`, on this thread.
    pub fn run<T: Scalar>(
        &self,
        model: &mut dyn Model<T>,
        batch: &Batch<'_, T>,
    ) -> Result<GradReport> {
        let plan = self.plan(model, batch)?;
        let mut numeric = Vec::with_capacity(plan.indices.len());
        for &i in &plan.indices {
            numeric.push(numeric_partial(
                model,
                batch,
                i,
                T::of(plan.h),
                self.difference,
                plan.f0,
            )?);
        }
        self.finish(model, batch, plan, numeric)
    }

    /// The same check with the numeric side spread over [`threads`](GradCheck::threads),
    /// each thread working on its own clone of `model` (set to one thread of its own).
    /// The report is identical to [`run`](GradCheck::run)'s.
    pub fn run_parallel<T: Scalar, M: Model<T> + Clone + Send>(
        &self,
        model: &mut M,
        batch: &Batch<'_, T>,
    ) -> Result<GradReport> {
        let plan = self.plan(model, batch)?;
        let chunk = plan.indices.len().div_ceil(self.threads).max(1);
        let (h, difference, f0) = (T::of(plan.h), self.difference, plan.f0);
        let parts: Vec<Result<Vec<T>>> = std::thread::scope(|s| {
            let handles: Vec<_> = plan
                .indices
                .chunks(chunk)
                .map(|indices| {
                    let mut clone = model.clone();
                    s.spawn(move || -> Result<Vec<T>> {
                        clone.set_threads(1)?;
                        indices
                            .iter()
                            .map(|&i| numeric_partial(&mut clone, batch, i, h, difference, f0))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::param(
                            "GradCheck::run_parallel",
                            "a worker",
                            "panicked while evaluating the loss",
                        ))
                    })
                })
                .collect()
        });
        let mut numeric = Vec::with_capacity(plan.indices.len());
        for part in parts {
            numeric.extend(part?);
        }
        self.finish(model, batch, plan, numeric)
    }

    /// Everything the numeric side needs: which coordinates, `h`, the loss at `w`, and the
    /// analytic gradient.
    fn plan<T: Scalar>(&self, model: &mut dyn Model<T>, batch: &Batch<'_, T>) -> Result<Plan<T>> {
        let n = model.num_params();
        let groups = checked_groups(model.param_groups(), n)?;
        let mut analytic = vec![T::zero(); n];
        model.loss_and_grad(batch, &mut analytic)?;
        let f0 = model.loss(batch)?;
        let eps = T::epsilon().to_f64_lossless();
        let h = self.h.unwrap_or_else(|| self.difference.default_h(eps));
        let loss = f0.to_f64_lossless();
        // A loss is known to a few ulps (≤ 2ε·|f| each); a difference of two, over a step
        // of h, carries about this much rounding noise.
        let noise = 8.0 * eps * loss.abs().max(1.0) / h;
        let tolerance = self
            .tolerance
            .unwrap_or(if eps < 1e-10 { 1e-4 } else { 1e-2 });
        let floor = self.floor.unwrap_or(noise / tolerance);
        let indices = match self.coordinates {
            Coordinates::All => (0..n).collect(),
            Coordinates::Sample { n: want, seed } => sample_by_group(&groups, want, seed),
        };
        Ok(Plan {
            groups,
            indices,
            analytic,
            f0,
            loss,
            h,
            floor,
            tolerance,
            noise,
        })
    }

    /// Compares, looks for kinks among the failures, and writes the report.
    fn finish<T: Scalar>(
        &self,
        model: &mut dyn Model<T>,
        batch: &Batch<'_, T>,
        plan: Plan<T>,
        numeric: Vec<T>,
    ) -> Result<GradReport> {
        let mut coordinates = Vec::with_capacity(plan.indices.len());
        let mut group = 0;
        for (&i, n) in plan.indices.iter().zip(numeric) {
            while !plan.groups[group].range().contains(&i) {
                group += 1;
            }
            let (a, n) = (plan.analytic[i].to_f64_lossless(), n.to_f64_lossless());
            coordinates.push(Coordinate {
                index: i,
                group,
                analytic: a,
                numeric: n,
                rel_error: relative_error(a, n, plan.floor),
            });
        }
        let mut is_kink = vec![false; coordinates.len()];
        if self.detect_kinks {
            for (c, kink) in coordinates.iter().zip(&mut is_kink) {
                if c.rel_error > plan.tolerance {
                    *kink = kink::crossed_kink(
                        model,
                        batch,
                        c.index,
                        plan.h,
                        plan.loss,
                        c.analytic,
                        c.numeric,
                        plan.tolerance,
                        plan.floor,
                        plan.noise,
                    )?;
                }
            }
        }
        let names = plan.groups.into_iter().map(|g| {
            let len = g.len();
            (g.name, len)
        });
        Ok(GradReport::new(
            model.num_params(),
            coordinates,
            names.collect(),
            &is_kink,
            plan.tolerance,
            plan.h,
            plan.loss,
        ))
    }
}

/// What [`GradCheck::plan`] works out before the numeric side runs.
struct Plan<T> {
    groups: Vec<ParamGroup>,
    indices: Vec<usize>,
    analytic: Vec<T>,
    f0: T,
    loss: f64,
    h: f64,
    floor: f64,
    tolerance: f64,
    noise: f64,
}

/// The model's groups, checked to cover `0..n` in order without gaps or overlaps.
fn checked_groups(groups: Vec<ParamGroup>, n: usize) -> Result<Vec<ParamGroup>> {
    let mut next = 0;
    for g in &groups {
        if g.offset != next {
            return Err(Error::shape(
                "Model::param_groups: offset of group (they must tile the parameters in order)",
                next,
                format!("{} for {:?}", g.offset, g.name),
            ));
        }
        next = g
            .offset
            .checked_add(g.len())
            .ok_or_else(|| Error::shape("Model::param_groups: group end", n, "overflow"))?;
    }
    if next != n {
        return Err(Error::shape(
            "Model::param_groups: total length of the groups",
            n,
            next,
        ));
    }
    Ok(groups)
}

/// `want` indices drawn without replacement, shared equally between the groups: small
/// groups are checked whole and hand their unused share on to the larger ones. Sorted.
fn sample_by_group(groups: &[ParamGroup], want: usize, seed: u64) -> Vec<usize> {
    let mut rng = DefaultRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| groups[g].len());
    let mut quota = vec![0; groups.len()];
    let mut remaining = want;
    for (k, &g) in order.iter().enumerate() {
        let share = remaining / (order.len() - k);
        quota[g] = share.min(groups[g].len());
        remaining -= quota[g];
    }
    let mut indices = Vec::with_capacity(want);
    for (g, &q) in groups.iter().zip(&quota) {
        let mut picked: Vec<usize> = index::sample(&mut rng, g.len(), q)
            .into_iter()
            .map(|i| g.offset + i)
            .collect();
        picked.sort_unstable();
        indices.extend(picked);
    }
    indices
}
