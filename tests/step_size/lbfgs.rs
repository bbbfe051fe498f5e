//! L-BFGS: the two-loop direction is the Newton step on a quadratic with as many pairs as
//! dimensions; pairs without curvature are skipped; a run resumes bit for bit (from its
//! state, and through a checkpoint); a poisoned step is refused whole; it stops for a typed
//! reason, and trains a model through the `Trainer`.

use std::path::Path;

use crate::common::{bits, net};
use crate::helpers::{relative, rosenbrock, state_bits, uniforms, Poison, Spd, Watched};
use downhill::checkpoint::Checkpoint;
use downhill::error::ErrorKind;
use downhill::model::{FnObjective, Objective};
use downhill::optim::{Convergence, Lbfgs, LineSearch, StateDict};
use downhill::prelude::*;
use downhill::TrainState;

/// A history of `count` `A`-conjugate pairs `(s, A·s)` (Gram–Schmidt in `A`'s inner
/// product), as L-BFGS's state.
fn conjugate_history(q: &Spd, count: usize, seed: u64) -> StateDict<f64> {
    let n = q.n();
    let mut dirs: Vec<Vec<f64>> = Vec::new();
    for i in 0..count {
        let mut s = uniforms(n, seed + i as u64);
        for d in &dirs {
            let ad = q.times(d);
            let c = dot(&s, &ad) / dot(d, &ad);
            for (s, d) in s.iter_mut().zip(d) {
                *s -= c * d;
            }
        }
        dirs.push(s);
    }
    let mut buffers = Vec::new();
    for (i, s) in dirs.iter().enumerate() {
        buffers.push((format!("s.{i}"), s.clone()));
        buffers.push((format!("y.{i}"), q.times(s)));
    }
    StateDict {
        steps: count as u64,
        buffers,
        scalars: Vec::new(),
    }
}

/// Asserts that `lbfgs`'s direction for each of `vectors` is the Newton step `−A⁻¹·v`, to
/// `tolerance` relative.
fn assert_newton(lbfgs: &Lbfgs<f64>, q: &Spd, vectors: &[Vec<f64>], tolerance: f64) {
    for v in vectors {
        let mut d = vec![0.0; v.len()];
        lbfgs.direction(v, &mut d).unwrap();
        let newton: Vec<f64> = q.solve(v).iter().map(|x| -x).collect();
        let err = relative(&d, &newton);
        assert!(err < tolerance, "relative error {err:e}");
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

#[test]
fn the_two_loop_direction_is_the_newton_step_with_history_at_least_the_dimension() {
    let n = 6;
    let q = Spd::random(n, 11);
    for history in [n, n + 3] {
        let mut lbfgs = Lbfgs::<f64>::new(history).unwrap();
        lbfgs.load_state(&conjugate_history(&q, n, 40)).unwrap();
        assert_eq!(lbfgs.stored_pairs(), n);
        let gradients: Vec<_> = (0..4).map(|seed| uniforms(n, 100 + seed)).collect();
        assert_newton(&lbfgs, &q, &gradients, 1e-10);
    }
    // One pair short of the dimension, it is not (the test can tell).
    let mut short = Lbfgs::<f64>::new(n).unwrap();
    short.load_state(&conjugate_history(&q, n - 1, 40)).unwrap();
    let g = uniforms(n, 100);
    let mut d = vec![0.0; n];
    short.direction(&g, &mut d).unwrap();
    let newton: Vec<f64> = q.solve(&g).iter().map(|x| -x).collect();
    assert!(relative(&d, &newton) > 1e-3);
    // No history: steepest descent.
    Lbfgs::<f64>::new(3).unwrap().direction(&g, &mut d).unwrap();
    assert_eq!(d, g.iter().map(|x| -x).collect::<Vec<_>>());
}

#[test]
fn the_two_loop_direction_is_the_bfgs_update_of_a_scaled_identity() {
    // Nocedal & Wright's eq. 7.19: H ← (I − ρ·s·yᵀ)·H·(I − ρ·y·sᵀ) + ρ·s·sᵀ, pair by pair,
    // oldest first, from H₀ = γ·I with γ = sᵀy/yᵀy of the newest pair. Three pairs in five
    // dimensions, not conjugate: the product is not A⁻¹, and every piece shows.
    let n = 5;
    let q = Spd::random(n, 21);
    let steps: Vec<Vec<f64>> = (0..3).map(|i| uniforms(n, 60 + i)).collect();
    let mut buffers = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        buffers.push((format!("s.{i}"), s.clone()));
        buffers.push((format!("y.{i}"), q.times(s)));
    }
    let mut lbfgs = Lbfgs::<f64>::new(3).unwrap();
    let state = StateDict {
        steps: 3,
        buffers,
        scalars: Vec::new(),
    };
    lbfgs.load_state(&state).unwrap();
    let newest = (&steps[2], q.times(&steps[2]));
    let gamma = dot(newest.0, &newest.1) / dot(&newest.1, &newest.1);
    let mut h: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { gamma } else { 0.0 }).collect())
        .collect();
    for s in &steps {
        let y = q.times(s);
        let rho = 1.0 / dot(&y, s);
        // (I − ρ·s·yᵀ)·H·(I − ρ·y·sᵀ) + ρ·s·sᵀ, entry by entry.
        let left: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| f64::from(u8::from(i == j)) - rho * s[i] * y[j])
                    .collect()
            })
            .collect();
        let times = |a: &[Vec<f64>], b: &[Vec<f64>]| -> Vec<Vec<f64>> {
            (0..n)
                .map(|i| {
                    (0..n)
                        .map(|j| (0..n).map(|k| a[i][k] * b[k][j]).sum())
                        .collect()
                })
                .collect()
        };
        let right: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| left[j][i]).collect())
            .collect();
        h = times(&times(&left, &h), &right);
        for i in 0..n {
            for j in 0..n {
                h[i][j] += rho * s[i] * s[j];
            }
        }
    }
    let g = uniforms(n, 70);
    let want: Vec<f64> = (0..n).map(|i| -dot(&h[i], &g)).collect();
    let mut d = vec![0.0; n];
    lbfgs.direction(&g, &mut d).unwrap();
    assert!(relative(&d, &want) < 1e-12, "{d:?} vs {want:?}");
}

#[test]
fn its_own_history_on_a_quadratic_gives_the_newton_step() {
    // A nearly exact line search (c₂ tiny) makes the steps A-conjugate, as conjugate
    // gradients' are: after n of them the history knows A exactly.
    let n = 5;
    let spd = Spd::random(n, 3);
    let mut q = spd.objective();
    let exact = LineSearch::strong_wolfe()
        .c1(1e-12)
        .unwrap()
        .c2(1e-10)
        .unwrap()
        .max_evals(60)
        .unwrap();
    let mut lbfgs = Lbfgs::new(n)
        .unwrap()
        .line_search(exact)
        .tolerance_grad(0.0)
        .unwrap()
        .tolerance_change(0.0)
        .unwrap();
    for _ in 0..n {
        lbfgs.step(&mut q).unwrap();
    }
    assert_eq!(lbfgs.stored_pairs(), n);
    // And n conjugate steps reach the minimum A⁻¹b.
    assert!(relative(q.params(), &spd.solve(&spd.b)) < 1e-8);
    let vectors: Vec<_> = (0..3).map(|seed| uniforms(n, 200 + seed)).collect();
    assert_newton(&lbfgs, &spd, &vectors, 1e-6);
}

#[test]
fn a_pair_without_curvature_is_skipped_not_stored() {
    let backtracking = LineSearch::backtracking().initial_step(0.5).unwrap();
    // −cos x at x = 2, where its curvature cos x is negative: the step toward 0 has yᵀs < 0.
    let mut concave = FnObjective::new(
        vec![2.0],
        |x: &[f64]| -x[0].cos(),
        |x: &[f64], g: &mut [f64]| g[0] = x[0].sin(),
    );
    // A slope: y = 0 exactly, so yᵀs = 0 ≤ ε·sᵀs.
    let mut linear = FnObjective::new(
        vec![1.0, 2.0],
        |x: &[f64]| 3.0 * x[0] - x[1],
        |_: &[f64], g: &mut [f64]| {
            g[0] = 3.0;
            g[1] = -1.0;
        },
    );
    for f in [&mut concave as &mut dyn Objective<f64>, &mut linear] {
        let start = f.params().to_vec();
        let mut lbfgs = Lbfgs::new(5).unwrap().line_search(backtracking);
        lbfgs.step(f).unwrap();
        assert_ne!(f.params(), &start[..], "the step was taken");
        assert_eq!((lbfgs.iterations(), lbfgs.stored_pairs()), (1, 0));
    }
    // A convex function's pair is stored.
    let mut bowl = crate::helpers::valley([-10.0, 1.5]);
    let mut lbfgs = Lbfgs::new(5).unwrap().line_search(backtracking);
    lbfgs.step(&mut bowl).unwrap();
    assert_eq!(lbfgs.stored_pairs(), 1);
}

#[test]
fn a_run_resumes_bit_for_bit_from_its_state() {
    for (search, dims) in [
        (LineSearch::strong_wolfe(), 2),
        (LineSearch::strong_wolfe(), 12),
        (LineSearch::backtracking(), 12),
    ] {
        let start: Vec<f64> = (0..dims)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect();
        let fresh = || Lbfgs::new(4).unwrap().line_search(search);
        let mut straight_f = rosenbrock(start.clone());
        let mut straight = fresh();
        for _ in 0..30 {
            straight.step(&mut straight_f).unwrap();
        }
        let mut f = rosenbrock(start);
        let mut first = fresh();
        for _ in 0..11 {
            first.step(&mut f).unwrap();
        }
        let saved = first.state();
        assert_eq!(saved.buffers.len(), 2 * 4 + 2, "4 pairs and the last point");
        let mut resumed = fresh();
        resumed.load_state(&saved).unwrap();
        assert_eq!(state_bits(&resumed.state()), state_bits(&saved));
        for _ in 11..30 {
            resumed.step(&mut f).unwrap();
        }
        assert_eq!(
            bits(f.params()),
            bits(straight_f.params()),
            "{search}, {dims}"
        );
        assert_eq!(
            state_bits(&resumed.state()),
            state_bits(&straight.state()),
            "{search}, {dims}: history, counts and stop"
        );
    }
}

#[test]
fn a_run_resumes_bit_for_bit_through_a_checkpoint() {
    let x: Vec<f32> = uniforms(40 * 3, 5).iter().map(|&v| v as f32).collect();
    let labels = (0..40)
        .map(|i| usize::from(x[3 * i] + x[3 * i + 1] > 0.0))
        .collect();
    let data = Dataset::from_matrix(Matrix::from_vec(x, 40, 3).unwrap(), labels, 2).unwrap();
    let mlp = || net::<f32>([3, 8, 2], Activation::Tanh, 1);
    let trainer = |epochs| Trainer::new(epochs).unwrap().threads(1).unwrap();
    let (mut straight, mut opt) = (mlp(), Lbfgs::new(5).unwrap());
    trainer(12)
        .run(&mut straight, &mut opt, &data, None)
        .unwrap();

    let (mut model, mut opt) = (mlp(), Lbfgs::new(5).unwrap());
    trainer(5).run(&mut model, &mut opt, &data, None).unwrap();
    let at = TrainState {
        epoch: 5,
        step: 5,
        seed: 0,
    };
    let bytes = Checkpoint::capture(&model, &opt, at).to_bytes().unwrap();
    let ckpt = Checkpoint::<f32>::from_bytes(&bytes, Path::new("lbfgs.st")).unwrap();
    let (mut resumed, mut opt) = (mlp(), Lbfgs::new(5).unwrap());
    ckpt.restore_model(&mut resumed).unwrap();
    ckpt.restore_optimizer(&mut opt).unwrap();
    assert_eq!(opt.stored_pairs(), 5);
    trainer(12)
        .resume(&at)
        .unwrap()
        .run(&mut resumed, &mut opt, &data, None)
        .unwrap();
    assert_eq!(bits(resumed.params()), bits(straight.params()));
}

#[test]
fn a_poisoned_step_is_refused_with_parameters_and_history_unchanged() {
    let mut refused = 0;
    for (search, poison, poison_in) in [
        // The next evaluation: the first trial of the search (the start is kept).
        (LineSearch::strong_wolfe(), Poison::Gradient, 0),
        (LineSearch::strong_wolfe(), Poison::Loss, 0),
        // A later trial, if the search makes one.
        (LineSearch::strong_wolfe(), Poison::Gradient, 1),
        // Backtracking evaluates the gradient once it has accepted a step: that one.
        (LineSearch::backtracking(), Poison::Gradient, 0),
        (LineSearch::backtracking(), Poison::Loss, 1),
    ] {
        let fresh = || Lbfgs::new(4).unwrap().line_search(search);
        let mut f = Watched::new(rosenbrock(vec![-1.2, 1.0, -1.2, 1.0]));
        let (mut lbfgs, mut twin) = (fresh(), fresh());
        let mut twin_f = f.clone();
        for _ in 0..7 {
            lbfgs.step(&mut f).unwrap();
            twin.step(&mut twin_f).unwrap();
        }
        assert!(lbfgs.stored_pairs() > 0);
        let (params, state) = (bits(f.params()), state_bits(&lbfgs.state()));
        f.poison_in(poison_in, poison);
        match lbfgs.step(&mut f) {
            Err(err) => {
                assert!(err.is_divergence(), "{search}: {err}");
                assert_eq!(bits(f.params()), params, "{search}: parameters");
                assert_eq!(state_bits(&lbfgs.state()), state, "{search}: history");
                refused += 1;
            }
            // The search ended before the poisoned evaluation: nothing to refuse.
            Ok(_) => twin.step(&mut twin_f).map(|_| ()).unwrap(),
        }
        // Cured, it carries on exactly as the run that was never poisoned.
        f.poison_from = None;
        for _ in 0..10 {
            lbfgs.step(&mut f).unwrap();
            twin.step(&mut twin_f).unwrap();
        }
        assert_eq!(bits(f.params()), bits(twin_f.params()), "{search}");
        assert_eq!(state_bits(&lbfgs.state()), state_bits(&twin.state()));
    }
    assert!(refused >= 4, "only {refused} steps were poisoned");

    // Poisoned at the very first evaluation, before there is any history.
    for poison in [Poison::Loss, Poison::Gradient] {
        let mut f = Watched::new(rosenbrock(vec![-1.2, 1.0]));
        f.poison_in(0, poison);
        let mut lbfgs = Lbfgs::new(3).unwrap();
        let err = lbfgs.step(&mut f).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Diverged { .. }), "{err}");
        assert_eq!(f.params(), &[-1.2, 1.0]);
        assert_eq!(
            state_bits(&lbfgs.state()),
            state_bits(&Lbfgs::<f64>::new(3).unwrap().state())
        );
    }
}

#[test]
fn it_stops_for_a_typed_reason_and_stays_stopped() {
    // Rosenbrock to the default gradient tolerance, 1e-7 (the change tolerance off: by
    // default it stops first, where the loss changes by less than 1e-9).
    let mut f = Watched::new(rosenbrock(vec![-1.2, 1.0]));
    let mut lbfgs = Lbfgs::new(10).unwrap().tolerance_change(0.0).unwrap();
    while lbfgs.stop_reason().is_none() {
        lbfgs.step(&mut f).unwrap();
        assert!(lbfgs.iterations() < 100);
    }
    match lbfgs.stop_reason() {
        Some(Convergence::GradientTolerance { max_gradient }) => assert!(max_gradient <= 1e-7),
        other => panic!("{other:?}"),
    }
    assert!(f.loss().unwrap() < 1e-10);
    assert_eq!(Convergence::from_state(&lbfgs.state()), lbfgs.stop_reason());
    // Counted: every evaluation the objective saw (the one just above aside).
    assert_eq!(lbfgs.evaluations().function as usize, f.calls() - 1);
    // Stopped, it stays: no evaluation, no move.
    let (calls, at) = (f.calls(), bits(f.params()));
    let loss = lbfgs.step(&mut f).unwrap();
    assert_eq!((f.calls(), bits(f.params())), (calls, at));
    assert_eq!(loss, f.loss().unwrap());
    // Reset, it starts again from −∇f (and stops at once: the gradient is small).
    lbfgs.reset();
    assert_eq!((lbfgs.stop_reason(), lbfgs.stored_pairs()), (None, 0));

    // A loose change tolerance stops it early.
    let mut f = rosenbrock(vec![-1.2, 1.0]);
    let mut lbfgs = Lbfgs::new(10).unwrap().tolerance_change(1e-2).unwrap();
    while lbfgs.stop_reason().is_none() {
        lbfgs.step(&mut f).unwrap();
    }
    match lbfgs.stop_reason() {
        Some(Convergence::ChangeTolerance {
            max_change,
            loss_change,
        }) => assert!(max_change <= 1e-2 || loss_change < 1e-2),
        other => panic!("{other:?}"),
    }

    // A gradient that lies (its sign flipped) leads nowhere: no progress, nothing moved.
    let mut liar = FnObjective::new(
        vec![1.0, 1.0],
        |x: &[f64]| x[0] * x[0] + x[1] * x[1],
        |x: &[f64], g: &mut [f64]| {
            g[0] = -2.0 * x[0];
            g[1] = -2.0 * x[1];
        },
    );
    let mut lbfgs = Lbfgs::new(10).unwrap();
    lbfgs.step(&mut liar).unwrap();
    assert_eq!(lbfgs.stop_reason(), Some(Convergence::NoProgress));
    assert_eq!(liar.params(), &[1.0, 1.0]);
    assert_eq!(lbfgs.iterations(), 0);
    assert!(lbfgs
        .stop_reason()
        .unwrap()
        .to_string()
        .contains("no progress"));
}

#[test]
fn it_trains_a_model_through_the_trainer() {
    let x = Matrix::from_vec(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], 4, 2).unwrap();
    let xor = Dataset::from_matrix(x, vec![0, 1, 1, 0], 2).unwrap();
    let mut mlp = net::<f64>([2, 8, 2], Activation::Tanh, 3);
    let mut opt: Box<dyn Optimizer<f64>> = Box::new(Lbfgs::new(10).unwrap());
    assert_eq!(
        (opt.name(), opt.batching()),
        ("lbfgs", downhill::optim::Batching::FullBatch)
    );
    let report = Trainer::new(60)
        .unwrap()
        .run(&mut mlp, opt.as_mut(), &xor, None)
        .unwrap();
    assert_eq!(accuracy(&mut mlp, &xor).unwrap(), 1.0);
    assert!(
        report.final_loss().unwrap() < 1e-3,
        "{:?}",
        report.final_loss()
    );
    assert_eq!(opt.learning_rate(), None);
}

#[test]
fn settings_and_saved_states_are_checked() {
    assert!(Lbfgs::<f64>::new(0).is_err());
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(Lbfgs::<f64>::new(3).unwrap().tolerance_grad(bad).is_err());
        assert!(Lbfgs::<f64>::new(3).unwrap().tolerance_change(bad).is_err());
    }
    let l = Lbfgs::<f64>::new(3).unwrap();
    assert_eq!(
        (
            l.history_size(),
            l.tolerance_grad_value(),
            l.tolerance_change_value()
        ),
        (3, 1e-7, 1e-9)
    );
    assert_eq!(l.line_search_value(), LineSearch::strong_wolfe());

    let q = Spd::random(4, 1);
    let good = conjugate_history(&q, 3, 9);
    let mut lbfgs = Lbfgs::<f64>::new(3).unwrap();
    lbfgs.load_state(&good).unwrap();
    let before = state_bits(&lbfgs.state());
    type Break = fn(&mut StateDict<f64>);
    let broken: Vec<(&str, Break)> = vec![
        ("too many pairs", |s| {
            s.buffers.push(("s.3".into(), vec![1.0; 4]));
            s.buffers.push(("y.3".into(), vec![1.0; 4]));
        }),
        ("a pair cut short", |s| s.buffers[1].1.truncate(3)),
        ("a NaN", |s| s.buffers[2].1[0] = f64::NAN),
        ("no curvature", |s| {
            s.buffers[1].1 = s.buffers[0].1.iter().map(|v| -v).collect()
        }),
        ("a pair without its y", |s| drop(s.buffers.remove(5))),
        ("a stranger", |s| {
            s.buffers.push(("velocity".into(), vec![0.0; 4]))
        }),
        ("an unknown scalar", |s| s.scalars.push(("lr".into(), 1.0))),
        ("a bad stop", |s| s.scalars.push(("stop".into(), 9.0))),
        ("half a kept point", |s| {
            s.buffers.push(("last.params".into(), vec![0.0; 4]))
        }),
    ];
    for (what, breaks) in broken {
        let mut state = good.clone();
        breaks(&mut state);
        let err = lbfgs.load_state(&state).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::OptimizerState { .. }),
            "{what}: {err}"
        );
        assert_eq!(
            state_bits(&lbfgs.state()),
            before,
            "{what}: nothing changed"
        );
    }
    // A history of another length than the parameters is refused at the step.
    let mut f = rosenbrock(vec![-1.2, 1.0]);
    assert!(matches!(
        lbfgs.step(&mut f).unwrap_err().kind(),
        ErrorKind::Shape { .. }
    ));
    let mut d = [0.0; 2];
    assert!(lbfgs.direction(&[1.0, 1.0], &mut d).is_err());
}
