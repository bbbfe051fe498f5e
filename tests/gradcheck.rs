//! The gradient check catches what it must, excuses only kinks, and reports where: for a
//! model on a batch, a plain function (`check_fn`), a backward pass (`check_vjp`), and in
//! the directional fast mode.

mod common;

use std::cell::Cell;

use common::net;
use downhill::error::ErrorKind;
use downhill::gradcheck::{Difference, GradCheck, Probe, Verdict};
use downhill::model::ParamGroup;
use downhill::prelude::*;

/// A correct model whose gradient is wrong in exactly one coordinate.
#[derive(Clone)]
struct Corrupted {
    inner: Mlp<f64>,
    index: usize,
    by: f64,
}

impl Params<f64> for Corrupted {
    downhill::forward_params!(f64, inner);
}

impl Model<f64> for Corrupted {
    fn loss(&mut self, batch: &Batch<'_, f64>) -> Result<f64> {
        self.inner.loss(batch)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
        let loss = self.inner.loss_and_grad(batch, grad)?;
        grad[self.index] += self.by;
        Ok(loss)
    }
}

fn data(rows: usize, features: usize, classes: usize) -> Dataset<f64> {
    let x = (0..rows * features)
        .map(|i| ((i * 37 + 11) % 29) as f64 / 7.0 - 2.0)
        .collect();
    let labels = (0..rows).map(|r| r % classes).collect();
    Dataset::from_matrix(
        Matrix::from_vec(x, rows, features).unwrap(),
        labels,
        classes,
    )
    .unwrap()
}

fn mlp(act: Activation) -> Mlp<f64> {
    let mut m = Mlp::<f64>::builder(4)
        .hidden(6, act)
        .hidden(5, act)
        .classes(3)
        .l2(0.01)
        .seed(7)
        .build()
        .unwrap();
    // Non-zero biases, so no ReLU sits on its kink by construction.
    for (i, w) in m.params_mut().iter_mut().enumerate() {
        *w += 0.05 * ((i % 7) as f64 - 3.0);
    }
    m
}

#[test]
fn one_corrupted_coordinate_is_caught_and_named() {
    let d = data(12, 4, 3);
    let base = mlp(Activation::Tanh);
    let groups = base.param_groups();
    for group in &groups {
        // The middle coordinate of each tensor, off by 1% of the gradient's scale.
        let index = group.offset + group.len() / 2;
        let mut g = vec![0.0; base.num_params()];
        base.clone().loss_and_grad(&d.all(), &mut g).unwrap();
        let by = 0.01 * g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut model = Corrupted {
            inner: base.clone(),
            index,
            by,
        };
        let report = GradCheck::new().run(&mut model, &d.all()).unwrap();
        assert!(!report.passed(), "{report}");
        let worst = report.worst.unwrap();
        assert_eq!(worst.index, index, "{report}");
        assert_eq!(report.worst_group(), Some(group.name.as_str()), "{report}");
        assert!(report.kinks.is_empty(), "a bug is not a kink:\n{report}");
        // Every other group is clean.
        for g in &report.groups {
            if g.name != group.name {
                assert!(g.max_rel_error < 1e-6, "{report}");
            }
        }
        let table = report.to_string();
        assert!(
            table.contains(&group.name) && table.contains("OUTSIDE"),
            "{table}"
        );
    }
}

#[test]
fn a_correct_model_passes_with_a_good_verdict() {
    let d = data(12, 4, 3);
    let mut model = mlp(Activation::Sigmoid);
    let report = GradCheck::new().run(&mut model, &d.all()).unwrap();
    assert!(report.passed(), "{report}");
    assert!(report.verdict() <= Verdict::Fine, "{report}");
    assert!(report.max_rel_error < 1e-6, "{report}");
    assert!(report.mean_rel_error < 1e-8, "{report}");
    assert_eq!(report.checked(), model.num_params());
    let names: Vec<&str> = report.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.1.weight",
            "layers.1.bias",
            "layers.2.weight",
            "layers.2.bias"
        ]
    );
    // The parameters are left exactly as they were.
    assert_eq!(model.params(), mlp(Activation::Sigmoid).params());
}

/// Inputs of exactly zero and zero first-layer biases put every first-layer ReLU exactly on
/// its corner: nudging a bias either way gives different slopes, and no derivative agrees
/// with the centred difference. The report must flag those coordinates as kinks and pass.
#[test]
fn relu_exactly_on_its_kink_is_flagged_not_failed() {
    let mut model = net::<f64>([4, 6, 3], Activation::Relu, 3);
    let mut x = data(8, 4, 3).all().to_matrix().unwrap().0.into_vec();
    x[..4 * 4].fill(0.0); // four all-zero rows
    let d = Dataset::from_matrix(
        Matrix::from_vec(x, 8, 4).unwrap(),
        vec![0, 1, 2, 0, 1, 2, 0, 1],
        3,
    )
    .unwrap();
    let bias = model.param_groups()[1].clone();
    assert_eq!(bias.name, "layers.0.bias");
    for b in &mut model.params_mut()[bias.range()] {
        *b = 0.0;
    }
    let report = GradCheck::new().run(&mut model, &d.all()).unwrap();
    assert!(!report.kinks.is_empty(), "{report}");
    assert!(report.passed(), "{report}");
    for c in report.kink_coordinates() {
        assert!(bias.range().contains(&c.index), "{report}");
        assert!(c.rel_error > 1e-2, "a kink disagrees a lot: {c:?}");
    }
    assert_eq!(report.groups[1].kinks, report.kinks.len());

    // With kink detection off, the same disagreement is a failure.
    let strict = GradCheck::new()
        .detect_kinks(false)
        .run(&mut model, &d.all())
        .unwrap();
    assert!(!strict.passed(), "{strict}");
    assert!(strict.kinks.is_empty());
}

#[test]
fn a_sample_covers_every_group_and_parallel_matches_serial() {
    let d = data(10, 4, 3);
    let mut model = mlp(Activation::Relu);
    let check = GradCheck::new().sample(20, 5).unwrap();
    let report = check.run(&mut model, &d.all()).unwrap();
    assert_eq!(report.checked(), 20);
    // Six groups share 20 coordinates: the 3-element bias is checked whole.
    for g in &report.groups {
        assert!(g.checked >= 3.min(g.len), "{report}");
    }
    assert_eq!(report.groups[5].checked, 3);
    assert!(report.passed(), "{report}");
    // Same seed, same sample; another seed, another sample.
    assert_eq!(check.run(&mut model, &d.all()).unwrap(), report);
    let other = GradCheck::new().sample(20, 6).unwrap();
    assert_ne!(
        other.run(&mut model, &d.all()).unwrap().coordinates,
        report.coordinates
    );
    for threads in [2, 3] {
        let parallel = check
            .clone()
            .threads(threads)
            .unwrap()
            .run_parallel(&mut model, &d.all())
            .unwrap();
        assert_eq!(parallel, report);
    }
}

#[test]
fn f32_checks_are_looser_but_still_catch_bugs() {
    let x: Vec<f32> = data(12, 4, 3)
        .all()
        .to_matrix()
        .unwrap()
        .0
        .into_vec()
        .iter()
        .map(|&v| v as f32)
        .collect();
    let d = Dataset::from_matrix(
        Matrix::from_vec(x, 12, 4).unwrap(),
        (0..12).map(|r| r % 3).collect(),
        3,
    )
    .unwrap();
    let mut model = net::<f32>([4, 6, 3], Activation::Tanh, 1);
    let report = GradCheck::new().run(&mut model, &d.all()).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.tolerance, 1e-2);
    assert!(
        (report.h - 4.9e-3).abs() < 1e-4,
        "h = ε^(1/3) for f32: {}",
        report.h
    );
}

#[test]
fn forward_differences_are_worse_than_centred() {
    let d = data(12, 4, 3);
    let mut model = mlp(Activation::Tanh);
    let forward = GradCheck::new()
        .difference(Difference::Forward)
        .h(1e-5)
        .unwrap()
        .run(&mut model, &d.all())
        .unwrap();
    let central = GradCheck::new()
        .h(1e-5)
        .unwrap()
        .run(&mut model, &d.all())
        .unwrap();
    assert!(
        forward.mean_rel_error > 10.0 * central.mean_rel_error,
        "{forward}\n{central}"
    );
}

/// A model whose groups do not tile its parameters is a configuration error, not a panic.
#[derive(Clone)]
struct BadGroups(Mlp<f64>);

impl Params<f64> for BadGroups {
    fn params(&self) -> &[f64] {
        self.0.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.0.params_mut()
    }
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![
            ParamGroup::new("w", 0, vec![3]),
            ParamGroup::new("rest", 4, vec![1]),
        ]
    }
}

impl Model<f64> for BadGroups {
    fn loss(&mut self, batch: &Batch<'_, f64>) -> Result<f64> {
        self.0.loss(batch)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
        self.0.loss_and_grad(batch, grad)
    }
}

#[test]
fn bad_configuration_is_an_error() {
    let d = data(4, 4, 3);
    let err = GradCheck::new()
        .run(&mut BadGroups(mlp(Activation::Tanh)), &d.all())
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Shape {
                context: "Params::param_groups",
                expected: 3,
                found: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(GradCheck::new().h(0.0).is_err());
    assert!(GradCheck::new().h(f64::NAN).is_err());
    assert!(GradCheck::new().tolerance(-1.0).is_err());
    assert!(GradCheck::new().floor(f64::INFINITY).is_err());
    assert!(GradCheck::new().sample(0, 1).is_err());
    assert!(GradCheck::new().threads(0).is_err());
    assert!(GradCheck::new().directions(0, 1).is_err());
    let x = [1.0, 2.0];
    let groups = vec![ParamGroup::new("a", 0, vec![3])];
    let err = GradCheck::new()
        .groups(groups)
        .check_fn(&x, |x: &[f64]| x[0], |_: &[f64], g: &mut [f64]| g.fill(0.0))
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Shape {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = GradCheck::new()
        .check_vjp(
            &x,
            0,
            |_: &[f64], _: &mut [f64]| {},
            |_: &[f64], _: &[f64], _: &mut [f64]| {},
        )
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidParameter {
                name: "outputs",
                ..
            }
        ),
        "{err}"
    );
}

/// A NaN in the analytic gradient is the worst possible error, never a pass.
#[test]
fn nan_gradient_fails() {
    let d = data(6, 4, 3);
    let mut model = Corrupted {
        inner: mlp(Activation::Tanh),
        index: 2,
        by: f64::NAN,
    };
    let report = GradCheck::new().run(&mut model, &d.all()).unwrap();
    assert!(!report.passed(), "{report}");
    assert_eq!(report.verdict(), Verdict::Wrong);
    assert_eq!(report.worst.unwrap().index, 2);
}

// ---- functions, backward passes, directions -------------------------------------------

/// `f(x) = Σ sin(xᵢ)·xᵢ₊₁ + xᵢ²/2`, a smooth function coupling neighbours, and its gradient
/// with coordinate `bad` off by `by` (a relative error).
fn wavy(x: &[f64]) -> f64 {
    let n = x.len();
    (0..n)
        .map(|i| x[i].sin() * x[(i + 1) % n] + 0.5 * x[i] * x[i])
        .sum()
}

fn wavy_grad(x: &[f64], g: &mut [f64], bad: Option<usize>, by: f64) {
    let n = x.len();
    for i in 0..n {
        let prev = (i + n - 1) % n;
        g[i] = x[i].cos() * x[(i + 1) % n] + x[prev].sin() + x[i];
    }
    if let Some(b) = bad {
        g[b] *= 1.0 + by;
    }
}

fn point(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 7 + 3) % 11) as f64 / 5.0 - 1.0)
        .collect()
}

#[test]
fn check_fn_passes_a_correct_gradient_and_names_a_one_percent_error() {
    let x = point(12);
    let good = GradCheck::new()
        .check_fn(&x, wavy, |x: &[f64], g: &mut [f64]| {
            wavy_grad(x, g, None, 0.0)
        })
        .unwrap();
    assert!(good.passed(), "{good}");
    assert_eq!(good.verdict(), Verdict::Good, "{good}");
    assert_eq!(good.probe, Probe::Coordinates);
    for bad in [0, 5, 11] {
        let report = GradCheck::new()
            .check_fn(&x, wavy, |x: &[f64], g: &mut [f64]| {
                wavy_grad(x, g, Some(bad), 0.01)
            })
            .unwrap();
        assert!(!report.passed(), "{report}");
        assert_eq!(report.worst.unwrap().index, bad, "{report}");
        assert!(
            (report.max_rel_error - 0.01 / 1.01).abs() < 1e-6,
            "{report}"
        );
    }
}

#[test]
fn named_groups_say_which_part_of_the_vector_is_wrong() {
    let x = point(12);
    let groups = vec![
        ParamGroup::new("W", 0, vec![3, 3]),
        ParamGroup::new("b", 9, vec![3]),
    ];
    let report = GradCheck::new()
        .groups(groups)
        .check_fn(&x, wavy, |x: &[f64], g: &mut [f64]| {
            wavy_grad(x, g, Some(10), 0.01)
        })
        .unwrap();
    assert_eq!(report.worst_group(), Some("b"), "{report}");
    assert!(report.groups[0].max_rel_error < 1e-7, "{report}");
    assert!(report.to_string().contains("W "), "{report}");
}

#[test]
fn the_parallel_check_fn_is_the_serial_one() {
    let x = point(40);
    let grad = |x: &[f64], g: &mut [f64]| wavy_grad(x, g, Some(17), 0.01);
    let serial = GradCheck::new().check_fn(&x, wavy, grad).unwrap();
    for threads in [2, 3] {
        let parallel = GradCheck::new()
            .threads(threads)
            .unwrap()
            .check_fn_parallel(&x, wavy, grad)
            .unwrap();
        assert_eq!(parallel, serial, "{threads} threads");
    }
}

/// `y = tanh(W·x + b)` for a 3 × 4 `W`, all inputs in one vector `p = [x (4), W (12), b (3)]`,
/// and its backward pass with an optional error in one output coordinate of `dp`.
fn layer(p: &[f64], y: &mut [f64]) {
    let (x, w, b) = (&p[..4], &p[4..16], &p[16..19]);
    for r in 0..3 {
        y[r] = (b[r] + (0..4).map(|c| w[r * 4 + c] * x[c]).sum::<f64>()).tanh();
    }
}

fn layer_backward(p: &[f64], dy: &[f64], dp: &mut [f64], bad: Option<usize>) {
    let (x, w, b) = (&p[..4], &p[4..16], &p[16..19]);
    let mut dz = [0.0; 3];
    for r in 0..3 {
        let y = (b[r] + (0..4).map(|c| w[r * 4 + c] * x[c]).sum::<f64>()).tanh();
        dz[r] = dy[r] * (1.0 - y * y);
    }
    let (dx, rest) = dp.split_at_mut(4);
    let (dw, db) = rest.split_at_mut(12);
    for c in 0..4 {
        dx[c] = (0..3).map(|r| w[r * 4 + c] * dz[r]).sum();
    }
    for r in 0..3 {
        for c in 0..4 {
            dw[r * 4 + c] = dz[r] * x[c];
        }
        db[r] = dz[r];
    }
    if let Some(i) = bad {
        dp[i] *= 1.01;
    }
}

fn layer_groups() -> Vec<ParamGroup> {
    vec![
        ParamGroup::new("x", 0, vec![4]),
        ParamGroup::new("W", 4, vec![3, 4]),
        ParamGroup::new("b", 16, vec![3]),
    ]
}

#[test]
fn check_vjp_passes_a_correct_backward_pass_and_catches_a_one_percent_error() {
    let p = point(19);
    let check = GradCheck::new().groups(layer_groups());
    let good = check
        .check_vjp(&p, 3, layer, |p: &[f64], dy: &[f64], dp: &mut [f64]| {
            layer_backward(p, dy, dp, None)
        })
        .unwrap();
    assert!(good.passed(), "{good}");
    assert_eq!(good.verdict(), Verdict::Good, "{good}");
    for (bad, group) in [(2, "x"), (9, "W"), (17, "b")] {
        let report = check
            .check_vjp(&p, 3, layer, |p: &[f64], dy: &[f64], dp: &mut [f64]| {
                layer_backward(p, dy, dp, Some(bad))
            })
            .unwrap();
        assert!(!report.passed(), "{report}");
        assert_eq!(report.worst.unwrap().index, bad, "{report}");
        assert_eq!(report.worst_group(), Some(group), "{report}");
    }
    // The upstream gradient is seeded: another seed, another (still passing) check.
    let other = check
        .clone()
        .seed(7)
        .check_vjp(&p, 3, layer, |p: &[f64], dy: &[f64], dp: &mut [f64]| {
            layer_backward(p, dy, dp, None)
        })
        .unwrap();
    assert!(other.passed());
    assert_ne!(other.coordinates, good.coordinates);
}

#[test]
fn directions_check_every_parameter_in_a_few_evaluations() {
    // A 100,000-parameter function: 8 directions take at most 40 calls of f.
    let x = point(100_000);
    let calls = Cell::new(0usize);
    let f = |x: &[f64]| {
        calls.set(calls.get() + 1);
        wavy(x)
    };
    let report = GradCheck::new()
        .directions(8, 3)
        .unwrap()
        .check_fn(&x, f, |x: &[f64], g: &mut [f64]| wavy_grad(x, g, None, 0.0))
        .unwrap();
    assert!(report.passed(), "{report}");
    assert!(calls.get() <= 40, "{} calls of f", calls.get());
    assert_eq!(
        report.evaluations,
        calls.get(),
        "the report counts every call"
    );
    assert_eq!(report.probe, Probe::Directions { count: 8, seed: 3 });
    assert_eq!(report.checked(), 8);
    let table = report.to_string();
    assert!(table.contains("8 random directions"), "{table}");
    assert!(table.contains("orthogonal to every direction"), "{table}");
}

#[test]
fn directions_catch_an_error_in_every_coordinate_and_agree_with_run() {
    // 1% off in every coordinate: every projection is 1% off.
    let x = point(2000);
    let broken = GradCheck::new()
        .directions(4, 1)
        .unwrap()
        .check_fn(&x, wavy, |x: &[f64], g: &mut [f64]| {
            wavy_grad(x, g, None, 0.0);
            g.iter_mut().for_each(|v| *v *= 1.01);
        })
        .unwrap();
    assert!(!broken.passed(), "{broken}");
    assert!(broken.max_rel_error > 5e-3, "{broken}");

    // On a model: the fast mode passes a correct MLP and fails a scaled gradient.
    let d = data(12, 4, 3);
    let mut model = mlp(Activation::Tanh);
    let fast = GradCheck::new().directions(6, 2).unwrap();
    let report = fast.run(&mut model, &d.all()).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.evaluations, 1 + 2 * 6, "{report}");
    let n = model.num_params();
    let mut scaled = Corrupted {
        inner: mlp(Activation::Tanh),
        index: 0,
        by: 0.0,
    };
    let mut g = vec![0.0; n];
    scaled.inner.loss_and_grad(&d.all(), &mut g).unwrap();
    scaled.by = g[0] * 50.0;
    assert!(!fast.run(&mut scaled, &d.all()).unwrap().passed());
    // The parameters are exactly where they were.
    assert_eq!(model.params(), mlp(Activation::Tanh).params());
}
