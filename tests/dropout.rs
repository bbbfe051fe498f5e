//! Dropout: drawn per `(seed, epoch, step, row)`, so a run with it is the same on 1, 2 and 3
//! threads and the same resumed as straight; applied in training steps only, so evaluation
//! sees the whole network; held fixed across the probes of one batch, so the gradient check
//! of a training step passes (`gradient_props.rs` checks that for random networks); and it
//! rides the sparse first layer and its fused step unchanged.

mod common;

use common::{bits, momentum_sgd, SHIPPED};
use downhill::data::TrainingStep;
use downhill::error::ErrorKind;
use downhill::gradcheck::GradCheck;
use downhill::prelude::*;
use downhill::TrainState;

/// The first `n` shipped training digits.
fn digits(n: usize) -> Dataset<f32> {
    load_mnist::<f32>(SHIPPED).unwrap().train.take(n)
}

/// A 784-48-24-10 network (ReLU then tanh) dropping units with probability `p`.
fn net(p: f64, block_rows: usize) -> Mlp<f32> {
    Mlp::<f32>::builder(784)
        .hidden(48, Activation::Relu)
        .hidden(24, Activation::Tanh)
        .classes(10)
        .dropout(p)
        .block_rows(block_rows)
        .seed(7)
        .build()
        .unwrap()
}

fn train(model: &mut Mlp<f32>, data: &Dataset<f32>, epochs: usize, threads: usize) {
    let mut sgd = momentum_sgd(0.05, 0.9, 100);
    train_from(model, &mut sgd, data, (epochs, threads), start(3));
}

/// Where a run with `seed` starts.
fn start(seed: u64) -> TrainState {
    TrainState {
        seed,
        ..TrainState::default()
    }
}

/// Trains `model` with `sgd` to `epochs` on `threads`, from `from`.
fn train_from(
    model: &mut Mlp<f32>,
    sgd: &mut Sgd<f32>,
    data: &Dataset<f32>,
    (epochs, threads): (usize, usize),
    from: TrainState,
) {
    Trainer::new(epochs)
        .unwrap()
        .resume(&from)
        .unwrap()
        .threads(threads)
        .unwrap()
        .run(model, sgd, data, None)
        .unwrap();
}

#[test]
fn a_run_with_dropout_is_bit_identical_on_1_2_and_3_threads() {
    // Batches of 100 in blocks of at most 40 rows, the first layer sparse: every row's mask
    // comes from its own stream, not from the thread or the block that runs it.
    let data = digits(600);
    let run = |threads| {
        let mut m = net(0.5, 40);
        train(&mut m, &data, 2, threads);
        bits(m.params())
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    // And the masks did something.
    let mut plain = net(0.0, 40);
    train(&mut plain, &data, 2, 1);
    assert_ne!(one, bits(plain.params()));
}

#[test]
fn the_same_training_step_has_the_same_masks_on_any_thread_count_and_block_size() {
    let data = digits(300);
    let idx: Vec<usize> = (0..300).rev().step_by(3).collect();
    let batch = data
        .batch(&idx)
        .unwrap()
        .for_step(TrainingStep::new(5, 2, 17));
    let grad_of = |threads: usize, block_rows: usize| {
        let mut m = net(0.3, block_rows);
        m.set_threads(threads).unwrap();
        let mut g = vec![0.0; m.num_params()];
        let loss = m.loss_and_grad(&batch, &mut g).unwrap();
        (loss.to_bits(), bits(&g))
    };
    let one = grad_of(1, 100);
    assert_eq!(one, grad_of(2, 100));
    assert_eq!(one, grad_of(3, 100));
    // Another step draws other masks.
    let mut m = net(0.3, 100);
    let other = data
        .batch(&idx)
        .unwrap()
        .for_step(TrainingStep::new(5, 2, 18));
    assert_ne!(one.0, m.loss(&other).unwrap().to_bits());
}

#[test]
fn a_resumed_run_with_dropout_matches_a_straight_one() {
    let data = digits(500);
    let mut straight = net(0.5, 1024);
    let mut opt = momentum_sgd(0.05, 0.9, 100);
    train_from(&mut straight, &mut opt, &data, (4, 2), start(11));

    let mut first = net(0.5, 1024);
    let mut opt1 = momentum_sgd(0.05, 0.9, 100);
    train_from(&mut first, &mut opt1, &data, (2, 1), start(11));
    // Carry on in fresh objects from what a checkpoint holds: the parameters, the
    // optimizer's state and where the run stood (2 epochs of 5 steps).
    let mut resumed = net(0.5, 1024);
    resumed.params_mut().copy_from_slice(first.params());
    let mut opt2 = momentum_sgd(0.05, 0.9, 100);
    opt2.load_state(&opt1.state()).unwrap();
    let stood = TrainState {
        epoch: 2,
        step: 10,
        seed: 11,
    };
    train_from(&mut resumed, &mut opt2, &data, (4, 2), stood);
    assert_eq!(bits(straight.params()), bits(resumed.params()));
}

#[test]
fn evaluation_and_a_batch_without_a_step_see_the_whole_network() {
    let data = digits(200);
    let mut dropping = net(0.5, 1024);
    let mut whole = net(0.0, 1024);
    assert_eq!(bits(dropping.params()), bits(whole.params()));
    let all = data.all();
    assert_eq!(
        dropping.loss(&all).unwrap().to_bits(),
        whole.loss(&all).unwrap().to_bits()
    );
    assert_eq!(
        dropping.evaluate(&data).unwrap(),
        whole.evaluate(&data).unwrap()
    );
    // A training step's loss is another function.
    let step = all.for_step(TrainingStep::new(0, 1, 0));
    assert_ne!(
        dropping.loss(&step).unwrap().to_bits(),
        whole.loss(&step).unwrap().to_bits()
    );
    // Without dropout the step changes nothing.
    assert_eq!(
        whole.loss(&step).unwrap().to_bits(),
        whole.loss(&all).unwrap().to_bits()
    );
}

#[test]
fn the_gradient_check_of_a_training_step_passes_with_the_sparse_first_layer() {
    let data = load_mnist::<f64>(SHIPPED).unwrap().train.take(40);
    let mut m = Mlp::<f64>::builder(784)
        .hidden(12, Activation::Tanh)
        .hidden(8, Activation::Sigmoid)
        .classes(10)
        .dropout(0.4)
        .seed(2)
        .build()
        .unwrap();
    assert!(m.reads_sparse(&data));
    let step = data.all().for_step(TrainingStep::new(1, 1, 4));
    let check = GradCheck::new()
        .tolerance(1e-6)
        .unwrap()
        .detect_kinks(false);
    let report = check.sample(300, 9).unwrap().run(&mut m, &step).unwrap();
    assert!(report.passed(), "{report}");
}

#[test]
fn the_fused_step_takes_the_same_steps_with_dropout() {
    // One block of 128 rows, the first layer sparse: from the second step on the model
    // steps `W₁` as it computes its gradient, dropout or not.
    let data = digits(128);
    for threads in [1, 2] {
        let mut fused_net = net(0.5, 1024);
        fused_net.set_threads(threads).unwrap();
        let mut whole_net = fused_net.clone();
        let mut fused = Sgd::new(0.01).unwrap().rule(UpdateRule::adam());
        let mut whole = Sgd::new(0.01)
            .unwrap()
            .rule(UpdateRule::adam())
            .keep_gradient(true);
        for step in 0..4 {
            let batch = data.all().for_step(TrainingStep::new(0, 1, step));
            let a = fused.step(&mut fused_net.on(&batch)).unwrap();
            let b = whole.step(&mut whole_net.on(&batch)).unwrap();
            assert_eq!(a.to_bits(), b.to_bits(), "{threads} threads, step {step}");
            assert_eq!(bits(fused_net.params()), bits(whole_net.params()));
            assert_eq!(fused.last_gradient().is_none(), step > 0, "step {step}");
        }
    }
}

#[test]
fn a_bad_probability_is_an_error_naming_dropout() {
    for p in [f64::NAN, -0.1, 1.0, 1.5, f64::INFINITY] {
        let err = Mlp::<f32>::builder(4)
            .hidden(3, Activation::Relu)
            .dropout(p)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::InvalidParameter {
                    name: "dropout",
                    ..
                }
            ),
            "{p}: {err}"
        );
    }
    for p in [0.0, 0.5, 0.99] {
        let m = Mlp::<f32>::builder(4)
            .hidden(3, Activation::Relu)
            .dropout(p)
            .build();
        assert_eq!(m.unwrap().dropout(), p);
    }
}

#[test]
fn dropout_is_part_of_the_architecture_and_survives_a_checkpoint() {
    let m = net(0.25, 1024);
    let arch = m.architecture();
    assert_eq!(arch.dropout, 0.25);
    assert_eq!(
        arch.builder::<f32>().unwrap().build().unwrap().dropout(),
        0.25
    );
    let dir = common::TempDir::new("dropout-arch");
    let path = dir.join("net.safetensors");
    let sgd = momentum_sgd(0.1f32, 0.9, 10);
    downhill::checkpoint::Checkpoint::capture(&m, &sgd, downhill::TrainState::default())
        .with_architecture(arch)
        .save(&path)
        .unwrap();
    let back = downhill::checkpoint::Checkpoint::<f32>::load(&path).unwrap();
    assert_eq!(back.build_mlp().unwrap().dropout(), 0.25);
}
