//! The fast path's version, against every way the parameters change. (What the `Mlp`
//! measures of its gradient is checked against what it wrote by the property tests of
//! `tests/gradient_props.rs`, through `testing::measured_grad_magnitude`.)

use crate::fast_path::Capability;
use crate::model::{Mlp, Params};

/// Every way the parameters can change renews the version an update's trusted magnitudes
/// are keyed to; reading them does not.
#[test]
fn every_change_to_the_parameters_renews_the_version() {
    let mut m = Mlp::<f64>::builder(3)
        .hidden(4, crate::activation::Activation::Relu)
        .classes(2)
        .build()
        .unwrap();
    let v0 = m.params_version();
    let _ = m.params();
    assert_eq!(m.params_version(), v0);
    m.params_mut()[0] = 1.0;
    let v1 = m.params_version();
    assert_ne!(v1, v0);
    let mut other = m.params().to_vec();
    Capability::swap_params(&mut m, &mut other).unwrap();
    assert_ne!(m.params_version(), v1);
    // A clone starts with its original's version: the values are the same.
    assert_eq!(m.clone().params_version(), m.params_version());
}
