//! The gradient check as a property: for random models — 1 to 4 layers, widths 1 to 16, any
//! activation per layer, either loss, with and without L2, batches of 1 to 33 rows, walked
//! in row blocks of any size — the analytic gradient matches the numeric one, in `f64`.
//!
//! These use the same helpers a user's own property tests would (`downhill::testing`, the
//! `testing` feature): strategies for shapes and data, and `assert_gradients_match`. And the
//! fast, blocked, threaded backward pass is held to the plain one in `model/backprop.rs`:
//! bit for bit when a batch is one block, to rounding when it is walked in several.

use downhill::data::TrainingStep;
use downhill::gradcheck::{Difference, GradCheck};
use downhill::model::backprop;
use downhill::model::{evaluate_classifier, SparseInput};
use downhill::prelude::*;
use downhill::testing::{
    assert_gradients_match, byte_dataset, measured_grad_magnitude, mlp_case, mlp_spec, randomize,
    MlpSpec,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// 256 cases per property; a fixed seed (reproducible CI) unless PROPTEST_RNG_SEED is set.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::with_cases(256);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x5eed_0fd0_e111);
    }
    c.failure_persistence = None;
    c
}

/// The check for a model: the default (centred differences, `h` for `f64`, kink detection,
/// tolerance 1e-4) where ReLU or the hinge put kinks in the loss; where it is smooth, no
/// kink detection and a tolerance of 1e-6. A wrong backward formula is off
/// by a sizeable fraction of the gradient, far above either.
fn check_for(spec: &MlpSpec) -> GradCheck {
    if spec.is_smooth() {
        // Nothing to excuse: every disagreement counts.
        GradCheck::new()
            .tolerance(1e-6)
            .unwrap()
            .detect_kinks(false)
    } else {
        GradCheck::new()
    }
}

/// A shape and batch for the blocking properties: the model's spec, its data, and a row
/// block size smaller than, equal to or larger than the batch.
fn blocked_case() -> impl Strategy<Value = (MlpSpec, Dataset<f64>, usize)> {
    mlp_case(1..8, 1..=4, 1..17, 2..6, 1..34).prop_flat_map(|(spec, data)| {
        let rows = data.len();
        (Just(spec), Just(data), 1usize..rows + 3)
    })
}

fn build_blocked(spec: &MlpSpec, block_rows: usize) -> Mlp<f64> {
    build_dropping(spec, block_rows, 0.0, SparseInput::Auto)
}

/// Every activation × loss (with each output activation it takes) × L2 on/off × depth 1–4,
/// at batch sizes 1, 17 and 33: the combinations a random draw might miss, each checked
/// once.
#[test]
fn every_activation_loss_output_l2_and_depth() {
    let mut checked = 0;
    let losses = [
        Loss::SoftmaxCrossEntropy,
        Loss::Hinge,
        Loss::MeanSquared,
        Loss::BinaryCrossEntropy,
    ];
    for act in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
        for loss in losses {
            let outputs: &[Option<Activation>] = if loss.needs_probabilities() {
                &[Some(Activation::Sigmoid)]
            } else {
                &[None, Some(Activation::Sigmoid), Some(Activation::Tanh)]
            };
            for l2 in [0.0, 0.1] {
                for layers in 1..=4usize {
                    for (rows, &output) in [1usize, 17, 33].into_iter().zip(outputs.iter().cycle())
                    {
                        let seed = checked as u64;
                        let spec = MlpSpec {
                            inputs: 5,
                            hidden: (1..layers).map(|l| (3 + 5 * l % 14, act)).collect(),
                            classes: 4,
                            output,
                            loss,
                            l2,
                            seed,
                        };
                        let mut model = spec.build::<f64>().unwrap();
                        let x: Vec<f64> = (0..rows * 5)
                            .map(|i| ((i * 7919 + seed as usize) % 97) as f64 / 24.0 - 2.0)
                            .collect();
                        let labels = (0..rows).map(|r| (r * 3 + 1) % 4).collect();
                        let data =
                            Dataset::from_matrix(Matrix::from_vec(x, rows, 5).unwrap(), labels, 4)
                                .unwrap();
                        let report = check_for(&spec).run(&mut model, &data.all()).unwrap();
                        assert!(report.passed(), "{spec:?}\n{report}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 288);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mlp_gradient_matches_numeric((spec, data) in mlp_case(1..8, 1..=4, 1..17, 2..6, 1..34)) {
        let mut model = spec.build::<f64>().unwrap();
        assert_gradients_match(&mut model, &data.all(), &check_for(&spec))?;
    }

    #[test]
    fn linear_gradient_matches_numeric((spec, data) in mlp_case(1..8, 1..=1, 1..2, 2..6, 1..34)) {
        prop_assume!(!spec.loss.needs_probabilities());
        let mut model = LinearClassifier::<f64>::builder(spec.inputs, spec.classes)
            .loss(spec.loss)
            .l2(spec.l2)
            .build()
            .unwrap();
        randomize(&mut model, 0.7, spec.seed);
        assert_gradients_match(&mut model, &data.all(), &check_for(&spec))?;
    }

    /// Five-point differences agree too, on smooth models, to a tighter tolerance.
    #[test]
    fn five_point_check_is_tighter_on_smooth_models((spec, data) in mlp_case(1..6, 1..=3, 1..9, 2..5, 1..20)) {
        prop_assume!(spec.is_smooth());
        let mut model = spec.build::<f64>().unwrap();
        let check = GradCheck::new()
            .difference(Difference::FivePoint)
            .tolerance(1e-8)
            .unwrap()
            .detect_kinks(false);
        assert_gradients_match(&mut model, &data.all(), &check)?;
    }

    /// Walking a batch in blocks of any size gives the same loss and gradient as one block.
    #[test]
    fn blocking_does_not_change_the_result((spec, data, block_rows) in blocked_case()) {
        let mut blocked = build_blocked(&spec, block_rows);
        let mut whole = build_blocked(&spec, data.len());
        let mut g1 = vec![0.0; blocked.num_params()];
        let mut g2 = vec![0.0; whole.num_params()];
        let l1 = blocked.loss_and_grad(&data.all(), &mut g1).unwrap();
        let l2 = whole.loss_and_grad(&data.all(), &mut g2).unwrap();
        // Equal up to the rounding of a different summation order of the blocks' shares.
        let scale = 1.0 + g2.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        prop_assert!((l1 - l2).abs() <= 1e-12 * l1.abs().max(1.0));
        for (a, b) in g1.iter().zip(&g2) {
            prop_assert!((a - b).abs() <= 1e-12 * scale, "{a} vs {b}");
        }
    }

    /// The blocked, threaded path computes what the plain backprop computes, to rounding
    /// (its narrow layers' products run on their own kernels, summing in another order than
    /// `gemm`), and the same bits on any number of threads.
    #[test]
    fn the_fast_path_is_the_plain_backprop(
        (spec, data, block_rows) in blocked_case(),
        threads in 2usize..4,
    ) {
        let mut model = build_blocked(&spec, block_rows);
        let mut reference = vec![0.0; model.num_params()];
        let mut one = vec![0.0; model.num_params()];
        let mut fast = vec![0.0; model.num_params()];
        let l_ref = backprop::loss_and_grad(&model, &data.all(), &mut reference).unwrap();
        let l_one = model.loss_and_grad(&data.all(), &mut one).unwrap();
        let (x, _) = data.all().to_matrix().unwrap();
        let mut scores_one = Matrix::zeros(x.rows(), spec.classes).unwrap();
        model.scores(x.as_ref(), scores_one.as_mut()).unwrap();
        model.set_threads(threads).unwrap();
        let l_fast = model.loss_and_grad(&data.all(), &mut fast).unwrap();
        prop_assert_eq!(l_one.to_bits(), l_fast.to_bits());
        for (i, (a, b)) in one.iter().zip(&fast).enumerate() {
            prop_assert_eq!(a.to_bits(), b.to_bits(), "parameter {}: {} vs {}", i, a, b);
        }
        measured_as_written(&mut model, &fast, spec.l2)?;
        let scale = 1.0 + reference.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        prop_assert!((l_ref - l_fast).abs() <= 1e-12 * l_ref.abs().max(1.0));
        for (a, b) in reference.iter().zip(&fast) {
            prop_assert!((a - b).abs() <= 1e-12 * scale, "{a} vs {b}");
        }
        // And the scores the fast path gives are the plain forward pass's.
        let plain = backprop::scores(&model, &x).unwrap();
        let mut scores = Matrix::zeros(x.rows(), spec.classes).unwrap();
        model.scores(x.as_ref(), scores.as_mut()).unwrap();
        prop_assert_eq!(scores_one.as_slice(), scores.as_slice());
        for (a, b) in plain.as_slice().iter().zip(scores.as_slice()) {
            prop_assert!((a - b).abs() <= 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }

    /// The directional fast mode passes the same correct models.
    #[test]
    fn directions_pass_correct_models((spec, data) in mlp_case(1..8, 1..=4, 1..17, 2..6, 1..34)) {
        let mut model = spec.build::<f64>().unwrap();
        let mut check = check_for(&spec).directions(4, spec.seed).unwrap();
        if spec.is_smooth() {
            check = check.tolerance(1e-5).unwrap();
        }
        assert_gradients_match(&mut model, &data.all(), &check)?;
    }
}

/// The magnitude an MLP measured as it wrote `grad` (which lets an update step skip its
/// own pass over the gradient to prove the step finite) is `grad`'s largest `|g|`, exactly;
/// with an L2 penalty, added after the measure, it says it has none.
fn measured_as_written(model: &mut Mlp<f64>, grad: &[f64], l2: f64) -> Result<(), TestCaseError> {
    let top = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let want = if l2 == 0.0 { Some(top) } else { None };
    prop_assert_eq!(measured_grad_magnitude(model), want);
    Ok(())
}

/// A model of `spec` reading its input sparse or dense.
fn build_reading(spec: &MlpSpec, sparse: SparseInput, block_rows: usize) -> Mlp<f64> {
    build_dropping(spec, block_rows, 0.0, sparse)
}

/// Standardises `data` per feature (the transform `mnist --standardize` uses).
fn standardized(data: &mut Dataset<f64>) {
    let t = FeatureTransform::standardize(data, 0.01).unwrap();
    data.set_transform(t).unwrap();
}

/// A model spec and a byte dataset (any density, some all-zero and full rows) that fits it,
/// standardised half the time, and a block size.
fn sparse_case() -> impl Strategy<Value = (MlpSpec, Dataset<f64>, bool, usize)> {
    mlp_spec(1..12, 1..=3, 1..12, 2..5)
        .prop_flat_map(|spec| {
            let data = byte_dataset::<f64>(spec.inputs, spec.classes, 2..30);
            (Just(spec), data, any::<bool>())
        })
        .prop_flat_map(|(spec, data, standardize)| {
            let rows = data.len();
            (Just(spec), Just(data), Just(standardize), 1usize..rows + 3)
        })
}

proptest! {
    #![proptest_config(config())]

    /// The sparse first layer computes what the dense one does, to rounding: losses,
    /// gradients and scores, standardised or not, in any blocking and on any thread count.
    #[test]
    fn the_sparse_first_layer_is_the_dense_one(
        (spec, mut data, standardize, block_rows) in sparse_case(),
        threads in 1usize..4,
    ) {
        if standardize {
            standardized(&mut data);
        }
        let mut sparse = build_reading(&spec, SparseInput::Always, block_rows);
        let mut dense = build_reading(&spec, SparseInput::Never, block_rows);
        sparse.set_threads(threads).unwrap();
        prop_assert!(sparse.reads_sparse(&data) && !dense.reads_sparse(&data));
        let (mut gs, mut gd) = (vec![0.0; sparse.num_params()], vec![0.0; dense.num_params()]);
        let ls = sparse.loss_and_grad(&data.all(), &mut gs).unwrap();
        let ld = dense.loss_and_grad(&data.all(), &mut gd).unwrap();
        prop_assert!((ls - ld).abs() <= 1e-12 * ld.abs().max(1.0), "{ls} vs {ld}");
        let scale = 1.0 + gd.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        for (i, (a, b)) in gs.iter().zip(&gd).enumerate() {
            prop_assert!((a - b).abs() <= 1e-12 * scale, "parameter {i}: {a} vs {b}");
        }
        measured_as_written(&mut sparse, &gs, spec.l2)?;
        measured_as_written(&mut dense, &gd, spec.l2)?;
    }

    /// `Mlp::evaluate` scores on the training path (row blocks, threads, the first layer
    /// sparse where the data is); it reports what scoring every row through
    /// `Classifier::scores` does: the same accuracy, and the loss to rounding.
    #[test]
    fn evaluation_on_the_training_path_is_scoring_every_row(
        (spec, mut data, standardize, block_rows) in sparse_case(),
        threads in 1usize..4,
    ) {
        if standardize {
            standardized(&mut data);
        }
        for reading in [SparseInput::Always, SparseInput::Never] {
            let mut m = build_reading(&spec, reading, block_rows);
            m.set_threads(threads).unwrap();
            let fast = m.evaluate(&data).unwrap();
            let scored = evaluate_classifier(&mut m, &data, Some(spec.loss)).unwrap();
            prop_assert_eq!(fast.accuracy, scored.accuracy, "{:?}", reading);
            let (a, b) = (fast.loss.unwrap(), scored.loss.unwrap());
            prop_assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b} ({reading:?})");
        }
    }

    /// And its gradient passes the gradient check on its own.
    #[test]
    fn the_sparse_first_layers_gradient_matches_numeric(
        (spec, mut data, standardize, block_rows) in sparse_case(),
    ) {
        if standardize {
            standardized(&mut data);
        }
        let mut model = build_reading(&spec, SparseInput::Always, block_rows);
        assert_gradients_match(&mut model, &data.all(), &check_for(&spec))?;
    }
}

/// The model of `spec` walked in blocks of `block_rows`, dropping hidden units with
/// probability `p` in training steps.
fn build_dropping(spec: &MlpSpec, block_rows: usize, p: f64, sparse: SparseInput) -> Mlp<f64> {
    let mut b = Mlp::<f64>::builder(spec.inputs)
        .classes(spec.classes)
        .output(spec.output)
        .loss(spec.loss)
        .l2(spec.l2)
        .dropout(p)
        .block_rows(block_rows)
        .sparse_input(sparse);
    for &(w, a) in &spec.hidden {
        b = b.hidden(w, a);
    }
    let mut m = b.build().unwrap();
    randomize(&mut m, 0.7, spec.seed);
    m
}

/// A training step somewhere in a run seeded with `seed`.
fn some_step(seed: u64) -> TrainingStep {
    TrainingStep::new(seed, 1 + (seed % 7) as usize, (seed % 1000) as usize)
}

proptest! {
    #![proptest_config(config())]

    /// With dropout, a training step's loss is one function of the parameters — its masks
    /// are the step's, the same at every probe — so its gradient passes the check; the
    /// blocked, threaded path computes what the plain backprop does with the same masks
    /// (to rounding; the same bits on any thread count); and the magnitude it measured as
    /// it wrote the gradient is the gradient's, exactly.
    #[test]
    fn a_training_step_with_dropout_has_the_gradient_the_check_and_backprop_give(
        (spec, data, block_rows) in blocked_case(),
        p in 0.05f64..0.9,
        seed in any::<u64>(),
        threads in 2usize..4,
    ) {
        let mut model = build_dropping(&spec, block_rows, p, SparseInput::Auto);
        let batch = data.all().for_step(some_step(seed));
        assert_gradients_match(&mut model, &batch, &check_for(&spec))?;
        let n = model.num_params();
        let (mut reference, mut one, mut fast) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let l_ref = backprop::loss_and_grad(&model, &batch, &mut reference).unwrap();
        let l_one = model.loss_and_grad(&batch, &mut one).unwrap();
        model.set_threads(threads).unwrap();
        let l_fast = model.loss_and_grad(&batch, &mut fast).unwrap();
        prop_assert_eq!(l_one.to_bits(), l_fast.to_bits());
        for (i, (a, b)) in one.iter().zip(&fast).enumerate() {
            prop_assert_eq!(a.to_bits(), b.to_bits(), "parameter {}: {} vs {}", i, a, b);
        }
        measured_as_written(&mut model, &fast, spec.l2)?;
        let scale = 1.0 + reference.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        prop_assert!((l_ref - l_fast).abs() <= 1e-12 * l_ref.abs().max(1.0), "{l_ref} vs {l_fast}");
        for (a, b) in reference.iter().zip(&fast) {
            prop_assert!((a - b).abs() <= 1e-12 * scale, "{a} vs {b}");
        }
    }

    /// And through the sparse first layer: the same masks as the dense one, the same loss
    /// and gradient to rounding, and a gradient that passes the check.
    #[test]
    fn a_training_step_with_dropout_reads_sparse_as_dense(
        (spec, mut data, standardize, block_rows) in sparse_case(),
        p in 0.05f64..0.9,
        seed in any::<u64>(),
        threads in 1usize..4,
    ) {
        if standardize {
            standardized(&mut data);
        }
        let batch = data.all().for_step(some_step(seed));
        let mut sparse = build_dropping(&spec, block_rows, p, SparseInput::Always);
        let mut dense = build_dropping(&spec, block_rows, p, SparseInput::Never);
        sparse.set_threads(threads).unwrap();
        let (mut gs, mut gd) = (vec![0.0; sparse.num_params()], vec![0.0; dense.num_params()]);
        let ls = sparse.loss_and_grad(&batch, &mut gs).unwrap();
        let ld = dense.loss_and_grad(&batch, &mut gd).unwrap();
        prop_assert!((ls - ld).abs() <= 1e-12 * ld.abs().max(1.0), "{ls} vs {ld}");
        let scale = 1.0 + gd.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        for (i, (a, b)) in gs.iter().zip(&gd).enumerate() {
            prop_assert!((a - b).abs() <= 1e-12 * scale, "parameter {i}: {a} vs {b}");
        }
        measured_as_written(&mut sparse, &gs, spec.l2)?;
        assert_gradients_match(&mut sparse, &batch, &check_for(&spec))?;
    }
}
