//! The built-in observers: early stopping (when, why, and the best parameters restored),
//! the validation loss the training loop now records, the history files, progress lines.

mod common;

use common::net;
use downhill::error::ErrorKind;
use downhill::model::evaluate_classifier;
use downhill::prelude::*;
use downhill::train::{
    history_csv, EarlyStopping, History, Monitor, Observers, Progress, StopReason,
};

/// Six points of the plane in two classes.
fn blobs() -> Dataset<f64> {
    let x = Matrix::from_vec(
        vec![0.0, 1.0, 1.0, 0.0, 0.9, 0.1, 0.2, 0.8, 0.7, 0.4, 0.3, 0.9],
        6,
        2,
    )
    .unwrap();
    Dataset::from_matrix(x, vec![1, 0, 0, 1, 0, 1], 2).unwrap()
}

fn record(epoch: usize, valid_loss: f64) -> EpochRecord {
    let mut r = EpochRecord::new(epoch, 1.0);
    (r.valid_accuracy, r.valid_loss) = (Some(0.5), Some(valid_loss));
    (r.learning_rate, r.steps, r.samples, r.train_seconds) = (Some(0.1), 1, 6, 0.01);
    r
}

#[test]
fn early_stopping_stops_after_patience_and_restores_the_best() {
    let mut model = LinearClassifier::<f64>::builder(2, 2).build().unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let mut stop = EarlyStopping::<f64>::new(Monitor::ValidLoss, 3).unwrap();
    // Validation loss 1.0, 0.8 (best, epoch 2), then 0.9, 0.85, 0.95: three epochs without
    // improvement, so the third of them stops the run. The parameters are marked with the
    // epoch number so the restored ones can be recognised.
    let losses = [1.0, 0.8, 0.9, 0.85, 0.95];
    let mut controls = Vec::new();
    for (i, &l) in losses.iter().enumerate() {
        model.params_mut().fill(i as f64 + 1.0);
        let c = stop.on_epoch(&mut EpochEnd::new(&record(i + 1, l), &mut model, &mut sgd));
        controls.push(c.unwrap());
    }
    assert!(controls[..4].iter().all(|c| *c == Control::Continue));
    let Control::Stop(why) = &controls[4] else {
        panic!("expected a stop, got {:?}", controls[4])
    };
    assert_eq!(
        why,
        &StopReason::EarlyStopping {
            epoch: 5,
            monitor: Monitor::ValidLoss,
            patience: 3,
            best: Some((0.8, 2))
        }
    );
    assert_eq!(
        why.to_string(),
        "early stopping after epoch 5: valid_loss has not improved for 3 epochs \
         (best 0.8000 at epoch 2)"
    );
    assert_eq!((stop.best_epoch(), stop.best_value()), (Some(2), Some(0.8)));
    let report = TrainReport::default();
    stop.on_end(&report, &mut model).unwrap();
    assert!(stop.restored());
    assert!(
        model.params().iter().all(|&p| p == 2.0),
        "epoch 2's parameters"
    );
}

#[test]
fn early_stopping_on_accuracy_counts_higher_as_better_with_min_delta() {
    let mut model = LinearClassifier::<f64>::builder(2, 2).build().unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let mut stop = EarlyStopping::<f64>::new(Monitor::ValidAccuracy, 2)
        .unwrap()
        .min_delta(0.01)
        .unwrap()
        .restore_best(false);
    let mut acc = |e: usize, a: f64| {
        let mut r = record(e, 1.0);
        r.valid_accuracy = Some(a);
        stop.on_epoch(&mut EpochEnd::new(&r, &mut model, &mut sgd))
            .unwrap()
    };
    assert_eq!(acc(1, 0.90), Control::Continue);
    assert_eq!(acc(2, 0.95), Control::Continue); // improves
    assert_eq!(acc(3, 0.955), Control::Continue); // +0.005 < min_delta: bad 1
    assert!(matches!(acc(4, 0.9), Control::Stop(_))); // bad 2
    assert_eq!(stop.best_value(), Some(0.95));
    let before = model.params().to_vec();
    stop.on_end(&TrainReport::default(), &mut model).unwrap();
    assert!(!stop.restored());
    assert_eq!(model.params(), &before[..]);
}

#[test]
fn early_stopping_in_a_run_reports_when_and_why() {
    let data = blobs();
    let mut model = net::<f64>([2, 8, 2], Activation::Tanh, 1);
    // Far too large a rate: the validation loss bounces and stops improving quickly.
    let mut sgd = Sgd::new(5.0).unwrap().batch_size(2).unwrap();
    let mut stop = EarlyStopping::<f64>::new(Monitor::ValidLoss, 2).unwrap();
    let report = Trainer::new(200)
        .unwrap()
        .run_with(&mut model, &mut sgd, &data, Some(&data), &mut stop)
        .unwrap();
    let last = report.history.last().unwrap().epoch;
    assert!(last < 200);
    assert!(
        matches!(
            report.stopped,
            Some(StopReason::EarlyStopping { epoch, monitor: Monitor::ValidLoss, patience: 2, .. })
                if epoch == last
        ),
        "{:?}",
        report.stopped
    );
    // The model holds the best epoch's parameters: its validation loss is the best one.
    let best = stop.best_value().unwrap();
    let now = evaluate_classifier(&mut model, &data, Some(Loss::SoftmaxCrossEntropy))
        .unwrap()
        .loss
        .unwrap();
    assert!((now - best).abs() < 1e-12, "{now} vs {best}");
    let best_in_history = report
        .history
        .iter()
        .filter_map(|e| e.valid_loss)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(best, best_in_history);

    // Without a validation set there is nothing to watch: an error, not a silent no-op.
    let mut stop = EarlyStopping::<f64>::new(Monitor::ValidLoss, 2).unwrap();
    let err = Trainer::new(3)
        .unwrap()
        .run_with(&mut model, &mut sgd, &data, None, &mut stop)
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::InvalidParameter {
                name: "early stopping monitor",
                ..
            }
        ),
        "{err}"
    );
    assert!(EarlyStopping::<f64>::new(Monitor::ValidLoss, 0).is_err());
    assert!(EarlyStopping::<f64>::new(Monitor::ValidLoss, 1)
        .unwrap()
        .min_delta(f64::NAN)
        .is_err());
}

#[test]
fn validation_loss_is_the_mean_data_loss_from_the_same_scores() {
    let data = blobs();
    for loss in [Loss::SoftmaxCrossEntropy, Loss::Hinge] {
        let mut model = Mlp::<f64>::builder(2)
            .hidden(5, Activation::Relu)
            .classes(2)
            .loss(loss)
            .seed(4)
            .build()
            .unwrap();
        let mut sgd = Sgd::new(0.3).unwrap().batch_size(3).unwrap();
        let report = Trainer::new(3)
            .unwrap()
            .run(&mut model, &mut sgd, &data, Some(&data))
            .unwrap();
        let last = report.history.last().unwrap();
        // Without L2, the model's objective on the whole set is exactly the mean data loss.
        let direct = model.loss(&data.all()).unwrap();
        let recorded = last.valid_loss.unwrap();
        assert!(
            (recorded - direct).abs() < 1e-12,
            "{loss}: {recorded} vs {direct}"
        );
        assert_eq!(
            last.valid_accuracy,
            Some(accuracy(&mut model, &data).unwrap())
        );
        assert_eq!(last.learning_rate, Some(0.3));
    }
}

#[test]
fn history_writes_csv_and_json_every_epoch() {
    let dir = std::env::temp_dir().join(format!("downhill-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, json) = (dir.join("h.csv"), dir.join("h.json"));
    let data = blobs();
    let mut model = LinearClassifier::<f64>::builder(2, 2).build().unwrap();
    let mut sgd = Sgd::new(0.5).unwrap().batch_size(2).unwrap();
    let mut history = History::new().csv(&csv).json(&json);
    let report = Trainer::new(3)
        .unwrap()
        .run_with(&mut model, &mut sgd, &data, Some(&data), &mut history)
        .unwrap();
    assert_eq!(history.records(), &report.history[..]);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text, history_csv(&report.history));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        "epoch,train_loss,valid_loss,valid_accuracy,learning_rate,steps,samples,train_seconds,train_accuracy"
    );
    let e3 = &report.history[2];
    let cells: Vec<&str> = lines[3].split(',').collect();
    assert_eq!(cells[0], "3");
    assert_eq!(cells[1].parse::<f64>().unwrap(), e3.train_loss);
    assert_eq!(cells[2].parse::<f64>().unwrap(), e3.valid_loss.unwrap());
    let json_text = std::fs::read_to_string(&json).unwrap();
    assert_eq!(json_text.matches("\"epoch\":").count(), 3);
    assert!(json_text.trim_start().starts_with('[') && json_text.trim_end().ends_with(']'));
    assert!(json_text.contains(&format!("\"train_loss\":{}", e3.train_loss)));
    std::fs::remove_dir_all(&dir).unwrap();

    // A file that cannot be written is an I/O error naming it.
    let mut bad = History::new().csv(dir.join("missing-dir").join("h.csv"));
    let err = Trainer::new(1)
        .unwrap()
        .run_with(&mut model, &mut sgd, &data, None, &mut bad)
        .unwrap_err();
    match err.kind() {
        ErrorKind::Io { path: Some(p), .. } => assert!(p.ends_with("missing-dir/h.csv"), "{err}"),
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
}

#[test]
fn progress_lines_say_each_epoch_and_why_a_run_stopped() {
    let data = blobs();
    let mut model = LinearClassifier::<f64>::builder(2, 2).build().unwrap();
    let mut sgd = Sgd::new(0.5).unwrap().batch_size(2).unwrap();
    let mut progress = Progress::lines(4, Vec::new());
    assert!(!progress.is_bar());
    let mut stop = EarlyStopping::<f64>::new(Monitor::TrainLoss, 1).unwrap();
    // A time limit of zero stops the run after its first epoch.
    let report = Trainer::new(4)
        .unwrap()
        .time_limit(std::time::Duration::ZERO)
        .run_with(
            &mut model,
            &mut sgd,
            &data,
            Some(&data),
            &mut Observers(vec![&mut progress, &mut stop]),
        )
        .unwrap();
    let text = String::from_utf8(progress.into_writer().unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one epoch, then why it stopped: {text}");
    assert!(lines[0].starts_with("epoch   1/4 loss "), "{text}");
    assert!(lines[0].contains(" valid_acc "), "{text}");
    assert_eq!(
        lines[1],
        format!("stopped: {}", report.stopped.unwrap()),
        "{text}"
    );
}

#[test]
fn early_stopping_saved_and_restored_carries_on_as_if_never_stopped() {
    let mut model = LinearClassifier::<f64>::builder(2, 2).build().unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let losses = [1.0, 0.8, 0.9, 0.85, 0.95];
    let mut feed = |stop: &mut EarlyStopping<f64>, epochs: std::ops::Range<usize>| {
        epochs
            .map(|i| {
                model.params_mut().fill(i as f64 + 1.0);
                let r = record(i + 1, losses[i]);
                stop.on_epoch(&mut EpochEnd::new(&r, &mut model, &mut sgd))
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let mut straight = EarlyStopping::<f64>::new(Monitor::ValidLoss, 3).unwrap();
    let all = feed(&mut straight, 0..5);
    // Three epochs, saved; a fresh stopper restored from it sees the last two.
    let mut first = EarlyStopping::<f64>::new(Monitor::ValidLoss, 3).unwrap();
    feed(&mut first, 0..3);
    let saved = Observer::<f64>::state(&first);
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].0, "early_stopping");
    let mut resumed = EarlyStopping::<f64>::new(Monitor::ValidLoss, 3).unwrap();
    assert!(
        !resumed.load_state("history", &saved[0].1).unwrap(),
        "not its name"
    );
    assert!(resumed.load_state("early_stopping", &saved[0].1).unwrap());
    assert_eq!(feed(&mut resumed, 3..5), all[3..]);
    assert_eq!(resumed.best_epoch(), straight.best_epoch());
    // And at the end it restores the same best parameters.
    resumed.on_end(&TrainReport::default(), &mut model).unwrap();
    assert!(model.params().iter().all(|&p| p == 2.0));
}

#[test]
fn progress_lines_show_held_out_figures_only_when_there_is_a_validation_set() {
    let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0], 2, 2).unwrap();
    let data = Dataset::from_matrix(x, vec![1, 0], 2).unwrap();
    let lines = |valid: Option<&Dataset<f64>>| {
        let mut model = LinearClassifier::<f64>::builder(2, 2).build().unwrap();
        let mut sgd = Sgd::new(0.5).unwrap().batch_size(2).unwrap();
        let mut progress = Progress::lines(2, Vec::new());
        Trainer::new(2)
            .unwrap()
            .run_with(&mut model, &mut sgd, &data, valid, &mut progress)
            .unwrap();
        String::from_utf8(progress.into_writer().unwrap()).unwrap()
    };
    let with = lines(Some(&data));
    assert!(
        with.lines()
            .all(|l| l.contains(" valid_loss ") && l.contains(" valid_acc ")),
        "{with}"
    );
    let without = lines(None);
    assert_eq!(without.lines().count(), 2, "{without}");
    assert!(!without.contains("valid"), "{without}");
    assert!(without.starts_with("epoch   1/2 loss "), "{without}");
}
