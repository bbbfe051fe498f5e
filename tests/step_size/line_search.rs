//! Line searches: each accepts only what its conditions promise, on functions where the
//! first trial step breaks them; a failed or poisoned search changes nothing; and gradient
//! descent with a line search converges from any first step, resumes bit for bit and
//! refuses a poisoned step whole.

use crate::common::bits;
use crate::helpers::{downhill_from, line, rosenbrock, state_bits, valley, Poison, Watched};
use downhill::error::{ErrorKind, LineSearchFailure, Quantity};
use downhill::model::{FnObjective, Objective};
use downhill::optim::LineSearch;
use downhill::prelude::*;

/// Moré and Thuente's first test function, `φ(α) = −α/(α² + 2)`: minimum at `√2`.
fn phi1(a: f64) -> f64 {
    -a / (a * a + 2.0)
}
fn dphi1(a: f64) -> f64 {
    (a * a - 2.0) / (a * a + 2.0).powi(2)
}
/// Their second, `(α + β)⁵ − 2·(α + β)⁴` with `β = 0.004`: minimum at 1.596.
fn phi2(a: f64) -> f64 {
    (a + 0.004).powi(5) - 2.0 * (a + 0.004).powi(4)
}
fn dphi2(a: f64) -> f64 {
    5.0 * (a + 0.004).powi(4) - 8.0 * (a + 0.004).powi(3)
}
/// Their third: a kink near 1 smoothed over `β = 0.01`, plus a ripple of 39 half-waves.
fn phi3(a: f64) -> f64 {
    let (b, l) = (0.01, 39.0 * std::f64::consts::PI);
    let base = if a <= 1.0 - b {
        1.0 - a
    } else if a >= 1.0 + b {
        a - 1.0
    } else {
        (a - 1.0).powi(2) / (2.0 * b) + b / 2.0
    };
    base + 2.0 * (1.0 - b) / l * (l * a / 2.0).sin()
}
fn dphi3(a: f64) -> f64 {
    let (b, l) = (0.01, 39.0 * std::f64::consts::PI);
    let base = if a <= 1.0 - b {
        -1.0
    } else if a >= 1.0 + b {
        1.0
    } else {
        (a - 1.0) / b
    };
    base + (1.0 - b) * (l * a / 2.0).cos()
}

type Line = (&'static str, fn(f64) -> f64, fn(f64) -> f64);
const LINES: [Line; 3] = [
    ("φ1", phi1, dphi1),
    ("φ2", phi2, dphi2),
    ("φ3", phi3, dphi3),
];

/// Searches `φ` from 0 along `d = 1`; returns the report and the objective.
fn search_line(
    search: &LineSearch,
    phi: fn(f64) -> f64,
    dphi: fn(f64) -> f64,
) -> (
    Result<downhill::optim::LineSearchReport>,
    Watched<impl Objective<f64>>,
) {
    let mut f = Watched::new(line(phi, dphi));
    let report = search.search(&mut f, phi(0.0), &[dphi(0.0)], &[1.0]);
    (report, f)
}

#[test]
fn backtracking_accepts_the_first_step_with_sufficient_decrease() {
    let c1 = 1e-4;
    // Each case's first trial overshoots: its loss is above the Armijo line.
    let mut cases = 0;
    for (name, phi, dphi) in LINES {
        for first in [10.0, 1e3] {
            let search = LineSearch::backtracking().initial_step(first).unwrap();
            let armijo = |a: f64| phi(a) <= phi(0.0) + c1 * a * dphi(0.0);
            if armijo(first) {
                continue;
            }
            cases += 1;
            let (report, f) = search_line(&search, phi, dphi);
            let r = report.unwrap_or_else(|e| panic!("{name} from {first}: {e}"));
            assert!(armijo(r.step), "{name} from {first}: α = {}", r.step);
            // The first acceptable step of the sequence first, first/2, …: the one before
            // it was rejected.
            assert!(!armijo(2.0 * r.step), "{name} from {first}: α = {}", r.step);
            let halvings = (first / r.step).log2();
            assert_eq!(halvings.fract(), 0.0, "{name}: α = {}", r.step);
            assert_eq!(r.function_evals, halvings as usize + 1, "{name}");
            assert_eq!((r.gradient_evals, f.gradients), (0, 0), "{name}");
            assert_eq!(
                f.losses, r.function_evals,
                "{name}: every evaluation counted"
            );
            assert_eq!(r.loss, phi(r.step), "{name}");
            assert_eq!(bits(f.params()), bits(&[r.step]), "{name}: w + α·d");
        }
    }
    assert!(cases >= 4, "only {cases} cases overshot");

    // Along −∇f in the valley, from a step of 1000, with a shrink of 0.3.
    let mut v = valley([-10.0, 1.5]);
    let (f0, g, d, slope) = downhill_from(&mut v);
    let search = LineSearch::backtracking()
        .shrink(0.3)
        .unwrap()
        .initial_step(1e3)
        .unwrap();
    let r = search.search(&mut v, f0, &g, &d).unwrap();
    let at = |a: f64| valley([-10.0 + a * d[0], 1.5 + a * d[1]]).loss().unwrap();
    assert!(at(1e3) > f0 + c1 * 1e3 * slope);
    assert!(
        at(r.step) <= f0 + c1 * r.step * slope && at(r.step / 0.3) > f0 + c1 * r.step / 0.3 * slope
    );
    assert_eq!(r.loss, at(r.step));
}

#[test]
fn strong_wolfe_accepts_only_steps_meeting_both_conditions() {
    let (c1, c2) = (1e-3, 0.1);
    let search = LineSearch::strong_wolfe()
        .c1(c1)
        .unwrap()
        .c2(c2)
        .unwrap()
        .max_evals(50)
        .unwrap();
    let (mut too_long, mut too_short) = (0, 0);
    for (name, phi, dphi) in LINES {
        for first in [1e-3, 1e-1, 1e1, 1e3] {
            let decrease = |a: f64| phi(a) <= phi(0.0) + c1 * a * dphi(0.0);
            let flat = |a: f64| dphi(a).abs() <= c2 * dphi(0.0).abs();
            // Tally how each first trial breaks the conditions (some satisfy them).
            if !decrease(first) {
                too_long += 1;
            } else if !flat(first) {
                too_short += 1;
            }
            let search = search.initial_step(first).unwrap();
            let (report, f) = search_line(&search, phi, dphi);
            let r = report.unwrap_or_else(|e| panic!("{name} from {first}: {e}"));
            assert!(
                decrease(r.step),
                "{name} from {first}: α = {} breaks Armijo",
                r.step
            );
            assert!(
                flat(r.step),
                "{name} from {first}: α = {} breaks curvature",
                r.step
            );
            assert_eq!(r.first_step, first);
            assert_eq!(
                f.gradients, r.gradient_evals,
                "{name}: every evaluation counted"
            );
            assert_eq!((r.function_evals, f.losses), (r.gradient_evals, 0));
            assert!(r.gradient_at_step());
            assert_eq!(bits(f.params()), bits(&[r.step]), "{name}: w + α·d");
        }
    }
    // Both kinds of first trial were there: steps too long (zoom) and too short (grow).
    assert!(
        too_long >= 3 && too_short >= 3,
        "{too_long} too long, {too_short} too short"
    );

    // Rosenbrock along −∇f with the defaults (c₂ = 0.9), from a first step of 1.
    let mut f = rosenbrock(vec![-1.2, 1.0]);
    let (f0, g, d, slope) = downhill_from(&mut f);
    let r = LineSearch::strong_wolfe()
        .initial_step(1.0)
        .unwrap()
        .search(&mut f, f0, &g, &d)
        .unwrap();
    let mut at = rosenbrock(vec![-1.2 + r.step * d[0], 1.0 + r.step * d[1]]);
    let mut g1 = [0.0; 2];
    let f1 = at.loss_and_grad(&mut g1).unwrap();
    assert!(r.function_evals > 1, "the first trial overshoots by far");
    assert!(f1 <= f0 + 1e-4 * r.step * slope);
    assert!((g1[0] * d[0] + g1[1] * d[1]).abs() <= 0.9 * slope.abs());
}

#[test]
fn a_search_that_fails_leaves_the_parameters_as_they_were() {
    let start = vec![0.3];
    let mut f = Watched::new(FnObjective::new(
        start.clone(),
        |x: &[f64]| phi1(x[0]),
        |x: &[f64], g: &mut [f64]| g[0] = dphi1(x[0]),
    ));
    let (f0, g0) = (phi1(0.3), [dphi1(0.3)]);
    // Uphill: refused before any evaluation.
    let err = LineSearch::strong_wolfe()
        .search(&mut f, f0, &g0, &[-1.0])
        .unwrap_err();
    match err.kind() {
        ErrorKind::LineSearch {
            search: "strong Wolfe",
            failure: LineSearchFailure::NotDescent { slope },
            evaluations: 0,
            ..
        } => assert!(*slope > 0.0),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("does not go downhill"), "{err}");
    // Out of budget: the first trial (α = 1000) is far too long, and one more is allowed.
    for search in [LineSearch::strong_wolfe(), LineSearch::backtracking()] {
        let search = search.initial_step(1e3).unwrap().max_evals(2).unwrap();
        let before = f.calls();
        let err = search.search(&mut f, f0, &g0, &[1.0]).unwrap_err();
        match err.kind() {
            ErrorKind::LineSearch {
                failure: LineSearchFailure::Budget,
                evaluations: 2,
                step,
                ..
            } => assert!(*step > 0.0 && *step < 1e3),
            other => panic!("{search}: {other:?}"),
        }
        assert_eq!(f.calls() - before, 2);
        assert_eq!(bits(f.params()), bits(&start), "{search}");
    }
    // Steps too small to move the parameters at all (α·max|d| ≤ ε·max|w|) are not tried:
    // the search has collapsed before it starts.
    let mut flat = Watched::new(valley([1.0 + 1e-12, 0.0]));
    let err = LineSearch::backtracking()
        .initial_step(1e-30)
        .unwrap()
        .search(&mut flat, 0.5, &[1.0, 0.0], &[-1.0, 0.0])
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::LineSearch {
                failure: LineSearchFailure::Collapsed,
                evaluations: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(flat.calls(), 0);
    assert_eq!(flat.params(), &[1.0 + 1e-12, 0.0]);
}

/// Each search with each poison: a NaN loss, or a NaN gradient element.
fn poisonings() -> Vec<(LineSearch, Poison)> {
    let searches = [LineSearch::strong_wolfe(), LineSearch::backtracking()];
    let poisons = [Poison::Loss, Poison::Gradient];
    searches
        .iter()
        .flat_map(|&s| poisons.iter().map(move |&p| (s, p)))
        .collect()
}

#[test]
fn a_poisoned_trial_refuses_the_search() {
    // (Backtracking never evaluates a gradient: a poisoned one cannot reach it.)
    let seen = |&(s, p): &(LineSearch, Poison)| s.evaluates_gradient() || p == Poison::Loss;
    for (search, poison) in poisonings().into_iter().filter(seen) {
        let mut f = Watched::new(rosenbrock(vec![-1.2, 1.0]));
        let (f0, g, d, _) = downhill_from(&mut f);
        // The second trial is poisoned (the first overshoots, so there is one).
        f.poison_in(1, poison);
        let search = search.initial_step(1.0).unwrap();
        let err = search.search(&mut f, f0, &g, &d).unwrap_err();
        let want = match poison {
            Poison::Loss => Quantity::Loss,
            Poison::Gradient => Quantity::Gradient,
        };
        assert!(
            matches!(err.kind(), ErrorKind::Diverged { quantity, .. } if *quantity == want),
            "{search}: {err}"
        );
        assert_eq!(bits(f.params()), bits(&[-1.2, 1.0]), "{search}");
    }
}

#[test]
fn settings_are_validated() {
    let invalid = |r: Result<LineSearch>, name: &str| match r.unwrap_err().kind() {
        ErrorKind::InvalidParameter { name: n, .. } => assert_eq!(*n, name),
        other => panic!("{other:?}"),
    };
    for bad in [0.0, -0.1, 1.0, f64::NAN, f64::INFINITY] {
        invalid(LineSearch::backtracking().c1(bad), "c1");
        invalid(LineSearch::strong_wolfe().c2(bad), "c2");
        invalid(LineSearch::backtracking().shrink(bad), "shrink");
    }
    // 0 < c1 < c2 < 1, whichever is set first.
    invalid(LineSearch::strong_wolfe().c1(0.95), "c1");
    invalid(LineSearch::strong_wolfe().c1(0.5).unwrap().c2(0.4), "c2");
    assert!(LineSearch::strong_wolfe().c2(0.5).unwrap().c1(0.4).is_ok());
    invalid(LineSearch::backtracking().c2(0.9), "c2");
    invalid(LineSearch::strong_wolfe().shrink(0.5), "shrink");
    invalid(LineSearch::strong_wolfe().max_evals(0), "max_evals");
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        invalid(LineSearch::strong_wolfe().initial_step(bad), "initial_step");
    }
    let s = LineSearch::backtracking();
    assert_eq!(
        (
            s.name(),
            s.c1_value(),
            s.shrink_value(),
            s.max_evals_value()
        ),
        ("backtracking", 1e-4, Some(0.5), 50)
    );
    let w = LineSearch::strong_wolfe();
    assert_eq!((w.c2_value(), w.max_evals_value()), (Some(0.9), 25));
}

/// Minimises the valley from its usual start with gradient descent and `search`, first
/// step `first`; returns the steps to `f ≤ 1e-6`.
fn steps_to_converge(search: LineSearch, first: f64) -> Option<usize> {
    let mut v = valley([-10.0, 1.5]);
    let mut gd = GradientDescent::new(first).unwrap().line_search(search);
    (1..=1000).find(|_| {
        gd.step(&mut v).unwrap();
        v.loss().unwrap() <= 1e-6
    })
}

#[test]
fn gradient_descent_with_a_line_search_converges_from_any_first_step() {
    for search in [LineSearch::backtracking(), LineSearch::strong_wolfe()] {
        for k in -3..=3 {
            let first = 10f64.powi(k);
            let steps = steps_to_converge(search, first);
            assert!(
                steps.is_some(),
                "{search}, first step {first}: no convergence"
            );
        }
    }
    // A fixed step past 2/κ = 0.04 diverges.
    let mut v = valley([-10.0, 1.5]);
    let f0 = v.loss().unwrap();
    let mut gd = GradientDescent::new(0.045).unwrap();
    for _ in 0..100 {
        gd.step(&mut v).unwrap();
    }
    assert!(v.loss().unwrap() > f0);
}

#[test]
fn gradient_descent_with_a_line_search_reports_its_searches() {
    let mut v = Watched::new(valley([-10.0, 1.5]));
    let mut gd = GradientDescent::new(1.0)
        .unwrap()
        .line_search(LineSearch::strong_wolfe());
    assert_eq!(gd.learning_rate(), None);
    assert!(gd.set_learning_rate(0.1).is_err());
    assert_eq!(gd.line_search_value(), Some(LineSearch::strong_wolfe()));
    for _ in 0..5 {
        gd.step(&mut v).unwrap();
    }
    let counts = gd.search_evaluations().unwrap();
    // The first step evaluates its start; every later one starts from the point its last
    // search reached, whose gradient the strong Wolfe search already has.
    assert_eq!(counts.gradient as usize, v.gradients);
    assert_eq!(counts.function as usize, v.calls());
    let last = gd.last_search().unwrap();
    assert!(last.step > 0.0 && last.function_evals >= 1);
    assert_eq!(gd.last_gradient().map(<[f64]>::len), Some(2));
    // Without a line search there is none of this.
    let plain = GradientDescent::<f64>::new(0.1).unwrap();
    assert!(plain.search_evaluations().is_none() && plain.last_search().is_none());
}

#[test]
fn a_line_search_needs_the_plain_rule() {
    let mut v = valley([-10.0, 1.5]);
    let cases = [
        GradientDescent::new(0.1)
            .unwrap()
            .momentum(0.9)
            .unwrap()
            .line_search(LineSearch::backtracking()),
        GradientDescent::new(0.1)
            .unwrap()
            .weight_decay(0.1)
            .unwrap()
            .line_search(LineSearch::backtracking()),
        GradientDescent::new(0.1)
            .unwrap()
            .line_search(LineSearch::backtracking())
            .clip_grad_norm(1.0)
            .unwrap(),
    ];
    for mut gd in cases {
        let before = gd.state();
        let err = gd.step(&mut v).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::InvalidParameter {
                    name: "line_search",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(v.params(), &[-10.0, 1.5]);
        assert_eq!(gd.state(), before);
    }
}

#[test]
fn gradient_descent_with_a_line_search_resumes_bit_for_bit() {
    for search in [LineSearch::backtracking(), LineSearch::strong_wolfe()] {
        let fresh = || GradientDescent::new(1e-3).unwrap().line_search(search);
        let mut straight_f = rosenbrock(vec![-1.2, 1.0]);
        let mut straight = fresh();
        for _ in 0..40 {
            straight.step(&mut straight_f).unwrap();
        }
        let mut f = rosenbrock(vec![-1.2, 1.0]);
        let mut first = fresh();
        for _ in 0..15 {
            first.step(&mut f).unwrap();
        }
        let saved = first.state();
        let mut resumed = fresh();
        resumed.load_state(&saved).unwrap();
        assert_eq!(state_bits(&resumed.state()), state_bits(&saved), "{search}");
        for _ in 15..40 {
            resumed.step(&mut f).unwrap();
        }
        assert_eq!(bits(f.params()), bits(straight_f.params()), "{search}");
        assert_eq!(
            state_bits(&resumed.state()),
            state_bits(&straight.state()),
            "{search}"
        );
    }
    // Its scalars are refused by gradient descent without a line search, and vice versa.
    let mut with = GradientDescent::new(0.1)
        .unwrap()
        .line_search(LineSearch::backtracking());
    with.step(&mut valley([-10.0, 1.5])).unwrap();
    let mut without = GradientDescent::<f64>::new(0.1).unwrap();
    assert!(without.load_state(&with.state()).is_err());
    let mut bad = with.state();
    bad.scalars.push(("line_search.other".into(), 1.0));
    let before = state_bits(&with.state());
    assert!(with.load_state(&bad).is_err());
    assert_eq!(state_bits(&with.state()), before);
}

#[test]
fn gradient_descent_with_a_line_search_refuses_a_poisoned_step_whole() {
    for (search, poison) in poisonings() {
        let fresh = || GradientDescent::new(1e-3).unwrap().line_search(search);
        let mut f = Watched::new(rosenbrock(vec![-1.2, 1.0]));
        let mut gd = fresh();
        let mut twin_f = f.clone();
        let mut twin = fresh();
        for _ in 0..6 {
            gd.step(&mut f).unwrap();
            twin.step(&mut twin_f).unwrap();
        }
        let (params, state) = (bits(f.params()), state_bits(&gd.state()));
        f.poison_in(0, poison);
        let err = gd.step(&mut f).unwrap_err();
        assert!(err.is_divergence(), "{search}: {err}");
        assert_eq!(bits(f.params()), params, "{search}");
        assert_eq!(state_bits(&gd.state()), state, "{search}");
        // Cured, it carries on exactly as the run that was never poisoned.
        f.poison_from = None;
        for _ in 0..10 {
            gd.step(&mut f).unwrap();
            twin.step(&mut twin_f).unwrap();
        }
        assert_eq!(bits(f.params()), bits(twin_f.params()), "{search}");
    }
}
