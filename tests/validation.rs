//! Every public constructor and setter validates its arguments: a bad value is an `Error`
//! whose kind names the parameter (or the shapes), never a panic and never a silent NaN later.
//! One test per kind of thing, walking through each of its knobs.
//!
//! The tests match [`ErrorKind`]s and their payloads (names, values, sizes, paths), never
//! message text. A handful check a whole one-line message on purpose, one per kind of
//! error, because there the message itself is the thing under test: that it says what was
//! wrong and where.

mod common;

use std::path::Path;

use common::{assert_kind, SHIPPED};
use downhill::checkpoint::Checkpoint;
use downhill::data::Minibatches;
use downhill::error::ErrorKind;
use downhill::model::MlpArchitecture;
use downhill::prelude::*;
use downhill::train::TrainState;

fn tiny() -> Dataset<f64> {
    let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5], 3, 2).unwrap();
    Dataset::from_matrix(x, vec![0, 1, 1], 2).unwrap()
}

/// Asserts `result` is `InvalidParameter` for `want`; returns the rejected value as reported.
#[track_caller]
fn invalid<T: std::fmt::Debug>(result: Result<T>, want: &str) -> String {
    match result.map_err(downhill::Error::into_kind) {
        Err(ErrorKind::InvalidParameter { name, value, .. }) if name == want => value,
        other => panic!("expected InvalidParameter {{ name: {want:?}, .. }}, got {other:?}"),
    }
}

#[test]
fn mlp_builder_rejects_impossible_networks() {
    let b = || {
        Mlp::<f32>::builder(4)
            .hidden(3, Activation::Relu)
            .classes(2)
    };
    // The message of a bad parameter, once in full: the name, the value and the rule.
    let err = assert_kind!(
        Mlp::<f32>::builder(0).classes(2).build(),
        ErrorKind::InvalidParameter { name: "inputs", value, .. } if value == "0"
    );
    assert_eq!(err.to_string(), "invalid inputs = 0: must be at least 1");

    assert_eq!(invalid(b().classes(0).build(), "classes"), "0");
    assert_eq!(
        invalid(b().hidden(0, Activation::Tanh).build(), "hidden"),
        "0 (layer 1)"
    );
    for l2 in [-1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(invalid(b().l2(l2).build(), "l2"), l2.to_string());
    }
    for std in [-0.1, f64::NAN] {
        assert_eq!(
            invalid(b().init(Init::Normal(std)).build(), "init std"),
            std.to_string()
        );
    }
    assert_eq!(invalid(b().block_rows(0).build(), "block_rows"), "0");
    // 2^20 inputs × 4096 hidden (+ biases, + 4096 × 10 outputs): over 2^31 parameters.
    let huge = Mlp::<f32>::builder(1 << 20)
        .hidden(1 << 12, Activation::Relu)
        .build();
    let count: u64 = invalid(huge, "layer sizes").parse().unwrap();
    assert_eq!(count, (1 << 20) * 4096 + 4096 + 4096 * 10 + 10);
    assert_eq!(invalid(b().build().unwrap().set_threads(0), "threads"), "0");
    assert_eq!(
        invalid(LinearClassifier::<f64>::builder(3, 0).build(), "classes"),
        "0"
    );
    assert_eq!(
        invalid(LinearClassifier::<f64>::builder(0, 3).build(), "inputs"),
        "0"
    );

    // An architecture that does not describe a network.
    let arch = MlpArchitecture {
        widths: vec![4, 3, 2],
        activations: vec![],
        output: None,
        loss: Loss::Hinge,
        l2: 0.0,
        dropout: 0.0,
    };
    assert_eq!(
        invalid(arch.builder::<f32>(), "architecture activations"),
        "0"
    );
    let empty = MlpArchitecture {
        widths: vec![],
        ..arch
    };
    assert_eq!(invalid(empty.builder::<f32>(), "architecture widths"), "[]");
}

#[test]
fn optimizers_reject_bad_hyper_parameters() {
    for bad in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        let shown = bad.to_string();
        assert_eq!(invalid(Sgd::<f64>::new(bad), "learning_rate"), shown);
        assert_eq!(
            invalid(GradientDescent::<f64>::new(bad), "learning_rate"),
            shown
        );
        assert_eq!(invalid(RandomSearch::<f64>::new(bad, 0), "scale"), shown);
        assert_eq!(invalid(LocalSearch::<f64>::new(bad, 0), "step_size"), shown);
    }
    let sgd = || Sgd::<f32>::new(0.1).unwrap();
    for mu in [-0.1, 1.0, f64::NAN] {
        assert_eq!(invalid(sgd().momentum(mu), "momentum"), mu.to_string());
    }
    assert_eq!(invalid(sgd().batch_size(0), "batch_size"), "0");
    assert_eq!(invalid(Minibatches::new(10, 0), "batch_size"), "0");

    // State that an optimizer does not keep is refused, naming the optimizer; once in full,
    // that the message also names the buffer it does not keep.
    let mut state = Sgd::<f32>::new(0.1).unwrap().state();
    state.buffers.push(("moment".into(), vec![0.0; 3]));
    let err = assert_kind!(
        sgd().load_state(&state),
        ErrorKind::OptimizerState {
            path: None,
            optimizer: "plain",
            ..
        }
    );
    assert_eq!(
        err.to_string(),
        "optimizer state for plain: buffer \"moment\" is not one this update rule keeps (it keeps [])"
    );
    state.buffers.clear();
    state.scalars.push(("temperature".into(), 1.0));
    assert_kind!(
        RandomSearch::new(0.1, 0).unwrap().load_state(&state),
        ErrorKind::OptimizerState {
            optimizer: "random",
            ..
        }
    );
    assert_kind!(
        LocalSearch::new(0.1, 0).unwrap().load_state(&state),
        ErrorKind::OptimizerState {
            optimizer: "local",
            ..
        }
    );
    assert_kind!(
        GradientDescent::new(0.1).unwrap().load_state(&state),
        ErrorKind::OptimizerState {
            optimizer: "plain",
            ..
        }
    );
}

#[test]
fn trainer_rejects_bad_settings_and_mismatched_data() {
    assert_eq!(invalid(Trainer::new(0), "epochs"), "0");
    assert_eq!(invalid(Trainer::new(1).unwrap().threads(0), "threads"), "0");
    assert_eq!(
        invalid(Trainer::new(1).unwrap().threads(5000), "threads"),
        "5000"
    );
    let beyond = TrainState {
        epoch: 3,
        step: 0,
        seed: 0,
    };
    assert_eq!(
        invalid(Trainer::new(2).unwrap().resume(&beyond), "resume epoch"),
        "3"
    );

    // A model for 3 features, data with 2. The message of a shape mismatch, once in full:
    // the operation, the quantity, and both sizes.
    let data = tiny();
    let mut model = Mlp::<f64>::builder(3).classes(2).build().unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let err = assert_kind!(
        Trainer::new(1)
            .unwrap()
            .run(&mut model, &mut sgd, &data, None),
        ErrorKind::Shape {
            context: "Mlp::loss_and_grad",
            what: "features per example",
            expected: 3,
            found: 2,
        }
    );
    assert_eq!(
        err.to_string(),
        "Mlp::loss_and_grad: features per example is 2, expected 3"
    );
    // A model for 3 classes, data with 2.
    let mut model = Mlp::<f64>::builder(2).classes(3).build().unwrap();
    let mut gd = GradientDescent::new(0.1).unwrap();
    assert_kind!(
        Trainer::new(1)
            .unwrap()
            .run(&mut model, &mut gd, &data, None),
        ErrorKind::Shape {
            what: "classes",
            expected: 3,
            found: 2,
            ..
        }
    );
    // An empty training set.
    let empty = data.take(0);
    let run = Trainer::new(1)
        .unwrap()
        .run(&mut model, &mut gd, &empty, None);
    assert_eq!(invalid(run, "training set"), "0 examples");
}

#[test]
fn datasets_reject_bad_labels_shapes_and_values() {
    let x = || Matrix::from_vec(vec![0.0f64, 1.0, 1.0, 0.0], 2, 2).unwrap();
    // The message of a bad label, once in full: the label, the row and the class range.
    let err = assert_kind!(
        Dataset::from_matrix(x(), vec![0, 2], 2),
        ErrorKind::Label {
            path: None,
            row: 1,
            label: 2,
            classes: 2,
        }
    );
    assert_eq!(
        err.to_string(),
        "label 2 at row 1 is outside the class range 0..2"
    );
    assert_eq!(
        invalid(Dataset::from_matrix(x(), vec![0, 0], 0), "num_classes"),
        "0"
    );
    // One label for two rows: one label per row expected.
    assert_kind!(
        Dataset::from_matrix(x(), vec![0], 2),
        ErrorKind::Shape {
            context: "Dataset::from_matrix",
            expected: 2,
            found: 1,
            ..
        }
    );
    assert_eq!(
        invalid(
            Dataset::<f32>::from_bytes(vec![1, 2, 3], 0, vec![], 2),
            "num_features"
        ),
        "0"
    );
    assert_kind!(
        Dataset::<f32>::from_bytes(vec![1, 2, 3], 2, vec![0], 2),
        ErrorKind::Shape {
            context: "Dataset::new",
            expected: 2,
            found: 3,
            ..
        }
    );
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let m = Matrix::from_vec(vec![0.0, 1.0, bad, 0.0], 2, 2).unwrap();
        assert_eq!(
            invalid(Dataset::from_matrix(m, vec![0, 1], 2), "features"),
            format!("{bad} at row 1, column 0")
        );
    }
    assert_kind!(
        Matrix::from_vec(vec![1.0f32; 5], 2, 3),
        ErrorKind::Shape {
            context: "Matrix::from_vec",
            expected: 6,
            found: 5,
            ..
        }
    );

    let mut data = tiny();
    assert_kind!(
        data.set_transform(FeatureTransform::uniform(3, 1.0, 0.0)),
        ErrorKind::Shape {
            context: "Dataset::set_transform",
            expected: 2,
            found: 3,
            ..
        }
    );
    let nan = FeatureTransform::uniform(2, f64::NAN, 0.0);
    invalid(data.set_transform(nan), "feature transform");
    assert!(data.transform().is_none(), "a refused transform was kept");
    assert_kind!(
        FeatureTransform::new(vec![1.0, 2.0], vec![0.0]),
        ErrorKind::Shape {
            context: "FeatureTransform::new",
            expected: 2,
            found: 1,
            ..
        }
    );
    invalid(
        FeatureTransform::new(vec![1.0], vec![f64::INFINITY]),
        "feature transform",
    );
    assert_eq!(
        invalid(FeatureTransform::standardize(&data, -1.0), "eps"),
        "-1"
    );
    assert_eq!(
        invalid(
            FeatureTransform::standardize(&data.take(1), 0.01),
            "standardize examples"
        ),
        "1"
    );
    assert_kind!(
        data.select(&[0, 7]),
        ErrorKind::Shape {
            expected: 3,
            found: 7,
            ..
        }
    );
    assert_eq!(invalid(data.split(4, 0), "validation"), "4");
}

#[test]
fn gradient_checks_and_files_reject_bad_input() {
    for bad in [0.0, -1.0, f64::NAN] {
        assert_eq!(invalid(GradCheck::new().h(bad), "h"), bad.to_string());
    }
    assert_eq!(invalid(GradCheck::new().floor(-1.0), "floor"), "-1");

    // Files: a missing MNIST directory and a missing or foreign checkpoint name the file.
    let dir = Path::new("no/such/dir");
    assert_kind!(
        load_mnist::<f32>(dir),
        ErrorKind::Io { path: Some(p), source }
            if p == &dir.join("train-images-idx3-ubyte")
                && source.kind() == std::io::ErrorKind::NotFound
    );
    let missing = Path::new("no/such.safetensors");
    assert_kind!(
        Checkpoint::<f32>::load(missing),
        ErrorKind::Io { path: Some(p), source }
            if p == missing && source.kind() == std::io::ErrorKind::NotFound
    );
    // A file that is not a checkpoint at all; the message of a format error, once: it
    // starts with the file it is about.
    let labels = Path::new(SHIPPED).join("t10k-labels-idx1-ubyte.gz");
    let err = assert_kind!(
        Checkpoint::<f32>::load(&labels),
        ErrorKind::Format { path: Some(p), .. } if p == &labels
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}: ", labels.display())),
        "{message}"
    );
}
