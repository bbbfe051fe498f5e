//! Beyond the lecture, valleys and saddles: why plain gradient descent struggles, on two
//! functions of two parameters you can draw.
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
//! the gradient has no `y` component, ever. SGD's minibatch gradients are noisy, the noise
//! pushes it off the ridge, and the slope takes it from there.
//!
//! The valley is a plain [`Objective`] (a function of its two parameters, no data); the
//! saddle is a [`Model`] over its own examples, [`Shifts`]. The paths are drawn by the
//! library's own optimizers and update rules, one [`Optimizer::step`] at a time.
//!
//! ```text
//! cargo run --release --example landscape -- --plot docs/figures
//! cargo run --release --example landscape -- --help
//! ```
//! prints the steps each method needs to reach `f ≤ tol` in the valley and to escape the
//! saddle (`f ≤ −1`); `--plot DIR` writes `landscape.svg`.

mod common {
    pub mod cli;
    pub mod plot;
}

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, Failure};
use common::plot::{self, Legend, Panel};
use downhill::data::{Examples, Minibatches};
use downhill::model::{FnObjective, Params};
use downhill::optim::UpdateRule;
use downhill::prelude::*;
use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

/// Gradient descent, momentum, Nesterov and Adam in a valley; GD and SGD at a saddle.
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
    #[arg(long, default_value_t = 1e-6, value_parser = positive)]
    tol: f64,
    /// Most steps each method may take
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// GD's and SGD's learning rate at the saddle
    #[arg(long, default_value_t = 0.05)]
    saddle_lr: f64,
    /// Scale of the saddle's example shifts (0: every example is the pure saddle)
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    noise: f64,
    /// SGD's minibatch size at the saddle
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Seed of the shifts and of SGD's minibatches
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write landscape.svg into this directory
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Print one JSON object as the last line
    #[arg(long)]
    json: bool,
}

/// A finite number ≥ 1.
fn at_least_one(s: &str) -> Result<f64, String> {
    number(s, |v| v >= 1.0, "a finite number ≥ 1")
}
/// A finite number > 0.
fn positive(s: &str) -> Result<f64, String> {
    number(s, |v| v > 0.0, "a finite number greater than zero")
}
/// A finite number ≥ 0.
fn non_negative(s: &str) -> Result<f64, String> {
    number(s, |v| v >= 0.0, "a finite number ≥ 0")
}
fn number(s: &str, ok: impl Fn(f64) -> bool, what: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && ok(v) => Ok(v),
        Ok(_) => Err(format!("must be {what}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    example: &'static str,
    /// No data directory: both functions are made up here.
    data: Option<String>,
    kappa: f64,
    tol: f64,
    max_steps: usize,
    gd_steps: Option<usize>,
    momentum_steps: Option<usize>,
    nesterov_steps: Option<usize>,
    adam_steps: Option<usize>,
    saddle_gd_steps: Option<usize>,
    saddle_sgd_steps: Option<usize>,
    saddle_gd_final_x: f64,
    saddle_gd_final_y: f64,
    grad_check_max_rel_error: f64,
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
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

/// The saddle's examples: example `i` is the shift `(aᵢ, bᵢ)` of its loss
/// `x² − y² + aᵢ·x + bᵢ·y`.
struct Shifts(Vec<[f64; 2]>);

impl Examples for Shifts {
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// The saddle `x² − y²`, shifted by each example: a model whose parameters are the point.
#[derive(Clone)]
struct Saddle {
    xy: [f64; 2],
}

impl Saddle {
    /// The batch's mean shift `(ā, b̄)` (zero for an empty batch).
    fn mean_shift(batch: &Batch<'_, f64, Shifts>) -> (f64, f64) {
        let shifts = &batch.data().0;
        let (a, b) = batch
            .rows()
            .fold((0.0, 0.0), |(a, b), i| (a + shifts[i][0], b + shifts[i][1]));
        let n = batch.len().max(1) as f64;
        (a / n, b / n)
    }
}

impl Params<f64> for Saddle {
    fn params(&self) -> &[f64] {
        &self.xy
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.xy
    }
}

impl Model<f64, Shifts> for Saddle {
    fn loss(&mut self, batch: &Batch<'_, f64, Shifts>) -> downhill::Result<f64> {
        let (a, b) = Saddle::mean_shift(batch);
        let [x, y] = self.xy;
        Ok(x * x - y * y + a * x + b * y)
    }
    fn loss_and_grad(
        &mut self,
        batch: &Batch<'_, f64, Shifts>,
        grad: &mut [f64],
    ) -> downhill::Result<f64> {
        let [gx, gy] = grad else {
            return Err(downhill::error::ErrorKind::Shape {
                context: "Saddle::loss_and_grad",
                what: "gradient length",
                expected: 2,
                found: grad.len(),
            }
            .into());
        };
        let (a, b) = Saddle::mean_shift(batch);
        let [x, y] = self.xy;
        (*gx, *gy) = (2.0 * x + a, -2.0 * y + b);
        Ok(x * x - y * y + a * x + b * y)
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
    let (kappa, tol, max_steps, seed) = (cli.kappa, cli.tol, cli.steps, cli.seed);

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

    // The saddle: shifts (a, b) in ± pairs, so that over the whole set they cancel exactly
    // and full-batch gradient descent sees the pure saddle.
    let noise = cli.noise;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut shifts = Vec::with_capacity(256);
    for _ in 0..128 {
        let a: f64 = StandardNormal.sample(&mut rng);
        let b: f64 = StandardNormal.sample(&mut rng);
        shifts.extend([[noise * a, noise * b], [-noise * a, -noise * b]]);
    }
    let examples = Shifts(shifts);
    let all = Batch::all(&examples);
    let on_ridge = Saddle { xy: [1.5, 0.0] };

    // The hand-written gradients, checked against numeric ones: off the ridge and the valley
    // floor, and on 5 examples (an odd count, so the ± pairs do not cancel), so that every
    // term counts.
    let check = GradCheck::new();
    let grad_error = [
        check.check(&mut valley(kappa, [-3.0, 0.7]))?.max_rel_error,
        check
            .run(
                &mut Saddle { xy: [0.8, -0.6] },
                &Batch::range(&examples, 0..5)?,
            )?
            .max_rel_error,
    ]
    .into_iter()
    .fold(0.0f64, f64::max);
    println!("gradient check of both functions: max relative error {grad_error:.1e}");
    let escaped = |f: f64| f <= -1.0;
    let full = |s: &mut Saddle| s.loss(&all);
    let mut gd = GradientDescent::new(cli.saddle_lr)?;
    let mut gd_at = on_ridge.clone();
    let gd_walk = walk(&mut gd_at, max_steps, escaped, full, |s| {
        gd.step(&mut s.on(&all))
    })?;
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
    match sgd_walk.reached {
        Some(n) => println!("  SGD (batch {batch:>3})   {n:>5} steps"),
        None => println!("  SGD (batch {batch:>3})   not within {max_steps} steps"),
    }

    if let Some(dir) = &cli.plot {
        write_figure(dir, kappa, tol, &valley_walks, &gd_walk, &sgd_walk, batch)?;
    }
    if cli.json {
        let steps = |i: usize| valley_walks[i].1.reached;
        cli::print_json(&Report {
            example: "landscape",
            data: None,
            kappa,
            tol,
            max_steps,
            gd_steps: steps(0),
            momentum_steps: steps(1),
            nesterov_steps: steps(2),
            adam_steps: steps(3),
            saddle_gd_steps: gd_walk.reached,
            saddle_sgd_steps: sgd_walk.reached,
            saddle_gd_final_x: gx,
            saddle_gd_final_y: gy,
            grad_check_max_rel_error: grad_error,
        })?;
    }
    Ok(())
}

fn write_figure(
    dir: &Path,
    kappa: f64,
    tol: f64,
    valley: &[(&str, Walk)],
    gd: &Walk,
    sgd: &Walk,
    batch: usize,
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
    for (name, w) in valley {
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
    let sgd_name = format!("SGD (batch {batch})");
    saddle = saddle
        .path("gradient descent", gd.path.clone())
        .path(&sgd_name, sgd.path.clone());
    let shown = sgd.values.len().max(100).min(gd.values.len());
    let saddle_values = Panel::new("Saddle: f per step (escape at f ≤ −1)", "step", "f(x, y)")
        .line("gradient descent", steps_and(&gd.values[..shown]))
        .line(&sgd_name, steps_and(&sgd.values));
    let path = plot::file_in(dir, "landscape.svg").map_err(Failure::Input)?;
    plot::lines(&path, &[paths, values, saddle, saddle_values], 2).map_err(Failure::Input)?;
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
