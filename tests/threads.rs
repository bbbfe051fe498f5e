//! The same seed gives bit-identical parameters whatever the thread count.

mod common;

use common::{momentum_sgd, SHIPPED};
use downhill::prelude::*;

fn train(threads: usize, optimizer: &mut dyn Optimizer<f32>, block_rows: usize) -> Vec<f32> {
    train_seeded(threads, optimizer, block_rows, 3)
}

fn train_seeded(
    threads: usize,
    optimizer: &mut dyn Optimizer<f32>,
    block_rows: usize,
    seed: u64,
) -> Vec<f32> {
    let mnist = load_mnist::<f32>(SHIPPED).unwrap();
    let train = mnist.train.take(600);
    let mut mlp = Mlp::<f32>::builder(784)
        .hidden(48, Activation::Relu)
        .hidden(24, Activation::Tanh)
        .classes(10)
        .block_rows(block_rows)
        .seed(7)
        .build()
        .unwrap();
    Trainer::new(2)
        .unwrap()
        .seed(seed)
        .threads(threads)
        .unwrap()
        .run(&mut mlp, optimizer, &train, None)
        .unwrap();
    assert_eq!(mlp.threads(), threads);
    mlp.params().to_vec()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn sgd_is_bit_identical_on_1_2_and_3_threads() {
    // Batches of 100 in blocks of at most 40 rows: blocks of 32 + 32 + 32 + 4 rows... split
    // again across threads, so every boundary case is exercised.
    let run = |t| train(t, &mut momentum_sgd(0.05, 0.9, 100), 40);
    let one = bits(&run(1));
    assert_eq!(one, bits(&run(2)));
    assert_eq!(one, bits(&run(3)));
}

#[test]
fn full_batch_gradient_descent_is_bit_identical_on_1_2_and_3_threads() {
    let run = |t| train(t, &mut GradientDescent::new(0.1).unwrap(), 64);
    let one = bits(&run(1));
    assert_eq!(one, bits(&run(2)));
    assert_eq!(one, bits(&run(3)));
}

#[test]
fn every_update_rule_with_decay_and_clipping_is_bit_identical_on_1_2_and_3_threads() {
    // The clipping norm is summed in fixed chunks and the update pass is elementwise, so
    // neither depends on how the parameters are shared out.
    let rules = [
        UpdateRule::nesterov(0.9).unwrap(),
        UpdateRule::rmsprop(),
        UpdateRule::adam(),
        UpdateRule::adamw(),
    ];
    for rule in rules {
        let run = |t| {
            let mut sgd = Sgd::new(0.01)
                .unwrap()
                .rule(rule)
                .weight_decay(1e-3)
                .unwrap()
                .clip_grad_norm(0.5)
                .unwrap()
                .batch_size(100)
                .unwrap();
            train(t, &mut sgd, 40)
        };
        let one = bits(&run(1));
        assert_eq!(one, bits(&run(2)), "{rule}");
        assert_eq!(one, bits(&run(3)), "{rule}");
    }
}

#[test]
fn the_comparison_can_fail_a_different_shuffle_gives_different_parameters() {
    let sgd = || Sgd::new(0.05).unwrap().batch_size(100).unwrap();
    let a = train_seeded(2, &mut sgd(), 40, 3);
    let b = train_seeded(2, &mut sgd(), 40, 4);
    assert_ne!(bits(&a), bits(&b));
}

#[test]
fn thread_counts_are_validated() {
    let err = Trainer::new(1).unwrap().threads(0).unwrap_err();
    assert!(matches!(
        err.kind(),
        downhill::error::ErrorKind::InvalidParameter {
            name: "threads",
            ..
        }
    ));
    assert!(Trainer::new(1).unwrap().threads(1_000_000).is_err());
    let mut mlp = Mlp::<f32>::builder(4).classes(2).build().unwrap();
    assert!(mlp.set_threads(0).is_err());
    assert!(mlp.set_threads(3).is_ok());
    assert_eq!(mlp.threads(), 3);
    // The builder's count, checked when it builds.
    let b = || Mlp::<f32>::builder(4).classes(2);
    assert!(b().threads(0).build().is_err());
    assert!(b().threads(2000).build().is_err());
    assert_eq!(b().threads(2).build().unwrap().threads(), 2);
}
