//! An `Mlp` with a sparse first layer steps `W₁` as it computes its gradient, when the
//! optimizer offers the step (`StepOffer`): the same steps, to the bit, as the optimizer's
//! own pass over the whole gradient, for every rule, with and without weight decay, with
//! and without standardised inputs, on one and two threads. And the refusal guarantee
//! holds through it: a step either leaves finite parameters or is refused with the
//! parameters and the optimizer's state exactly as they were.

mod common;

use common::{bits, every_rule, SHIPPED};
use downhill::data::FeatureTransform;
use downhill::error::ErrorKind;
use downhill::model::Params;
use downhill::prelude::*;

/// 128 shipped digits (one row block: the fused step needs the whole batch in one), with
/// or without standardisation, and a 784-32-10 network on `threads` threads, with an L2
/// penalty `l2` of its own.
fn setup(standardize: bool, threads: usize, l2: f64) -> (Dataset<f32>, Mlp<f32>) {
    let mut data = load_mnist::<f32>(SHIPPED).unwrap().train.take(128);
    if standardize {
        let t = FeatureTransform::standardize(&data, 0.01).unwrap();
        data.set_transform(t).unwrap();
    }
    let mut mlp = Mlp::<f32>::builder(784)
        .hidden(32, Activation::Relu)
        .classes(10)
        .l2(l2)
        .seed(5)
        .build()
        .unwrap();
    mlp.set_threads(threads).unwrap();
    (data, mlp)
}

fn sgd(rule: UpdateRule, decay: f32, lr: f32) -> Sgd<f32> {
    Sgd::new(lr)
        .unwrap()
        .rule(rule)
        .weight_decay(decay)
        .unwrap()
}

#[test]
fn stepping_w1_with_its_gradient_takes_the_same_steps_as_a_separate_pass() {
    for (standardize, l2) in [(false, 0.0), (true, 0.0), (true, 1e-3)] {
        for threads in [1, 2] {
            for rule in every_rule() {
                for decay in [0.0, 1e-3] {
                    let what = format!(
                        "{rule}, decay {decay}, {threads} threads, standardize {standardize}, l2 {l2}"
                    );
                    let (data, mut fused_mlp) = setup(standardize, threads, l2);
                    let mut whole_mlp = fused_mlp.clone();
                    let mut fused = sgd(rule, decay, 0.01);
                    let mut whole = sgd(rule, decay, 0.01).keep_gradient(true);
                    let batch = data.all();
                    for step in 0..4 {
                        let a = fused.step(&mut fused_mlp.on(&batch)).unwrap();
                        let b = whole.step(&mut whole_mlp.on(&batch)).unwrap();
                        assert_eq!(a.to_bits(), b.to_bits(), "{what}, loss at step {step}");
                        assert_eq!(
                            bits(fused_mlp.params()),
                            bits(whole_mlp.params()),
                            "{what}, step {step}"
                        );
                        assert_eq!(fused.state(), whole.state(), "{what}, step {step}");
                        assert!(whole.last_gradient().is_some(), "{what}");
                        // The first step has no trusted magnitude for the parameters and goes
                        // through the spare buffers; from the second on, the model steps `W₁`
                        // — unless it has a penalty of its own, whose gradient it adds after
                        // the kernels have run.
                        assert_eq!(
                            fused.last_gradient().is_none(),
                            step > 0 && l2 == 0.0,
                            "{what}, step {step}: the fused step engages from the second"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_step_through_the_fused_path_is_finite_or_refused_with_nothing_changed() {
    for threads in [1, 2] {
        for rule in every_rule() {
            let (data, mut mlp) = setup(true, threads, 0.0);
            let batch = data.all();
            let mut opt = sgd(rule, 0.0, 0.01);
            for _ in 0..3 {
                opt.step(&mut mlp.on(&batch)).unwrap();
            }
            // Learning rates up to past the float range: each step is taken finite or
            // refused whole — never half-taken with `W₁` already moved.
            let mut refused = 0;
            for lr in [1e30, 1e34, 1e36, 1e37, 1e38, 3e38] {
                let what = format!("{rule}, lr {lr:e}, {threads} threads");
                let (params, state) = (mlp.params().to_vec(), opt.state());
                opt.set_learning_rate(lr).unwrap();
                match opt.step(&mut mlp.on(&batch)) {
                    Ok(_) => assert!(
                        mlp.params().iter().all(|w| w.is_finite()),
                        "{what}: a taken step left a non-finite parameter"
                    ),
                    Err(e) => {
                        assert!(
                            matches!(e.kind(), ErrorKind::Diverged { .. }),
                            "{what}: {e}"
                        );
                        assert_eq!(bits(mlp.params()), bits(&params), "{what}: refused");
                        assert_eq!(opt.state(), state, "{what}: refused");
                        refused += 1;
                    }
                }
            }
            assert!(
                refused > 0,
                "{rule}, {threads} threads: no step was refused"
            );
        }
    }
}
