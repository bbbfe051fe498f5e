//! Beyond the lecture, valleys, saddles and local minima: why plain gradient descent
//! struggles, on three functions small enough to draw.
//!
//! **The valley** `f(x, y) = ½(x² + κ·y²)` with condition number κ = 50: across the valley
//! the slope is 50 times steeper than along it. The learning rate has to be small enough for
//! the steep direction (below 2/κ), so gradient descent bounces from wall to wall and crawls
//! along the floor. Momentum and Nesterov average the bounces out and add up the steady
//! pull; Adam gives each coordinate its own step size.
//!
//! **The saddle** `f(x, y) = x² − y²`, made a loss over 256 "examples"
//! `fᵢ = x² − y² + aᵢ·x + bᵢ·y` whose shifts `(aᵢ, bᵢ)` cancel over the whole set. Full-batch
//! gradient descent started on the ridge `y = 0` slides into the saddle point and stays there:
//! the gradient has no `y` component, ever. The saddle point is an unstable rest: started
//! `1e-8` off the ridge, gradient descent's `|y|` grows by `1 + 2·lr` a step and it escapes.
//! SGD's minibatch gradients are noisy, the noise pushes it off the ridge, and the slope
//! takes it from there.
//!
//! **The local minimum**: the tilted double well `f(x) = (x² − 1)² + t·x` (tilt t = 0.3) has a
//! global minimum near `x = −1.04` and a shallower local one near `x = 0.96`, with a barrier
//! between them. From 100 seeded starts in the wrong basin (`x₀` uniform in `[0.5, 1.5]`):
//! gradient descent stops at the local minimum every time; momentum, started high enough up
//! the wall, rolls over the barrier; SGD's noise sometimes kicks it over (with the defaults:
//! 0, 9 and 38 of the 100, and Adam at its learning rate 0.1 none). The well's noise
//! model is the saddle's: a loss over examples `fᵢ = f + aᵢ·x` whose tilts `aᵢ ~ N(0, σ²)`
//! come in `±` pairs, so the full batch sees `f` exactly and a minibatch of `B` sees `f`
//! plus a random tilt of spread about `σ/√B` in its gradient. A run counts as reaching the
//! global minimum when it ends in its basin (left of the barrier, where gradient descent
//! would take it on to the global minimum).
//!
//! **The step size, answered**: in the same valley, from the same start, L-BFGS (which learns
//! the curvature, the Taylor expansion's second-order term, from its gradients) reaches
//! `f ≤ tol` in 8 iterations; gradient descent with a backtracking line search picks its own
//! step and converges from any first step between 1e-3 and 1e3, where a fixed step above
//! 2/κ = 0.04 diverges. And on Rosenbrock's banana from `(−1.2, 1)`, L-BFGS reaches
//! `f ≤ 1e-10`; the example prints its iterations and evaluations.
//!
//! The valley is a plain [`Objective`] (a function of its two parameters, no data); the
//! saddle and the well are [`Model`]s over their own examples, [`Shifts`]. The paths are
//! drawn by the library's own optimizers and update rules, one [`Optimizer::step`] at a
//! time.
//!
//! ```text
//! cargo run --release --example landscape -- --plot docs/figures
//! cargo run --release --example landscape -- --help
//! ```
//! prints the steps each method needs to reach `f ≤ tol` in the valley and to escape the
//! saddle (`f ≤ −1`), and the fraction of starts each method takes out of the well's local
//! minimum; `--plot DIR` writes `landscape.svg`.

mod common;

use common::plot::{self, Legend, Panel};
use common::prelude::*;
use common::values;
use downhill::data::{Examples, Minibatches};
use downhill::model::{FnObjective, Params};
use downhill::optim::{Lbfgs, LineSearch, UpdateRule};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// Gradient descent, momentum, Nesterov and Adam in a valley; GD and SGD at a saddle; GD,
/// SGD, momentum and Adam in a double well's local minimum.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    /// The valley's condition number κ (at least 1)
    #[arg(long, default_value_t = 50.0, value_parser = at_least_one)]
    kappa: f64,
    /// Gradient descent's learning rate in the valley
    #[arg(long, default_value_t = 0.035)]
    lr: f64,
    /// Momentum's and Nesterov's learning rate in the valley
    #[arg(long, default_value_t = 0.025)]
    momentum_lr: f64,
    /// Momentum's and Nesterov's coefficient μ
    #[arg(long, default_value_t = 0.8)]
    mu: f64,
    /// Adam's learning rate in the valley
    #[arg(long, default_value_t = 0.5)]
    adam_lr: f64,
    /// The valley's goal: f ≤ tol
    #[arg(long, default_value_t = 1e-6, value_parser = values::positive)]
    tol: f64,
    /// Most steps each method may take
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// GD's and SGD's learning rate at the saddle
    #[arg(long, default_value_t = 0.05)]
    saddle_lr: f64,
    /// Scale of the saddle's example shifts (0: every example is the pure saddle)
    #[arg(long, default_value_t = 1.0, value_parser = values::non_negative)]
    noise: f64,
    /// SGD's minibatch size at the saddle
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// How far off the ridge the nudged gradient descent starts at the saddle
    #[arg(long, default_value_t = 1e-8, value_parser = values::positive)]
    nudge: f64,
    /// The double well's tilt t in (0, 1.5): f(x) = (x² − 1)² + t·x
    #[arg(long, default_value_t = 0.3, value_parser = tilt)]
    tilt: f64,
    /// Seeded starts in the well's wrong basin, per method
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    starts: u32,
    /// Steps each method takes from each start in the well
    #[arg(long, default_value_t = 500)]
    well_steps: usize,
    /// GD's, SGD's and momentum's learning rate in the well
    #[arg(long, default_value_t = 0.05)]
    well_lr: f64,
    /// Momentum's coefficient μ in the well
    #[arg(long, default_value_t = 0.9)]
    well_mu: f64,
    /// Adam's learning rate in the well
    #[arg(long, default_value_t = 0.1)]
    well_adam_lr: f64,
    /// Spread σ of the well's example tilts (0: every example is the pure well)
    #[arg(long, default_value_t = 7.0, value_parser = values::non_negative)]
    well_noise: f64,
    /// SGD's minibatch size in the well
    #[arg(long, default_value_t = 4)]
    well_batch: usize,
    /// L-BFGS's history size (pairs kept)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    history: u32,
    /// A fixed step above 2/κ, shown diverging in the valley
    #[arg(long, default_value_t = 0.045, value_parser = values::positive)]
    diverging_lr: f64,
    /// Write landscape.svg into this directory
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// A finite number ≥ 1.
fn at_least_one(s: &str) -> Result<f64, String> {
    values::number(s, |v| v >= 1.0, "a finite number ≥ 1")
}
/// A tilt that leaves the well two minima: 0 < t < 1.5 (at t = 8/√27 ≈ 1.54 the local
/// minimum and the barrier merge).
fn tilt(s: &str) -> Result<f64, String> {
    values::number(s, |v| v > 0.0 && v < 1.5, "a number in (0, 1.5)")
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    kappa: f64,
    tol: f64,
    max_steps: usize,
    gd_steps: Option<usize>,
    momentum_steps: Option<usize>,
    nesterov_steps: Option<usize>,
    adam_steps: Option<usize>,
    saddle_lr: f64,
    /// GD from on the ridge: steps to escape (null: it never did).
    saddle_gd_steps: Option<usize>,
    saddle_sgd_steps: Option<usize>,
    saddle_gd_final_x: f64,
    saddle_gd_final_y: f64,
    /// The full loss where GD from on the ridge ended (0 at the saddle point).
    saddle_gd_final_loss: f64,
    /// How far off the ridge the nudged GD started.
    saddle_nudge: f64,
    /// GD from `nudge` off the ridge: steps to escape.
    saddle_nudged_gd_steps: Option<usize>,
    /// The nudged GD's `|y|` growth per step over its first steps (1 + 2·lr in theory).
    saddle_nudged_gd_growth_per_step: f64,
    well_tilt: f64,
    well_global_min: f64,
    well_barrier: f64,
    well_local_min: f64,
    well_starts: u32,
    well_steps: usize,
    /// The fraction of starts in the wrong basin that each method takes to the global
    /// minimum's basin.
    well_gd_global_fraction: f64,
    well_sgd_global_fraction: f64,
    well_momentum_global_fraction: f64,
    well_adam_global_fraction: f64,
    /// The farthest GD ended from the local minimum, over all starts.
    well_gd_max_distance_to_local_min: f64,
    grad_check_max_rel_error: f64,
    /// L-BFGS and line searches in the valley, L-BFGS on Rosenbrock.
    #[serde(flatten)]
    answered: Answered,
}

/// The valley `f(x, y) = ½(x² + κ·y²)` from `start`: a function of its two parameters, and
/// nothing else.
fn valley(kappa: f64, start: [f64; 2]) -> impl Objective<f64> + Clone {
    FnObjective::new(
        start.to_vec(),
        move |p: &[f64]| 0.5 * (p[0] * p[0] + kappa * p[1] * p[1]),
        move |p: &[f64], g: &mut [f64]| {
            g[0] = p[0];
            g[1] = kappa * p[1];
        },
    )
}

/// The examples of the saddle and the well: example `i` shifts the loss by a linear term,
/// `aᵢ·x + bᵢ·y` (the saddle, `N = 2`) or `aᵢ·x` (the well, `N = 1`).
struct Shifts<const N: usize>(Vec<[f64; N]>);

impl<const N: usize> Examples for Shifts<N> {
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl<const N: usize> Shifts<N> {
    /// `pairs` seeded draws `σ·z`, `z ~ N(0, 1)` per coordinate, each followed by its
    /// negative: over the whole set the shifts cancel exactly (the running sum returns to 0
    /// after every pair), so the full batch sees the unshifted function.
    fn cancelling(pairs: usize, sigma: f64, seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut shifts = Vec::with_capacity(2 * pairs);
        for _ in 0..pairs {
            let mut s = [0.0; N];
            for v in &mut s {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v = sigma * z;
            }
            shifts.extend([s, s.map(|v| -v)]);
        }
        Shifts(shifts)
    }

    /// The batch's mean shift (zero for an empty batch).
    fn mean(batch: &Batch<'_, f64, Self>) -> [f64; N] {
        let shifts = &batch.data().0;
        let mut sum = [0.0; N];
        for i in batch.rows() {
            for (s, v) in sum.iter_mut().zip(shifts[i]) {
                *s += v;
            }
        }
        let n = batch.len().max(1) as f64;
        sum.map(|s| s / n)
    }
}

/// A gradient buffer of the wrong length, as the library reports one.
fn wrong_length(context: &'static str, expected: usize, found: usize) -> downhill::Error {
    downhill::error::ErrorKind::Shape {
        context,
        what: "gradient length",
        expected,
        found,
    }
    .into()
}

/// The saddle `x² − y²`, shifted by each example: a model whose parameters are the point.
#[derive(Clone)]
struct Saddle {
    xy: [f64; 2],
}

impl Params<f64> for Saddle {
    fn params(&self) -> &[f64] {
        &self.xy
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.xy
    }
}

impl Model<f64, Shifts<2>> for Saddle {
    fn loss(&mut self, batch: &Batch<'_, f64, Shifts<2>>) -> downhill::Result<f64> {
        let [a, b] = Shifts::mean(batch);
        let [x, y] = self.xy;
        Ok(x * x - y * y + a * x + b * y)
    }
    fn loss_and_grad(
        &mut self,
        batch: &Batch<'_, f64, Shifts<2>>,
        grad: &mut [f64],
    ) -> downhill::Result<f64> {
        let [gx, gy] = grad else {
            return Err(wrong_length("Saddle::loss_and_grad", 2, grad.len()));
        };
        let [a, b] = Shifts::mean(batch);
        let [x, y] = self.xy;
        (*gx, *gy) = (2.0 * x + a, -2.0 * y + b);
        Ok(x * x - y * y + a * x + b * y)
    }
}

/// The tilted double well `(x² − 1)² + t·x`.
fn well(tilt: f64, x: f64) -> f64 {
    (x * x - 1.0).powi(2) + tilt * x
}

/// Its slope, `4x·(x² − 1) + t`.
fn well_slope(tilt: f64, x: f64) -> f64 {
    4.0 * x * (x * x - 1.0) + tilt
}

/// The well's critical points for 0 < t < 8/√27: the global minimum, the barrier and the
/// local minimum, in that order. The slope rises on `x < −1/√3` and `x > 1/√3` and falls
/// between, and changes sign once on each stretch; bisection finds each root to rounding.
fn well_critical_points(tilt: f64) -> [f64; 3] {
    let knee = 1.0 / 3f64.sqrt();
    let root = |mut lo: f64, mut hi: f64| {
        let rising = well_slope(tilt, lo) < 0.0;
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if (well_slope(tilt, mid) < 0.0) == rising {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    [root(-2.0, -knee), root(-knee, knee), root(knee, 2.0)]
}

/// The double well, tilted further by each example: a model whose parameter is `x`.
#[derive(Clone)]
struct Well {
    x: [f64; 1],
    tilt: f64,
}

impl Params<f64> for Well {
    fn params(&self) -> &[f64] {
        &self.x
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.x
    }
}

impl Model<f64, Shifts<1>> for Well {
    fn loss(&mut self, batch: &Batch<'_, f64, Shifts<1>>) -> downhill::Result<f64> {
        let [a] = Shifts::mean(batch);
        let [x] = self.x;
        Ok(well(self.tilt, x) + a * x)
    }
    fn loss_and_grad(
        &mut self,
        batch: &Batch<'_, f64, Shifts<1>>,
        grad: &mut [f64],
    ) -> downhill::Result<f64> {
        let [g] = grad else {
            return Err(wrong_length("Well::loss_and_grad", 1, grad.len()));
        };
        let [a] = Shifts::mean(batch);
        let [x] = self.x;
        *g = well_slope(self.tilt, x) + a;
        Ok(well(self.tilt, x) + a * x)
    }
}

/// Where an optimizer went: the points it visited (start included), the full objective at
/// each, and the step at which it first met the goal.
struct Walk {
    path: Vec<(f64, f64)>,
    values: Vec<f64>,
    reached: Option<usize>,
}

/// Steps from `at` until `goal(f)` holds or `max_steps` have been taken: `step` moves the
/// point (one optimizer step), `value` is the full objective there.
fn walk<P: Params<f64>>(
    at: &mut P,
    max_steps: usize,
    goal: impl Fn(f64) -> bool,
    mut value: impl FnMut(&mut P) -> downhill::Result<f64>,
    mut step: impl FnMut(&mut P) -> downhill::Result<f64>,
) -> downhill::Result<Walk> {
    let point = |p: &P| (p.params()[0], p.params()[1]);
    let mut w = Walk {
        path: vec![point(at)],
        values: vec![value(at)?],
        reached: None,
    };
    for n in 1..=max_steps {
        step(at)?;
        let f = value(at)?;
        w.path.push(point(at));
        w.values.push(f);
        if goal(f) {
            w.reached = Some(n);
            break;
        }
    }
    Ok(w)
}

/// SGD's minibatches of the saddle's examples: shuffled, walked through, reshuffled.
struct Minibatch {
    sampler: Minibatches,
    rng: Xoshiro256PlusPlus,
    /// This pass's batches still to come, the next one last.
    ahead: Vec<Vec<usize>>,
}

impl Minibatch {
    fn new(examples: usize, size: usize, seed: u64) -> downhill::Result<Self> {
        Ok(Minibatch {
            sampler: Minibatches::new(examples, size)?,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            ahead: Vec::new(),
        })
    }
    /// The next minibatch's example indices.
    fn next(&mut self) -> Vec<usize> {
        if self.ahead.is_empty() {
            self.sampler.shuffle(&mut self.rng);
            self.ahead = self.sampler.iter().map(<[usize]>::to_vec).collect();
            self.ahead.reverse();
        }
        self.ahead.pop().unwrap_or_default()
    }
}

/// Points on the level set `½(x² + κ·y²) = c`.
fn ellipse(c: f64, kappa: f64) -> Vec<(f64, f64)> {
    (0..=200)
        .map(|i| {
            let t = i as f64 / 200.0 * std::f64::consts::TAU;
            (
                (2.0 * c).sqrt() * t.cos(),
                (2.0 * c / kappa).sqrt() * t.sin(),
            )
        })
        .collect()
}

/// The level set `x² − y² = c` (both branches; `c = 0` gives the two diagonals), out to
/// `|x|, |y| ≤ r`.
fn hyperbola(c: f64, r: f64) -> Vec<Vec<(f64, f64)>> {
    if c == 0.0 {
        return vec![vec![(-r, -r), (r, r)], vec![(-r, r), (r, -r)]];
    }
    let s = c.abs().sqrt();
    let t_max = (r / s).acosh().max(0.0);
    let branch = |sign: f64| -> Vec<(f64, f64)> {
        (0..=100)
            .map(|i| {
                let t = -t_max + 2.0 * t_max * i as f64 / 100.0;
                let (u, v) = (sign * s * t.cosh(), s * t.sinh());
                if c > 0.0 {
                    (u, v)
                } else {
                    (v, u)
                }
            })
            .collect()
    };
    vec![branch(1.0), branch(-1.0)]
}

fn run(cli: Cli) -> Result<(), Failure> {
    let (kappa, tol, max_steps, seed) = (cli.kappa, cli.tol, cli.steps, cli.run.seed);
    // The well's flags are refused before anything is printed, as the others are.
    for m in 0..4 {
        well_optimizer(&cli, m)?;
    }

    // The valley: every method from the same start, on the whole function (there is no data).
    let start = [-10.0, 1.5];
    let lr = cli.momentum_lr;
    // Momentum takes bigger effective steps (lr/(1 − μ) along the floor), so it needs a
    // smaller lr to stay stable across the valley; Nesterov's look-ahead most of all.
    let methods: Vec<(&str, Box<dyn Optimizer<f64>>)> = vec![
        ("gradient descent", Box::new(GradientDescent::new(cli.lr)?)),
        (
            "momentum",
            Box::new(GradientDescent::new(lr)?.rule(UpdateRule::momentum(cli.mu)?)),
        ),
        (
            "Nesterov",
            Box::new(GradientDescent::new(lr)?.rule(UpdateRule::nesterov(cli.mu)?)),
        ),
        (
            "Adam",
            Box::new(GradientDescent::new(cli.adam_lr)?.rule(UpdateRule::adam())),
        ),
    ];
    println!(
        "valley f = ½(x² + {kappa}·y²) from ({}, {}): steps to f ≤ {tol:e} (at most {max_steps})",
        start[0], start[1]
    );
    let mut valley_walks = Vec::new();
    for (name, mut opt) in methods {
        let mut v = valley(kappa, start);
        let w = walk(
            &mut v,
            max_steps,
            |f| f <= tol,
            |v| v.loss(),
            |v| opt.step(v),
        )?;
        match w.reached {
            Some(n) => println!("  {name:<17} {n:>5} steps"),
            None => println!(
                "  {name:<17} not within {max_steps} steps (f = {:.3e})",
                v.loss()?
            ),
        }
        valley_walks.push((name, w));
    }

    let answered = the_step_size_answered(&cli, start)?;

    // The saddle: shifts (a, b) in ± pairs, so that over the whole set they cancel exactly
    // and full-batch gradient descent sees the pure saddle.
    let examples = Shifts::<2>::cancelling(128, cli.noise, seed);
    let all = Batch::all(&examples);
    let on_ridge = Saddle { xy: [1.5, 0.0] };
    let tilts = Shifts::<1>::cancelling(128, cli.well_noise, seed.wrapping_add(1));

    // The hand-written gradients, checked against numeric ones: off the ridge, the valley
    // floor and the well's critical points, and on 5 examples (an odd count, so the ± pairs
    // do not cancel), so that every term counts.
    let check = GradCheck::new();
    let grad_error = [
        check.check(&mut valley(kappa, [-3.0, 0.7]))?.max_rel_error,
        check
            .run(
                &mut Saddle { xy: [0.8, -0.6] },
                &Batch::range(&examples, 0..5)?,
            )?
            .max_rel_error,
        check
            .run(
                &mut Well {
                    x: [0.7],
                    tilt: cli.tilt,
                },
                &Batch::range(&tilts, 0..5)?,
            )?
            .max_rel_error,
    ]
    .into_iter()
    .fold(0.0f64, f64::max);
    println!("gradient check of all three functions: max relative error {grad_error:.1e}");
    let escaped = |f: f64| f <= -1.0;
    let full = |s: &mut Saddle| s.loss(&all);
    let mut gd = GradientDescent::new(cli.saddle_lr)?;
    let mut gd_at = on_ridge.clone();
    let gd_walk = walk(&mut gd_at, max_steps, escaped, full, |s| {
        gd.step(&mut s.on(&all))
    })?;
    // The same descent from a hair off the ridge: the saddle point is a rest, not a trap.
    let mut nudged_gd = GradientDescent::new(cli.saddle_lr)?;
    let mut nudged_at = Saddle {
        xy: [on_ridge.xy[0], cli.nudge],
    };
    let nudged_walk = walk(&mut nudged_at, max_steps, escaped, full, |s| {
        nudged_gd.step(&mut s.on(&all))
    })?;
    // |y| per step over the first steps, before the escape bends the path (NaN, printed as
    // null, if there were no steps).
    let growth_steps = 50.min(nudged_walk.path.len().saturating_sub(1));
    let growth = match nudged_walk.path.get(growth_steps) {
        Some(&(_, y)) if growth_steps > 0 => (y.abs() / cli.nudge).powf(1.0 / growth_steps as f64),
        _ => f64::NAN,
    };
    let batch = cli.batch;
    let mut sgd = Sgd::new(cli.saddle_lr)?.batch_size(batch)?;
    let mut minibatches = Minibatch::new(examples.len(), batch, seed)?;
    let mut sgd_at = on_ridge.clone();
    let sgd_walk = walk(&mut sgd_at, max_steps, escaped, full, |s| {
        let idx = minibatches.next();
        sgd.step(&mut s.on(&Batch::indices(&examples, &idx)?))
    })?;
    println!(
        "saddle f = x² − y² from ({}, {}) on the ridge: steps to escape (f ≤ −1)",
        on_ridge.xy[0], on_ridge.xy[1]
    );
    let [gx, gy] = gd_at.xy;
    match gd_walk.reached {
        Some(n) => println!("  gradient descent  {n:>5} steps"),
        None => println!(
            "  gradient descent  stalled: after {max_steps} steps at ({gx:.2e}, {gy:.2e}), f = {:.2e}",
            gd_walk.values.last().copied().unwrap_or(f64::NAN)
        ),
    }
    match nudged_walk.reached {
        Some(n) => println!(
            "  gradient descent  {n:>5} steps from y = {:e}: |y| grew {growth:.6}× a step \
             (1 + 2·lr = {})",
            cli.nudge,
            1.0 + 2.0 * cli.saddle_lr
        ),
        None => println!(
            "  gradient descent  not within {max_steps} steps from y = {:e}",
            cli.nudge
        ),
    }
    match sgd_walk.reached {
        Some(n) => println!("  SGD (batch {batch:>3})   {n:>5} steps"),
        None => println!("  SGD (batch {batch:>3})   not within {max_steps} steps"),
    }

    let wells = well_runs(&cli, &tilts)?;

    if let Some(dir) = &cli.plot {
        let saddle = SaddleWalks {
            gd: &gd_walk,
            nudged: &nudged_walk,
            nudge: cli.nudge,
            sgd: &sgd_walk,
            batch,
        };
        write_figure(dir, kappa, tol, &valley_walks, &saddle, &wells, &answered)?;
    }
    if cli.run.json {
        let steps = |i: usize| valley_walks[i].1.reached;
        // No data directory: both functions are made up here ("data": null).
        let json = Report {
            kappa,
            tol,
            max_steps,
            gd_steps: steps(0),
            momentum_steps: steps(1),
            nesterov_steps: steps(2),
            adam_steps: steps(3),
            saddle_lr: cli.saddle_lr,
            saddle_gd_steps: gd_walk.reached,
            saddle_sgd_steps: sgd_walk.reached,
            saddle_gd_final_x: gx,
            saddle_gd_final_y: gy,
            saddle_gd_final_loss: gd_walk.values.last().copied().unwrap_or(f64::NAN),
            saddle_nudge: cli.nudge,
            saddle_nudged_gd_steps: nudged_walk.reached,
            saddle_nudged_gd_growth_per_step: growth,
            well_tilt: cli.tilt,
            well_global_min: wells.critical[0],
            well_barrier: wells.critical[1],
            well_local_min: wells.critical[2],
            well_starts: cli.starts,
            well_steps: cli.well_steps,
            well_gd_global_fraction: wells.methods[0].fraction(),
            well_sgd_global_fraction: wells.methods[1].fraction(),
            well_momentum_global_fraction: wells.methods[2].fraction(),
            well_adam_global_fraction: wells.methods[3].fraction(),
            well_gd_max_distance_to_local_min: wells.methods[0]
                .finals
                .iter()
                .map(|x| (x - wells.critical[2]).abs())
                .fold(0.0, f64::max),
            grad_check_max_rel_error: grad_error,
            answered,
        };
        cli::print_json(None, &json)?;
    }
    Ok(())
}

/// The saddle's three runs, for the figure.
struct SaddleWalks<'a> {
    gd: &'a Walk,
    nudged: &'a Walk,
    nudge: f64,
    sgd: &'a Walk,
    batch: usize,
}

/// One method's runs in the well, from every start.
struct MethodRuns {
    name: String,
    /// Where each run ended.
    finals: Vec<f64>,
    /// Per step (0 = the starts), how many runs were in the global minimum's basin.
    in_global: Vec<usize>,
    /// The first steps from the demonstration start, as `(x, f(x))`.
    demo: Vec<(f64, f64)>,
}

impl MethodRuns {
    /// The fraction of runs that ended in the global minimum's basin.
    fn fraction(&self) -> f64 {
        let n = self.finals.len().max(1) as f64;
        self.in_global.last().copied().unwrap_or(0) as f64 / n
    }
}

/// Every method's runs in the well.
struct WellRuns {
    tilt: f64,
    /// The global minimum, the barrier and the local minimum.
    critical: [f64; 3],
    /// The starts' range.
    range: (f64, f64),
    /// The demonstration start (the highest up the wall).
    demo_start: f64,
    /// Gradient descent, SGD, momentum, Adam.
    methods: Vec<MethodRuns>,
}

/// Steps of the demonstration run the figure shows.
const DEMO_STEPS: usize = 100;

/// The well's method `m`, fresh: gradient descent, SGD, momentum or Adam.
fn well_optimizer(cli: &Cli, m: usize) -> downhill::Result<Box<dyn Optimizer<f64>>> {
    Ok(match m {
        0 => Box::new(GradientDescent::new(cli.well_lr)?),
        1 => Box::new(Sgd::new(cli.well_lr)?.batch_size(cli.well_batch)?),
        2 => Box::new(GradientDescent::new(cli.well_lr)?.rule(UpdateRule::momentum(cli.well_mu)?)),
        _ => Box::new(GradientDescent::new(cli.well_adam_lr)?.rule(UpdateRule::adam())),
    })
}

/// Runs gradient descent, SGD, momentum and Adam from `--starts` seeded starts in the well's
/// wrong basin, and prints the share each took to the global minimum's basin.
fn well_runs(cli: &Cli, tilts: &Shifts<1>) -> Result<WellRuns, Failure> {
    let (tilt, steps) = (cli.tilt, cli.well_steps);
    let critical = well_critical_points(tilt);
    let [global, barrier, local] = critical;
    let range = (0.5, 1.5);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cli.run.seed.wrapping_add(2));
    let starts: Vec<f64> = (0..cli.starts)
        .map(|_| rng.random_range(range.0..range.1))
        .collect();
    let demo = (0..starts.len())
        .max_by(|&a, &b| starts[a].total_cmp(&starts[b]))
        .unwrap_or(0);
    let all = Batch::all(tilts);
    let batch = cli.well_batch;
    println!(
        "double well f = (x² − 1)² + {tilt}·x: global minimum x = {global:.3} (f = {:.3}), \
         barrier x = {barrier:.3} (f = {:.3}), local minimum x = {local:.3} (f = {:.3})",
        well(tilt, global),
        well(tilt, barrier),
        well(tilt, local)
    );
    println!(
        "from {} starts x₀ ~ U({}, {}) in the local minimum's basin, {steps} steps each: runs \
         that end in the global minimum's basin (x < {barrier:.3})",
        starts.len(),
        range.0,
        range.1
    );
    let names = [
        "gradient descent".to_string(),
        format!("SGD (batch {batch})"),
        format!("momentum (μ = {})", cli.well_mu),
        "Adam".to_string(),
    ];
    let mut methods = Vec::new();
    for (m, name) in names.into_iter().enumerate() {
        let mut runs = MethodRuns {
            name,
            finals: Vec::with_capacity(starts.len()),
            in_global: vec![0; steps + 1],
            demo: Vec::new(),
        };
        for (s, &x0) in starts.iter().enumerate() {
            let mut opt = well_optimizer(cli, m)?;
            let mut minibatches =
                Minibatch::new(tilts.len(), batch, cli.run.seed.wrapping_add(3 + s as u64))?;
            let mut at = Well { x: [x0], tilt };
            for step in 0..=steps {
                let [x] = at.x;
                if x < barrier {
                    runs.in_global[step] += 1;
                }
                if s == demo && step <= DEMO_STEPS {
                    runs.demo.push((x, well(tilt, x)));
                }
                if step == steps {
                    break;
                }
                if m == 1 {
                    let idx = minibatches.next();
                    opt.step(&mut at.on(&Batch::indices(tilts, &idx)?))?;
                } else {
                    opt.step(&mut at.on(&all))?;
                }
            }
            runs.finals.push(at.x[0]);
        }
        let out = runs.in_global[steps];
        match m {
            0 => println!(
                "  {:<20} {out:>5}/{}  (every run within {:.1e} of the local minimum)",
                runs.name,
                starts.len(),
                runs.finals
                    .iter()
                    .map(|x| (x - local).abs())
                    .fold(0.0, f64::max)
            ),
            _ => println!("  {:<20} {out:>5}/{}", runs.name, starts.len()),
        }
        methods.push(runs);
    }
    Ok(WellRuns {
        tilt,
        critical,
        range,
        demo_start: starts.get(demo).copied().unwrap_or(range.1),
        methods,
    })
}

fn write_figure(
    dir: &Path,
    kappa: f64,
    tol: f64,
    valley: &[(&str, Walk)],
    saddle_walks: &SaddleWalks<'_>,
    wells: &WellRuns,
    answered: &Answered,
) -> Result<(), Failure> {
    // Paths: the first 60 steps, where the methods differ most; values: the whole run.
    const SHOWN: usize = 60;
    let mut paths = Panel::new(
        &format!("Valley ½(x² + {kappa}·y²): first {SHOWN} steps"),
        "x",
        "y",
    )
    .legend(Legend::LowerRight);
    for c in [0.1, 0.5, 2.0, 8.0, 20.0, 50.0, 110.0] {
        paths = paths.contour(ellipse(c, kappa));
    }
    let mut values = Panel::new(
        "Valley: f per step",
        "step",
        &format!("f(x, y) (log; goal ≤ {tol:e})"),
    )
    .log_y();
    for (name, w) in valley.iter().map(|(n, w)| (*n, w)).chain(answered.walks()) {
        paths = paths.path(name, w.path.iter().take(SHOWN + 1).copied().collect());
        values = values.line(name, steps_and(&w.values));
    }
    let r = 2.0;
    let mut saddle = Panel::new("Saddle x² − y², started on the ridge y = 0", "x", "y")
        .x_range(-r, r)
        .y_range(-r, r)
        .legend(Legend::UpperLeft);
    for c in [-2.0, -1.0, -0.25, 0.0, 0.25, 1.0, 2.0] {
        for branch in hyperbola(c, r) {
            saddle = saddle.contour(branch);
        }
    }
    let SaddleWalks {
        gd,
        nudged,
        nudge,
        sgd,
        batch,
    } = *saddle_walks;
    let sgd_name = format!("SGD (batch {batch})");
    let nudged_name = format!("gradient descent from y = {nudge:e}");
    let in_box = |path: &[(f64, f64)]| -> Vec<(f64, f64)> {
        path.iter()
            .copied()
            .filter(|p| p.0.abs() <= r && p.1.abs() <= r)
            .collect()
    };
    saddle = saddle
        .path("gradient descent", in_box(&gd.path))
        .path(&nudged_name, in_box(&nudged.path))
        .path(&sgd_name, in_box(&sgd.path));
    let shown = sgd
        .values
        .len()
        .max(nudged.values.len())
        .max(100)
        .min(gd.values.len());
    let saddle_values = Panel::new("Saddle: f per step (escape at f ≤ −1)", "step", "f(x, y)")
        .line("gradient descent", steps_and(&gd.values[..shown]))
        .line(&nudged_name, steps_and(&nudged.values))
        .line(&sgd_name, steps_and(&sgd.values));

    let tilt = wells.tilt;
    let (x_lo, x_hi, y_lo, y_hi) = (-1.7, 1.7, -0.6, 4.2);
    let curve: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let x = x_lo + (x_hi - x_lo) * i as f64 / 200.0;
            (x, well(tilt, x))
        })
        .collect();
    let mut well_paths = Panel::new(
        &format!(
            "Double well (x² − 1)² + {tilt}·x: first {DEMO_STEPS} steps from x₀ = {:.2}",
            wells.demo_start
        ),
        "x",
        "f(x)",
    )
    .x_range(x_lo, x_hi)
    .y_range(y_lo, y_hi)
    .legend(Legend::UpperMiddle)
    .contour(curve);
    let mut fractions = Panel::new(
        &format!(
            "Runs in the global minimum's basin, of {} starts in [{}, {}]",
            wells.methods.first().map_or(0, |m| m.finals.len()),
            wells.range.0,
            wells.range.1
        ),
        "step",
        "fraction of runs",
    )
    .y_range(-0.02, 1.02)
    .legend(Legend::UpperRight);
    for m in &wells.methods {
        let inside: Vec<(f64, f64)> = m
            .demo
            .iter()
            .copied()
            .filter(|&(x, y)| (x_lo..=x_hi).contains(&x) && (y_lo..=y_hi).contains(&y))
            .collect();
        well_paths = well_paths.path(&m.name, inside);
        let n = m.finals.len().max(1) as f64;
        let share: Vec<f64> = m.in_global.iter().map(|&c| c as f64 / n).collect();
        fractions = fractions.line(&m.name, steps_and(&share));
    }

    let path = plot::file_in(dir, "landscape.svg").map_err(Failure::Input)?;
    let [banana, banana_values] = answered.rosenbrock_panels();
    plot::lines(
        &path,
        &[
            paths,
            values,
            saddle,
            saddle_values,
            well_paths,
            fractions,
            banana,
            banana_values,
        ],
        2,
    )
    .map_err(Failure::Input)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `[(0, v₀), (1, v₁), …]`.
fn steps_and(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as f64, v))
        .collect()
}

/// The first steps the line-search sweep starts from: 1e-3 … 1e3, a decade apart.
const FIRST_STEPS: [f64; 7] = [1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3];

/// Steps gradient descent takes on Rosenbrock's function, for the figure.
const ROSENBROCK_GD_STEPS: usize = 1000;

/// The step size, answered: L-BFGS and line searches in the valley, L-BFGS on Rosenbrock.
#[derive(Serialize)]
struct Answered {
    /// L-BFGS's iterations to f ≤ tol in the valley, and the evaluations they took.
    lbfgs_steps: Option<usize>,
    lbfgs_evaluations: u64,
    lbfgs_history: u32,
    /// Gradient descent with each line search from each first step.
    line_search_gd: Vec<SearchRun>,
    /// The fixed step above 2/κ, and the loss it starts from and reaches after 100 steps.
    diverging_lr: f64,
    diverging_initial_loss: f64,
    diverging_final_loss: f64,
    rosenbrock_lbfgs_iterations: u64,
    rosenbrock_lbfgs_evaluations: u64,
    rosenbrock_lbfgs_final_loss: f64,
    rosenbrock_lbfgs_stop: String,
    /// Line-search gradient descent on Rosenbrock after its steps for the figure.
    rosenbrock_gd_steps: usize,
    rosenbrock_gd_final_loss: f64,
    #[serde(skip)]
    walks: Vec<(String, Walk)>,
    #[serde(skip)]
    rosenbrock_walks: Vec<(String, Walk)>,
}

/// One line-search gradient descent run in the valley.
#[derive(Serialize)]
struct SearchRun {
    search: String,
    first_step: f64,
    /// Steps to f ≤ tol (null: not within the step limit).
    steps: Option<usize>,
    evaluations: u64,
}

impl Answered {
    /// The valley walks to draw beside the other methods'.
    fn walks(&self) -> impl Iterator<Item = (&str, &Walk)> {
        self.walks.iter().map(|(n, w)| (n.as_str(), w))
    }

    /// Rosenbrock's banana with the paths on it, and f per step.
    fn rosenbrock_panels(&self) -> [Panel; 2] {
        let mut paths = Panel::new(
            "Rosenbrock (1 − x)² + 100·(y − x²)² from (−1.2, 1)",
            "x",
            "y",
        )
        .x_range(-1.5, 1.5)
        .y_range(-0.5, 1.5)
        .legend(Legend::LowerRight);
        for c in [0.5, 2.0, 8.0, 25.0, 60.0] {
            for branch in banana_level(c) {
                paths = paths.contour(branch);
            }
        }
        let mut values = Panel::new("Rosenbrock: f per step", "step", "f(x, y) (log)").log_y();
        for (name, w) in &self.rosenbrock_walks {
            paths = paths.path(name, w.path.clone());
            values = values.line(name, steps_and(&w.values));
        }
        [paths, values]
    }
}

/// The level set `(1 − x)² + 100·(y − x²)² = c`: `y = x² ± √((c − (1 − x)²)/100)` where the
/// root is real, as two branches.
fn banana_level(c: f64) -> Vec<Vec<(f64, f64)>> {
    let xs: Vec<f64> = (0..=400)
        .map(|i| -1.5 + 3.0 * f64::from(i) / 400.0)
        .filter(|x| (1.0 - x) * (1.0 - x) <= c)
        .collect();
    [1.0, -1.0]
        .iter()
        .map(|sign| {
            xs.iter()
                .map(|&x| (x, x * x + sign * ((c - (1.0 - x).powi(2)) / 100.0).sqrt()))
                .collect()
        })
        .collect()
}

/// Rosenbrock's function from `(−1.2, 1)`.
fn rosenbrock() -> impl Objective<f64> + Clone {
    FnObjective::new(
        vec![-1.2, 1.0],
        |p: &[f64]| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2),
        |p: &[f64], g: &mut [f64]| {
            g[0] = -2.0 * (1.0 - p[0]) - 400.0 * p[0] * (p[1] - p[0] * p[0]);
            g[1] = 200.0 * (p[1] - p[0] * p[0]);
        },
    )
}

/// L-BFGS in the valley from `start`, gradient descent with each line search from each of
/// [`FIRST_STEPS`], a fixed step above 2/κ, and L-BFGS on Rosenbrock; prints what each did.
fn the_step_size_answered(cli: &Cli, start: [f64; 2]) -> Result<Answered, Failure> {
    let (kappa, tol, max_steps) = (cli.kappa, cli.tol, cli.steps);
    let reached = |f: f64| f <= tol;
    println!("the step size, answered: the same valley from the same start, steps to f ≤ {tol:e}");
    let mut lbfgs = Lbfgs::new(cli.history as usize)?;
    let mut v = valley(kappa, start);
    let lbfgs_walk = walk(&mut v, max_steps, reached, |v| v.loss(), |v| lbfgs.step(v))?;
    let lbfgs_evaluations = lbfgs.evaluations().function;
    match lbfgs_walk.reached {
        Some(n) => println!(
            "  L-BFGS (history {})   {n:>5} iterations, {lbfgs_evaluations} evaluations",
            cli.history
        ),
        None => println!(
            "  L-BFGS (history {})   not within {max_steps} steps",
            cli.history
        ),
    }
    let mut walks = vec![(format!("L-BFGS (history {})", cli.history), lbfgs_walk)];
    let mut line_search_gd = Vec::new();
    for search in [LineSearch::backtracking(), LineSearch::strong_wolfe()] {
        println!(
            "  gradient descent, {} line search, from a first step of",
            search.name()
        );
        for first in FIRST_STEPS {
            let mut gd = GradientDescent::new(first)?.line_search(search);
            let mut v = valley(kappa, start);
            let w = walk(&mut v, max_steps, reached, |v| v.loss(), |v| gd.step(v))?;
            let evaluations = gd.search_evaluations().map_or(0, |e| e.function);
            match w.reached {
                Some(n) => println!("    {first:>6.0e}  {n:>5} steps, {evaluations} evaluations"),
                None => println!("    {first:>6.0e}  not within {max_steps} steps"),
            }
            line_search_gd.push(SearchRun {
                search: search.name().to_string(),
                first_step: first,
                steps: w.reached,
                evaluations,
            });
            if first == 1.0 && walks.len() < 2 {
                walks.push((format!("GD + {} line search", search.name()), w));
            }
        }
    }
    let mut gd = GradientDescent::new(cli.diverging_lr)?;
    let mut v = valley(kappa, start);
    let diverging_initial_loss = v.loss()?;
    for _ in 0..100 {
        gd.step(&mut v)?;
    }
    let diverging_final_loss = v.loss()?;
    println!(
        "  gradient descent, fixed step {} (above 2/κ = {}): f goes from {diverging_initial_loss:.3e} \
         to {diverging_final_loss:.3e} in 100 steps",
        cli.diverging_lr,
        2.0 / kappa
    );

    // Rosenbrock: L-BFGS to its stop, with the default tolerances.
    let mut lbfgs = Lbfgs::new(cli.history as usize)?;
    let mut banana = rosenbrock();
    // Until it stops (a converged L-BFGS stays where it is).
    let done = std::cell::Cell::new(false);
    let lbfgs_banana = walk(
        &mut banana,
        max_steps,
        |_| done.get(),
        |f| f.loss(),
        |f| {
            let loss = lbfgs.step(f);
            done.set(lbfgs.stop_reason().is_some());
            loss
        },
    )?;
    let final_loss = banana.loss()?;
    let stop = lbfgs.stop_reason().map_or_else(
        || format!("not within {max_steps} steps"),
        |s| s.to_string(),
    );
    println!(
        "Rosenbrock (1 − x)² + 100·(y − x²)² from (−1.2, 1): L-BFGS reaches f = {final_loss:.3e} in \
         {} iterations, {} evaluations ({stop})",
        lbfgs.iterations(),
        lbfgs.evaluations().function
    );
    let mut gd = GradientDescent::new(1e-3)?.line_search(LineSearch::backtracking());
    let mut banana_gd = rosenbrock();
    let gd_banana = walk(
        &mut banana_gd,
        ROSENBROCK_GD_STEPS,
        |_| false,
        |f| f.loss(),
        |f| gd.step(f),
    )?;
    let gd_final = banana_gd.loss()?;
    println!(
        "  gradient descent with a backtracking line search, {ROSENBROCK_GD_STEPS} steps: f = \
         {gd_final:.3e}"
    );
    Ok(Answered {
        lbfgs_steps: walks[0].1.reached,
        lbfgs_evaluations,
        lbfgs_history: cli.history,
        line_search_gd,
        diverging_lr: cli.diverging_lr,
        diverging_initial_loss,
        diverging_final_loss,
        rosenbrock_lbfgs_iterations: lbfgs.iterations(),
        rosenbrock_lbfgs_evaluations: lbfgs.evaluations().function,
        rosenbrock_lbfgs_final_loss: final_loss,
        rosenbrock_lbfgs_stop: stop,
        rosenbrock_gd_steps: ROSENBROCK_GD_STEPS,
        rosenbrock_gd_final_loss: gd_final,
        walks,
        rosenbrock_walks: vec![
            ("L-BFGS".to_string(), lbfgs_banana),
            ("GD + backtracking".to_string(), gd_banana),
        ],
    })
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
