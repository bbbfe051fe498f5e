//! Lecture step 3, following the slope: the slide's walk, then the whole gradient.
//!
//! First what the slide shows: the current `W` and its loss; `W + h` in the first, second
//! and third dimension, each with its loss; and from each pair the forward difference
//! `(f(W + h) − f(W)) / h`, one entry of `dW` at a time. Then the whole numeric gradient
//! next to the analytic one, how long each takes, and the gradient check (in f64) that says
//! the analytic one is right.
//!
//! The classifier is `scores = x·W + b` on *tiny digits*: the centre 12×12 pixels of each
//! digit averaged in 3×3 blocks to a 4×4 image, each feature standardised. On the full
//! 28×28 digits the first weights belong to the top-left pixel, which is black in every
//! digit, so their slope is exactly 0 and the walk would print nothing but zeros; the tiny
//! digits' first feature sees ink in about half of them.
//!
//! ```text
//! cargo run --release --example numeric_gradient
//! cargo run --release --example numeric_gradient -- --help
//! ```

mod common;

use std::time::Instant;

use common::prelude::*;
use common::values;
use downhill::gradcheck::{numeric_gradient, Difference, GradCheck};

/// Side of the centre square the tiny digits are cut from, in pixels.
const CROP: usize = 12;
/// Side of the blocks the crop is averaged in: a CROP/BLOCK × CROP/BLOCK image.
const BLOCK: usize = 3;
/// Dimensions of `W` the walk nudges, as the slide does.
const WALKED: usize = 3;

/// The slide's walk through the numeric gradient, then the whole numeric gradient next to
/// the analytic one, and the check that they agree.
#[derive(Parser, Debug)]
#[command(version, allow_negative_numbers = true)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    /// Training digits the loss is taken over (at least 2: the features are standardised)
    #[arg(long, default_value_t = 200, value_parser = at_least_two)]
    examples: usize,
    /// Standard deviation of the classifier's random weights, W ~ N(0, scale²)
    #[arg(long, default_value_t = 0.5, value_parser = values::positive)]
    scale: f64,
    /// Step of the slide's forward difference
    #[arg(long, default_value_t = 1e-4, value_parser = values::positive)]
    h: f64,
    /// Step of the gradient check's five-point difference
    #[arg(long, default_value_t = 1e-3)]
    check_h: f64,
    #[command(flatten)]
    run: RunArgs,
}

/// The `--json` line.
#[derive(Serialize)]
struct Report {
    examples: usize,
    /// Features per tiny digit.
    features: usize,
    params: usize,
    scale: f64,
    h: f64,
    /// The loss at W.
    loss: f64,
    /// The slide's steps, one per dimension nudged.
    walk: Vec<WalkStep>,
    max_rel_error: f64,
    max_abs_error: f64,
    numeric_seconds: f64,
    analytic_seconds: f64,
}

/// One dimension of the walk: `W[i]`, `W[i] + h`, the loss there, and the forward
/// difference it gives, beside the analytic partial derivative.
#[derive(Serialize)]
struct WalkStep {
    dimension: usize,
    w: f64,
    w_plus_h: f64,
    loss_plus_h: f64,
    numeric: f64,
    analytic: f64,
}

/// A count of at least 2.
fn at_least_two(s: &str) -> Result<usize, String> {
    values::count(s, 2, " (the features are standardised over them)")
}

/// The first values of `v` with `decimals` decimals, then `…`.
fn head(v: &[f64], decimals: usize) -> String {
    let shown: Vec<String> = v
        .iter()
        .take(6)
        .map(|x| format!("{x:.decimals$}"))
        .collect();
    format!("[{}, …]", shown.join(", "))
}

/// The tiny digits: the centre `CROP`×`CROP` of each square image, averaged in
/// `BLOCK`×`BLOCK` blocks, each feature then standardised over these digits.
fn tiny_digits(digits: &Dataset<f64>) -> Result<Dataset<f64>, Failure> {
    let pixels = digits.num_features();
    let side = (0..=pixels).find(|s| s * s >= pixels).unwrap_or(0);
    if side * side != pixels || side < CROP {
        return Err(Failure::Input(format!(
            "the tiny digits need square images of at least {CROP}×{CROP} pixels; \
             these have {pixels} pixels"
        )));
    }
    let (first, out_side) = ((side - CROP) / 2, CROP / BLOCK);
    let mut image = vec![0.0; pixels];
    let mut features = Vec::with_capacity(digits.len() * out_side * out_side);
    for row in 0..digits.len() {
        digits.gather_row(row, &mut image)?;
        for by in 0..out_side {
            for bx in 0..out_side {
                let mut sum = 0.0;
                for y in first + by * BLOCK..first + (by + 1) * BLOCK {
                    for x in first + bx * BLOCK..first + (bx + 1) * BLOCK {
                        sum += image[y * side + x];
                    }
                }
                features.push(sum / (BLOCK * BLOCK) as f64);
            }
        }
    }
    let x = Matrix::from_vec(features, digits.len(), out_side * out_side)?;
    let tiny = Dataset::from_matrix(x, digits.labels().to_vec(), digits.num_classes())?;
    // eps keeps a block that is blank in every one of these digits at 0 instead of 0/0.
    let standardize = FeatureTransform::standardize(&tiny, 1e-6)?;
    Ok(tiny.with_transform(standardize)?)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let mnist = cli.data.load::<f64>()?;
    let data = tiny_digits(&mnist.train.take(cli.examples))?;
    let mut model = LinearClassifier::<f64>::builder(data.num_features(), data.num_classes())
        .init(Init::Normal(cli.scale))
        .seed(cli.run.seed)
        .build()?;
    let batch = data.all();
    let n = model.num_params();
    let h = cli.h;

    // The slide's walk. Its losses are printed with enough decimals that the difference of
    // the printed numbers, over h, gives the printed entry of dW to a tenth of its last
    // digit, and W with enough that W + h differs from W where it was nudged.
    let h_digits = (-h.log10()).ceil().max(0.0) as usize;
    let loss_decimals = 4 + h_digits;
    let w_decimals = h_digits.max(2);
    let mut analytic = vec![0.0; n];
    let loss = model.loss_and_grad(&batch, &mut analytic)?;
    println!(
        "The slide's walk: a linear classifier, scores = x·W + b, at W ~ N(0, {}²), b = 0, on \
         {} training digits\nshrunk to {} features ({CROP}×{CROP} centre pixels in \
         {BLOCK}×{BLOCK} blocks, standardised); h = {h}\n",
        cli.scale,
        data.len(),
        data.num_features(),
    );
    let w = model.params().to_vec();
    println!(
        "{:<20}{}  loss {loss:.loss_decimals$}",
        "current W:",
        head(&w, w_decimals)
    );
    let ordinal = ["first", "second", "third"];
    let mut walk = Vec::with_capacity(WALKED);
    for (i, name) in ordinal.iter().enumerate().take(WALKED.min(n)) {
        model.params_mut()[i] = w[i] + h;
        let loss_plus_h = model.loss(&batch)?;
        let nudged = model.params().to_vec();
        model.params_mut()[i] = w[i];
        println!(
            "{:<20}{}  loss {loss_plus_h:.loss_decimals$}",
            format!("W + h ({name} dim):"),
            head(&nudged, w_decimals),
        );
        walk.push(WalkStep {
            dimension: i,
            w: w[i],
            w_plus_h: nudged[i],
            loss_plus_h,
            numeric: (loss_plus_h - loss) / h,
            analytic: analytic[i],
        });
    }
    println!();
    let mut built = Vec::new();
    for step in &walk {
        println!(
            "dW[{}] = ({:.loss_decimals$} − {loss:.loss_decimals$}) / {h} = {}",
            step.dimension,
            step.loss_plus_h,
            entry(step.numeric)
        );
        built.push(entry(step.numeric));
        println!("dW = [{}, ?, …]", built.join(", "));
    }

    // The whole gradient: one forward difference per coordinate against one backward pass.
    let t0 = Instant::now();
    model.loss_and_grad(&batch, &mut analytic)?;
    let analytic_seconds = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let mut numeric = vec![0.0; n];
    numeric_gradient(&mut model.on(&batch), h, Difference::Forward, &mut numeric)?;
    let numeric_seconds = t0.elapsed().as_secs_f64();
    println!("\nThe whole gradient, all {n} dimensions:");
    println!(
        "numeric  dW = {}  ({n} forward differences, {:.2} ms)",
        head(&numeric, 4),
        numeric_seconds * 1e3
    );
    println!(
        "analytic dW = {}  (one backward pass, {:.3} ms)",
        head(&analytic, 4),
        analytic_seconds * 1e3
    );
    println!(
        "the analytic gradient was {:.0}× faster; the numeric one costs a loss per parameter",
        numeric_seconds / analytic_seconds.max(1e-9)
    );
    // The check itself uses the five-point difference: its O(h⁴) error resolves even the
    // coordinates whose gradient nearly cancels over the batch, where the centred
    // difference's O(h²) term would dominate the comparison.
    let report = GradCheck::new()
        .h(cli.check_h)?
        .difference(Difference::FivePoint)
        .run(&mut model, &batch)?;
    println!("gradient check (five-point differences):\n{report}");
    if cli.run.json {
        let json = Report {
            examples: data.len(),
            features: data.num_features(),
            params: n,
            scale: cli.scale,
            h,
            loss,
            walk,
            max_rel_error: report.max_rel_error,
            max_abs_error: report.max_abs_error,
            numeric_seconds,
            analytic_seconds,
        };
        cli::print_json(&cli.data, &json)?;
    }
    Ok(())
}

/// An entry of `dW` as the walk prints it: three decimals, like the slide's `−2.5`, `0.6`.
fn entry(v: f64) -> String {
    format!("{v:.3}")
}

fn main() -> ExitCode {
    cli::main(|| run(Cli::parse()))
}
