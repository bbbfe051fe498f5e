//! L-BFGS on the classic test functions, one JSON line each: what `benches/compare_lbfgs.sh`
//! sets beside scipy's L-BFGS-B and PyTorch's LBFGS, from the same starts with the same
//! gradient tolerance.
//!
//! ```text
//! cargo bench --bench lbfgs -- --history 10 --gtol 1e-5
//! ```
//!
//! Functions (scipy's `rosen` and the Moré–Garbow–Hillstrom set): Rosenbrock in 2, 100 and
//! 1000 dimensions from `(−1.2, 1, −1.2, 1, …)`, Beale from `(1, 1)`, Powell's singular
//! function from `(3, −1, 0, 1)`, and the `landscape` example's valley `½(x² + 50·y²)` from
//! `(−10, 1.5)`. Each run stops when the largest gradient element is at most `--gtol`
//! (L-BFGS-B's `pgtol`), or after `--max-iter` iterations; the change tolerance is off.

use std::time::Instant;

use downhill::model::FnObjective;
use downhill::optim::{Lbfgs, LineSearch, Optimizer};
use downhill::prelude::Objective;

type Function = (
    &'static str,
    Vec<f64>,
    fn(&[f64]) -> f64,
    fn(&[f64], &mut [f64]),
);

/// scipy's `rosen`: `Σᵢ 100·(xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²`.
fn rosenbrock(x: &[f64]) -> f64 {
    let terms = x.iter().zip(&x[1..]);
    terms
        .map(|(a, b)| 100.0 * (b - a * a).powi(2) + (1.0 - a).powi(2))
        .sum()
}

/// Its gradient, term by term: each touches `xᵢ` and `xᵢ₊₁`.
fn rosenbrock_grad(x: &[f64], g: &mut [f64]) {
    g.fill(0.0);
    for (i, pair) in x.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        g[i] -= 400.0 * a * (b - a * a) + 2.0 * (1.0 - a);
        g[i + 1] += 200.0 * (b - a * a);
    }
}

/// Beale's function: `Σₖ (cₖ − x + x·yᵏ)²` with `c = (1.5, 2.25, 2.625)`.
fn beale(p: &[f64]) -> f64 {
    let (x, y) = (p[0], p[1]);
    [1.5, 2.25, 2.625]
        .iter()
        .zip(1..)
        .map(|(c, k)| (c - x + x * y.powi(k)).powi(2))
        .sum()
}

fn beale_grad(p: &[f64], g: &mut [f64]) {
    let (x, y) = (p[0], p[1]);
    g.fill(0.0);
    for (c, k) in [1.5, 2.25, 2.625].iter().zip(1..) {
        let r = c - x + x * y.powi(k);
        g[0] += 2.0 * r * (y.powi(k) - 1.0);
        g[1] += 2.0 * r * x * f64::from(k) * y.powi(k - 1);
    }
}

/// Powell's singular function: its Hessian at the minimum 0 is singular.
fn powell(x: &[f64]) -> f64 {
    (x[0] + 10.0 * x[1]).powi(2)
        + 5.0 * (x[2] - x[3]).powi(2)
        + (x[1] - 2.0 * x[2]).powi(4)
        + 10.0 * (x[0] - x[3]).powi(4)
}

fn powell_grad(x: &[f64], g: &mut [f64]) {
    let a = x[0] + 10.0 * x[1];
    let b = x[2] - x[3];
    let c = x[1] - 2.0 * x[2];
    let d = x[0] - x[3];
    g[0] = 2.0 * a + 40.0 * d.powi(3);
    g[1] = 20.0 * a + 4.0 * c.powi(3);
    g[2] = 10.0 * b - 8.0 * c.powi(3);
    g[3] = -10.0 * b - 40.0 * d.powi(3);
}

fn valley(x: &[f64]) -> f64 {
    0.5 * (x[0] * x[0] + 50.0 * x[1] * x[1])
}

fn valley_grad(x: &[f64], g: &mut [f64]) {
    g[0] = x[0];
    g[1] = 50.0 * x[1];
}

/// `(−1.2, 1, −1.2, 1, …)`, `n` long.
fn rosenbrock_start(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
        .collect()
}

/// The value after `flag` in the arguments, parsed, or `default`.
fn arg<V: std::str::FromStr>(args: &[String], flag: &str, default: V) -> V {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> downhill::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let history = arg(&args, "--history", 10usize);
    let gtol = arg(&args, "--gtol", 1e-5f64);
    let max_iter = arg(&args, "--max-iter", 10_000u64);
    let backtracking = args.iter().any(|a| a == "--backtracking");
    let functions: Vec<Function> = vec![
        (
            "rosenbrock",
            rosenbrock_start(2),
            rosenbrock,
            rosenbrock_grad,
        ),
        (
            "rosenbrock",
            rosenbrock_start(100),
            rosenbrock,
            rosenbrock_grad,
        ),
        (
            "rosenbrock",
            rosenbrock_start(1000),
            rosenbrock,
            rosenbrock_grad,
        ),
        ("beale", vec![1.0, 1.0], beale, beale_grad),
        ("powell", vec![3.0, -1.0, 0.0, 1.0], powell, powell_grad),
        ("valley", vec![-10.0, 1.5], valley, valley_grad),
    ];
    for (name, x0, f, grad) in functions {
        let n = x0.len();
        let mut objective = FnObjective::new(x0, f, grad);
        let search = if backtracking {
            LineSearch::backtracking()
        } else {
            LineSearch::strong_wolfe()
        };
        let mut lbfgs = Lbfgs::new(history)?
            .line_search(search)
            .tolerance_grad(gtol)?
            .tolerance_change(0.0)?;
        let started = Instant::now();
        while lbfgs.stop_reason().is_none() && lbfgs.iterations() < max_iter {
            lbfgs.step(&mut objective)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let mut g = vec![0.0; n];
        let final_f = objective.loss_and_grad(&mut g)?;
        let max_grad = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let stop = lbfgs
            .stop_reason()
            .map_or("max_iter".to_string(), |s| format!("{s:?}"));
        println!(
            "{{\"function\": \"{name}\", \"n\": {n}, \"iterations\": {}, \"function_evals\": {}, \
             \"gradient_evals\": {}, \"final_f\": {final_f:e}, \"max_grad\": {max_grad:e}, \
             \"seconds\": {seconds:e}, \"stop\": \"{stop}\"}}",
            lbfgs.iterations(),
            lbfgs.evaluations().function,
            lbfgs.evaluations().gradient,
        );
    }
    Ok(())
}
