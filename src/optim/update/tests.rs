//! The in-place path against the spare buffers.

use super::*;
use crate::activation::Activation;
use crate::fast_path::Capability;
use crate::model::{FnObjective, Mlp, Model, Params};
use crate::optim::UpdateRule;

/// A versioned model (the MLP on fixed data) and an unversioned one with the same
/// parameters and loss (the same MLP behind `FnObjective`, whose steps always go
/// through the spare buffers) take the same steps, to the bit, for every rule.
#[test]
fn in_place_steps_engage_and_match_the_spare_buffer_steps() {
    let x: Vec<f64> = (0..24 * 5)
        .map(|i| ((i * 37 % 11) as f64 - 5.0) / 4.0)
        .collect();
    let labels = (0..24).map(|i| i % 3).collect();
    let x = crate::matrix::Matrix::from_vec(x, 24, 5).unwrap();
    let data = crate::data::Dataset::from_matrix(x, labels, 3).unwrap();
    for rule in [
        UpdateRule::plain(),
        UpdateRule::momentum(0.9).unwrap(),
        UpdateRule::nesterov(0.9).unwrap(),
        UpdateRule::rmsprop(),
        UpdateRule::adam(),
        UpdateRule::adamw(),
    ] {
        let mut mlp = Mlp::<f64>::builder(5)
            .hidden(6, Activation::Tanh)
            .classes(3)
            .seed(2)
            .build()
            .unwrap();
        let twin = mlp.clone();
        let mut plain = FnObjective::new(
            mlp.params().to_vec(),
            |p: &[f64]| {
                let mut m = twin.clone();
                m.params_mut().copy_from_slice(p);
                m.on(&data.all()).loss().unwrap()
            },
            |p: &[f64], g: &mut [f64]| {
                let mut m = twin.clone();
                m.params_mut().copy_from_slice(p);
                m.on(&data.all()).loss_and_grad(g).unwrap();
            },
        );
        let mut fast = GradientUpdate::new(0.05).unwrap();
        let mut slow = GradientUpdate::new(0.05).unwrap();
        fast.set_rule(rule);
        slow.set_rule(rule);
        fast.set_weight_decay(0.01).unwrap();
        slow.set_weight_decay(0.01).unwrap();
        for step in 0..4 {
            fast.step(&mut mlp.on(&data.all())).unwrap();
            slow.step(&mut plain).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(mlp.params()),
                bits(plain.point()),
                "{rule}, step {step}"
            );
            assert_eq!(fast.state(), slow.state(), "{rule}, step {step}");
            // After the first step the MLP's magnitude is known: the next goes in place.
            let trusted = fast.params_peak.map(|(v, _)| v) == Some(mlp.params_version());
            assert!(trusted, "{rule}, step {step}");
            assert!(slow.params_peak.is_none(), "{rule}");
        }
        // In-place steps record the state's magnitude; the spare-buffer path does not.
        assert!(fast.state_peak.is_some(), "{rule}");
        assert!(slow.state_peak.is_none(), "{rule}");
    }
}
