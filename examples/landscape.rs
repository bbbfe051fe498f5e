//! Why plain gradient descent struggles, on two functions of two parameters you can draw.
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
//! Both functions are [`Model`]s, so the paths are drawn by the library's own optimizers and
//! update rules, one [`Optimizer::step`] at a time.
//!
//! ```text
//! cargo run --release --example landscape -- --plot docs/figures
//! ```
//! prints the steps each method needs to reach `f ≤ tol` in the valley and to escape the
//! saddle (`f ≤ −1`); `--plot DIR` writes `landscape.svg`.

mod common;

use common::plot::{self, Legend, Panel};
use common::{fail, Args, Json};
use downhill::data::Minibatches;
use downhill::optim::UpdateRule;
use downhill::prelude::*;
use rand::rngs::Xoshiro256PlusPlus;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const USAGE: &str =
    "usage: landscape [--kappa 50] [--lr 0.035] [--momentum-lr 0.025] [--mu 0.8] [--adam-lr 0.5] [--tol 1e-6]
                 [--steps 2000] [--saddle-lr 0.05] [--noise 1] [--batch 8] [--seed 0]
                 [--plot DIR] [--json]";

fn main() {
    let args = Args::parse(
        USAGE,
        &[
            "kappa",
            "lr",
            "momentum-lr",
            "mu",
            "adam-lr",
            "tol",
            "steps",
            "saddle-lr",
            "noise",
            "batch",
            "seed",
            "plot",
        ],
        &["json"],
    );
    if let Err(e) = run(&args) {
        fail(e);
    }
}

/// The valley `f(x, y) = ½(x² + κ·y²)`; the batch plays no part.
#[derive(Clone)]
struct Valley {
    xy: [f64; 2],
    kappa: f64,
}

impl Valley {
    fn value(&self) -> f64 {
        let [x, y] = self.xy;
        0.5 * (x * x + self.kappa * y * y)
    }
}

/// The saddle: example `i` has features `(aᵢ, bᵢ)` and loss `x² − y² + aᵢ·x + bᵢ·y`.
#[derive(Clone)]
struct Saddle {
    xy: [f64; 2],
}

impl Saddle {
    /// The batch's mean shift `(ā, b̄)`.
    fn mean_shift(batch: &Batch<'_, f64>) -> Result<(f64, f64)> {
        let (x, _) = batch.to_matrix()?;
        let (mut a, mut b) = (0.0, 0.0);
        for row in x.as_slice().chunks_exact(2) {
            a += row[0];
            b += row[1];
        }
        let n = batch.len().max(1) as f64;
        Ok((a / n, b / n))
    }
}

fn check_grad(grad: &[f64]) -> Result<()> {
    if grad.len() != 2 {
        return Err(Error::Shape {
            context: "landscape gradient",
            expected: "2 values".into(),
            found: grad.len().to_string(),
        });
    }
    Ok(())
}

/// A function of the two parameters has one "score" per input row: its value.
fn fill_scores(
    x: MatRef<'_, f64>,
    mut out: MatMut<'_, f64>,
    value: impl Fn(&[f64]) -> f64,
) -> Result<()> {
    if out.rows() != x.rows() || out.cols() != 1 {
        return Err(Error::Shape {
            context: "landscape scores",
            expected: format!("{} × 1", x.rows()),
            found: format!("{} × {}", out.rows(), out.cols()),
        });
    }
    for r in 0..x.rows() {
        let row: Vec<f64> = (0..x.cols()).filter_map(|c| x.get(r, c)).collect();
        if let Some(o) = out.row_mut(r) {
            o[0] = value(&row);
        }
    }
    Ok(())
}

impl Model<f64> for Valley {
    fn num_inputs(&self) -> usize {
        1
    }
    fn num_classes(&self) -> usize {
        1
    }
    fn params(&self) -> &[f64] {
        &self.xy
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.xy
    }
    fn loss(&mut self, _batch: &Batch<'_, f64>) -> Result<f64> {
        Ok(self.value())
    }
    fn loss_and_grad(&mut self, _batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
        check_grad(grad)?;
        let [x, y] = self.xy;
        grad[0] = x;
        grad[1] = self.kappa * y;
        Ok(self.value())
    }
    fn scores(&mut self, x: MatRef<'_, f64>, out: MatMut<'_, f64>) -> Result<()> {
        let f = self.value();
        fill_scores(x, out, |_| f)
    }
}

impl Model<f64> for Saddle {
    fn num_inputs(&self) -> usize {
        2
    }
    fn num_classes(&self) -> usize {
        1
    }
    fn params(&self) -> &[f64] {
        &self.xy
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.xy
    }
    fn loss(&mut self, batch: &Batch<'_, f64>) -> Result<f64> {
        let (a, b) = Saddle::mean_shift(batch)?;
        let [x, y] = self.xy;
        Ok(x * x - y * y + a * x + b * y)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
        check_grad(grad)?;
        let (a, b) = Saddle::mean_shift(batch)?;
        let [x, y] = self.xy;
        grad[0] = 2.0 * x + a;
        grad[1] = -2.0 * y + b;
        Ok(x * x - y * y + a * x + b * y)
    }
    fn scores(&mut self, x: MatRef<'_, f64>, out: MatMut<'_, f64>) -> Result<()> {
        let [p, q] = self.xy;
        fill_scores(x, out, |ab| {
            p * p - q * q + ab.first().unwrap_or(&0.0) * p + ab.get(1).unwrap_or(&0.0) * q
        })
    }
}

/// Where an optimizer went: the points it visited (start included), the full objective at
/// each, and the step at which it first met the goal.
struct Walk {
    path: Vec<(f64, f64)>,
    values: Vec<f64>,
    reached: Option<usize>,
}

/// Steps `opt` on `model` until `goal(f)` holds or `max_steps` have been taken. With
/// `batch = Some(n)` each step sees a shuffled minibatch of `n` examples (SGD), otherwise
/// the whole set.
fn walk(
    model: &mut dyn Model<f64>,
    opt: &mut dyn Optimizer<f64>,
    data: &Dataset<f64>,
    batch: Option<usize>,
    seed: u64,
    max_steps: usize,
    goal: impl Fn(f64) -> bool,
) -> Result<Walk> {
    let all = data.all();
    let point = |m: &dyn Model<f64>| (m.params()[0], m.params()[1]);
    let mut w = Walk {
        path: vec![point(model)],
        values: vec![model.loss(&all)?],
        reached: None,
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut sampler = batch.map(|n| Minibatches::new(data.len(), n)).transpose()?;
    let mut order: Vec<Vec<usize>> = Vec::new();
    for step in 1..=max_steps {
        match sampler.as_mut() {
            Some(s) => {
                if order.is_empty() {
                    s.shuffle(&mut rng);
                    order = s.iter().map(<[usize]>::to_vec).collect();
                    order.reverse();
                }
                let idx = order.pop().unwrap_or_default();
                opt.step(model, &data.batch(&idx)?)?;
            }
            None => {
                opt.step(model, &all)?;
            }
        }
        let f = model.loss(&all)?;
        w.path.push(point(model));
        w.values.push(f);
        if goal(f) {
            w.reached = Some(step);
            break;
        }
    }
    Ok(w)
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

fn run(args: &Args) -> Result<()> {
    let kappa: f64 = args.get("kappa", 50.0);
    if !(kappa >= 1.0 && kappa.is_finite()) {
        fail(format!("--kappa {kappa}: must be a finite number ≥ 1"));
    }
    let lr: f64 = args.get("lr", 0.035);
    // Momentum takes bigger effective steps (lr/(1 − μ) along the floor), so it needs a
    // smaller lr to stay stable across the valley; Nesterov's look-ahead most of all.
    let momentum_lr: f64 = args.get("momentum-lr", 0.025);
    let mu: f64 = args.get("mu", 0.8);
    let tol: f64 = args.get("tol", 1e-6);
    if !(tol > 0.0 && tol.is_finite()) {
        fail(format!(
            "--tol {tol}: must be a finite number greater than zero"
        ));
    }
    let max_steps: usize = args.get("steps", 2000);
    let seed: u64 = args.get("seed", 0);

    // The valley: every method from the same start, full "batch" (there is no data).
    let dummy = Dataset::from_matrix(Matrix::from_vec(vec![0.0], 1, 1)?, vec![0], 1)?;
    let start = Valley {
        xy: [-10.0, 1.5],
        kappa,
    };
    let methods: Vec<(&str, Box<dyn Optimizer<f64>>)> = vec![
        ("gradient descent", Box::new(GradientDescent::new(lr)?)),
        (
            "momentum",
            Box::new(GradientDescent::new(momentum_lr)?.rule(UpdateRule::momentum(mu)?)),
        ),
        (
            "Nesterov",
            Box::new(GradientDescent::new(momentum_lr)?.rule(UpdateRule::nesterov(mu)?)),
        ),
        (
            "Adam",
            Box::new(GradientDescent::new(args.get("adam-lr", 0.5))?.rule(UpdateRule::adam())),
        ),
    ];
    println!(
        "valley f = ½(x² + {kappa}·y²) from ({}, {}): steps to f ≤ {tol:e} (at most {max_steps})",
        start.xy[0], start.xy[1]
    );
    let mut valley_walks = Vec::new();
    for (name, mut opt) in methods {
        let mut m = start.clone();
        let w = walk(&mut m, opt.as_mut(), &dummy, None, seed, max_steps, |f| {
            f <= tol
        })?;
        match w.reached {
            Some(n) => println!("  {name:<17} {n:>5} steps"),
            None => println!(
                "  {name:<17} not within {max_steps} steps (f = {:.3e})",
                m.value()
            ),
        }
        valley_walks.push((name, w));
    }

    // The saddle: shifts (a, b) in ± pairs, so that over the whole set they cancel exactly
    // and full-batch gradient descent sees the pure saddle.
    let noise: f64 = args.get("noise", 1.0);
    if !(noise >= 0.0 && noise.is_finite()) {
        fail(format!("--noise {noise}: must be a finite number ≥ 0"));
    }
    let batch: usize = args.get("batch", 8);
    let saddle_lr: f64 = args.get("saddle-lr", 0.05);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut shifts = Vec::with_capacity(256 * 2);
    for _ in 0..128 {
        let a: f64 = StandardNormal.sample(&mut rng);
        let b: f64 = StandardNormal.sample(&mut rng);
        shifts.extend([noise * a, noise * b, -noise * a, -noise * b]);
    }
    let examples = Dataset::from_matrix(Matrix::from_vec(shifts, 256, 2)?, vec![0; 256], 1)?;
    let on_ridge = Saddle { xy: [1.5, 0.0] };

    // The hand-written gradients, checked against numeric ones: off the ridge and the valley
    // floor, and on 5 examples (an odd count, so the ± pairs do not cancel), so that every
    // term counts.
    let check = GradCheck::new();
    let grad_error = [
        check
            .run(
                &mut Valley {
                    xy: [-3.0, 0.7],
                    kappa,
                },
                &dummy.all(),
            )?
            .max_rel_error,
        check
            .run(&mut Saddle { xy: [0.8, -0.6] }, &examples.range(0..5)?)?
            .max_rel_error,
    ]
    .into_iter()
    .fold(0.0f64, f64::max);
    println!("gradient check of both functions: max relative error {grad_error:.1e}");
    let escaped = |f: f64| f <= -1.0;
    let mut gd = GradientDescent::new(saddle_lr)?;
    let mut gd_model = on_ridge.clone();
    let gd_walk = walk(
        &mut gd_model,
        &mut gd,
        &examples,
        None,
        seed,
        max_steps,
        escaped,
    )?;
    let mut sgd = Sgd::new(saddle_lr)?.batch_size(batch)?;
    let mut sgd_model = on_ridge.clone();
    let sgd_walk = walk(
        &mut sgd_model,
        &mut sgd,
        &examples,
        Some(batch),
        seed,
        max_steps,
        escaped,
    )?;
    println!(
        "saddle f = x² − y² from ({}, {}) on the ridge: steps to escape (f ≤ −1)",
        on_ridge.xy[0], on_ridge.xy[1]
    );
    let [gx, gy] = gd_model.xy;
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

    if let Some(dir) = args.string("plot") {
        write_figure(dir, kappa, tol, &valley_walks, &gd_walk, &sgd_walk, batch);
    }
    if args.switch("json") {
        let steps = |i: usize| valley_walks[i].1.reached.map(|n| n as f64);
        Json::default()
            .str("example", "landscape")
            .num("kappa", kappa)
            .num("tol", tol)
            .num("max_steps", max_steps as f64)
            .opt("gd_steps", steps(0))
            .opt("momentum_steps", steps(1))
            .opt("nesterov_steps", steps(2))
            .opt("adam_steps", steps(3))
            .opt("saddle_gd_steps", gd_walk.reached.map(|n| n as f64))
            .opt("saddle_sgd_steps", sgd_walk.reached.map(|n| n as f64))
            .num("saddle_gd_final_x", gx)
            .num("saddle_gd_final_y", gy)
            .num("grad_check_max_rel_error", grad_error)
            .print();
    }
    Ok(())
}

fn write_figure(
    dir: &str,
    kappa: f64,
    tol: f64,
    valley: &[(&str, Walk)],
    gd: &Walk,
    sgd: &Walk,
    batch: usize,
) {
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
    let path = plot::file_in(dir, "landscape.svg").unwrap_or_else(|e| fail(e));
    plot::lines(&path, &[paths, values, saddle, saddle_values], 2).unwrap_or_else(|e| fail(e));
    println!("wrote {}", path.display());
}

/// `[(0, v₀), (1, v₁), …]`.
fn steps_and(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as f64, v))
        .collect()
}
