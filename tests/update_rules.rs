//! Every update rule, checked against a trajectory of 3 steps computed by hand (and with a
//! few lines of plain Python floats for the rules with square roots), on the 2-parameter
//! bowl `f(w) = w₀² + 2·w₁²` from `w = (1, −1)`, whose gradient is `g = (2·w₀, 4·w₁)`.
//! Each trajectory runs through both `Sgd` and `GradientDescent` (one implementation with two
//! names: they must agree). Then: the state each rule keeps, saved and restored mid-run,
//! continues the run exactly, and a bad state is an error that changes nothing.

mod common;

use approx::assert_relative_eq;
use common::Quadratic;
use downhill::error::ErrorKind;
use downhill::optim::{RuleState, StateDict};
use downhill::prelude::*;

/// The parameters after each of `steps` steps of `opt` on the bowl from `w = (1, −1)`.
fn trajectory(opt: &mut dyn Optimizer<f64>, steps: usize) -> Vec<[f64; 2]> {
    let mut bowl = Quadratic::bowl();
    (0..steps)
        .map(|_| {
            opt.step(&mut bowl).unwrap();
            [bowl.w[0], bowl.w[1]]
        })
        .collect()
}

#[track_caller]
fn assert_path(got: &[[f64; 2]], want: &[[f64; 2]], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        for j in 0..2 {
            assert_relative_eq!(g[j], w[j], max_relative = 1e-12, epsilon = 1e-14);
        }
    }
}

/// Runs `rule` (plus L2 `weight_decay` and `clip`) through `Sgd` and `GradientDescent` at
/// `lr` and checks both against `want`; returns the Sgd's state after the 3 steps.
#[track_caller]
fn check_rule(
    rule: UpdateRule,
    lr: f64,
    weight_decay: f64,
    clip: Option<f64>,
    want: &[[f64; 2]; 3],
) -> StateDict<f64> {
    let mut sgd = Sgd::new(lr).unwrap().rule(rule).batch_size(1).unwrap();
    let mut gd = GradientDescent::new(lr).unwrap().rule(rule);
    if weight_decay > 0.0 {
        sgd = sgd.weight_decay(weight_decay).unwrap();
        gd = gd.weight_decay(weight_decay).unwrap();
    }
    if let Some(c) = clip {
        sgd = sgd.clip_grad_norm(c).unwrap();
        gd = gd.clip_grad_norm(c).unwrap();
    }
    assert_path(&trajectory(&mut sgd, 3), want, "sgd");
    assert_path(&trajectory(&mut gd, 3), want, "gd");
    assert_eq!(sgd.state(), gd.state(), "sgd and gd keep the same state");
    sgd.state()
}

#[track_caller]
fn assert_buffer(state: &StateDict<f64>, name: &str, want: [f64; 2]) {
    let b = state
        .buffer(name)
        .unwrap_or_else(|| panic!("no {name} in {state:?}"));
    assert_eq!(b.len(), 2);
    for j in 0..2 {
        assert_relative_eq!(b[j], want[j], max_relative = 1e-12, epsilon = 1e-14);
    }
}

#[test]
fn plain_is_w_minus_lr_g() {
    // lr 0.1: w₀ ← w₀ − 0.1·2w₀ = 0.8·w₀, w₁ ← w₁ − 0.1·4w₁ = 0.6·w₁.
    // w₀: 1 → 0.8 → 0.64 → 0.512;  w₁: −1 → −0.6 → −0.36 → −0.216.
    let s = check_rule(
        UpdateRule::plain(),
        0.1,
        0.0,
        None,
        &[[0.8, -0.6], [0.64, -0.36], [0.512, -0.216]],
    );
    assert!(s.buffers.is_empty());
    assert_eq!(s.steps, 3);
}

#[test]
fn momentum_is_pytorch_sgd_momentum() {
    // μ 0.9, lr 0.1; v ← μ·v + g, w ← w − lr·v.
    // 1: g = (2, −4),     v = (2, −4),                 w = (0.8, −0.6)
    // 2: g = (1.6, −2.4), v = (1.8+1.6, −3.6−2.4) = (3.4, −6),   w = (0.46, 0)
    // 3: g = (0.92, 0),   v = (3.06+0.92, −5.4) = (3.98, −5.4),  w = (0.062, 0.54)
    let s = check_rule(
        UpdateRule::momentum(0.9).unwrap(),
        0.1,
        0.0,
        None,
        &[[0.8, -0.6], [0.46, 0.0], [0.062, 0.54]],
    );
    assert_buffer(&s, "velocity", [3.98, -5.4]);
}

#[test]
fn nesterov_looks_ahead_along_the_velocity() {
    // μ 0.9, lr 0.1; v ← μ·v + g, w ← w − lr·(g + μ·v).
    // 1: g = (2, −4), v = (2, −4), g+μv = (3.8, −7.6), w = (0.62, −0.24)
    // 2: g = (1.24, −0.96), v = (3.04, −4.56), g+μv = (3.976, −5.064), w = (0.2224, 0.2664)
    // 3: g = (0.4448, 1.0656), v = (3.1808, −3.0384), g+μv = (3.30752, −1.66896),
    //    w = (−0.108352, 0.433296)
    let s = check_rule(
        UpdateRule::nesterov(0.9).unwrap(),
        0.1,
        0.0,
        None,
        &[[0.62, -0.24], [0.2224, 0.2664], [-0.108352, 0.433296]],
    );
    assert_buffer(&s, "velocity", [3.1808, -3.0384]);
}

#[test]
fn rmsprop_divides_by_the_root_mean_square() {
    // α 0.99, ε 1e-8, lr 0.01; s ← α·s + (1−α)·g², w ← w − lr·g/(√s + ε).
    // 1: g = (2, −4), s = (0.04, 0.16), √s = (0.2, 0.4): each coordinate moves by
    //    lr·|g|/√s = 0.01·10 = 0.1 (less ε's share): w = (0.900000005, −0.9000000025).
    // 2, 3: the same formula, evaluated in Python floats.
    let s = check_rule(
        UpdateRule::rmsprop(),
        0.01,
        0.0,
        None,
        &[
            [0.9000000049999998, -0.9000000025],
            [0.8329179679700331, -0.8329179643225199],
            [0.7799822732436351, -0.7799822688742754],
        ],
    );
    assert_buffer(&s, "square_avg", [0.09903009401109324, 0.39612037435938763]);
}

/// Adam's path with lr 0.1 and PyTorch's defaults.
const ADAM: [[f64; 2]; 3] = [
    [0.9000000005, -0.9000000002499999],
    [0.8004122286917927, -0.8004122281815201],
    [0.7015862729460302, -0.7015862721668379],
];

#[test]
fn adam_corrects_the_bias_of_its_moments() {
    // β (0.9, 0.999), ε 1e-8, lr 0.1; m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
    // w ← w − lr/(1−β₁ᵗ) · m/(√v/√(1−β₂ᵗ) + ε).
    // 1: m = 0.1·g = (0.2, −0.4), v = 0.001·g² = (0.004, 0.016); corrected, m̂ = g and
    //    √v̂ = |g|, so each coordinate moves by lr = 0.1 (less ε's share):
    //    w = (0.9000000005, −0.90000000025).
    // 2, 3: the same formula, evaluated in Python floats.
    let s = check_rule(UpdateRule::adam(), 0.1, 0.0, None, &ADAM);
    assert_buffer(&s, "exp_avg", [0.4840824458283584, -0.9681648913626077]);
    assert_buffer(&s, "exp_avg_sq", [0.00979140294695386, 0.03916561176755293]);
    assert_eq!(s.steps, 3);
}

#[test]
fn adamw_decays_the_weights_outside_the_gradient() {
    // AdamW with λ 0.5, lr 0.1: w ← w·(1 − lr·λ) = 0.95·w, then Adam's step with the
    // gradient taken before the decay.
    // 1: w = 0.95·(1, −1) − (0.1, −0.1)·(1 − ε share) = (0.8500000005, −0.85000000025).
    // 2, 3: Python floats.
    let s = check_rule(
        UpdateRule::adamw().weight_decay(0.5).unwrap(),
        0.1,
        0.0,
        None,
        &[
            [0.8500000004999999, -0.8500000002499999],
            [0.7082484433597453, -0.7082484428567918],
            [0.5749739307415966, -0.5749739299857721],
        ],
    );
    assert_buffer(&s, "exp_avg", [0.45664968876194895, -0.9132993772327165]);
    // With λ = 0 AdamW is Adam.
    let s0 = check_rule(
        UpdateRule::adamw().weight_decay(0.0).unwrap(),
        0.1,
        0.0,
        None,
        &ADAM,
    );
    assert_eq!(s0.buffers.len(), 2);
}

#[test]
fn weight_decay_adds_lambda_w_to_the_gradient() {
    // Plain, lr 0.1, λ 0.5: g + λw = (2.5·w₀, 4.5·w₁), so w₀ ← 0.75·w₀, w₁ ← 0.55·w₁.
    // w₀: 0.75, 0.5625, 0.421875;  w₁: −0.55, −0.3025, −0.166375.
    check_rule(
        UpdateRule::plain(),
        0.1,
        0.5,
        None,
        &[[0.75, -0.55], [0.5625, -0.3025], [0.421875, -0.166375]],
    );
}

#[test]
fn clipping_scales_the_gradient_to_the_max_norm() {
    // Plain, lr 0.1, max norm 1: g = (2, −4) has norm √20, so it is scaled by
    // 1/(√20 + 1e-6): w = (1, −1) − 0.1·(2, −4)/4.4721369... = (0.95527865045, −0.9105573009).
    // 2, 3: the same (the norm stays above 1), in Python floats.
    check_rule(
        UpdateRule::plain(),
        0.1,
        0.0,
        Some(1.0),
        &[
            [0.9552786504500019, -0.910557300900004],
            [0.908826019332567, -0.8220013965257777],
            [0.8604452625246196, -0.7344839865592083],
        ],
    );
    // A norm below the maximum leaves the gradient alone: the plain path exactly.
    check_rule(
        UpdateRule::plain(),
        0.1,
        0.0,
        Some(100.0),
        &[[0.8, -0.6], [0.64, -0.36], [0.512, -0.216]],
    );
}

#[test]
fn clip_then_weight_decay_then_momentum() {
    // PyTorch's order: clip the raw gradient (max norm 3), add λw (λ 0.5), then momentum
    // (μ 0.9, lr 0.1). Step 1: g = (2, −4)·3/(√20 + 1e-6) = (1.3416, −2.6833);
    // + 0.5·(1, −1) = (1.8416, −3.1833) = v; w = (0.81584, −0.68167). 2, 3: Python floats.
    let s = check_rule(
        UpdateRule::momentum(0.9).unwrap(),
        0.1,
        0.5,
        Some(3.0),
        &[
            [0.815835951350006, -0.6816719027000118],
            [0.4552492650335855, -0.10366460339609906],
            [0.01690893109041064, 0.46319103750566704],
        ],
    );
    assert_buffer(&s, "velocity", [4.383403339431748, -5.66855640901766]);
}

#[test]
fn a_restored_state_continues_the_run_exactly() {
    let rules = [
        UpdateRule::momentum(0.9).unwrap(),
        UpdateRule::nesterov(0.5).unwrap(),
        UpdateRule::rmsprop(),
        UpdateRule::adam(),
        UpdateRule::adamw(),
    ];
    for rule in rules {
        let fresh = || Sgd::new(0.05).unwrap().rule(rule);
        let mut straight = fresh();
        let through = trajectory(&mut straight, 5);

        let mut first = fresh();
        let mut bowl = Quadratic::bowl();
        for _ in 0..2 {
            first.step(&mut bowl).unwrap();
        }
        let saved = first.state();
        let mut resumed = fresh();
        resumed.load_state(&saved).unwrap();
        for _ in 2..5 {
            resumed.step(&mut bowl).unwrap();
        }
        // Bit-identical: Adam's bias correction needs the step count too.
        assert_eq!(bowl.w, through[4].to_vec(), "{rule}");
        assert_eq!(resumed.state(), straight.state(), "{rule}");
    }
}

#[test]
fn a_bad_state_is_an_error() {
    let mut adam = Sgd::new(0.1).unwrap().rule(UpdateRule::adam());
    trajectory(&mut adam, 2);
    let good = adam.state();
    let names: Vec<&str> = good.buffers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["exp_avg", "exp_avg_sq"]);

    // Every refusal is an optimizer-state error, and leaves the optimizer as it was.
    let err = |state: &StateDict<f64>| {
        let mut fresh = Sgd::new(0.1).unwrap().rule(UpdateRule::adam());
        let e = fresh.load_state(state).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                ErrorKind::OptimizerState {
                    optimizer: "adam",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            fresh.state(),
            StateDict::default(),
            "a refused state is not half-loaded"
        );
        e.to_string()
    };
    // A buffer another rule keeps.
    let mut wrong = good.clone();
    wrong.buffers[0].0 = "velocity".into();
    assert!(err(&wrong).contains("\"velocity\""), "{}", err(&wrong));
    // A missing buffer after steps were taken.
    let mut missing = good.clone();
    missing.buffers.pop();
    assert!(err(&missing).contains("exp_avg_sq"), "{}", err(&missing));
    // The same buffer twice.
    let mut twice = good.clone();
    twice.buffers[1].0 = "exp_avg".into();
    assert!(err(&twice).contains("twice"), "{}", err(&twice));
    // Buffers of different lengths.
    let mut ragged = good.clone();
    ragged.buffers[1].1.push(0.0);
    assert!(
        err(&ragged).contains("has 3 values, the others 2"),
        "{}",
        err(&ragged)
    );
    // A NaN.
    let mut nan = good.clone();
    nan.buffers[0].1[1] = f64::NAN;
    assert!(err(&nan).contains("NaN"), "{}", err(&nan));
    // A scalar Sgd does not keep.
    let mut scalar = good.clone();
    scalar.scalars.push(("best_loss".into(), 1.0));
    assert!(err(&scalar).contains("best_loss"), "{}", err(&scalar));

    // Buffers that load but do not fit the model fail at the next step, not silently.
    let mut long = good.clone();
    for (_, b) in &mut long.buffers {
        b.push(0.0);
    }
    let mut fresh = Sgd::new(0.1).unwrap().rule(UpdateRule::adam());
    fresh.load_state(&long).unwrap();
    let mut bowl = Quadratic::bowl();
    let e = fresh.step(&mut bowl).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Shape {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        bowl.w,
        [1.0, -1.0],
        "a failed step leaves the parameters alone"
    );

    // A state of a fresh optimizer (no steps, no buffers) loads into any rule.
    let mut plain = Sgd::new(0.1).unwrap();
    plain.load_state(&StateDict::default()).unwrap();
}

#[test]
fn rule_settings_are_validated() {
    for mu in [1.0, -0.1, f64::NAN] {
        assert!(UpdateRule::momentum(mu).is_err(), "{mu}");
        assert!(UpdateRule::nesterov(mu).is_err(), "{mu}");
    }
    assert!(UpdateRule::nesterov(0.0).is_err(), "nesterov needs μ > 0");
    assert!(UpdateRule::momentum(0.0).is_ok());
    assert!(UpdateRule::adam().betas(1.0, 0.999).is_err());
    assert!(UpdateRule::adam().betas(0.9, f64::NAN).is_err());
    assert!(UpdateRule::adam().eps(0.0).is_err());
    assert!(UpdateRule::rmsprop().alpha(1.0).is_err());
    assert!(UpdateRule::adamw().weight_decay(-1.0).is_err());
    // A setting the rule does not have is an error, not ignored.
    assert!(UpdateRule::plain().eps(1e-8).is_err());
    assert!(UpdateRule::momentum(0.9).unwrap().betas(0.9, 0.99).is_err());
    assert!(UpdateRule::adam().weight_decay(0.1).is_err());
    assert!(UpdateRule::adam().alpha(0.9).is_err());
    let adamw = UpdateRule::adamw()
        .betas(0.8, 0.99)
        .unwrap()
        .eps(1e-6)
        .unwrap()
        .weight_decay(0.1)
        .unwrap();
    assert_eq!(adamw.name(), "adamw");
    assert_eq!(adamw.decay_rates(), Some((0.8, 0.99)));
    assert_eq!(adamw.epsilon(), Some(1e-6));
    assert_eq!(adamw.decoupled_weight_decay(), Some(0.1));
    assert_eq!(UpdateRule::momentum(0.0).unwrap(), UpdateRule::plain());
    let sgd = || Sgd::<f64>::new(0.1).unwrap();
    assert!(sgd().weight_decay(-0.1).is_err());
    assert!(sgd().weight_decay(f64::NAN).is_err());
    assert!(sgd().clip_grad_norm(0.0).is_err());
    assert!(sgd().clip_grad_norm(f64::INFINITY).is_err());
    assert!(GradientDescent::<f64>::new(0.1)
        .unwrap()
        .clip_grad_norm(-1.0)
        .is_err());
}

#[test]
fn the_learning_rate_can_be_set_through_the_trait() {
    let mut sgd = Sgd::<f32>::new(0.1).unwrap();
    let opt: &mut dyn Optimizer<f32> = &mut sgd;
    assert_eq!(opt.learning_rate(), Some(0.1f32 as f64));
    opt.set_learning_rate(0.025).unwrap();
    assert!(opt.set_learning_rate(-0.1).is_err());
    assert!(opt.set_learning_rate(f64::NAN).is_err());
    // Too small for f32: rounds to 0, which is not a learning rate.
    assert!(opt.set_learning_rate(1e-50).is_err());
    assert_eq!(Optimizer::learning_rate(&sgd), Some(0.025f32 as f64));
    // A schedule may anneal to exactly 0 (the step then leaves the parameters alone).
    let opt: &mut dyn Optimizer<f32> = &mut sgd;
    opt.set_learning_rate(0.0).unwrap();
    assert_eq!(opt.learning_rate(), Some(0.0));
    let mut search = RandomSearch::<f32>::new(1e-4, 0).unwrap();
    let opt: &mut dyn Optimizer<f32> = &mut search;
    assert_eq!(opt.learning_rate(), None);
    assert!(opt.set_learning_rate(0.1).is_err());
}

#[test]
fn each_rule_keeps_typed_state_under_pytorchs_names() {
    let cases = [
        (UpdateRule::plain(), 0),
        (UpdateRule::momentum(0.9).unwrap(), 1),
        (UpdateRule::nesterov(0.9).unwrap(), 1),
        (UpdateRule::rmsprop(), 1),
        (UpdateRule::adam(), 2),
        (UpdateRule::adamw(), 2),
    ];
    for (rule, buffers) in cases {
        let mut sgd = Sgd::new(0.1).unwrap().rule(rule);
        assert!(
            sgd.rule_state().is_empty(),
            "{rule}: no state before a step"
        );
        trajectory(&mut sgd, 1);
        let state = sgd.rule_state();
        assert_eq!(state.buffers().len(), buffers, "{rule}");
        assert!(state.buffers().iter().all(|b| b.len() == 2), "{rule}");
        // The typed state and the saved one are the same numbers under the same names.
        let saved = sgd.state();
        for (name, b) in rule.buffer_names().iter().zip(state.buffers()) {
            assert_eq!(saved.buffer(name), Some(b), "{rule}: {name}");
        }
        match (rule.name(), state) {
            ("momentum" | "nesterov", RuleState::Momentum { velocity }) => {
                assert_eq!(velocity[0], 2.0, "v = g after one step from zero")
            }
            ("rmsprop", RuleState::RmsProp { square_avg }) => {
                assert_relative_eq!(square_avg[0], 0.01 * 4.0, max_relative = 1e-12)
            }
            ("adam" | "adamw", RuleState::Adam { exp_avg, .. }) => {
                assert_relative_eq!(exp_avg[0], 0.1 * 2.0, max_relative = 1e-12)
            }
            ("plain", RuleState::Plain) => {}
            (name, other) => panic!("{name} keeps {other:?}"),
        }
    }
}
