//! Lecture step 4, the step size: how far to go along `−∇L`?
//!
//! The lecture answers with the Taylor expansion of the loss along a step `Δw`,
//!
//! ```text
//! L(w + Δw) ≈ L(w) + Δw·∂L/∂w + ½·Δw²·∂²L/∂w²
//! ```
//!
//! For the gradient step `Δw = −η·∇L` the first-order term predicts a decrease of
//! `η·‖∇L‖²`: true for small `η`, and wrong once the second-order term `½·η²·∇Lᵀ·H·∇L`
//! (`H` the Hessian, the curvature along the gradient) catches up with it. Past
//! `η = 2·‖∇L‖² / ∇Lᵀ·H·∇L` the quadratic model goes back uphill, and so, near there, does
//! the loss: the step overshoots the valley it was meant to descend.
//!
//! This example takes the lecture's MLP at its initial weights on a fixed batch of training
//! digits and, as CS231n's notes do (`for step_size_log in [-10, -9, ..., 1]`), takes one
//! step along `−∇L` for each step size over many decades. Beside each loss it prints the
//! first-order prediction `L − η·‖∇L‖²` and the second-order one, where the first-order
//! prediction parts from the truth (the first step size whose decrease differs from
//! `η·‖∇L‖²` by more than `--gap`), and which step sizes diverge (the loss goes up, or is
//! not finite). Everything is in `f64`: at `η = 1e-10` the loss moves by about 1e-11, which
//! `f32` (7 digits) could not see at all.
//!
//! The curvature along the gradient, `∇Lᵀ·H·∇L`, comes from `H·∇L`, which
//! `gradcheck::hessian_vector` takes from two gradient evaluations; the quadratic model's best
//! step `‖∇L‖²/∇Lᵀ·H·∇L` is printed in the sweep, where it falls, with the loss it reaches.
//!
//! ```text
//! cargo run --release --example step_size
//! cargo run --release --example step_size -- --per-decade 4 --plot docs/figures
//! cargo run --release --example step_size -- --help
//! ```

mod common;

use common::plot::{self, Legend, Panel};
use common::prelude::*;
use common::values;
use downhill::gradcheck::hessian_vector;

/// `--activation`'s help here: why the default is tanh.
const ACTIVATION_HELP: &str =
    "The hidden layers' activation (a smooth one keeps the Taylor expansion valid everywhere)";

/// The loss after one gradient step, for step sizes over many decades, beside the Taylor
/// expansion's first- and second-order predictions.
#[derive(Parser, Debug)]
#[command(
    version,
    allow_negative_numbers = true,
    // A smaller network than the other examples', and a smooth activation.
    mut_arg("hidden", |a| a.default_value("64")),
    mut_arg("activation", |a| a.default_value("tanh").help(ACTIVATION_HELP))
)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Training digits in the fixed batch the loss is taken over
    #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
    examples: usize,
    #[command(flatten)]
    net: HiddenArgs,
    /// log₁₀ of the smallest step size
    #[arg(long, default_value_t = -10, value_parser = clap::value_parser!(i32).range(-300..=300))]
    min_log: i32,
    /// log₁₀ of the largest step size
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(-300..=300))]
    max_log: i32,
    /// Step sizes per decade (1: 1e-10, 1e-9, …, as CS231n's sweep)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    per_decade: u32,
    /// The relative gap between the loss's decrease and η·‖∇L‖² at which the first-order
    /// prediction counts as parted from the truth
    #[arg(long, default_value_t = 0.1, value_parser = values::positive)]
    gap: f64,
    /// Write step_size.svg into this directory
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    values::count(s, 1, "")
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    examples: usize,
    widths: Vec<usize>,
    activation: String,
    params: usize,
    /// L(w) at the initial weights.
    loss: f64,
    /// ‖∇L‖.
    grad_norm: f64,
    /// ∇Lᵀ·H·∇L, the curvature along the gradient (by a centred difference of gradients).
    curvature: f64,
    /// The quadratic model's best step, ‖∇L‖² / ∇Lᵀ·H·∇L (null if the curvature is ≤ 0).
    quadratic_best_step: Option<f64>,
    /// L(w − q·∇L) for that step q.
    quadratic_best_loss: Option<f64>,
    /// The relative gap at which the first-order prediction counts as parted.
    gap: f64,
    /// One row per step size, smallest first.
    steps: Vec<Row>,
    /// The first step size whose relative gap exceeds `gap`.
    parting_step: Option<f64>,
    /// The step sizes after which the loss is higher than before, or not finite.
    diverging_steps: Vec<f64>,
    /// The step size with the lowest loss after it.
    best_step: Option<f64>,
}

/// One step size and what one step of it did.
#[derive(Serialize, Clone, Copy)]
struct Row {
    step_size: f64,
    /// L(w − η·∇L) (null if not finite).
    loss_after: f64,
    /// L(w) − L(w − η·∇L).
    decrease: f64,
    /// η·‖∇L‖², the first-order prediction of the decrease.
    first_order_decrease: f64,
    /// η·‖∇L‖² − ½·η²·∇Lᵀ·H·∇L, the second-order prediction.
    second_order_decrease: f64,
    /// |decrease − η·‖∇L‖²| / (η·‖∇L‖²).
    relative_gap: f64,
    /// The loss went up, or is not finite.
    diverged: bool,
}

/// `Σ a_j·b_j`.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// The loss at `w + t·d`; the model keeps its parameters `w`.
fn loss_along(
    model: &mut Mlp<f64>,
    batch: &Batch<'_, f64>,
    w: &[f64],
    d: &[f64],
    t: f64,
) -> downhill::Result<f64> {
    moved(model, w, d, t);
    let loss = model.loss(batch);
    model.params_mut().copy_from_slice(w);
    loss
}

/// Sets the model's parameters to `w + t·d`.
fn moved(model: &mut Mlp<f64>, w: &[f64], d: &[f64], t: f64) {
    for ((p, &w), &d) in model.params_mut().iter_mut().zip(w).zip(d) {
        *p = w + t * d;
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if cli.min_log > cli.max_log {
        return Err(Failure::Input(format!(
            "--min-log {} is above --max-log {}",
            cli.min_log, cli.max_log
        )));
    }
    let mnist = cli.data.load::<f64>()?;
    let data = mnist.train.take(cli.examples);
    let mut model = cli.net.mlp(&data, cli.run.seed)?;
    let activation = Activation::from(cli.net.activation);
    let batch = data.all();
    let n = model.num_params();

    let w = model.params().to_vec();
    let mut grad = vec![0.0; n];
    let loss = model.loss_and_grad(&batch, &mut grad)?;
    let g2 = dot(&grad, &grad);
    if !(g2.is_finite() && g2 > 0.0) {
        return Err(Failure::Run(format!(
            "the gradient's squared norm is {g2}: there is no slope to step along"
        )));
    }
    // The curvature along the gradient, ∇Lᵀ·H·∇L, from H·∇L: the centred difference of two
    // gradients, at w ± h·∇L/‖∇L‖ (gradcheck::hessian_vector; error O(h²)).
    let mut h_grad = vec![0.0; n];
    hessian_vector(&mut model.on(&batch), &grad, &mut h_grad)?;
    let curvature = dot(&grad, &h_grad);
    // The quadratic model's best step along −∇L, and the loss one step of it reaches.
    let quadratic_best_step = (curvature > 0.0).then(|| g2 / curvature);
    let quadratic_best_loss = match quadratic_best_step {
        Some(q) => Some(loss_along(&mut model, &batch, &w, &grad, -q)?),
        None => None,
    };

    let per_decade = cli.per_decade as i32;
    let down: Vec<f64> = grad.iter().map(|g| -g).collect();
    let mut steps = Vec::new();
    for k in cli.min_log * per_decade..=cli.max_log * per_decade {
        let step_size = 10f64.powf(f64::from(k) / f64::from(per_decade));
        let after = loss_along(&mut model, &batch, &w, &down, step_size)?;
        let first = step_size * g2;
        let decrease = loss - after;
        steps.push(Row {
            step_size,
            loss_after: after,
            decrease,
            first_order_decrease: first,
            second_order_decrease: first - 0.5 * step_size * step_size * curvature,
            relative_gap: (decrease - first).abs() / first,
            diverged: !after.is_finite() || after > loss,
        });
    }
    let parting_step = steps
        .iter()
        // A NaN gap (a step to a non-finite loss) has parted too.
        .find(|r| r.relative_gap.is_nan() || r.relative_gap > cli.gap)
        .map(|r| r.step_size);
    let diverging_steps: Vec<f64> = steps
        .iter()
        .filter(|r| r.diverged)
        .map(|r| r.step_size)
        .collect();
    let best_step = steps
        .iter()
        .filter(|r| r.loss_after.is_finite())
        .min_by(|a, b| a.loss_after.total_cmp(&b.loss_after))
        .map(|r| r.step_size);

    println!(
        "MLP {:?} ({activation}) at its initial weights on {} training digits: L = {loss:.6}, \
         ‖∇L‖ = {:.4}, ∇Lᵀ·H·∇L = {curvature:.4}",
        model.widths(),
        data.len(),
        g2.sqrt()
    );
    println!(
        "one step w ← w − η·∇L; the first-order prediction of the decrease is η·‖∇L‖², the \
         second-order one η·‖∇L‖² − ½·η²·∇Lᵀ·H·∇L"
    );
    println!(
        "{:>9}  {:>14}  {:>11}  {:>11}  {:>12}  {:>9}",
        "step size", "loss after", "decrease", "η·‖∇L‖²", "2nd order", "rel. gap"
    );
    let mut best_shown = quadratic_best_step.is_none();
    for r in &steps {
        if let (Some(q), Some(l), false) = (quadratic_best_step, quadratic_best_loss, best_shown) {
            if q < r.step_size {
                let first = q * g2;
                println!(
                    "{q:>9.3}  {l:>14.10}  {:>11.3e}  {first:>11.3e}  {:>12.3e}  {:>9}  \
                     ← the quadratic model's best step, ‖∇L‖²/∇Lᵀ·H·∇L",
                    loss - l,
                    first - 0.5 * q * q * curvature,
                    ""
                );
                best_shown = true;
            }
        }
        let note = if r.diverged {
            "  uphill: diverges"
        } else if Some(r.step_size) == parting_step {
            "  ← first order parts from the truth"
        } else {
            ""
        };
        println!(
            "{:>9.1e}  {:>14.10}  {:>11.3e}  {:>11.3e}  {:>12.3e}  {:>9.2e}{note}",
            r.step_size,
            r.loss_after,
            r.decrease,
            r.first_order_decrease,
            r.second_order_decrease,
            r.relative_gap
        );
    }
    match parting_step {
        Some(s) => println!(
            "the first-order prediction parts from the loss (relative gap > {}) at η = {s:.1e}",
            cli.gap
        ),
        None => println!(
            "the first-order prediction holds (relative gap ≤ {}) for every step size",
            cli.gap
        ),
    }
    match diverging_steps.first() {
        Some(s) => println!(
            "step sizes from η = {s:.1e} on go uphill: {} of {} diverge",
            diverging_steps.len(),
            steps.len()
        ),
        None => println!("no step size made the loss go up"),
    }
    match (quadratic_best_step, best_step) {
        (Some(q), Some(b)) => println!(
            "the quadratic model's best step is ‖∇L‖²/∇Lᵀ·H·∇L = {q:.3} (H·∇L from two \
             gradients), and it goes uphill past twice that; one step of it takes the loss to \
             {:.6}; the best step size swept is η = {b:.1e}",
            quadratic_best_loss.unwrap_or(f64::NAN)
        ),
        (None, _) => println!("the curvature along the gradient is not positive: no best step"),
        (_, None) => println!("no step size gave a finite loss"),
    }

    if let Some(dir) = &cli.plot {
        write_figure(dir, loss, cli.gap, &steps, parting_step)?;
    }
    if cli.run.json {
        let json = Report {
            examples: data.len(),
            widths: model.widths(),
            activation: activation.to_string(),
            params: n,
            loss,
            grad_norm: g2.sqrt(),
            curvature,
            quadratic_best_step,
            quadratic_best_loss,
            gap: cli.gap,
            steps,
            parting_step,
            diverging_steps,
            best_step,
        };
        cli::print_json(&cli.data, &json)?;
    }
    Ok(())
}

fn write_figure(
    dir: &Path,
    loss: f64,
    gap: f64,
    steps: &[Row],
    parting: Option<f64>,
) -> Result<(), Failure> {
    let x = |r: &Row| r.step_size.log10();
    let (lo, hi) = (steps.first().map_or(0.0, x), steps.last().map_or(1.0, x));
    let finite: Vec<f64> = steps
        .iter()
        .map(|r| r.loss_after)
        .filter(|l| l.is_finite())
        .collect();
    let bottom = finite.iter().copied().fold(loss, f64::min);
    let top = finite.iter().copied().fold(loss, f64::max);
    // Room below the best step for the predictions to part, and above the loss for the
    // steps that overshoot (up to twice the depth of the dip, so the dip stays visible).
    let depth = loss - bottom + 0.05;
    let (y_lo, y_hi) = (
        bottom - 0.3 * depth,
        top.min(loss + 2.0 * depth) + 0.1 * depth,
    );
    // Only the points inside the panel: a prediction heading for −∞ ends at its edge
    // instead of running along it.
    let inside = |value: &dyn Fn(&Row) -> f64| -> Vec<(f64, f64)> {
        steps
            .iter()
            .map(|r| (x(r), value(r)))
            .filter(|&(_, y)| (y_lo..=y_hi).contains(&y))
            .collect()
    };
    let losses = Panel::new("Loss after one step w − η·∇L", "log₁₀ step size η", "loss")
        .x_range(lo, hi)
        .y_range(y_lo, y_hi)
        .legend(Legend::LowerLeft)
        .path("L(w − η·∇L)", inside(&|r| r.loss_after))
        .line(
            "first order: L − η·‖∇L‖²",
            inside(&|r| loss - r.first_order_decrease),
        )
        .line(
            "second order: + ½·η²·∇Lᵀ·H·∇L",
            inside(&|r| loss - r.second_order_decrease),
        )
        .line("L(w), before the step", vec![(lo, loss), (hi, loss)]);
    let mut gaps = Panel::new(
        "How far the first-order prediction is off",
        "log₁₀ step size η",
        "|decrease − η·‖∇L‖²| / η·‖∇L‖² (log)",
    )
    .log_y()
    .x_range(lo, hi)
    .legend(Legend::UpperLeft)
    .path(
        "relative gap",
        steps.iter().map(|r| (x(r), r.relative_gap)).collect(),
    )
    .line(&format!("gap = {gap}"), vec![(lo, gap), (hi, gap)]);
    if let Some(p) = parting {
        let top = steps.iter().map(|r| r.relative_gap).fold(gap, f64::max);
        gaps = gaps.line(
            &format!("parts at η = {p:.0e}"),
            vec![(p.log10(), gap), (p.log10(), top)],
        );
    }
    let path = plot::file_in(dir, "step_size.svg").map_err(Failure::Input)?;
    plot::lines(&path, &[losses, gaps], 2).map_err(Failure::Input)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
