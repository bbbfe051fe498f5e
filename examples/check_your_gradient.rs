//! Lecture step 3, in practice: check *your* gradient — and see the check catch a wrong one.
//!
//! Three things you might write a gradient for, each checked as it should be and beside a
//! deliberately broken twin that the check must catch:
//!
//! * **a function** — Rosenbrock's banana in 6 dimensions and its hand-written gradient,
//!   with [`GradCheck::check_fn`], every coordinate. The twin's gradient is 1% off in one
//!   coordinate: the report names that coordinate.
//! * **a layer's backward pass** — a dense tanh layer `Y = tanh(X·W + b)` and its backward
//!   pass `dX, dW, db` from `dY`, with [`GradCheck::check_vjp`] and [`GradCheck::groups`] so
//!   the report has a row each for `x`, `W` and `b`. The twin reads `W` transposed in
//!   `dX`: the `x` row fails, the `W` and `b` rows pass.
//! * **a network** — the crate's MLP on real digits in the fast mode,
//!   [`GradCheck::directions`]: a few random directions through all its parameters, two
//!   loss evaluations each. Then your own objective wrapping it, the MLP's loss plus a
//!   penalty `λ·‖w‖²` written by hand, right (`2λ·w`) and with the classic slip (`λ·w`).
//!
//! ```text
//! cargo run --release --example check_your_gradient
//! cargo run --release --example check_your_gradient -- --help
//! ```

mod common;

use common::prelude::*;
use common::values;
use downhill::gradcheck::GradCheck;
use downhill::model::{ParamGroup, Params};

/// A function, a layer's backward pass and the MLP, each checked beside a broken twin.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Training digits the MLP's loss is taken over
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    examples: u32,
    #[command(flatten)]
    net: HiddenArgs,
    /// Random directions of the MLP's fast check
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    directions: u32,
    /// λ of the penalty λ·‖w‖² your objective adds to the MLP's loss
    #[arg(long, default_value_t = 1e-2, value_parser = values::positive)]
    lambda: f64,
    #[command(flatten)]
    run: RunArgs,
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    cases: Vec<Case>,
}

/// One check's verdict.
#[derive(Serialize)]
struct Case {
    name: &'static str,
    /// Whether this is the deliberately broken twin (the check should fail it).
    broken: bool,
    passed: bool,
    verdict: String,
    max_rel_error: f64,
    tolerance: f64,
    /// Loss evaluations the check made.
    evaluations: usize,
    /// Coordinates (or directions) compared.
    checked: usize,
    params: usize,
    /// The worst coordinate's index (a direction's number in the fast mode).
    worst_index: Option<usize>,
    worst_group: Option<String>,
    groups: Vec<Group>,
}

/// One named part of the parameters in a case's report.
#[derive(Serialize)]
struct Group {
    name: String,
    checked: usize,
    max_rel_error: f64,
}

/// Prints a case's report under its title and keeps its verdict.
fn record(cases: &mut Vec<Case>, name: &'static str, broken: bool, title: &str, r: &GradReport) {
    println!("\n== {name}: {title}\n{r}");
    cases.push(Case {
        name,
        broken,
        passed: r.passed(),
        verdict: r.verdict().to_string(),
        max_rel_error: r.max_rel_error,
        tolerance: r.tolerance,
        evaluations: r.evaluations,
        checked: r.checked(),
        params: r.num_params,
        worst_index: r.worst.map(|c| c.index),
        worst_group: r.worst_group().map(str::to_string),
        groups: r
            .groups
            .iter()
            .map(|g| Group {
                name: g.name.clone(),
                checked: g.checked,
                max_rel_error: g.max_rel_error,
            })
            .collect(),
    });
}

// (a) A function: Rosenbrock's banana in n dimensions.

/// `Σᵢ 100·(xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²`.
fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|p| 100.0 * (p[1] - p[0] * p[0]).powi(2) + (1.0 - p[0]).powi(2))
        .sum()
}

/// Its gradient: each term touches `xᵢ` and `xᵢ₊₁`.
fn rosenbrock_grad(x: &[f64], g: &mut [f64]) {
    g.fill(0.0);
    for i in 0..x.len().saturating_sub(1) {
        let r = x[i + 1] - x[i] * x[i];
        g[i] += -400.0 * x[i] * r - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * r;
    }
}

/// The coordinate the broken twin gets 1% wrong.
const OFF_BY_ONE_PERCENT: usize = 3;

// (b) A layer: Y = tanh(X·W + b) for a batch of B rows of I inputs and O outputs, its inputs
// concatenated into one vector p = [X (B×I), W (I×O), b (O)], all row-major.

const B: usize = 3;
const I: usize = 4;
const O: usize = 5;

/// Splits `p` into `X`, `W` and `b`.
fn layer_inputs(p: &[f64]) -> (&[f64], &[f64], &[f64]) {
    let (x, rest) = p.split_at(B * I);
    let (w, b) = rest.split_at(I * O);
    (x, w, b)
}

/// The forward pass: `Y = tanh(X·W + b)` into `y` (B×O).
fn layer_forward(p: &[f64], y: &mut [f64]) {
    let (x, w, b) = layer_inputs(p);
    for r in 0..B {
        for o in 0..O {
            let z = b[o] + (0..I).map(|i| x[r * I + i] * w[i * O + o]).sum::<f64>();
            y[r * O + o] = z.tanh();
        }
    }
}

/// The backward pass: from `dY`, `dZ = dY ⊙ (1 − Y²)`, then `dX = dZ·Wᵀ`, `dW = Xᵀ·dZ`,
/// `db = Σ_rows dZ`, written into the matching parts of `d`. `w_transposed` is the broken
/// twin: its `dX` reads `W` as if it were stored `O×I` (PyTorch's layout), not `I×O`.
fn layer_backward(p: &[f64], dy: &[f64], d: &mut [f64], w_transposed: bool) {
    let (x, w, _) = layer_inputs(p);
    let mut y = vec![0.0; B * O];
    layer_forward(p, &mut y);
    let dz: Vec<f64> = dy.iter().zip(&y).map(|(g, y)| g * (1.0 - y * y)).collect();
    let (dx, rest) = d.split_at_mut(B * I);
    let (dw, db) = rest.split_at_mut(I * O);
    for r in 0..B {
        for i in 0..I {
            dx[r * I + i] = (0..O)
                .map(|o| {
                    let w_io = if w_transposed {
                        w[o * I + i]
                    } else {
                        w[i * O + o]
                    };
                    dz[r * O + o] * w_io
                })
                .sum();
        }
    }
    for i in 0..I {
        for o in 0..O {
            dw[i * O + o] = (0..B).map(|r| x[r * I + i] * dz[r * O + o]).sum();
        }
    }
    for o in 0..O {
        db[o] = (0..B).map(|r| dz[r * O + o]).sum();
    }
}

// (c) Your objective around the crate's MLP: its loss on a batch plus a penalty of your own.

/// The MLP's loss on `batch` plus `λ·‖w‖²`, with the penalty's gradient written by hand as
/// `slope·λ·w`: `slope = 2` is right, `slope = 1` the slip the check should catch.
struct Penalised<'a, 'b> {
    mlp: &'a mut Mlp<f64>,
    batch: &'a Batch<'b, f64>,
    lambda: f64,
    slope: f64,
}

impl Params<f64> for Penalised<'_, '_> {
    fn params(&self) -> &[f64] {
        self.mlp.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.mlp.params_mut()
    }
}

impl Objective<f64> for Penalised<'_, '_> {
    fn loss(&mut self) -> downhill::Result<f64> {
        let penalty: f64 = self.mlp.params().iter().map(|w| w * w).sum();
        Ok(self.mlp.loss(self.batch)? + self.lambda * penalty)
    }
    fn loss_and_grad(&mut self, grad: &mut [f64]) -> downhill::Result<f64> {
        let loss = self.mlp.loss_and_grad(self.batch, grad)?;
        let mut penalty = 0.0;
        for (g, &w) in grad.iter_mut().zip(self.mlp.params()) {
            penalty += w * w;
            *g += self.slope * self.lambda * w;
        }
        Ok(loss + self.lambda * penalty)
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mut cases = Vec::new();

    // (a) Every coordinate of a 6-dimensional function: 2 evaluations each, exact location.
    let x: Vec<f64> = vec![-1.2, 1.0, 0.4, -0.7, 1.3, 0.9];
    let check = GradCheck::new();
    let report = check.check_fn(&x, rosenbrock, rosenbrock_grad)?;
    record(
        &mut cases,
        "rosenbrock",
        false,
        "Rosenbrock in 6 dimensions, its hand-written gradient, check_fn on every coordinate",
        &report,
    );
    let off = |x: &[f64], g: &mut [f64]| {
        rosenbrock_grad(x, g);
        g[OFF_BY_ONE_PERCENT] *= 1.01;
    };
    let report = check.check_fn(&x, rosenbrock, off)?;
    record(
        &mut cases,
        "rosenbrock_one_percent_off",
        true,
        &format!("the same gradient, 1% off in coordinate {OFF_BY_ONE_PERCENT}"),
        &report,
    );

    // (b) A layer's backward pass, every input checked, each part named.
    let p: Vec<f64> = (0..B * I + I * O + O)
        .map(|k| (k as f64 * 0.83).sin())
        .collect();
    let groups = vec![
        ParamGroup::new("x", 0, vec![B, I]),
        ParamGroup::new("W", B * I, vec![I, O]),
        ParamGroup::new("b", B * I + I * O, vec![O]),
    ];
    let check = GradCheck::new().groups(groups).seed(cli.run.seed);
    // The right backward pass, then the broken one that reads W transposed in dX.
    for (name, transposed, title) in [
        (
            "dense_layer",
            false,
            format!("a dense tanh layer Y = tanh(X·W + b), X {B}×{I}, W {I}×{O}: check_vjp, one row per input"),
        ),
        (
            "dense_layer_w_transposed",
            true,
            "the same layer, its dX reading W transposed".to_string(),
        ),
    ] {
        let report = check.check_vjp(&p, B * O, layer_forward, |p, dy, d| {
            layer_backward(p, dy, d, transposed)
        })?;
        record(&mut cases, name, transposed, &title, &report);
    }

    // (c) The crate's MLP, fast mode: k directions through all its parameters.
    let mnist = cli.data.load::<f64>()?;
    let data = mnist.train.take(cli.examples as usize);
    let mut mlp = cli.net.mlp(&data, cli.run.seed)?;
    let activation = Activation::from(cli.net.activation);
    let batch = data.all();
    let fast = GradCheck::new().directions(cli.directions as usize, cli.run.seed)?;
    let report = fast.run(&mut mlp, &batch)?;
    let shape = format!(
        "{:?} {activation}, {} parameters, {} digits",
        mlp.widths(),
        mlp.num_params(),
        data.len()
    );
    record(
        &mut cases,
        "mlp",
        false,
        &format!(
            "the crate's MLP {shape}: {} random directions",
            cli.directions
        ),
        &report,
    );
    let lambda = cli.lambda;
    let mut yours = Penalised {
        mlp: &mut mlp,
        batch: &batch,
        lambda,
        slope: 2.0,
    };
    let report = fast.check(&mut yours)?;
    record(
        &mut cases,
        "mlp_plus_penalty",
        false,
        &format!("your objective: the MLP's loss + {lambda}·‖w‖², gradient + 2λ·w"),
        &report,
    );
    yours.slope = 1.0;
    let report = fast.check(&mut yours)?;
    record(
        &mut cases,
        "mlp_plus_penalty_forgot_the_2",
        true,
        "the same objective, its penalty's gradient written λ·w (the 2 of d(w²)/dw forgotten)",
        &report,
    );

    println!("\nsummary: every correct gradient should pass and every broken twin fail");
    println!(
        "{:<32}  {:>6}  {:>6}  {:<10}  {:>9}  {:>11}",
        "case", "broken", "passed", "verdict", "max rel", "evaluations"
    );
    for c in &cases {
        let caught = if c.broken != c.passed {
            ""
        } else {
            "  ← NOT as expected"
        };
        println!(
            "{:<32}  {:>6}  {:>6}  {:<10}  {:>9.2e}  {:>11}{caught}",
            c.name, c.broken, c.passed, c.verdict, c.max_rel_error, c.evaluations
        );
    }
    if cli.run.json {
        cli::print_json(&cli.data, &Report { cases })?;
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
