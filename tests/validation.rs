//! Every public constructor and setter validates its arguments: a bad value is an `Error`
//! that names the parameter (or the shapes), never a panic and never a silent NaN later.
//! One test per kind of thing, walking through each of its knobs.

use std::path::Path;

use downhill::checkpoint::Checkpoint;
use downhill::data::{Minibatches, SHIPPED_MNIST_DIR};
use downhill::model::MlpArchitecture;
use downhill::prelude::*;
use downhill::train::TrainState;

/// The message of an error that must be there.
fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn tiny() -> Dataset<f64> {
    let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5], 3, 2).unwrap();
    Dataset::from_matrix(x, vec![0, 1, 1], 2).unwrap()
}

#[test]
fn mlp_builder_rejects_impossible_networks() {
    let b = || {
        Mlp::<f32>::builder(4)
            .hidden(3, Activation::Relu)
            .classes(2)
    };
    assert_eq!(
        err(Mlp::<f32>::builder(0).classes(2).build()),
        "invalid inputs = 0: must be at least 1"
    );
    assert_eq!(
        err(b().classes(0).build()),
        "invalid classes = 0: must be at least 1"
    );
    assert!(err(b().hidden(0, Activation::Tanh).build()).contains("0 (layer 1)"));
    for l2 in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(err(b().l2(l2).build()).starts_with("invalid l2"));
    }
    for std in [-0.1, f64::NAN] {
        assert!(err(b().init(Init::Normal(std)).build()).starts_with("invalid init std"));
    }
    assert!(err(b().block_rows(0).build()).starts_with("invalid block_rows"));
    assert!(err(Mlp::<f32>::builder(1 << 20)
        .hidden(1 << 12, Activation::Relu)
        .build())
    .contains("more than 2^31 parameters"));
    assert!(err(b().build().unwrap().set_threads(0)).starts_with("invalid threads"));
    assert!(err(LinearClassifier::<f64>::builder(3, 0).build()).starts_with("invalid classes"));
    assert!(err(LinearClassifier::<f64>::builder(0, 3).build()).starts_with("invalid inputs"));

    // An architecture that does not describe a network.
    let arch = MlpArchitecture {
        widths: vec![4, 3, 2],
        activations: vec![],
        loss: Loss::Hinge,
        l2: 0.0,
    };
    assert!(err(arch.builder::<f32>()).contains("one per hidden layer"));
    let empty = MlpArchitecture {
        widths: vec![],
        ..arch
    };
    assert!(err(empty.builder::<f32>()).contains("need at least an input and an output"));
}

#[test]
fn optimizers_reject_bad_hyper_parameters() {
    for bad in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        assert!(err(Sgd::<f64>::new(bad)).starts_with("invalid learning_rate"));
        assert!(err(GradientDescent::<f64>::new(bad)).starts_with("invalid learning_rate"));
        assert!(err(RandomSearch::<f64>::new(bad, 0)).starts_with("invalid scale"));
        assert!(err(LocalSearch::<f64>::new(bad, 0)).starts_with("invalid step_size"));
    }
    let sgd = || Sgd::<f32>::new(0.1).unwrap();
    for mu in [-0.1, 1.0, f32::NAN] {
        assert!(err(sgd().momentum(mu)).starts_with("invalid momentum"));
    }
    assert_eq!(
        err(sgd().batch_size(0)),
        "invalid batch_size = 0: must be at least 1"
    );
    assert!(err(Minibatches::new(10, 0)).starts_with("invalid batch_size"));

    // State that an optimizer does not keep is refused, naming it.
    let mut state = Sgd::<f32>::new(0.1).unwrap().state();
    state.buffers.push(("moment".into(), vec![0.0; 3]));
    assert!(err(sgd().load_state(&state)).contains("moment"));
    state.buffers.clear();
    state.scalars.push(("temperature".into(), 1.0));
    assert!(err(RandomSearch::new(0.1, 0).unwrap().load_state(&state)).contains("temperature"));
    assert!(err(LocalSearch::new(0.1, 0).unwrap().load_state(&state)).contains("temperature"));
    assert!(err(GradientDescent::new(0.1).unwrap().load_state(&state)).contains("temperature"));
}

#[test]
fn trainer_rejects_bad_settings_and_mismatched_data() {
    assert_eq!(
        err(Trainer::new(0)),
        "invalid epochs = 0: must be at least 1"
    );
    assert!(err(Trainer::new(1).unwrap().threads(0)).starts_with("invalid threads"));
    assert!(err(Trainer::new(1).unwrap().threads(5000)).starts_with("invalid threads"));
    let beyond = TrainState {
        epoch: 3,
        step: 0,
        seed: 0,
    };
    assert!(err(Trainer::new(2).unwrap().resume(&beyond)).starts_with("invalid resume epoch"));

    // A model for 3 features, data with 2.
    let data = tiny();
    let mut model = Mlp::<f64>::builder(3).classes(2).build().unwrap();
    let mut sgd = Sgd::new(0.1).unwrap();
    let e = err(Trainer::new(1)
        .unwrap()
        .run(&mut model, &mut sgd, &data, None));
    assert_eq!(
        e,
        "Mlp::loss_and_grad: expected 3 features and 2 classes, found 2 features and 2 classes"
    );
    // A model for 3 classes, data with 2.
    let mut model = Mlp::<f64>::builder(2).classes(3).build().unwrap();
    let mut gd = GradientDescent::new(0.1).unwrap();
    assert!(err(Trainer::new(1)
        .unwrap()
        .run(&mut model, &mut gd, &data, None))
    .contains("classes"));
    // An empty training set.
    let empty = data.take(0);
    assert!(err(Trainer::new(1)
        .unwrap()
        .run(&mut model, &mut gd, &empty, None))
    .contains("non-empty"));
}

#[test]
fn datasets_reject_bad_labels_shapes_and_values() {
    let x = || Matrix::from_vec(vec![0.0f64, 1.0, 1.0, 0.0], 2, 2).unwrap();
    assert_eq!(
        err(Dataset::from_matrix(x(), vec![0, 2], 2)),
        "label 2 at row 1 is outside the class range 0..2"
    );
    assert!(err(Dataset::from_matrix(x(), vec![0, 0], 0)).contains("one class"));
    assert!(err(Dataset::from_matrix(x(), vec![0], 2)).contains("1 labels"));
    assert!(err(Dataset::<f32>::from_bytes(vec![1, 2, 3], 0, vec![], 2)).contains("feature"));
    assert!(err(Dataset::<f32>::from_bytes(vec![1, 2, 3], 2, vec![0], 2)).contains("3 feature"));
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let m = Matrix::from_vec(vec![0.0, 1.0, bad, 0.0], 2, 2).unwrap();
        assert_eq!(
            err(Dataset::from_matrix(m, vec![0, 1], 2)),
            format!("invalid features = {bad} at row 1, column 0: must be finite")
        );
    }
    assert!(err(Matrix::from_vec(vec![1.0f32; 5], 2, 3)).contains("Matrix"));

    let mut data = tiny();
    assert!(err(data.set_transform(FeatureTransform::uniform(3, 1.0, 0.0))).contains("3"));
    let nan = FeatureTransform::uniform(2, f64::NAN, 0.0);
    assert!(err(data.set_transform(nan)).starts_with("invalid feature transform"));
    assert!(err(FeatureTransform::new(vec![1.0, 2.0], vec![0.0])).contains("FeatureTransform"));
    assert!(err(FeatureTransform::new(vec![1.0], vec![f64::INFINITY]))
        .starts_with("invalid feature transform"));
    assert!(err(FeatureTransform::standardize(&data, -1.0)).starts_with("invalid eps"));
    assert!(err(FeatureTransform::standardize(&data.take(1), 0.01)).contains("2 examples"));
    assert!(err(data.select(&[0, 7])).contains("7"));
    assert!(err(data.split(4, 0)).starts_with("invalid validation = 4"));
}

#[test]
fn gradient_checks_and_files_reject_bad_input() {
    for bad in [0.0, -1.0, f64::NAN] {
        assert!(err(GradCheck::new().h(bad)).starts_with("invalid h"));
    }
    assert!(err(GradCheck::new().floor(-1.0)).starts_with("invalid floor"));

    // Files: a missing MNIST directory and a missing or foreign checkpoint name the file.
    let e = err(load_mnist::<f32>("no/such/dir"));
    assert!(e.contains("no/such/dir"), "{e}");
    let e = err(Checkpoint::<f32>::load("no/such.safetensors"));
    assert!(e.contains("no/such.safetensors"), "{e}");
    let labels = Path::new(SHIPPED_MNIST_DIR).join("t10k-labels-idx1-ubyte.gz");
    let e = err(Checkpoint::<f32>::load(&labels));
    assert!(
        e.contains("t10k-labels") && e.contains("safetensors"),
        "{e}"
    );
}
