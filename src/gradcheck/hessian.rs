//! Curvature from two gradients: the Hessian-vector product `H·v` by finite differences
//! (see [`hessian_vector`]).

use crate::error::{Error, Result};
use crate::model::Objective;
use crate::scalar::Scalar;
use crate::validate::{positive, same_size};

/// The Hessian-vector product `H·v` of `objective` at its parameters, written into `out`,
/// from two gradient evaluations. The parameters are restored exactly afterwards, even when
/// an evaluation fails. Works on any [`Objective`]: a function, or a model bound to a batch.
///
/// The second-order term of the Taylor expansion, `½·Δwᵀ·H·Δw`, needs the Hessian `H` only
/// through its product with a vector. That product is the derivative of the gradient along
/// the vector, `H·v = d/dt ∇f(w + t·v)` at `t = 0`, so two gradient evaluations give it, by
/// a centred difference:
///
/// ```text
/// H·v ≈ (∇f(w + t·v) − ∇f(w − t·v)) / 2t
/// ```
///
/// Its error is `O(t²·‖v‖³)`: the third derivative of `f` along `v`, times `t²/6`. On a
/// quadratic the gradient is linear and the third derivative zero, so the difference is
/// exact but for rounding. Rounding adds about `ε·‖∇f‖/(t·‖v‖)` (`ε` the machine epsilon),
/// which is what keeps `t` from being tiny: the parameters move a distance
/// `h = ε^(1/3)·max(1, max|wᵢ|)` each way (6e-6 in `f64` for weights of order 1; 5e-3 in
/// `f32`), where the two errors are about equal — the step
/// [`Difference::Central`](crate::gradcheck::Difference::Central) uses for gradients, one
/// derivative up. [`hessian_vector_with_step`] takes another `h`.
///
/// ```
/// use downhill::gradcheck::hessian_vector;
/// use downhill::model::FnObjective;
///
/// // f = x²·y + y³: H = [[2y, 2x], [2x, 6y]]; at (1, 2), H·(1, 1) = (4 + 2, 2 + 12).
/// let mut f = FnObjective::new(
///     vec![1.0, 2.0],
///     |p: &[f64]| p[0] * p[0] * p[1] + p[1].powi(3),
///     |p: &[f64], g: &mut [f64]| {
///         g[0] = 2.0 * p[0] * p[1];
///         g[1] = p[0] * p[0] + 3.0 * p[1] * p[1];
///     },
/// );
/// let mut hv = [0.0; 2];
/// hessian_vector(&mut f, &[1.0, 1.0], &mut hv)?;
/// assert!((hv[0] - 6.0).abs() < 1e-8 && (hv[1] - 14.0).abs() < 1e-8);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn hessian_vector<T: Scalar>(
    objective: &mut dyn Objective<T>,
    v: &[T],
    out: &mut [T],
) -> Result<()> {
    let largest = objective
        .params()
        .iter()
        .fold(1.0f64, |m, w| m.max(w.to_f64_lossless().abs()));
    let h = T::epsilon().to_f64_lossless().cbrt() * largest;
    hessian_vector_with_step(objective, v, h, out)
}

/// [`hessian_vector`] with the distance `h` the parameters move each way (finite, > 0):
/// the difference is taken at `w ± (h/‖v‖)·v`.
///
/// ```
/// use downhill::gradcheck::hessian_vector_with_step;
/// use downhill::model::FnObjective;
///
/// // sin(x): H = −sin(x); the difference's error, h²/6 times the third derivative of
/// // cos, shrinks a hundredfold when h does tenfold.
/// let mut f = FnObjective::new(vec![1.0], |p: &[f64]| p[0].sin(), |p: &[f64], g: &mut [f64]| g[0] = p[0].cos());
/// let mut hv = [0.0];
/// let mut error = |h: f64| -> downhill::Result<f64> {
///     hessian_vector_with_step(&mut f, &[1.0], h, &mut hv)?;
///     Ok((hv[0] + 1f64.sin()).abs())
/// };
/// let ratio = error(1e-2)? / error(1e-3)?;
/// assert!((ratio - 100.0).abs() < 1.0);
/// # Ok::<(), downhill::Error>(())
/// ```
pub fn hessian_vector_with_step<T: Scalar>(
    objective: &mut dyn Objective<T>,
    v: &[T],
    h: f64,
    out: &mut [T],
) -> Result<()> {
    let h = positive("h", h)?;
    let n = objective.params().len();
    same_size(
        "hessian_vector",
        "vector length (parameter count)",
        n,
        v.len(),
    )?;
    same_size(
        "hessian_vector",
        "output length (parameter count)",
        n,
        out.len(),
    )?;
    let length = norm(v);
    if !length.is_finite() {
        return Err(Error::param(
            "v",
            length,
            "must be finite (its Euclidean norm is not)",
        ));
    }
    if length == 0.0 {
        out.fill(T::zero());
        return Ok(());
    }
    let t = T::from_f64(h / length);
    let w = objective.params().to_vec();
    let mut minus = vec![T::zero(); n];
    let result = gradient_at(objective, &w, v, t, out)
        .and_then(|()| gradient_at(objective, &w, v, -t, &mut minus));
    objective.params_mut().copy_from_slice(&w);
    result?;
    // Divide by the step actually taken in each coordinate's direction: 2t as rounded.
    let two_t = t + t;
    for (o, &m) in out.iter_mut().zip(&minus) {
        *o = (*o - m) / two_t;
    }
    Ok(())
}

/// `‖v‖₂`, summed in `f64`.
fn norm<T: Scalar>(v: &[T]) -> f64 {
    v.iter()
        .map(|x| x.to_f64_lossless() * x.to_f64_lossless())
        .sum::<f64>()
        .sqrt()
}

/// The gradient at `w + t·v`, into `grad` (the parameters are left there).
fn gradient_at<T: Scalar>(
    objective: &mut dyn Objective<T>,
    w: &[T],
    v: &[T],
    t: T,
    grad: &mut [T],
) -> Result<()> {
    for ((p, &w), &v) in objective.params_mut().iter_mut().zip(w).zip(v) {
        *p = w + t * v;
    }
    objective.loss_and_grad(grad).map(|_| ())
}
