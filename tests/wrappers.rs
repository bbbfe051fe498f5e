//! What a user writes: a model of four methods, and wrappers around the crate's models. A
//! wrapper that leaves the gradient alone forwards one method, `fast_path`, and trains as
//! fast as, and to the same bits as, what it wraps; one that changes the gradient forwards
//! nothing and is correct by default.

mod common;

use common::logging::Logging;
use common::{bits, net, SHIPPED};
use downhill::model::Params;
use downhill::prelude::*;

fn digits() -> Dataset<f32> {
    load_mnist::<f32>(SHIPPED).unwrap().train.take(1024)
}

fn mlp() -> Mlp<f32> {
    net([784, 64, 10], Activation::Relu, 3)
}

#[test]
fn a_logging_wrapper_that_forwards_the_fast_path_trains_to_the_same_bits() {
    let data = digits();
    let trainer = Trainer::new(2).unwrap().seed(7).threads(2).unwrap();
    let sgd = || {
        Sgd::new(0.05f32)
            .unwrap()
            .momentum(0.9)
            .unwrap()
            .batch_size(128)
            .unwrap()
    };
    let mut bare = mlp();
    let mut bare_sgd = sgd();
    trainer.run(&mut bare, &mut bare_sgd, &data, None).unwrap();
    for forward in [true, false] {
        let mut logged = Logging {
            forward_fast_path: forward,
            ..Logging::new(mlp())
        };
        let mut opt = sgd();
        let report = trainer.run(&mut logged, &mut opt, &data, None).unwrap();
        assert_eq!(
            bits(logged.params()),
            bits(bare.params()),
            "forwarded: {forward}"
        );
        assert_eq!(opt.state(), bare_sgd.state(), "forwarded: {forward}");
        // The wrapper saw every step's loss.
        let steps: usize = report.history.iter().map(|e| e.steps).sum();
        assert_eq!(logged.losses.len(), steps, "forwarded: {forward}");
        // Forwarded, the model stepped `W₁` in its kernel (the gradient of what it stepped
        // is not written); not forwarded, the optimizer took the whole step.
        assert_eq!(
            opt.last_gradient().is_none(),
            forward,
            "forwarded: {forward}"
        );
    }
}

/// An `Mlp` with a penalty of the wrapper's own, `½·λ·‖w‖²` on every parameter: it changes
/// the gradient, so it forwards nothing.
struct Penalized {
    inner: Mlp<f32>,
    lambda: f32,
}

impl Params<f32> for Penalized {
    downhill::forward_params!(f32, inner);
}

impl Model<f32> for Penalized {
    fn loss(&mut self, batch: &Batch<'_, f32>) -> Result<f32> {
        let norm: f32 = self.params().iter().map(|w| w * w).sum();
        Ok(self.inner.loss(batch)? + 0.5 * self.lambda * norm)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f32>, grad: &mut [f32]) -> Result<f32> {
        let loss = self.inner.loss_and_grad(batch, grad)?;
        let norm: f32 = self.params().iter().map(|w| w * w).sum();
        for (g, w) in grad.iter_mut().zip(self.inner.params()) {
            *g += self.lambda * w;
        }
        Ok(loss + 0.5 * self.lambda * norm)
    }
}

#[test]
fn a_wrapper_that_changes_the_gradient_forwards_nothing_and_steps_on_its_gradient() {
    let data = digits().take(128);
    let batch = data.all();
    let mut model = Penalized {
        inner: mlp(),
        lambda: 0.1,
    };
    let mut sgd = Sgd::new(0.05f32).unwrap().batch_size(128).unwrap();
    for step in 0..3 {
        // The step the wrapper's gradient asks for, computed by hand.
        let before = model.params().to_vec();
        let mut grad = vec![0.0f32; before.len()];
        model.loss_and_grad(&batch, &mut grad).unwrap();
        let want: Vec<f32> = before
            .iter()
            .zip(&grad)
            .map(|(w, g)| w - 0.05 * g)
            .collect();
        model.params_mut().copy_from_slice(&before);
        sgd.step(&mut model.on(&batch)).unwrap();
        assert_eq!(bits(model.params()), bits(&want), "step {step}");
        assert!(
            sgd.last_gradient().is_some(),
            "step {step}: the optimizer took it all"
        );
    }
}

/// A model of the four methods a user must write, and nothing else: least squares on
/// points, `y ≈ a·x + b`.
struct Line {
    ab: Vec<f64>,
}

struct Points(Vec<(f64, f64)>);

impl downhill::data::Examples for Points {
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Params<f64> for Line {
    fn params(&self) -> &[f64] {
        &self.ab
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.ab
    }
}

impl Model<f64, Points> for Line {
    fn loss(&mut self, batch: &Batch<'_, f64, Points>) -> Result<f64> {
        let mut g = [0.0; 2];
        self.loss_and_grad(batch, &mut g)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f64, Points>, grad: &mut [f64]) -> Result<f64> {
        let (a, b) = (self.ab[0], self.ab[1]);
        let points = &batch.data().0;
        let n = batch.len() as f64;
        let (mut loss, mut ga, mut gb) = (0.0, 0.0, 0.0);
        for i in batch.rows() {
            let (x, y) = points[i];
            let r = a * x + b - y;
            loss += 0.5 * r * r / n;
            ga += r * x / n;
            gb += r / n;
        }
        grad.copy_from_slice(&[ga, gb]);
        Ok(loss)
    }
}

#[test]
fn a_model_of_four_methods_trains_with_every_gradient_method() {
    let points = Points(
        (0..20)
            .map(|i| (i as f64 / 10.0, 3.0 * i as f64 / 10.0 - 1.0))
            .collect(),
    );
    // Full-batch descent with momentum converges to the line; Adam on minibatches of five
    // gets near it.
    let mut gd = GradientDescent::new(0.3).unwrap().momentum(0.5).unwrap();
    let mut adam = Sgd::new(0.1)
        .unwrap()
        .rule(UpdateRule::adam())
        .batch_size(5)
        .unwrap();
    let runs: [(&mut dyn Optimizer<f64>, usize, f64); 2] =
        [(&mut gd, 400, 1e-6), (&mut adam, 300, 1e-2)];
    for (optimizer, epochs, tolerance) in runs {
        let mut line = Line { ab: vec![0.0, 0.0] };
        Trainer::new(epochs)
            .unwrap()
            .run(&mut line, optimizer, &points, None)
            .unwrap();
        let [a, b] = [line.ab[0], line.ab[1]];
        let near = (a - 3.0).abs() < tolerance && (b + 1.0).abs() < tolerance;
        assert!(near, "{} ends at {:?}", optimizer.name(), line.ab);
    }
}
