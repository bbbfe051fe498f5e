//! `hessian_vector`: exact on quadratics up to rounding, `O(h²)` elsewhere, symmetric on a
//! network, and the parameters come back to the bit.

use crate::common::{bits, net};
use crate::helpers::{relative, uniforms, Spd, Watched};
use downhill::error::ErrorKind;
use downhill::gradcheck::{hessian_vector, hessian_vector_with_step};
use downhill::model::FnObjective;
use downhill::prelude::*;

#[test]
fn on_a_quadratic_it_is_the_exact_product_up_to_rounding() {
    for seed in 0..5 {
        let spd = Spd::random(8, seed);
        let mut q = Watched::new(spd.objective());
        let start = bits(q.params());
        let v = uniforms(8, 50 + seed);
        let mut hv = vec![0.0; 8];
        hessian_vector(&mut q, &v, &mut hv).unwrap();
        let exact = spd.times(&v);
        // The centred difference of a linear gradient has no truncation error; rounding
        // leaves about ε·|∇f|/h.
        let err = relative(&hv, &exact);
        assert!(err < 1e-9, "seed {seed}: {err:e}");
        assert_eq!(bits(q.params()), start, "the parameters come back exactly");
        assert_eq!((q.gradients, q.losses), (2, 0), "two gradient evaluations");
        // Any step gives the same, to rounding: there is nothing for h² to multiply.
        hessian_vector_with_step(&mut q, &v, 0.5, &mut hv).unwrap();
        assert!(relative(&hv, &exact) < 1e-12);
    }
    // In f32 too, to f32's rounding.
    let mut f = FnObjective::new(
        vec![0.5f32, -1.0],
        |p: &[f32]| 2.0 * p[0] * p[0] + p[0] * p[1] + 3.0 * p[1] * p[1],
        |p: &[f32], g: &mut [f32]| {
            g[0] = 4.0 * p[0] + p[1];
            g[1] = p[0] + 6.0 * p[1];
        },
    );
    let mut hv = [0.0f32; 2];
    hessian_vector(&mut f, &[1.0, 2.0], &mut hv).unwrap();
    assert!(
        (hv[0] - 6.0).abs() < 1e-4 && (hv[1] - 13.0).abs() < 1e-4,
        "{hv:?}"
    );
}

/// `Σ sin(wᵢ)·wᵢ₊₁`, its gradient and its exact Hessian-vector product.
fn ripple(w: &[f64]) -> f64 {
    w.windows(2).map(|p| p[0].sin() * p[1]).sum()
}
fn ripple_grad(w: &[f64], g: &mut [f64]) {
    g.fill(0.0);
    for i in 0..w.len() - 1 {
        g[i] += w[i].cos() * w[i + 1];
        g[i + 1] += w[i].sin();
    }
}
fn ripple_hv(w: &[f64], v: &[f64]) -> Vec<f64> {
    let mut hv = vec![0.0; w.len()];
    for i in 0..w.len() - 1 {
        // ∂²/∂wᵢ² = −sin(wᵢ)·wᵢ₊₁, ∂²/∂wᵢ∂wᵢ₊₁ = cos(wᵢ).
        hv[i] += -w[i].sin() * w[i + 1] * v[i] + w[i].cos() * v[i + 1];
        hv[i + 1] += w[i].cos() * v[i];
    }
    hv
}

#[test]
fn elsewhere_its_error_shrinks_as_h_squared() {
    let w = uniforms(6, 7);
    let v = uniforms(6, 8);
    let exact = ripple_hv(&w, &v);
    let mut f = FnObjective::new(w.clone(), ripple, ripple_grad);
    let mut hv = vec![0.0; 6];
    let mut error = |h: f64| {
        hessian_vector_with_step(&mut f, &v, h, &mut hv).unwrap();
        relative(&hv, &exact)
    };
    let (coarse, fine) = (error(1e-2), error(1e-3));
    assert!((coarse / fine - 100.0).abs() < 5.0, "{coarse:e} / {fine:e}");
    // The default step balances truncation against rounding: far better than either.
    hessian_vector(&mut f, &v, &mut hv).unwrap();
    assert!(relative(&hv, &exact) < 1e-9);
    assert_eq!(bits(f.params()), bits(&w));
}

#[test]
fn on_a_network_it_is_symmetric() {
    // uᵀ(H·v) = vᵀ(H·u): a property of any Hessian, here a tanh MLP's on a batch.
    let x = Matrix::from_vec(uniforms(12 * 3, 1), 12, 3).unwrap();
    let data = Dataset::from_matrix(x, (0..12).map(|i| i % 3).collect(), 3).unwrap();
    let mut mlp = net::<f64>([3, 5, 3], Activation::Tanh, 2);
    let n = mlp.params().len();
    let (u, v) = (uniforms(n, 3), uniforms(n, 4));
    let (mut hu, mut hv) = (vec![0.0; n], vec![0.0; n]);
    let all = data.all();
    hessian_vector(&mut mlp.on(&all), &u, &mut hu).unwrap();
    hessian_vector(&mut mlp.on(&all), &v, &mut hv).unwrap();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
    let (uhv, vhu) = (dot(&u, &hv), dot(&v, &hu));
    assert!(
        (uhv - vhu).abs() < 1e-7 * uhv.abs().max(1.0),
        "{uhv} vs {vhu}"
    );
}

#[test]
fn bad_input_is_refused_and_a_zero_vector_costs_nothing() {
    let mut q = Watched::new(Spd::random(3, 0).objective());
    let mut out = vec![1.0; 3];
    hessian_vector(&mut q, &[0.0; 3], &mut out).unwrap();
    assert_eq!((out, q.calls()), (vec![0.0; 3], 0));
    let shape = |r: Result<()>| matches!(r.unwrap_err().kind(), ErrorKind::Shape { .. });
    assert!(shape(hessian_vector(&mut q, &[1.0; 2], &mut [0.0; 3])));
    assert!(shape(hessian_vector(&mut q, &[1.0; 3], &mut [0.0; 4])));
    let invalid =
        |r: Result<()>| matches!(r.unwrap_err().kind(), ErrorKind::InvalidParameter { .. });
    assert!(invalid(hessian_vector(
        &mut q,
        &[f64::NAN, 0.0, 0.0],
        &mut [0.0; 3]
    )));
    assert!(invalid(hessian_vector_with_step(
        &mut q,
        &[1.0; 3],
        0.0,
        &mut [0.0; 3]
    )));
    assert!(invalid(hessian_vector_with_step(
        &mut q,
        &[1.0; 3],
        f64::NAN,
        &mut [0.0; 3]
    )));
    assert_eq!(q.calls(), 0);
}
