//! Following the slope, numerically — and checking the analytic gradient against it.
//!
//! The numeric gradient nudges one parameter at a time and watches the loss:
//! forward differences `(f(w + h) − f(w)) / h` (one extra loss per parameter, error O(h)) or
//! centred differences `(f(w + h) − f(w − h)) / 2h` (two per parameter, error O(h²)). It is
//! slow — a full loss evaluation per coordinate — and approximate, but it is hard to get
//! wrong. The analytic gradient is exact and fast but easy to get wrong; so the rule is:
//! always *use* the analytic gradient, and always *check* it against the numeric one.
//!
//! [`GradCheck`] checks anything differentiable:
//!
//! * a model on a batch — [`run`](GradCheck::run);
//! * any [`Objective`] — [`check`](GradCheck::check);
//! * a plain function and its hand-written gradient — [`check_fn`](GradCheck::check_fn),
//!   CS231n's `eval_numerical_gradient(f, x)`;
//! * a layer's backward pass, `dx = J(x)ᵀ·dy` — [`check_vjp`](GradCheck::check_vjp),
//!   CS231n's `eval_numerical_gradient_array(f, x, df)`.
//!
//! One derivative up, [`hessian_vector`] takes the curvature `H·v` of any objective from two
//! gradient evaluations (`hessian.rs`): the second-order term of the Taylor expansion, and
//! the quadratic model's best step size.
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
//!
//! // A function of three numbers and its gradient, checked the same way.
//! let report = GradCheck::new().check_fn(
//!     &[1.0, 2.0, 3.0],
//!     |x: &[f64]| x[0] * x[1].sin() + x[2] * x[2],
//!     |x: &[f64], g: &mut [f64]| {
//!         g[0] = x[1].sin();
//!         g[1] = x[0] * x[1].cos();
//!         g[2] = 2.0 * x[2];
//!     },
//! )?;
//! assert!(report.passed(), "{report}");
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
//! parameter group ([`Params::param_groups`], or [`GradCheck::groups`]), so a wrong bias
//! gradient shows up as one bad row, and names the worst coordinate.
//!
//! Kinks get special treatment: where a probe `w ± h` straddles ReLU's corner or the hinge's
//! margin, no finite difference agrees with any derivative. Such probes are detected
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
//! # Checking a big model: sampling, threads, or directions
//!
//! A full numeric gradient costs two loss evaluations per parameter — minutes for a
//! 200,000-parameter MLP. Three ways to spend less:
//!
//! * [`GradCheck::sample`] checks a seeded random sample of coordinates, shared equally
//!   between the parameter groups (so a 10-element bias is checked as thoroughly as a
//!   200,000-element weight matrix). Each coordinate checked is checked exactly, and the
//!   report says which tensor is wrong; the coordinates not drawn are not checked at all.
//! * [`GradCheck::run_parallel`] (and the other `_parallel` variants) spreads the numeric
//!   side over threads, each with its own clone of the model.
//! * [`GradCheck::directions`] is the fast mode, PyTorch's `gradcheck(fast_mode=True)`:
//!   `k` seeded random unit directions `v` through *all* the parameters, each compared as
//!   `vᵀ·∇f` against `(f(w + h·v) − f(w − h·v))/2h` — two loss evaluations per direction,
//!   whatever the parameter count, and every parameter takes part in every one. What it
//!   cannot see is an error orthogonal to every direction drawn; an error in one coordinate
//!   of a 200,000-dimensional vector moves a random projection by only about 1/450 of its
//!   size, so it finds *broken* gradients (a wrong formula touches many coordinates), and
//!   the coordinate mode finds *which* coordinate. Use directions for a quick check of a
//!   whole big model, or in a property test run thousands of times; use coordinates (all,
//!   or a sample) to locate a bug.

mod hessian;
mod kink;
mod numeric;
mod report;

pub use hessian::{hessian_vector, hessian_vector_with_step};
pub use numeric::{numeric_gradient, numeric_partial, relative_error, Difference};
pub use report::{Coordinate, GradReport, GroupReport, Probe, Verdict};

use rand::seq::index;
use rand_distr::{Distribution, StandardNormal};

use crate::data::{Batch, Examples};
use crate::error::{Error, Result};
use crate::model::{check_groups, FnObjective, Model, Objective, OnBatch, ParamGroup, Params};
use crate::rng::{seeded, stream_rng};
use crate::scalar::Scalar;
use crate::validate::{at_least_one, non_negative, positive, thread_count};
use kink::{crossed_kink, Judge};
use numeric::{derivative_along, Axis};

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
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheck {
    h: Option<f64>,
    difference: Difference,
    floor: Option<f64>,
    tolerance: Option<f64>,
    coordinates: Coordinates,
    directions: Option<(usize, u64)>,
    groups: Option<Vec<ParamGroup>>,
    seed: u64,
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
            directions: None,
            groups: None,
            seed: 0,
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
        self.coordinates = Coordinates::Sample {
            n: at_least_one("sample", n)?,
            seed,
        };
        Ok(self)
    }
    /// Check every coordinate (the default).
    pub fn all(mut self) -> Self {
        self.coordinates = Coordinates::All;
        self
    }
    /// The fast mode: compare `vᵀ·∇f` with the centred difference along `v` for `k` (at
    /// least 1) seeded random unit directions `v` through all the parameters, instead of
    /// coordinate by coordinate — `2·k` loss evaluations whatever the parameter count. See
    /// the [module docs](self#checking-a-big-model-sampling-threads-or-directions) for what
    /// it can and cannot see.
    ///
    /// ```
    /// use downhill::gradcheck::GradCheck;
    ///
    /// // A 100,000-parameter function, every parameter checked in 17 calls of f.
    /// let x: Vec<f64> = (0..100_000).map(|i| (i as f64 * 0.37).sin()).collect();
    /// let calls = std::cell::Cell::new(0);
    /// let f = |x: &[f64]| { calls.set(calls.get() + 1); x.iter().map(|v| v * v * v).sum::<f64>() };
    /// let grad = |x: &[f64], g: &mut [f64]| x.iter().zip(g).for_each(|(v, g)| *g = 3.0 * v * v);
    /// let report = GradCheck::new().directions(8, 1)?.check_fn(&x, f, grad)?;
    /// assert!(report.passed(), "{report}");
    /// assert!(calls.get() <= 40, "{} calls", calls.get());
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn directions(mut self, k: usize, seed: u64) -> Result<Self> {
        self.directions = Some((at_least_one("directions", k)?, seed));
        Ok(self)
    }
    /// Names the parts of the parameter vector (they must tile it in order), so the report
    /// says `W` or `b` instead of an index. Overrides the objective's own
    /// [`param_groups`](Params::param_groups); most useful with
    /// [`check_fn`](GradCheck::check_fn) and [`check_vjp`](GradCheck::check_vjp), whose
    /// input is one flat vector.
    pub fn groups(mut self, groups: Vec<ParamGroup>) -> Self {
        self.groups = Some(groups);
        self
    }
    /// The seed of [`check_vjp`](GradCheck::check_vjp)'s random upstream gradient `dy`
    /// (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Threads for the numeric side of the `_parallel` checks (1 to 1024).
    pub fn threads(mut self, threads: usize) -> Result<Self> {
        self.threads = thread_count(threads)?;
        Ok(self)
    }
    /// Whether to look for kinks among the failing probes (default on). Off, every
    /// disagreement counts.
    pub fn detect_kinks(mut self, on: bool) -> Self {
        self.detect_kinks = on;
        self
    }

    /// Compares the analytic and numeric gradients of `model` on `batch`, on this thread.
    pub fn run<T: Scalar, D: Examples + ?Sized>(
        &self,
        model: &mut dyn Model<T, D>,
        batch: &Batch<'_, T, D>,
    ) -> Result<GradReport> {
        self.check(&mut OnBatch::new(model, batch))
    }

    /// [`run`](GradCheck::run) with the numeric side spread over
    /// [`threads`](GradCheck::threads), each thread working on its own clone of `model` (set
    /// to one thread of its own). The report is identical to `run`'s.
    pub fn run_parallel<T, D, M>(
        &self,
        model: &mut M,
        batch: &Batch<'_, T, D>,
    ) -> Result<GradReport>
    where
        T: Scalar,
        D: Examples + Sync + ?Sized,
        M: Model<T, D> + Clone + Send,
    {
        let plan = self.plan(&mut OnBatch::new(model, batch))?;
        let (numeric, evaluations) = self.numeric_parallel(&plan, || {
            let mut m = model.clone();
            if let Some(mut fast) = m.fast_path() {
                fast.open().set_threads(1)?;
            }
            Ok(Owned { model: m, batch })
        })?;
        self.finish(&mut OnBatch::new(model, batch), plan, numeric, evaluations)
    }

    /// Compares the analytic and numeric gradients of any objective, on this thread.
    pub fn check<T: Scalar>(&self, objective: &mut dyn Objective<T>) -> Result<GradReport> {
        let plan = self.plan(objective)?;
        let mut counted = Counted::new(objective);
        let numeric = self.numeric_serial(&mut counted, &plan, 0..plan.probes())?;
        let evaluations = counted.calls;
        self.finish(counted.inner, plan, numeric, evaluations)
    }

    /// [`check`](GradCheck::check) with the numeric side spread over
    /// [`threads`](GradCheck::threads), each on its own clone of `objective`.
    pub fn check_parallel<T: Scalar, O: Objective<T> + Clone + Send>(
        &self,
        objective: &mut O,
    ) -> Result<GradReport> {
        let plan = self.plan(objective)?;
        let (numeric, evaluations) = self.numeric_parallel(&plan, || {
            let mut o = objective.clone();
            if let Some(mut fast) = o.fast_path() {
                fast.open().set_threads(1)?;
            }
            Ok(o)
        })?;
        self.finish(objective, plan, numeric, evaluations)
    }

    /// Checks a function and its hand-written gradient at `x`: `f(x)` is the value,
    /// `grad(x, g)` writes `∇f(x)` into `g`. The report, step, differences, sampling, kink
    /// detection and verdict are [`run`](GradCheck::run)'s; name parts of `x` with
    /// [`groups`](GradCheck::groups).
    pub fn check_fn<T: Scalar>(
        &self,
        x: &[T],
        f: impl FnMut(&[T]) -> T,
        grad: impl FnMut(&[T], &mut [T]),
    ) -> Result<GradReport> {
        self.check(&mut FnObjective::new(x.to_vec(), f, grad))
    }

    /// [`check_fn`](GradCheck::check_fn) with the numeric side spread over
    /// [`threads`](GradCheck::threads), each with its own clone of the closures.
    pub fn check_fn_parallel<T, F, G>(&self, x: &[T], f: F, grad: G) -> Result<GradReport>
    where
        T: Scalar,
        F: FnMut(&[T]) -> T + Clone + Send,
        G: FnMut(&[T], &mut [T]) + Clone + Send,
    {
        self.check_parallel(&mut FnObjective::new(x.to_vec(), f, grad))
    }

    /// Checks the backward pass of a vector function: `f(x, y)` writes `y = f(x)`
    /// (`outputs` values) and `vjp(x, dy, dx)` writes `dx = J(x)ᵀ·dy`, the product of the
    /// upstream gradient with the Jacobian — what a layer's backward pass computes.
    ///
    /// The check draws a seeded random `dy` ([`seed`](GradCheck::seed)) and compares `dx`
    /// with the numeric gradient of the scalar `x ↦ dy·f(x)`, as CS231n's
    /// `eval_numerical_gradient_array` does. A layer with several inputs (`x`, `W`, `b`) is
    /// checked by concatenating them into one vector and naming the parts with
    /// [`groups`](GradCheck::groups): `f` and `vjp` then slice their inputs back out, and
    /// `vjp` writes `dx`, `dW` and `db` into the matching parts of its output.
    ///
    /// ```
    /// use downhill::gradcheck::GradCheck;
    /// use downhill::model::ParamGroup;
    ///
    /// // y = W·x + b for a 2 × 3 W, checked in every input at once: p = [x (3), W (6), b (2)].
    /// let p: Vec<f64> = (0..11).map(|i| (i as f64 * 0.7).cos()).collect();
    /// let forward = |p: &[f64], y: &mut [f64]| {
    ///     let (x, w, b) = (&p[..3], &p[3..9], &p[9..]);
    ///     for r in 0..2 {
    ///         y[r] = b[r] + (0..3).map(|c| w[r * 3 + c] * x[c]).sum::<f64>();
    ///     }
    /// };
    /// let backward = |p: &[f64], dy: &[f64], d: &mut [f64]| {
    ///     let (x, w) = (&p[..3], &p[3..9]);
    ///     let (dx, rest) = d.split_at_mut(3);
    ///     let (dw, db) = rest.split_at_mut(6);
    ///     for c in 0..3 {
    ///         dx[c] = (0..2).map(|r| w[r * 3 + c] * dy[r]).sum(); // Wᵀ·dy
    ///     }
    ///     for r in 0..2 {
    ///         for c in 0..3 {
    ///             dw[r * 3 + c] = dy[r] * x[c]; // dy·xᵀ
    ///         }
    ///         db[r] = dy[r];
    ///     }
    /// };
    /// let groups = vec![
    ///     ParamGroup::new("x", 0, vec![3]),
    ///     ParamGroup::new("W", 3, vec![2, 3]),
    ///     ParamGroup::new("b", 9, vec![2]),
    /// ];
    /// let report = GradCheck::new().groups(groups).check_vjp(&p, 2, forward, backward)?;
    /// assert!(report.passed(), "{report}");
    /// assert_eq!(report.groups[1].name, "W");
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn check_vjp<T: Scalar>(
        &self,
        x: &[T],
        outputs: usize,
        f: impl FnMut(&[T], &mut [T]),
        vjp: impl FnMut(&[T], &[T], &mut [T]),
    ) -> Result<GradReport> {
        let outputs = at_least_one("outputs", outputs)?;
        let mut rng = stream_rng(self.seed, 0x564a_5020);
        let dy: Vec<T> = (0..outputs)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                T::from_f64(z)
            })
            .collect();
        self.check(&mut VjpObjective {
            x: x.to_vec(),
            y: vec![T::zero(); outputs],
            dy,
            f,
            vjp,
        })
    }

    /// Everything the numeric side needs: the probes, `h`, the base point, the analytic
    /// gradient and what to judge the comparisons by.
    fn plan<T: Scalar>(&self, objective: &mut dyn Objective<T>) -> Result<Plan<T>> {
        let n = objective.params().len();
        let groups = match &self.groups {
            Some(g) => g.clone(),
            None => objective.param_groups(),
        };
        check_groups(&groups, n)?;
        let mut analytic = vec![T::zero(); n];
        let loss = objective.loss_and_grad(&mut analytic)?.to_f64_lossless();
        let f0 = match self.difference {
            Difference::Forward => Some(objective.loss()?),
            _ => None,
        };
        let eps = T::epsilon().to_f64_lossless();
        let h = self.h.unwrap_or_else(|| self.difference.default_h(eps));
        // A loss is known to a few ulps (≤ 2ε·|f| each); a difference of two, over a step
        // of h, carries about this much rounding noise.
        let noise = 8.0 * eps * loss.abs().max(1.0) / h;
        let tolerance = self
            .tolerance
            .unwrap_or(if eps < 1e-10 { 1e-4 } else { 1e-2 });
        let floor = self.floor.unwrap_or(noise / tolerance);
        let axes = match (self.directions, self.coordinates) {
            (Some((k, seed)), _) => Axes::Directions {
                seed,
                vectors: (0..k as u64).map(|d| unit_direction(n, seed, d)).collect(),
            },
            (None, Coordinates::All) => Axes::Coordinates((0..n).collect()),
            (None, Coordinates::Sample { n: want, seed }) => {
                Axes::Coordinates(sample_by_group(&groups, want, seed))
            }
        };
        Ok(Plan {
            groups,
            axes,
            base: objective.params().to_vec(),
            analytic,
            f0,
            judge: Judge {
                h,
                f0: loss,
                tolerance,
                floor,
                noise,
            },
        })
    }

    /// The numeric derivatives along probes `range` of the plan, on this thread.
    fn numeric_serial<T: Scalar>(
        &self,
        objective: &mut dyn Objective<T>,
        plan: &Plan<T>,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<T>> {
        let h = T::from_f64(plan.judge.h);
        let f0 = plan.f0.unwrap_or_else(T::zero);
        range
            .map(|p| derivative_along(objective, plan.axis(p), &plan.base, h, self.difference, f0))
            .collect()
    }

    /// The numeric side over [`threads`](GradCheck::threads) workers made by `worker`, each
    /// taking a contiguous run of the probes. Returns the derivatives in probe order and
    /// the loss evaluations the workers made.
    fn numeric_parallel<T: Scalar, O: Objective<T> + Send>(
        &self,
        plan: &Plan<T>,
        mut worker: impl FnMut() -> Result<O>,
    ) -> Result<(Vec<T>, usize)> {
        let probes = plan.probes();
        let chunk = probes.div_ceil(self.threads).max(1);
        let mut workers = Vec::new();
        for start in (0..probes).step_by(chunk) {
            workers.push((worker()?, start..(start + chunk).min(probes)));
        }
        let parts: Vec<Result<(Vec<T>, usize)>> = std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .into_iter()
                .map(|(mut o, range)| {
                    s.spawn(move || {
                        let mut counted = Counted::new(&mut o);
                        let values = self.numeric_serial(&mut counted, plan, range)?;
                        Ok((values, counted.calls))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::thread(
                            "a gradient-check worker panicked while evaluating the loss",
                        ))
                    })
                })
                .collect()
        });
        let mut numeric = Vec::with_capacity(probes);
        let mut evaluations = 0;
        for part in parts {
            let (values, calls) = part?;
            numeric.extend(values);
            evaluations += calls;
        }
        Ok((numeric, evaluations))
    }

    /// Compares, looks for kinks among the failures, and writes the report.
    fn finish<T: Scalar>(
        &self,
        objective: &mut dyn Objective<T>,
        plan: Plan<T>,
        numeric: Vec<T>,
        evaluations: usize,
    ) -> Result<GradReport> {
        let mut objective = Counted::new(objective);
        let judge = plan.judge;
        let mut coordinates = Vec::with_capacity(numeric.len());
        let mut group = 0;
        for (p, n) in numeric.iter().enumerate() {
            let (index, a) = match &plan.axes {
                Axes::Coordinates(indices) => {
                    let i = indices[p];
                    while !plan.groups[group].range().contains(&i) {
                        group += 1;
                    }
                    (i, plan.analytic[i].to_f64_lossless())
                }
                Axes::Directions { vectors, .. } => (p, dot(&vectors[p], &plan.analytic)),
            };
            let n = n.to_f64_lossless();
            coordinates.push(Coordinate {
                index,
                group,
                analytic: a,
                numeric: n,
                rel_error: relative_error(a, n, judge.floor),
            });
        }
        let mut is_kink = vec![false; coordinates.len()];
        if self.detect_kinks {
            for (p, (c, kink)) in coordinates.iter().zip(&mut is_kink).enumerate() {
                if c.rel_error > judge.tolerance {
                    let axis = plan.axis(p);
                    *kink = crossed_kink(
                        &mut objective,
                        axis,
                        &plan.base,
                        &judge,
                        c.analytic,
                        c.numeric,
                    )?;
                }
            }
        }
        let (probe, names) = match &plan.axes {
            Axes::Coordinates(_) => (
                Probe::Coordinates,
                plan.groups
                    .into_iter()
                    .map(|g| {
                        let len = g.len();
                        (g.name, len)
                    })
                    .collect(),
            ),
            Axes::Directions { vectors, seed } => (
                Probe::Directions {
                    count: vectors.len(),
                    seed: *seed,
                },
                vec![("all parameters".to_string(), plan.base.len())],
            ),
        };
        Ok(GradReport::new(
            plan.base.len(),
            probe,
            // The analytic gradient's call, and forward differences' loss at w.
            evaluations + objective.calls + 1 + usize::from(plan.f0.is_some()),
            coordinates,
            names,
            &is_kink,
            judge.tolerance,
            judge.h,
            judge.f0,
        ))
    }
}

/// The probes of a check.
enum Axes<T> {
    Coordinates(Vec<usize>),
    Directions { seed: u64, vectors: Vec<Vec<T>> },
}

/// What [`GradCheck::plan`] works out before the numeric side runs.
struct Plan<T> {
    groups: Vec<ParamGroup>,
    axes: Axes<T>,
    base: Vec<T>,
    analytic: Vec<T>,
    /// The loss at `base`, when forward differences need it.
    f0: Option<T>,
    judge: Judge,
}

impl<T: Scalar> Plan<T> {
    fn probes(&self) -> usize {
        match &self.axes {
            Axes::Coordinates(i) => i.len(),
            Axes::Directions { vectors, .. } => vectors.len(),
        }
    }
    fn axis(&self, p: usize) -> Axis<'_, T> {
        match &self.axes {
            Axes::Coordinates(i) => Axis::Coordinate(i[p]),
            Axes::Directions { vectors, .. } => Axis::Direction(&vectors[p]),
        }
    }
}

/// `Σ a_j·b_j` in `f64`.
fn dot<T: Scalar>(a: &[T], b: &[T]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| a.to_f64_lossless() * b.to_f64_lossless())
        .sum()
}

/// Direction `d` of seed `seed`: a standard normal vector scaled to unit length (uniform on
/// the sphere).
fn unit_direction<T: Scalar>(n: usize, seed: u64, d: u64) -> Vec<T> {
    let mut rng = stream_rng(seed, d);
    let z: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let norm = z
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    z.iter().map(|v| T::from_f64(v / norm)).collect()
}

/// `want` indices drawn without replacement, shared equally between the groups: small
/// groups are checked whole and hand their unused share on to the larger ones. Sorted.
fn sample_by_group(groups: &[ParamGroup], want: usize, seed: u64) -> Vec<usize> {
    let mut rng = seeded(seed);
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

/// An objective that counts its loss evaluations.
struct Counted<'a, T> {
    inner: &'a mut dyn Objective<T>,
    calls: usize,
}

impl<'a, T> Counted<'a, T> {
    fn new(inner: &'a mut dyn Objective<T>) -> Self {
        Counted { inner, calls: 0 }
    }
}

impl<T: Scalar> Params<T> for Counted<'_, T> {
    crate::forward_params!(T, inner);
}

impl<T: Scalar> Objective<T> for Counted<'_, T> {
    fn loss(&mut self) -> Result<T> {
        self.calls += 1;
        self.inner.loss()
    }
    fn loss_and_grad(&mut self, grad: &mut [T]) -> Result<T> {
        self.inner.loss_and_grad(grad)
    }
}

/// A model that a worker thread owns, bound to the shared batch.
struct Owned<'b, 'c, M, T, D: ?Sized> {
    model: M,
    batch: &'c Batch<'b, T, D>,
}

impl<T: Scalar, D: Examples + ?Sized, M: Model<T, D>> Params<T> for Owned<'_, '_, M, T, D> {
    crate::forward_params!(T, model);
}

impl<T: Scalar, D: Examples + ?Sized, M: Model<T, D>> Objective<T> for Owned<'_, '_, M, T, D> {
    fn loss(&mut self) -> Result<T> {
        self.model.loss(self.batch)
    }
    fn loss_and_grad(&mut self, grad: &mut [T]) -> Result<T> {
        self.model.loss_and_grad(self.batch, grad)
    }
}

/// `x ↦ dy·f(x)`, whose gradient is `J(x)ᵀ·dy`: a backward pass as an objective.
struct VjpObjective<T, F, V> {
    x: Vec<T>,
    y: Vec<T>,
    dy: Vec<T>,
    f: F,
    vjp: V,
}

impl<T: Scalar, F, V> Params<T> for VjpObjective<T, F, V> {
    crate::forward_params!(T, x);
}

impl<T, F, V> Objective<T> for VjpObjective<T, F, V>
where
    T: Scalar,
    F: FnMut(&[T], &mut [T]),
    V: FnMut(&[T], &[T], &mut [T]),
{
    fn loss(&mut self) -> Result<T> {
        (self.f)(&self.x, &mut self.y);
        Ok(T::from_f64(dot(&self.dy, &self.y)))
    }
    fn loss_and_grad(&mut self, grad: &mut [T]) -> Result<T> {
        (self.vjp)(&self.x, &self.dy, grad);
        self.loss()
    }
}
