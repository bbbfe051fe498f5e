//! Augmentation: applied when a training step's batch is gathered, drawn per
//! `(seed, epoch, image)` — the same seed gives the same batch, on any number of threads,
//! resumed or straight — and never when a batch without a step is: validation and test
//! data, evaluation and scoring read the images as stored. Specs that do not parse are
//! errors naming the part.

mod common;

use common::{bits, momentum_sgd, net, SHIPPED};
use downhill::data::{Augment, ImageShape, TrainingStep};
use downhill::error::ErrorKind;
use downhill::prelude::*;

fn digits() -> Mnist {
    let m = load_mnist::<f32>(SHIPPED).unwrap();
    Mnist {
        train: m.train.take(400),
        test: m.test.take(300),
    }
}

struct Mnist {
    train: Dataset<f32>,
    test: Dataset<f32>,
}

fn shape() -> ImageShape {
    ImageShape::new(1, 28, 28).unwrap()
}

fn affine() -> Augment {
    Augment::parse("shift:2,rotate:12,scale:0.1", shape()).unwrap()
}

/// `rows` of `batch`, gathered dense.
fn gathered(batch: &Batch<'_, f32>) -> Vec<f32> {
    batch.to_matrix().unwrap().0.into_vec()
}

#[test]
fn the_same_seed_gives_the_same_batch_and_other_epochs_other_ones() {
    let data = digits().train.with_augment(affine()).unwrap();
    let idx: Vec<usize> = (0..64).map(|i| (i * 37) % 400).collect();
    let at = |seed, epoch, step| {
        gathered(
            &data
                .batch(&idx)
                .unwrap()
                .for_step(TrainingStep::new(seed, epoch, step)),
        )
    };
    let a = at(1, 3, 40);
    assert_eq!(bits(&a), bits(&at(1, 3, 40)));
    // An image's distortion is its epoch's, whatever step it comes in.
    assert_eq!(bits(&a), bits(&at(1, 3, 41)));
    assert_ne!(bits(&a), bits(&at(1, 4, 40)));
    assert_ne!(bits(&a), bits(&at(2, 3, 40)));
    // And it is a distortion: not the stored images, but as much ink, give or take.
    let stored = gathered(&data.batch(&idx).unwrap());
    assert_ne!(bits(&a), bits(&stored));
    let ink = |v: &[f32]| v.iter().sum::<f32>();
    let ratio = ink(&a) / ink(&stored);
    assert!((0.8..1.25).contains(&ratio), "{ratio}");
}

#[test]
fn the_sparse_gather_reads_what_the_dense_one_does() {
    // One network reading sparse, one dense, the same weights: the same loss on a training
    // step's augmented batch (the images gathered by each path are the same).
    let data = digits()
        .train
        .with_augment(affine().elastic(34.0, 4.0).unwrap())
        .unwrap();
    let build = |sparse| {
        Mlp::<f32>::builder(784)
            .hidden(32, Activation::Relu)
            .classes(10)
            .sparse_input(sparse)
            .seed(4)
            .build()
            .unwrap()
    };
    let (mut sparse, mut dense) = (
        build(downhill::model::SparseInput::Always),
        build(downhill::model::SparseInput::Never),
    );
    let batch = data.all().for_step(TrainingStep::new(3, 2, 9));
    let (a, b) = (sparse.loss(&batch).unwrap(), dense.loss(&batch).unwrap());
    assert!((a - b).abs() <= 1e-5 * a.abs(), "{a} vs {b}");
    let plain = dense.loss(&data.all()).unwrap();
    assert!((a - plain).abs() > 1e-4, "the step's images are distorted");
}

#[test]
fn augmentation_never_touches_evaluation_validation_or_test_data() {
    let Mnist { train, test } = digits();
    let augmented = train.clone().with_augment(affine()).unwrap();
    let mut model = net([784, 32, 10], Activation::Relu, 1);
    // A batch without a step reads the images as stored, augmentation set or not.
    assert_eq!(
        bits(&gathered(&augmented.all())),
        bits(&gathered(&train.all()))
    );
    // Train on the augmented set, validating on it and on the test set: every figure the run
    // records after an epoch is what the same parameters score on un-augmented copies.
    let report = Trainer::new(2)
        .unwrap()
        .seed(5)
        .train_accuracy(true)
        .run(
            &mut model,
            &mut momentum_sgd(0.05, 0.9, 50),
            &augmented,
            Some(&test),
        )
        .unwrap();
    let last = report.history.last().unwrap();
    let on_test = model.evaluate(&test).unwrap();
    assert_eq!(last.valid_accuracy, on_test.accuracy);
    assert_eq!(last.valid_loss, on_test.loss);
    assert_eq!(
        last.train_accuracy,
        model.evaluate(&train).unwrap().accuracy
    );
    assert_eq!(
        accuracy(&mut model, &augmented).unwrap(),
        accuracy(&mut model, &train).unwrap()
    );
    // And the training did see distorted images: without them it ends elsewhere.
    let mut plain = net([784, 32, 10], Activation::Relu, 1);
    Trainer::new(2)
        .unwrap()
        .seed(5)
        .run(&mut plain, &mut momentum_sgd(0.05, 0.9, 50), &train, None)
        .unwrap();
    assert_ne!(bits(plain.params()), bits(model.params()));
}

#[test]
fn training_with_augmentation_is_the_same_on_1_and_2_threads_and_resumed() {
    let data = digits().train.with_augment(affine()).unwrap();
    let net = || {
        Mlp::<f32>::builder(784)
            .hidden(24, Activation::Relu)
            .classes(10)
            .block_rows(48)
            .seed(8)
            .build()
            .unwrap()
    };
    let run = |threads: usize, epochs: usize, from: Option<(&Mlp<f32>, &Sgd<f32>)>| {
        let mut m = net();
        let mut opt = momentum_sgd(0.05, 0.9, 100);
        let mut trainer = Trainer::new(epochs)
            .unwrap()
            .seed(2)
            .threads(threads)
            .unwrap();
        if let Some((model, o)) = from {
            m.params_mut().copy_from_slice(model.params());
            opt.load_state(&o.state()).unwrap();
            let state = downhill::TrainState {
                epoch: 1,
                step: 4,
                seed: 2,
            };
            trainer = trainer.resume(&state).unwrap();
        }
        trainer.run(&mut m, &mut opt, &data, None).unwrap();
        (m, opt)
    };
    let (one, _) = run(1, 3, None);
    let (two, _) = run(2, 3, None);
    assert_eq!(bits(one.params()), bits(two.params()));
    let (half, opt) = run(2, 1, None);
    let (resumed, _) = run(1, 3, Some((&half, &opt)));
    assert_eq!(bits(one.params()), bits(resumed.params()));
}

#[test]
fn whole_pixel_shifts_are_exact_copies() {
    let data = digits().train;
    let aug = Augment::new(shape()).shift(3).unwrap();
    for row in 0..20 {
        let stored: Vec<u8> = {
            let mut x = vec![0.0f32; 784];
            data.gather_row(row, &mut x).unwrap();
            x.iter().map(|v| (v * 255.0).round() as u8).collect()
        };
        let moved = aug.sample(&stored, 4, 1, row).unwrap();
        // Some shift (dx, dy) in −3..=3 maps one onto the other.
        let found = (-3i64..=3)
            .flat_map(|dx| (-3i64..=3).map(move |dy| (dx, dy)))
            .any(|(dx, dy)| {
                (0..28i64).all(|y| {
                    (0..28i64).all(|x| {
                        let (sx, sy) = (x - dx, y - dy);
                        let want = if (0..28).contains(&sx) && (0..28).contains(&sy) {
                            stored[(sy * 28 + sx) as usize]
                        } else {
                            0
                        };
                        moved[(y * 28 + x) as usize] == want
                    })
                })
            });
        assert!(found, "row {row}");
    }
}

#[test]
fn bad_specs_are_errors_naming_the_part() {
    let cases = [
        ("shift:two", "augment shift"),
        ("shift:2,rotate:x", "augment rotate"),
        ("rotate:200", "augment rotate"),
        ("scale:1.5", "augment scale"),
        ("scale:-0.1", "augment scale"),
        ("elastic:8", "augment elastic"),
        ("elastic:8:0", "augment elastic sigma"),
        ("elastic:-1:3", "augment elastic alpha"),
        ("shift:99", "augment shift"),
        ("shift:1,shift:2", "augment shift"),
        ("shear:3", "augment"),
        ("shift", "augment shift"),
    ];
    for (spec, name) in cases {
        let err = Augment::parse(spec, shape()).unwrap_err();
        match err.kind() {
            ErrorKind::InvalidParameter { name: n, .. } => assert_eq!(*n, name, "{spec}: {err}"),
            other => panic!("{spec}: {other:?}"),
        }
    }
    for spec in ["", "none", "shift:0", "rotate:0,scale:0"] {
        assert!(
            Augment::parse(spec, shape()).unwrap().is_identity(),
            "{spec}"
        );
    }
    // A spec reads back as itself.
    let aug = Augment::parse("elastic:34:4,scale:0.05,shift:1,rotate:7.5", shape()).unwrap();
    assert_eq!(Augment::parse(&aug.to_string(), shape()).unwrap(), aug);
    // A dataset takes an augmentation of its own image size, of byte features only.
    let floats =
        Dataset::from_matrix(Matrix::<f32>::zeros(2, 784).unwrap(), vec![0, 1], 2).unwrap();
    assert!(floats.with_augment(affine()).is_err());
    let small = Dataset::<f32>::from_bytes(vec![0; 2 * 100], 100, vec![0, 1], 2).unwrap();
    assert!(small.with_augment(affine()).is_err());
}
