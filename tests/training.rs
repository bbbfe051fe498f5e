//! The training loop: seeded runs are reproducible to the bit, the report counts what was
//! done, divergence is an error, the lecture's "what goes wrong" (a zig-zag across an
//! ill-conditioned valley, a stall at a saddle point) on two-parameter toys, and a linear
//! classifier that learns real digits.

mod common;

use common::{momentum_sgd, net, synthetic, Quadratic, SHIPPED};
use downhill::error::{ErrorKind, Quantity};
use downhill::model::{FnObjective, Objective};
use downhill::prelude::*;

fn bits(params: &[f32]) -> Vec<u32> {
    params.iter().map(|w| w.to_bits()).collect()
}

/// Everything in a record but the wall-clock time.
fn facts(r: &EpochRecord) -> (usize, u64, Option<u64>, usize, usize) {
    (
        r.epoch,
        r.train_loss.to_bits(),
        r.valid_accuracy.map(f64::to_bits),
        r.steps,
        r.samples,
    )
}

#[test]
fn same_seed_same_run_to_the_bit() {
    let mnist = load_mnist::<f32>(SHIPPED).unwrap();
    let train = mnist.train.take(1000);
    let valid = mnist.test.take(300);
    let run = |trainer_seed: u64| {
        let mut mlp = net::<f32>([784, 32, 10], Activation::Sigmoid, 1);
        let mut sgd = momentum_sgd(0.1, 0.9, 50);
        let report = Trainer::new(2)
            .unwrap()
            .seed(trainer_seed)
            .run(&mut mlp, &mut sgd, &train, Some(&valid))
            .unwrap();
        let history: Vec<_> = report.history.iter().map(facts).collect();
        (bits(mlp.params()), history)
    };
    let (p1, h1) = run(42);
    let (p2, h2) = run(42);
    assert_eq!(h1, h2, "histories differ");
    assert!(p1 == p2, "parameters differ between identical runs");
    assert_eq!(h1.len(), 2);

    let (p3, h3) = run(43);
    let differing = p1.iter().zip(&p3).filter(|(a, b)| a != b).count();
    assert!(
        differing > p1.len() / 2,
        "another shuffle seed changed only {differing} of {} parameters",
        p1.len()
    );
    assert_ne!(
        h1[0].1, h3[0].1,
        "another shuffle seed, the same epoch-1 loss"
    );
}

#[test]
fn report_counts_steps_samples_and_validation() {
    let data = synthetic::<f64>(103, 3, 1.0, 1);
    let steps_and_samples = |report: &TrainReport| -> Vec<(usize, usize)> {
        report
            .history
            .iter()
            .map(|r| (r.steps, r.samples))
            .collect()
    };
    let model = || LinearClassifier::<f64>::builder(3, 2).build().unwrap();

    // Minibatches of 10 over 103 examples: 10 full batches per epoch, the last 3 dropped.
    let mut m = model();
    let mut sgd = Sgd::new(0.1).unwrap().batch_size(10).unwrap();
    let mut seen = Vec::new();
    let report = Trainer::new(3)
        .unwrap()
        .run_with(&mut m, &mut sgd, &data, None, &mut |r: &EpochRecord| {
            seen.push(r.clone())
        })
        .unwrap();
    assert_eq!(seen, report.history, "on_epoch saw every record");
    assert_eq!(report.history.len(), 3);
    for (i, r) in report.history.iter().enumerate() {
        assert_eq!((r.epoch, r.steps, r.samples), (i + 1, 10, 100));
        assert_eq!(r.valid_accuracy, None, "no validation set");
        assert!(r.train_loss.is_finite() && r.train_loss > 0.0);
    }
    assert_eq!(report.samples(), 3 * 10 * 10);
    assert_eq!(report.final_loss(), Some(report.history[2].train_loss));

    // With a validation set every epoch reports its accuracy, and it is the real one.
    let valid = synthetic(40, 3, 1.0, 2);
    let mut m = model();
    let mut sgd = Sgd::new(0.1).unwrap().batch_size(10).unwrap();
    let report = Trainer::new(2)
        .unwrap()
        .run(&mut m, &mut sgd, &data, Some(&valid))
        .unwrap();
    assert!(report.history.iter().all(|r| r.valid_accuracy.is_some()));
    let last = report.history[1].valid_accuracy.unwrap();
    assert_eq!(last, accuracy(&mut m, &valid).unwrap());

    // Full-batch: one step of every example per epoch.
    let mut gd = GradientDescent::new(0.1).unwrap();
    let report = Trainer::new(4)
        .unwrap()
        .run(&mut model(), &mut gd, &data, None)
        .unwrap();
    assert_eq!(steps_and_samples(&report), [(1, 103); 4]);
    assert_eq!(report.samples(), 4 * 103);

    // A dataset smaller than one batch is one batch of everything.
    let small = synthetic(7, 3, 1.0, 3);
    let mut sgd = Sgd::new(0.1).unwrap().batch_size(10).unwrap();
    let report = Trainer::new(2)
        .unwrap()
        .run(&mut model(), &mut sgd, &small, None)
        .unwrap();
    assert_eq!(steps_and_samples(&report), [(1, 7); 2]);

    // An empty training set is an error, not a report of nothing.
    let empty = data.take(0);
    let mut sgd = Sgd::new(0.1).unwrap();
    let err = Trainer::new(1)
        .unwrap()
        .run(&mut model(), &mut sgd, &empty, None)
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidParameter {
                name: "training set",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn huge_learning_rate_is_divergence_not_nan() {
    // Features of ±1000 and λ = 1: with lr = 1e30 each step multiplies the weights by about
    // −lr·λ, so ‖W‖² overflows within a handful of steps.
    let data = synthetic::<f64>(64, 4, 1000.0, 4);
    let mut model = LinearClassifier::<f64>::builder(4, 2)
        .l2(1.0)
        .build()
        .unwrap();
    let mut sgd = Sgd::new(1e30).unwrap().batch_size(16).unwrap();
    let result = Trainer::new(10)
        .unwrap()
        .run(&mut model, &mut sgd, &data, None);
    let e = result.unwrap_err();
    match *e.kind() {
        ErrorKind::Diverged {
            epoch: Some(epoch),
            step: Some(step),
            quantity,
            value,
        } => {
            assert!(
                !value.is_finite(),
                "diverged with a finite {quantity} {value}"
            );
            assert!((1..40).contains(&step), "step {step}");
            assert_eq!(
                epoch,
                step / 4 + 1,
                "64 examples in batches of 16: 4 steps an epoch"
            );
        }
        ref other => panic!("expected a placed divergence, got {other:?}"),
    }
    assert!(
        model.params().iter().all(|w| w.is_finite()),
        "the last finite parameters"
    );
}

/// The lecture's valley `½(100·w0² + w1²)`: curvature 100 across it, 1 along it.
fn valley(w0: f64, w1: f64) -> Quadratic {
    Quadratic {
        curvature: vec![100.0, 1.0],
        w: vec![w0, w1],
    }
}

fn saddle_loss(w: &[f64]) -> f64 {
    w[0] * w[0] - w[1] * w[1]
}

fn saddle_grad(w: &[f64], g: &mut [f64]) {
    g[0] = 2.0 * w[0];
    g[1] = -2.0 * w[1];
}

/// The saddle `w0² − w1²`: a minimum along w0, a maximum along w1.
type Saddle = FnObjective<f64, fn(&[f64]) -> f64, fn(&[f64], &mut [f64])>;

fn saddle(w0: f64, w1: f64) -> Saddle {
    FnObjective::new(vec![w0, w1], saddle_loss, saddle_grad)
}

#[test]
fn ill_conditioned_valley_zig_zags_across_and_crawls_along() {
    // Just under the stability limit 2/100 of the steep direction.
    let mut gd = GradientDescent::new(0.019).unwrap();
    let mut toy = valley(1.0, 1.0);
    let mut path = vec![(1.0, 1.0)];
    for _ in 0..20 {
        gd.step(&mut toy).unwrap();
        path.push((toy.w[0], toy.w[1]));
    }
    for (k, pair) in path.windows(2).enumerate() {
        let ((a0, a1), (b0, b1)) = (pair[0], pair[1]);
        // Across the valley: the sign flips every step (w0 ← (1 − 1.9)·w0 = −0.9·w0).
        assert!(
            a0 * b0 < 0.0,
            "step {k}: w0 {a0} -> {b0} did not change sign"
        );
        assert!((b0 / a0 + 0.9).abs() < 1e-12, "step {k}: ratio {}", b0 / a0);
        // Along it: the same sign, barely shorter (w1 ← 0.981·w1).
        assert!(0.0 < b1 && b1 < a1, "step {k}: w1 {a1} -> {b1}");
    }
    let w1 = path[20].1;
    assert!(w1 > 0.6, "w1 = {w1}: it should still be crawling");
    assert!((w1 - 0.981f64.powi(20)).abs() < 1e-12);

    // Just over the limit the zig-zag grows instead: |1 − 100·0.021| = 1.1.
    let mut gd = GradientDescent::new(0.021).unwrap();
    let mut toy = valley(1.0, 1.0);
    for _ in 0..20 {
        gd.step(&mut toy).unwrap();
    }
    assert!(toy.w[0].abs() > 6.0, "w0 = {}", toy.w[0]);
}

#[test]
fn gradient_descent_stalls_exactly_at_a_saddle() {
    let mut gd = GradientDescent::new(0.1).unwrap();
    let mut toy = saddle(0.0, 0.0);
    for _ in 0..100 {
        assert_eq!(gd.step(&mut toy).unwrap(), 0.0);
        assert_eq!(gd.last_gradient(), Some(&[0.0, 0.0][..]));
    }
    assert_eq!(toy.point(), [0.0, 0.0], "zero gradient, no movement");

    // Yet it is no minimum: a nudge of 1e-6 along w1 grows by 1.2 per step and the loss
    // falls below the saddle's.
    let mut toy = saddle(0.5, 1e-6);
    let mut last = f64::INFINITY;
    for _ in 0..60 {
        let loss = gd.step(&mut toy).unwrap();
        assert!(loss < last);
        last = loss;
    }
    assert!(toy.point()[0].abs() < 1e-5, "w0 = {}", toy.point()[0]);
    assert!(toy.point()[1] > 1e-2, "w1 = {}", toy.point()[1]);
    assert!(toy.loss().unwrap() < 0.0);
}

#[test]
fn diverging_toy_stops_at_the_first_infinite_loss() {
    // With lr = 1e30, w0 ← (1 − 1e32)·w0: the loss 50·w0² is about 5e(64k + 1) at step k,
    // finite up to k = 4 and infinite at k = 5.
    let mut toy = valley(1.0, 1.0);
    let mut sgd = Sgd::new(1e30).unwrap();
    let mut epochs = 0;
    let err = Trainer::new(20)
        .unwrap()
        .minimize_with(&mut toy, &mut sgd, &mut |_: &EpochRecord| epochs += 1)
        .unwrap_err();
    match *err.kind() {
        ErrorKind::Diverged {
            epoch,
            step,
            quantity,
            value,
        } => {
            assert_eq!((epoch, step, quantity), (Some(6), Some(5), Quantity::Loss));
            assert_eq!(value, f64::INFINITY);
        }
        ref other => panic!("expected a divergence, got {other:?}"),
    }
    assert_eq!(epochs, 5, "five epochs completed before the divergent one");
}

#[test]
fn linear_classifier_learns_digits() {
    let mnist = load_mnist::<f32>(SHIPPED).unwrap();
    let train = mnist.train.take(2000);
    let mut model = LinearClassifier::<f32>::builder(784, 10).build().unwrap();
    let before = accuracy(&mut model, &mnist.test).unwrap();
    let mut sgd = Sgd::new(0.1).unwrap().batch_size(64).unwrap();
    let report = Trainer::new(3)
        .unwrap()
        .run(&mut model, &mut sgd, &train, None)
        .unwrap();
    let after = accuracy(&mut model, &mnist.test).unwrap();
    assert!(
        after > 0.8,
        "test accuracy {after} (before training {before})"
    );
    assert!(before < 0.3, "an untrained classifier scored {before}");
    let losses: Vec<f64> = report.history.iter().map(|r| r.train_loss).collect();
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    assert_eq!(report.samples(), 3 * 31 * 64);
}
