//! Learning-rate schedules: each formula on hand-computed values, reduce-on-plateau's
//! bookkeeping, warm-up composed with another schedule, validation, and the `LrScheduler`
//! observer setting the optimizer's rate epoch by epoch.

mod common;

use approx::assert_relative_eq;
use common::blobs;
use downhill::error::ErrorKind;
use downhill::optim::Schedule;
use downhill::prelude::*;
use downhill::train::{LrScheduler, Monitor};

/// The rates for epochs 0..n from base rate 1 (no metric).
fn rates(mut s: Schedule, n: usize) -> Vec<f64> {
    (0..n)
        .map(|e| s.learning_rate(1.0, e, None).unwrap())
        .collect()
}

#[track_caller]
fn assert_rates(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_relative_eq!(*g, *w, max_relative = 1e-12, epsilon = 1e-15);
    }
}

#[test]
fn deterministic_schedules_follow_their_formulas() {
    assert_rates(&rates(Schedule::constant(), 3), &[1.0, 1.0, 1.0]);
    // StepLR(step_size 2, γ 0.1): 1, 1, 0.1, 0.1, 0.01.
    assert_rates(
        &rates(Schedule::step(2, 0.1).unwrap(), 5),
        &[1.0, 1.0, 0.1, 0.1, 0.01],
    );
    // ExponentialLR(γ 0.5): 1, 0.5, 0.25, 0.125.
    assert_rates(
        &rates(Schedule::exponential(0.5).unwrap(), 4),
        &[1.0, 0.5, 0.25, 0.125],
    );
    // Cosine over T = 4 to η_min = 0.2: 0.2 + 0.8·(1 + cos(π·e/4))/2
    // = 1, 0.2 + 0.4·(1 + √½) = 0.882842712..., 0.6, 0.2 + 0.4·(1 − √½) = 0.317157287...,
    // 0.2, and held at 0.2 after T.
    let h = std::f64::consts::FRAC_1_SQRT_2;
    assert_rates(
        &rates(Schedule::cosine(4, 0.2).unwrap(), 6),
        &[
            1.0,
            0.2 + 0.4 * (1.0 + h),
            0.6,
            0.2 + 0.4 * (1.0 - h),
            0.2,
            0.2,
        ],
    );
}

#[test]
fn warmup_rises_linearly_then_hands_over() {
    // Warm-up over 4 epochs from 0.2: 0.2 + 0.8·e/4 = 0.2, 0.4, 0.6, 0.8; then the step
    // schedule counts from its own epoch 0: 1, 0.5, 0.5·... (every 1 epoch, γ 0.5).
    let s = Schedule::step(1, 0.5).unwrap().with_warmup(4, 0.2).unwrap();
    assert_eq!(s.name(), "warmup-step");
    assert_rates(&rates(s, 7), &[0.2, 0.4, 0.6, 0.8, 1.0, 0.5, 0.25]);
}

#[test]
fn plateau_reduces_after_patience_epochs_without_improvement() {
    // Patience 1, factor 0.5: a reduction after 2 epochs in a row without improvement.
    let mut s = Schedule::plateau(0.5, 1).unwrap();
    let mut lr = vec![s.learning_rate(1.0, 0, None).unwrap()];
    for (e, m) in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9].into_iter().enumerate() {
        lr.push(s.learning_rate(1.0, e + 1, Some(m)).unwrap());
    }
    // best 1.0; 0.9 improves; then bad 1 (keep), bad 2 > 1 (halve, reset), bad 1, bad 2.
    assert_rates(&lr, &[1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25]);

    // An improvement smaller than the relative threshold does not count.
    let mut s = Schedule::plateau(0.1, 0).unwrap().threshold(0.01).unwrap();
    s.learning_rate(1.0, 1, Some(1.0)).unwrap();
    assert_eq!(s.learning_rate(1.0, 2, Some(0.995)).unwrap(), 0.1);

    // min_lr is a floor.
    let mut s = Schedule::plateau(0.1, 0).unwrap().min_lr(0.05).unwrap();
    s.learning_rate(1.0, 1, Some(1.0)).unwrap();
    s.learning_rate(1.0, 2, Some(1.0)).unwrap();
    assert_eq!(s.learning_rate(1.0, 3, Some(1.0)).unwrap(), 0.05);

    // No metric after the first epoch, or a NaN one, is an error.
    let mut s = Schedule::plateau(0.5, 1).unwrap();
    assert!(s.needs_metric());
    assert!(s.learning_rate(1.0, 1, None).is_err());
    assert!(s.learning_rate(1.0, 1, Some(f64::NAN)).is_err());
}

#[test]
fn schedule_settings_are_validated() {
    assert!(Schedule::step(0, 0.5).is_err());
    assert!(Schedule::step(1, 0.0).is_err());
    assert!(Schedule::exponential(f64::NAN).is_err());
    assert!(Schedule::cosine(0, 0.0).is_err());
    assert!(Schedule::cosine(5, -1.0).is_err());
    assert!(Schedule::plateau(1.0, 2).is_err());
    assert!(Schedule::plateau(0.0, 2).is_err());
    assert!(Schedule::constant().with_warmup(0, 0.5).is_err());
    assert!(Schedule::constant().with_warmup(2, 0.0).is_err());
    assert!(Schedule::constant().with_warmup(2, 1.5).is_err());
    assert!(
        Schedule::constant().threshold(0.1).is_err(),
        "not a plateau"
    );
    assert!(Schedule::plateau(0.5, 1).unwrap().min_lr(-1.0).is_err());
    assert!(Schedule::constant().learning_rate(0.0, 0, None).is_err());
}

#[test]
fn the_scheduler_sets_each_epochs_rate() {
    let data = blobs();
    let mut model = LinearClassifier::<f64>::builder(2, 2).build().unwrap();
    let mut sgd = Sgd::new(0.8).unwrap().batch_size(2).unwrap();
    let schedule = Schedule::cosine(4, 0.0)
        .unwrap()
        .with_warmup(2, 0.5)
        .unwrap();
    let mut scheduler = LrScheduler::new(schedule, &mut sgd).unwrap();
    assert_eq!(
        Optimizer::learning_rate(&sgd).unwrap(),
        0.4,
        "the first epoch's rate is set at once"
    );
    let report = Trainer::new(6)
        .unwrap()
        .run_with(&mut model, &mut sgd, &data, None, &mut scheduler)
        .unwrap();
    let lrs: Vec<f64> = report
        .history
        .iter()
        .map(|e| e.learning_rate.unwrap())
        .collect();
    // Warm-up 0.4, 0.6; cosine over 4 epochs from 0.8 to 0: 0.8, 0.4·(1 + √½), 0.4,
    // 0.4·(1 − √½). After the last epoch the cosine reaches exactly 0, which is allowed.
    let h = std::f64::consts::FRAC_1_SQRT_2;
    assert_rates(
        &lrs,
        &[0.4, 0.6, 0.8, 0.4 * (1.0 + h), 0.4, 0.4 * (1.0 - h)],
    );
    assert_eq!(scheduler.learning_rate(), 0.0);
}

#[test]
fn plateau_needs_a_validation_metric_and_search_needs_no_schedule() {
    let data = blobs();
    let mut model = LinearClassifier::<f64>::builder(2, 2).build().unwrap();
    let mut sgd = Sgd::new(0.1).unwrap().batch_size(2).unwrap();
    let mut plateau = LrScheduler::new(Schedule::plateau(0.5, 1).unwrap(), &mut sgd)
        .unwrap()
        .monitor(Monitor::ValidAccuracy);
    let err = Trainer::new(3)
        .unwrap()
        .run_with(&mut model, &mut sgd, &data, None, &mut plateau)
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidParameter { name: "schedule monitor", value, .. } if value == "valid_accuracy"),
        "{err}"
    );
    // With a validation set it runs.
    Trainer::new(3)
        .unwrap()
        .run_with(&mut model, &mut sgd, &data, Some(&data), &mut plateau)
        .unwrap();

    let mut search = RandomSearch::<f64>::new(1e-3, 0).unwrap();
    assert!(LrScheduler::new(Schedule::constant(), &mut search).is_err());
}

/// A run resumed after k epochs gets epoch k + 1's rate, not epoch 1's; a plateau schedule,
/// whose memory of the metric no checkpoint holds, refuses to resume.
#[test]
fn a_resumed_scheduler_carries_on_where_it_was() {
    let mut sgd = Sgd::<f64>::new(0.1).unwrap();
    let s = LrScheduler::new(Schedule::exponential(0.5).unwrap(), &mut sgd)
        .unwrap()
        .resume_at(3, &mut sgd)
        .unwrap();
    assert_relative_eq!(s.learning_rate(), 0.1 * 0.125);
    assert_relative_eq!(Optimizer::learning_rate(&sgd).unwrap(), 0.1 * 0.125);
    let mut sgd = Sgd::<f64>::new(0.1).unwrap();
    let plateau = LrScheduler::new(Schedule::plateau(0.5, 2).unwrap(), &mut sgd).unwrap();
    let err = plateau.resume_at(3, &mut sgd).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidParameter { name: "schedule", value, .. } if value == "plateau"),
        "{err}"
    );
}
