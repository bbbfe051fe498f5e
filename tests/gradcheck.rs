//! The gradient check catches what it must, excuses only kinks, and reports where.

use downhill::gradcheck::{Difference, GradCheck, Verdict};
use downhill::matrix::{MatMut, MatRef};
use downhill::model::ParamGroup;
use downhill::prelude::*;

/// A correct model whose gradient is wrong in exactly one coordinate.
#[derive(Clone)]
struct Corrupted {
    inner: Mlp<f64>,
    index: usize,
    by: f64,
}

impl Model<f64> for Corrupted {
    fn num_inputs(&self) -> usize {
        self.inner.num_inputs()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn params(&self) -> &[f64] {
        self.inner.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.inner.params_mut()
    }
    fn loss(&mut self, batch: &Batch<'_, f64>) -> Result<f64> {
        self.inner.loss(batch)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
        let loss = self.inner.loss_and_grad(batch, grad)?;
        grad[self.index] += self.by;
        Ok(loss)
    }
    fn scores(&mut self, x: MatRef<'_, f64>, out: MatMut<'_, f64>) -> Result<()> {
        self.inner.scores(x, out)
    }
    fn param_groups(&self) -> Vec<ParamGroup> {
        self.inner.param_groups()
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
    let mut model = Mlp::<f64>::builder(4)
        .hidden(6, Activation::Relu)
        .classes(3)
        .seed(3)
        .build()
        .unwrap();
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
    let mut model = Mlp::<f32>::builder(4)
        .hidden(6, Activation::Tanh)
        .classes(3)
        .seed(1)
        .build()
        .unwrap();
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

impl Model<f64> for BadGroups {
    fn num_inputs(&self) -> usize {
        self.0.num_inputs()
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn params(&self) -> &[f64] {
        self.0.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.0.params_mut()
    }
    fn loss(&mut self, batch: &Batch<'_, f64>) -> Result<f64> {
        self.0.loss(batch)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
        self.0.loss_and_grad(batch, grad)
    }
    fn scores(&mut self, x: MatRef<'_, f64>, out: MatMut<'_, f64>) -> Result<()> {
        self.0.scores(x, out)
    }
    fn param_groups(&self) -> Vec<ParamGroup> {
        vec![
            ParamGroup::new("w", 0, vec![3]),
            ParamGroup::new("rest", 4, vec![1]),
        ]
    }
}

#[test]
fn bad_configuration_is_an_error() {
    let d = data(4, 4, 3);
    let err = GradCheck::new()
        .run(&mut BadGroups(mlp(Activation::Tanh)), &d.all())
        .unwrap_err();
    assert!(err.to_string().contains("param_groups"), "{err}");
    assert!(GradCheck::new().h(0.0).is_err());
    assert!(GradCheck::new().h(f64::NAN).is_err());
    assert!(GradCheck::new().tolerance(-1.0).is_err());
    assert!(GradCheck::new().floor(f64::INFINITY).is_err());
    assert!(GradCheck::new().sample(0, 1).is_err());
    assert!(GradCheck::new().threads(0).is_err());
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
