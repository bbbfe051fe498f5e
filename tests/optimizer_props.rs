//! The optimizers' invariants, as properties over random models, data and settings:
//!
//! * random search's best loss never rises, and the model always holds the best weights;
//! * local search's accepted loss never rises;
//! * one epoch of SGD with the whole set as its batch, unshuffled, is one step of gradient
//!   descent, bit for bit (they are one implementation; this holds its batching honest);
//! * momentum 0 is plain SGD, bit for bit;
//! * on a convex quadratic with largest curvature L, gradient descent converges for
//!   lr < 2/L and blows up for lr > 2/L — the edge of stability the lecture's ill-conditioned
//!   valley runs into.

mod common;

use common::Quadratic;
use downhill::model::Objective;
use downhill::prelude::*;
use downhill::testing::{mlp_case, MlpSpec};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x0971_1a11);
    }
    c.failure_persistence = None;
    c
}

/// Small models and datasets of 2 to 40 rows.
fn case() -> impl Strategy<Value = (MlpSpec, Dataset<f64>)> {
    mlp_case(1..6, 1..=3, 1..9, 2..5, 2..41)
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn random_search_best_loss_never_rises((spec, data) in case(), seed in any::<u64>(), scale in 1e-3f64..1.0) {
        let mut model = spec.build::<f64>().unwrap();
        let mut search = RandomSearch::new(scale, seed).unwrap();
        let all = data.all();
        let mut best = f64::INFINITY;
        for _ in 0..20 {
            let reported = search.step(&mut model.on(&all)).unwrap();
            let now = search.best_loss().unwrap();
            prop_assert!(now <= best, "best rose from {best} to {now}");
            prop_assert_eq!(reported, now);
            // The model holds the best weights: its loss is the best loss.
            prop_assert_eq!(model.loss(&data.all()).unwrap(), now);
            best = now;
        }
    }

    #[test]
    fn local_search_accepted_loss_never_rises((spec, data) in case(), seed in any::<u64>(), step in 1e-3f64..1.0) {
        let mut model = spec.build::<f64>().unwrap();
        let start = model.loss(&data.all()).unwrap();
        let mut search = LocalSearch::new(step, seed).unwrap();
        let all = data.all();
        let mut accepted = start;
        for _ in 0..20 {
            let reported = search.step(&mut model.on(&all)).unwrap();
            prop_assert!(reported <= accepted, "accepted loss rose from {accepted} to {reported}");
            prop_assert_eq!(model.loss(&data.all()).unwrap(), reported);
            accepted = reported;
        }
        prop_assert_eq!(search.best_loss(), Some(accepted));
    }

    #[test]
    fn full_batch_unshuffled_sgd_epoch_is_one_gd_step((spec, data) in case(), lr in 1e-3f64..1.0) {
        let mut by_sgd = spec.build::<f64>().unwrap();
        let mut by_gd = by_sgd.clone();
        let mut sgd = Sgd::new(lr).unwrap().batch_size(data.len()).unwrap();
        let mut gd = GradientDescent::new(lr).unwrap();
        let r1 = Trainer::new(1).unwrap().shuffle(false).run(&mut by_sgd, &mut sgd, &data, None).unwrap();
        let r2 = Trainer::new(1).unwrap().run(&mut by_gd, &mut gd, &data, None).unwrap();
        prop_assert_eq!(r1.history[0].steps, 1);
        prop_assert_eq!(r1.final_loss(), r2.final_loss());
        prop_assert_eq!(by_sgd.params(), by_gd.params());
    }

    #[test]
    fn momentum_zero_is_plain_sgd((spec, data) in case(), lr in 1e-3f64..1.0, batch in 1usize..10, seed in any::<u64>()) {
        let mut plain = spec.build::<f64>().unwrap();
        let mut zero = plain.clone();
        let mut a = Sgd::new(lr).unwrap().batch_size(batch).unwrap();
        let mut b = Sgd::new(lr).unwrap().momentum(0.0).unwrap().batch_size(batch).unwrap();
        let trainer = Trainer::new(3).unwrap().seed(seed);
        let ra = trainer.run(&mut plain, &mut a, &data, None).unwrap();
        let rb = trainer.run(&mut zero, &mut b, &data, None).unwrap();
        prop_assert_eq!(ra.final_loss(), rb.final_loss());
        prop_assert_eq!(plain.params(), zero.params());
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Along axis i a step multiplies wᵢ by `1 − lr·λᵢ`: below `2/L` every factor is in
    /// (−1, 1) and the loss shrinks geometrically; above it the stiffest axis's factor is
    /// below −1 and the loss grows without bound.
    #[test]
    fn gd_on_a_quadratic_converges_below_two_over_l_and_diverges_above(
        curvature in prop::collection::vec(0.1f64..10.0, 1..8),
        start in prop::collection::vec(-1.0f64..1.0, 8),
        fraction in 0.05f64..0.95,
        over in 1.05f64..2.0,
    ) {
        let l = curvature.iter().cloned().fold(0.0, f64::max);
        let stiffest = curvature.iter().position(|&c| c == l).unwrap();
        let mut w: Vec<f64> = start[..curvature.len()].to_vec();
        // Start off the stiffest axis's zero, so there is something to blow up.
        w[stiffest] = if w[stiffest] >= 0.0 { w[stiffest] + 0.5 } else { w[stiffest] - 0.5 };
        let run = |lr: f64, steps: usize| {
            let mut q = Quadratic { curvature: curvature.clone(), w: w.clone() };
            let initial = q.loss().unwrap();
            let mut gd = GradientDescent::new(lr).unwrap();
            for _ in 0..steps {
                // Past 2/L the loss overflows eventually: that is a refused step, and where
                // the run stands is the last finite point.
                if gd.step(&mut q).is_err() {
                    break;
                }
            }
            (initial, q.loss().unwrap())
        };
        // Converges: after enough steps for the slowest axis (factor ≤ 1 − lr·λ_min), the
        // loss is a small fraction of where it began.
        let lr = fraction * 2.0 / l;
        let lambda_min = curvature.iter().cloned().fold(f64::INFINITY, f64::min);
        let rate = (1.0 - lr * lambda_min).abs().max((1.0 - lr * l).abs());
        let steps = ((1e-3f64).ln() / rate.ln()).ceil().clamp(1.0, 1e6) as usize;
        let (initial, last) = run(lr, steps);
        prop_assert!(last <= 1e-3 * initial * 1.0001, "lr {lr} < 2/L = {}: {initial} → {last} in {steps} steps", 2.0 / l);
        // Diverges: above 2/L the stiffest axis grows by |1 − lr·L| > 1 per step.
        let lr = over * 2.0 / l;
        let (initial, last) = run(lr, 50);
        prop_assert!(last > 10.0 * initial, "lr {lr} > 2/L = {}: {initial} → {last}", 2.0 / l);
    }
}
