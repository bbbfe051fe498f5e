//! The four optimizers: hyper-parameters validated on construction, the search methods keep
//! the best parameters they have seen, gradient descent and SGD (with momentum) take exactly
//! the step their formulas say, and all four work behind `dyn Optimizer` in the `Trainer`.

mod common;

use common::{bits, momentum_sgd, net, separable};
use downhill::error::ErrorKind;
use downhill::optim::{Batching, RuleState};
use downhill::prelude::*;

fn linear(seed: u64) -> LinearClassifier<f64> {
    LinearClassifier::builder(2, 2).seed(seed).build().unwrap()
}

/// Asserts `result` is an `InvalidParameter` error for `name` with the formatted `value`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T>, name: &str, value: &str) {
    let err = result.expect_err("expected an InvalidParameter error");
    match err.kind() {
        ErrorKind::InvalidParameter {
            name: n, value: v, ..
        } => {
            assert_eq!(*n, name, "{err}");
            assert_eq!(v, value, "{err}");
        }
        other => panic!("expected InvalidParameter {{ name: {name:?} }}, got {other:?}"),
    }
}

const BAD_RATES: [(f64, &str); 5] = [
    (0.0, "0"),
    (-0.5, "-0.5"),
    (f64::NAN, "NaN"),
    (f64::INFINITY, "inf"),
    (f64::NEG_INFINITY, "-inf"),
];

#[test]
fn learning_rates_are_validated() {
    for (lr, text) in BAD_RATES {
        assert_invalid(Sgd::<f64>::new(lr), "learning_rate", text);
        assert_invalid(GradientDescent::<f64>::new(lr), "learning_rate", text);
        assert_invalid(RandomSearch::<f64>::new(lr, 0), "scale", text);
        assert_invalid(LocalSearch::<f64>::new(lr, 0), "step_size", text);
    }
    // f32 too: the value is formatted as the caller's type.
    assert_invalid(Sgd::<f32>::new(-2.5), "learning_rate", "-2.5");
    // The smallest positive values are fine.
    assert_eq!(
        Sgd::<f64>::new(1e-300).unwrap().learning_rate(),
        Some(1e-300)
    );
    assert_eq!(
        GradientDescent::<f64>::new(f64::MIN_POSITIVE)
            .unwrap()
            .learning_rate(),
        Some(f64::MIN_POSITIVE)
    );
}

#[test]
fn sgd_settings_are_validated() {
    let sgd = || Sgd::<f64>::new(0.1).unwrap();
    assert_invalid(sgd().batch_size(0), "batch_size", "0");
    assert_invalid(sgd().momentum(1.0), "momentum", "1");
    assert_invalid(sgd().momentum(-0.1), "momentum", "-0.1");
    assert_invalid(sgd().momentum(f64::NAN), "momentum", "NaN");
    assert_invalid(sgd().momentum(f64::INFINITY), "momentum", "inf");
    // The edges of the valid range: μ = 0 is the plain rule.
    assert_eq!(
        sgd().momentum(0.0).unwrap().update_rule(),
        UpdateRule::plain()
    );
    let almost_one = 1.0 - f64::EPSILON;
    assert_eq!(
        sgd()
            .momentum(almost_one)
            .unwrap()
            .update_rule()
            .momentum_coefficient(),
        Some(almost_one)
    );
    assert_eq!(
        sgd().batch_size(1).unwrap().batching(),
        Batching::MiniBatch(1)
    );
}

#[test]
fn trainer_and_model_settings_are_validated() {
    assert_invalid(Trainer::new(0), "epochs", "0");
    assert!(Trainer::new(1).is_ok());

    let mlp = || {
        Mlp::<f64>::builder(4)
            .hidden(3, Activation::Tanh)
            .classes(2)
    };
    assert_invalid(mlp().l2(f64::NAN).build(), "l2", "NaN");
    assert_invalid(mlp().l2(-0.5).build(), "l2", "-0.5");
    assert_invalid(mlp().l2(f64::INFINITY).build(), "l2", "inf");
    assert_invalid(mlp().classes(0).build(), "classes", "0");
    assert_invalid(
        mlp().hidden(0, Activation::Relu).build(),
        "hidden",
        "0 (layer 1)",
    );
    assert_invalid(
        Mlp::<f64>::builder(4)
            .hidden(0, Activation::Relu)
            .classes(2)
            .build(),
        "hidden",
        "0 (layer 0)",
    );
    assert_invalid(Mlp::<f64>::builder(0).classes(2).build(), "inputs", "0");
    assert_invalid(
        LinearClassifier::<f64>::builder(3, 2).l2(-1.0).build(),
        "l2",
        "-1",
    );
    assert!(mlp().l2(0.0).build().is_ok());
}

#[test]
fn batching_is_reported() {
    let sgd = Sgd::<f64>::new(0.1).unwrap();
    assert_eq!(sgd.batching(), Batching::MiniBatch(128), "default size");
    assert_eq!(
        sgd.batch_size(32).unwrap().batching(),
        Batching::MiniBatch(32)
    );
    assert_eq!(
        GradientDescent::<f64>::new(0.1).unwrap().batching(),
        Batching::FullBatch
    );
    assert_eq!(
        RandomSearch::<f64>::new(0.1, 0).unwrap().batching(),
        Batching::FullBatch
    );
    assert_eq!(
        LocalSearch::<f64>::new(0.1, 0).unwrap().batching(),
        Batching::FullBatch
    );
}

#[test]
fn random_search_keeps_the_best() {
    let data = separable(40, 1);
    let all = data.all();
    let mut model = linear(0);
    let mut rs = RandomSearch::new(1.0, 7).unwrap();
    assert_eq!((rs.best_loss(), rs.tries()), (None, 0));

    let mut returned = Vec::new();
    let mut tried = Vec::new();
    for i in 0..40 {
        let loss = rs.step(&mut model.on(&all)).unwrap();
        assert_eq!(rs.tries(), i + 1);
        assert_eq!(Some(loss), rs.best_loss(), "step returns the best loss");
        // The model holds the parameters that gave the best loss, exactly.
        assert_eq!(model.loss(&all).unwrap(), loss, "step {i}");
        tried.push(rs.last_loss().unwrap());
        returned.push(loss);
    }
    assert!(
        returned.windows(2).all(|w| w[1] <= w[0]),
        "best loss went up: {returned:?}"
    );
    // The best is the minimum over all tries, and the search did improve on its first try.
    let min = tried.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(rs.best_loss(), Some(min));
    assert!(min < tried[0], "no try beat the first: {tried:?}");
    // Some tries were worse than the best (otherwise "keeping the best" is untested).
    assert!(tried.iter().any(|&l| l > min));
}

#[test]
fn local_search_only_goes_down() {
    let data = separable(40, 2);
    let all = data.all();
    let mut model = linear(0);
    let start = model.loss(&all).unwrap();
    let mut ls = LocalSearch::new(0.5, 11).unwrap();

    let mut returned = vec![start];
    for i in 0..100 {
        let loss = ls.step(&mut model.on(&all)).unwrap();
        assert_eq!(ls.tries(), i + 1);
        assert_eq!(Some(loss), ls.best_loss());
        assert_eq!(model.loss(&all).unwrap(), loss, "step {i}");
        assert!(ls.last_loss().unwrap() >= loss);
        returned.push(loss);
    }
    assert!(
        returned.windows(2).all(|w| w[1] <= w[0]),
        "loss went up: {returned:?}"
    );
    assert!(ls.accepted() > 0 && ls.accepted() < ls.tries());
    assert!(returned[100] < 0.5 * start, "{start} -> {}", returned[100]);
}

#[test]
fn local_search_beats_random_search_on_the_same_budget() {
    let data = separable(60, 3);
    let all = data.all();
    let budget = 200;
    for seed in [1, 2, 3] {
        let mut random_model = linear(seed);
        let mut rs = RandomSearch::new(1.0, seed).unwrap();
        let mut local_model = linear(seed);
        let mut ls = LocalSearch::new(1.0, seed).unwrap();
        for _ in 0..budget {
            rs.step(&mut random_model.on(&all)).unwrap();
            ls.step(&mut local_model.on(&all)).unwrap();
        }
        let (r, l) = (rs.best_loss().unwrap(), ls.best_loss().unwrap());
        assert!(l < r, "seed {seed}: local {l} vs random {r}");
        assert_eq!(local_model.loss(&all).unwrap(), l);
        assert_eq!(random_model.loss(&all).unwrap(), r);
    }
}

#[test]
fn gradient_descent_step_is_w_minus_lr_grad() {
    let data = separable(12, 4);
    let all = data.all();
    let mut model = Mlp::<f64>::builder(2)
        .hidden(5, Activation::Tanh)
        .classes(2)
        .l2(0.01)
        .seed(9)
        .build()
        .unwrap();
    let lr = 0.3;
    let mut gd = GradientDescent::new(lr).unwrap();
    assert!(gd.last_gradient().is_none());

    for _ in 0..3 {
        let mut reference = model.clone();
        let mut grad = vec![0.0; model.num_params()];
        let expected_loss = reference.loss_and_grad(&all, &mut grad).unwrap();
        let expected: Vec<f64> = reference
            .params()
            .iter()
            .zip(&grad)
            .map(|(&w, &g)| w - lr * g)
            .collect();
        assert!(grad.iter().any(|&g| g != 0.0));

        let loss = gd.step(&mut model.on(&all)).unwrap();
        assert_eq!(loss.to_bits(), expected_loss.to_bits(), "loss before step");
        assert_eq!(gd.last_gradient(), Some(&grad[..]));
        assert_eq!(
            bits(model.params()),
            bits(&expected),
            "parameters after one step"
        );
    }
}

#[test]
fn gradient_descent_decreases_the_loss() {
    let data = separable(40, 5);
    let all = data.all();
    let mut model = linear(0);
    let mut gd = GradientDescent::new(0.5).unwrap();
    let mut losses = Vec::new();
    for _ in 0..50 {
        losses.push(gd.step(&mut model.on(&all)).unwrap());
    }
    losses.push(model.loss(&all).unwrap());
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "not strictly decreasing: {losses:?}"
    );
    // From ln 2 (near-zero weights) to well below it.
    assert!((losses[0] - 2f64.ln()).abs() < 1e-3, "{}", losses[0]);
    assert!(losses[50] < 0.3, "{}", losses[50]);
}

/// The velocity `sgd` keeps (empty for the plain rule and before the first step).
fn velocity(sgd: &Sgd<f64>) -> Vec<f64> {
    match sgd.rule_state() {
        RuleState::Momentum { velocity } => velocity.clone(),
        _ => Vec::new(),
    }
}

#[test]
fn sgd_momentum_velocity_is_mu_g1_plus_g2() {
    let data = separable(10, 6);
    let (first, second) = ([0usize, 3, 5], [1usize, 2, 8, 9]);
    let b1 = data.batch(&first).unwrap();
    let b2 = data.batch(&second).unwrap();
    let mut model = net::<f64>([2, 4, 2], Activation::Sigmoid, 5);
    let (lr, mu) = (0.25, 0.9);
    let mut sgd = Sgd::new(lr).unwrap().momentum(mu).unwrap();
    assert!(velocity(&sgd).is_empty());
    let n = model.num_params();

    // g1 at the starting parameters, on the first batch.
    let mut g1 = vec![0.0; n];
    let l1 = model.clone().loss_and_grad(&b1, &mut g1).unwrap();
    let p0 = model.params().to_vec();
    assert_eq!(sgd.step(&mut model.on(&b1)).unwrap(), l1);
    assert_eq!(velocity(&sgd), g1, "v1 = g1");
    let p1: Vec<f64> = p0.iter().zip(&g1).map(|(&w, &g)| w - lr * g).collect();
    assert_eq!(model.params(), &p1[..]);

    // g2 at the parameters after the first step, on the second batch: exactly the formula,
    // the fused pass computing μ·v + g and w − lr·v in the order they are written.
    let mut g2 = vec![0.0; n];
    let l2 = model.clone().loss_and_grad(&b2, &mut g2).unwrap();
    assert_eq!(sgd.step(&mut model.on(&b2)).unwrap(), l2);
    let v2: Vec<f64> = g1.iter().zip(&g2).map(|(&a, &b)| mu * a + b).collect();
    assert_eq!(bits(&velocity(&sgd)), bits(&v2), "v2 = mu*g1 + g2");
    let p2: Vec<f64> = p1.iter().zip(&v2).map(|(&w, &v)| w - lr * v).collect();
    assert_eq!(bits(model.params()), bits(&p2));
    // Momentum made a difference: plain SGD would have stepped by g2 alone.
    assert!(v2.iter().zip(&g2).any(|(v, g)| v != g));
}

#[test]
fn sgd_without_momentum_keeps_no_velocity() {
    let data = separable(8, 7);
    let all = data.all();
    let mut model = linear(1);
    let mut grad = vec![0.0; model.num_params()];
    model.clone().loss_and_grad(&all, &mut grad).unwrap();
    let before = model.params().to_vec();
    let mut sgd = Sgd::new(0.5).unwrap();
    sgd.step(&mut model.on(&all)).unwrap();
    assert_eq!(sgd.rule_state(), &RuleState::Plain);
    let want: Vec<f64> = before
        .iter()
        .zip(&grad)
        .map(|(&w, &g)| w - 0.5 * g)
        .collect();
    assert_eq!(model.params(), &want[..]);
}

#[test]
fn all_four_optimizers_run_behind_dyn() {
    let data = separable(40, 8);
    let mut optimizers: Vec<Box<dyn Optimizer<f64>>> = vec![
        Box::new(RandomSearch::new(1.0, 1).unwrap()),
        Box::new(LocalSearch::new(0.5, 1).unwrap()),
        Box::new(GradientDescent::new(0.5).unwrap()),
        Box::new(momentum_sgd(0.5, 0.5, 8)),
    ];
    let names: Vec<&str> = optimizers.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["random", "local", "gd", "sgd"]);

    let trainer = Trainer::new(20).unwrap().seed(3);
    for opt in &mut optimizers {
        let mut model = linear(0);
        let start = model.loss(&data.all()).unwrap();
        let report = trainer
            .run(&mut model, opt.as_mut(), &data, Some(&data))
            .unwrap();
        let name = opt.name();
        assert_eq!(report.history.len(), 20, "{name}");
        let steps = if name == "sgd" { 5 } else { 1 };
        assert!(
            report.history.iter().all(|e| e.steps == steps),
            "{name}: {:?}",
            report.history
        );
        let end = model.loss(&data.all()).unwrap();
        assert!(end < start, "{name}: {start} -> {end}");
        let acc = report.history.last().unwrap().valid_accuracy.unwrap();
        assert!(acc > 0.7, "{name}: accuracy {acc}");
    }
}

/// An objective whose loss cannot be evaluated away from the origin.
struct NearOrigin(Vec<f64>);

impl Params<f64> for NearOrigin {
    downhill::forward_params!(f64, 0);
}

impl downhill::model::Objective<f64> for NearOrigin {
    fn loss(&mut self) -> Result<f64> {
        if self.0.iter().any(|w| w.abs() > 0.5) {
            // Any error of the objective's own will do.
            return Err(Matrix::<f64>::from_vec(vec![], 1, 1).unwrap_err());
        }
        Ok(self.0.iter().map(|w| w * w).sum())
    }
    fn loss_and_grad(&mut self, grad: &mut [f64]) -> Result<f64> {
        grad.iter_mut().zip(&self.0).for_each(|(g, w)| *g = 2.0 * w);
        self.loss()
    }
}

#[test]
fn a_search_try_that_fails_leaves_the_parameters_where_they_were() {
    let start = vec![0.1, -0.2];
    let mut f = NearOrigin(start.clone());
    let mut rs = RandomSearch::new(100.0, 1).unwrap();
    assert!(rs.step(&mut f).is_err());
    assert_eq!(f.0, start, "random search put the failed try back");
    assert_eq!(
        rs.tries(),
        0,
        "a try that could not be evaluated is not counted"
    );
    let mut ls = LocalSearch::new(100.0, 1).unwrap();
    assert!(ls.step(&mut f).is_err());
    assert_eq!(f.0, start, "local search put the failed try back");
}
