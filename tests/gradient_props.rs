//! The gradient check as a property: for random small models — any depth, widths,
//! activations, either loss, with and without L2, walked in row blocks of any size — the
//! analytic gradient matches the numeric one.
//!
//! This is also the template for checking a model of your own: build it from proptest's
//! inputs, run [`GradCheck`], assert on the report.

use downhill::gradcheck::{Difference, GradCheck};
use downhill::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// 128 cases per property; a fixed seed (reproducible CI) unless PROPTEST_RNG_SEED is set.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::with_cases(128);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x5eed_0fd0_e111);
    }
    c.failure_persistence = None;
    c
}

#[derive(Debug, Clone)]
struct Case {
    inputs: usize,
    hidden: Vec<(usize, Activation)>,
    classes: usize,
    loss: Loss,
    l2: f64,
    rows: usize,
    block_rows: usize,
    x: Vec<f64>,
    labels: Vec<usize>,
    seed: u64,
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        Just(Activation::Relu)
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..6,
        prop::collection::vec((1usize..7, activation()), 0..4),
        2usize..6,
        prop_oneof![Just(Loss::SoftmaxCrossEntropy), Just(Loss::Hinge)],
        prop_oneof![Just(0.0), 0.01f64..0.5],
        1usize..10,
        any::<u64>(),
    )
        .prop_flat_map(|(inputs, hidden, classes, loss, l2, rows, seed)| {
            (
                prop::collection::vec(-2.0f64..2.0, rows * inputs),
                prop::collection::vec(0..classes, rows),
                // Blocks smaller than, equal to and larger than the batch.
                1usize..rows + 3,
            )
                .prop_map(move |(x, labels, block_rows)| Case {
                    inputs,
                    hidden: hidden.clone(),
                    classes,
                    loss,
                    l2,
                    rows,
                    block_rows,
                    x,
                    labels,
                    seed,
                })
        })
}

fn build(c: &Case) -> (Mlp<f64>, Dataset<f64>) {
    let mut b = Mlp::<f64>::builder(c.inputs)
        .classes(c.classes)
        .loss(c.loss)
        .l2(c.l2)
        .seed(c.seed)
        .block_rows(c.block_rows);
    for &(w, a) in &c.hidden {
        b = b.hidden(w, a);
    }
    let mut model = b.build().unwrap();
    randomize(&mut model, c.seed);
    let x = Matrix::from_vec(c.x.clone(), c.rows, c.inputs).unwrap();
    (
        model,
        Dataset::from_matrix(x, c.labels.clone(), c.classes).unwrap(),
    )
}

/// Random weights *and biases*: with the builder's zero biases, an all-zero input row puts
/// every ReLU exactly on its kink, where no finite difference agrees with any derivative.
fn randomize(model: &mut dyn Model<f64>, seed: u64) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
    for w in model.params_mut() {
        let z: f64 = StandardNormal.sample(&mut rng);
        *w = 0.7 * z;
    }
}

/// How to check a case, and the tolerance on the worst coordinate's relative error.
///
/// Smooth models (sigmoid, tanh, softmax): five-point differences with h = 1e-4 leave a
/// numeric error near 1e-11, far below a 1e-5 tolerance, while a wrong backward formula is
/// off by a sizeable fraction of the gradient.
///
/// Models with kinks (ReLU at 0, a hinge margin at 0): a finite difference whose stencil
/// straddles a kink is wrong whatever the formula, so these use centred differences with a
/// tiny h = 1e-6, which makes straddling rare (about one case in 10⁵), at the price of
/// rounding noise near 1e-9, hence the looser 1e-3.
///
/// The floor keeps coordinates that are zero up to rounding (a dead ReLU's weights, a class
/// without margin violations) from reading as 100% errors.
fn check_for(c: &Case) -> (GradCheck, f64) {
    let smooth =
        c.loss == Loss::SoftmaxCrossEntropy && c.hidden.iter().all(|&(_, a)| a != Activation::Relu);
    if smooth {
        let check = GradCheck::new()
            .h(1e-4)
            .unwrap()
            .difference(Difference::FivePoint);
        (check.floor(1e-5).unwrap(), 1e-5)
    } else {
        let check = GradCheck::new()
            .h(1e-6)
            .unwrap()
            .difference(Difference::Central);
        (check.floor(1e-5).unwrap(), 1e-3)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mlp_gradient_matches_numeric(c in case()) {
        let (mut model, data) = build(&c);
        let (check, tolerance) = check_for(&c);
        let report = check.run(&mut model, &data.all()).unwrap();
        prop_assert!(report.max_rel_error < tolerance, "{report}");
    }

    #[test]
    fn linear_gradient_matches_numeric(c in case()) {
        let mut model = LinearClassifier::<f64>::builder(c.inputs, c.classes)
            .loss(c.loss)
            .l2(c.l2)
            .build()
            .unwrap();
        randomize(&mut model, c.seed);
        let (_, data) = build(&c);
        let (check, tolerance) = check_for(&c);
        let report = check.run(&mut model, &data.all()).unwrap();
        prop_assert!(report.max_rel_error < tolerance, "{report}");
    }

    /// Walking a batch in blocks of any size gives the same loss and gradient as one block.
    #[test]
    fn blocking_does_not_change_the_result(c in case()) {
        let (mut blocked, data) = build(&c);
        let mut whole = build(&Case { block_rows: c.rows, ..c.clone() }).0;
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

    /// `loss_and_accumulate_grad(g, β)` is `β·g + ∇L`, however the batch is blocked.
    #[test]
    fn accumulating_scales_the_old_gradient_once(c in case(), beta in prop_oneof![Just(0.0), Just(1.0), 0.0f64..1.0]) {
        let (mut model, data) = build(&c);
        let mut fresh = vec![0.0; model.num_params()];
        let l1 = model.loss_and_grad(&data.all(), &mut fresh).unwrap();
        let old: Vec<f64> = (0..fresh.len()).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut acc = old.clone();
        let l2 = model.loss_and_accumulate_grad(&data.all(), &mut acc, beta).unwrap();
        prop_assert_eq!(l1, l2);
        let scale = 1.0 + fresh.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        for ((a, o), f) in acc.iter().zip(&old).zip(&fresh) {
            prop_assert!((a - (beta * o + f)).abs() <= 1e-12 * scale, "{a} vs {}", beta * o + f);
        }
    }
}
