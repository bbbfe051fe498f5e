//! Backpropagation, written to be read: the [`Mlp`]'s forward and backward pass on a whole
//! batch, serially, one layer kind at a time, each forward beside its backward.
//!
//! A network is a chain `x → linear → activation → linear → … → scores → loss`. The
//! forward pass runs the chain and keeps what each step saw; the backward pass runs it in
//! reverse, turning `∂L/∂(output)` of each step into `∂L/∂(input)` (and, for a linear
//! step, `∂L/∂W` and `∂L/∂b`) by the chain rule. Each step's local rule is three lines:
//!
//! | step | forward | backward, given `dOut = ∂L/∂out` |
//! |---|---|---|
//! | linear | `Z = X·W + b` | `dX = dZ·Wᵀ`, `dW = Xᵀ·dZ`, `db = Σ_rows dZ` |
//! | activation | `A = f(Z)` | `dZ = dA ⊙ f'(Z)` (written through `A`: σ' = A(1−A), tanh' = 1−A², ReLU' = `[A > 0]`) |
//! | dropout (training) | `D = A ⊙ M`, `M` = `1/(1−p)` kept, 0 dropped | `dA = dD ⊙ M` |
//! | loss | `L = mean_i ℓ(f(z_i), y_i)` | `dZ_i = ∂ℓ/∂z_i / n` (softmax, no `f`: `(p_i − onehot(y_i))/n`) |
//! | L2 | `L += ½λ‖W‖²` | `dW += λ·W` |
//!
//! Dropout follows every hidden layer's activation when the model has it and the batch is
//! a training step's (its masks from the step's streams, `model/dropout.rs`); evaluation
//! and a batch without a step skip it.
//!
//! The loss reads the output layer's `z` and applies the output activation `f` itself (the
//! lecture's outer σ, if the network has one): through `f`, `∂ℓ/∂z = ∂ℓ/∂p ⊙ f'(z)`, and
//! binary cross-entropy through a sigmoid is the stable `(σ(z) − t)/C`.
//!
//! This file is the reference: [`loss_and_grad`] computes exactly these formulas, allocating
//! fresh matrices as it goes. What training runs is `blocked.rs` — the same maths walked in
//! row blocks over the model's threads, with buffers reused and passes fused — and the
//! tests hold it to this one: bit for bit on one thread when the batch is one block (the
//! operations are then the same, in the same order), and to rounding otherwise.
//!
//! ```
//! use downhill::model::backprop;
//! use downhill::prelude::*;
//!
//! let x = Matrix::from_vec(vec![0.5, -1.0, 2.0, 0.1, 0.3, -0.7], 3, 2)?;
//! let data = Dataset::from_matrix(x, vec![0, 2, 1], 3)?;
//! let mut mlp = Mlp::<f64>::builder(2).hidden(4, Activation::Tanh).classes(3).build()?;
//! let mut reference = vec![0.0; mlp.num_params()];
//! let mut fast = vec![0.0; mlp.num_params()];
//! let l_ref = backprop::loss_and_grad(&mlp, &data.all(), &mut reference)?;
//! let l_fast = mlp.loss_and_grad(&data.all(), &mut fast)?;
//! assert_eq!((l_ref, &reference), (l_fast, &fast));
//! # Ok::<(), downhill::Error>(())
//! ```

use crate::activation::Activation;
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{activate, activate_backward};
use crate::kernels::{column_sums_into, gemm};
use crate::loss::{l2_penalty, Loss};
use crate::matrix::{MatRef, Matrix};
use crate::model::dropout::Dropout;
use crate::model::layer::LayerSpec;
use crate::model::mlp::CompensatedSum;
use crate::model::Mlp;
use crate::scalar::Scalar;
use crate::validate::same_size;

// ---- linear: Z = X·W + b ----------------------------------------------------------------

/// `Z = X·W + b`: each row of `X` times `W`, plus the bias.
fn linear_forward<T: Scalar>(x: &Matrix<T>, w: MatRef<'_, T>, b: &[T]) -> Result<Matrix<T>> {
    let mut z = Matrix::zeros(x.rows(), w.cols())?;
    for r in 0..z.rows() {
        z.as_mut_slice()[r * w.cols()..(r + 1) * w.cols()].copy_from_slice(b);
    }
    gemm(T::one(), x.as_ref(), w, T::one(), z.as_mut())?;
    Ok(z)
}

/// Given `dZ`: `dX = dZ·Wᵀ`, `dW = Xᵀ·dZ`, `db = Σ_rows dZ`.
fn linear_backward<T: Scalar>(
    x: &Matrix<T>,
    w: MatRef<'_, T>,
    dz: &Matrix<T>,
) -> Result<(Matrix<T>, Matrix<T>, Vec<T>)> {
    let mut dx = Matrix::zeros(x.rows(), x.cols())?;
    gemm(T::one(), dz.as_ref(), w.t(), T::zero(), dx.as_mut())?;
    let mut dw = Matrix::zeros(w.rows(), w.cols())?;
    gemm(
        T::one(),
        x.as_ref().t(),
        dz.as_ref(),
        T::zero(),
        dw.as_mut(),
    )?;
    let mut db = vec![T::zero(); w.cols()];
    column_sums_into(dz.as_ref(), T::zero(), &mut db)?;
    Ok((dx, dw, db))
}

// ---- activation: A = f(Z) ---------------------------------------------------------------

/// `A = f(Z)`, elementwise.
fn activation_forward<T: Scalar>(act: Activation, mut z: Matrix<T>) -> Matrix<T> {
    activate(act, z.as_mut_slice());
    z
}

/// Given `dA`: `dZ = dA ⊙ f'(Z)`, with `f'` written through the output `A`.
fn activation_backward<T: Scalar>(act: Activation, a: &Matrix<T>, mut da: Matrix<T>) -> Matrix<T> {
    activate_backward(act, a.as_slice(), da.as_mut_slice());
    da
}

// ---- dropout: D = A ⊙ M (training) ------------------------------------------------------

/// The masks of a batch's rows in hidden layer `layer`: `1/(1−p)` kept, 0 dropped.
fn dropout_mask<T: Scalar>(
    d: &Dropout<T>,
    layer: usize,
    rows: usize,
    cols: usize,
) -> Result<Matrix<T>> {
    let mut m = Matrix::zeros(rows, cols)?;
    for (r, row) in m.as_mut_slice().chunks_exact_mut(cols).enumerate() {
        d.row_mask(layer, r, row);
    }
    Ok(m)
}

/// `D = A ⊙ M` (a dropped unit is 0 whatever its output), and given `dD`, `dA = dD ⊙ M`:
/// the same elementwise product.
fn times_mask<T: Scalar>(a: &Matrix<T>, m: &Matrix<T>) -> Result<Matrix<T>> {
    let mut out = Matrix::zeros(a.rows(), a.cols())?;
    for ((o, &a), &m) in out
        .as_mut_slice()
        .iter_mut()
        .zip(a.as_slice())
        .zip(m.as_slice())
    {
        *o = if m == T::zero() { T::zero() } else { a * m };
    }
    Ok(out)
}

// ---- loss: L = mean ℓ(f(z_i), y_i) ------------------------------------------------------

/// `L = mean_i ℓ(f(z_i), y_i)` and its gradient `dZ = ∂L/∂Z`, row by row, `f` the output
/// activation (the row losses summed in `f64`, compensated, as the fast path sums them).
fn loss_forward_backward<T: Scalar>(
    loss: Loss,
    output: Option<Activation>,
    z: &Matrix<T>,
    labels: &[usize],
) -> Result<(T, Matrix<T>)> {
    let n = labels.len();
    let classes = z.cols();
    let scale = T::one() / T::from_f64(n as f64);
    let mut dz = Matrix::zeros(n, classes)?;
    let mut total = CompensatedSum::default();
    for ((z, &y), g) in z
        .as_slice()
        .chunks_exact(classes)
        .zip(labels)
        .zip(dz.as_mut_slice().chunks_exact_mut(classes))
    {
        total.add(
            loss.head_loss_and_grad(output, z, y, scale, g)
                .to_f64_lossless(),
        );
    }
    Ok((T::from_f64(total.value() / n as f64), dz))
}

// ---- the network ------------------------------------------------------------------------

/// What the forward pass keeps for the backward one.
struct Forward<T> {
    /// Each hidden layer's output as the next layer reads it (after dropout), and the
    /// output layer's `z` (the loss applies the output activation).
    outputs: Vec<Matrix<T>>,
    /// Each hidden layer's activation `A`, before dropout, and its mask: with dropout only.
    dropped: Vec<(Matrix<T>, Matrix<T>)>,
}

/// The forward pass, with `dropout`'s masks after each hidden layer when given.
fn forward<T: Scalar>(
    mlp: &Mlp<T>,
    x: Matrix<T>,
    dropout: Option<&Dropout<T>>,
) -> Result<Forward<T>> {
    let mut outputs: Vec<Matrix<T>> = Vec::with_capacity(mlp.layers.len());
    let mut dropped = Vec::new();
    let last = mlp.layers.len() - 1;
    for (l, layer) in mlp.layers.iter().enumerate() {
        let input = outputs.last().unwrap_or(&x);
        let z = linear_forward(input, layer.weights(&mlp.params)?, layer.bias(&mlp.params))?;
        outputs.push(match (layer.act, dropout) {
            (Some(act), None) if l < last => activation_forward(act, z),
            (Some(act), Some(d)) if l < last => {
                let a = activation_forward(act, z);
                let m = dropout_mask(d, l, a.rows(), a.cols())?;
                let out = times_mask(&a, &m)?;
                dropped.push((a, m));
                out
            }
            _ => z,
        });
    }
    Ok(Forward { outputs, dropped })
}

/// The class scores of every row of `x`, by the plain forward pass (evaluation: no
/// dropout).
pub fn scores<T: Scalar>(mlp: &Mlp<T>, x: &Matrix<T>) -> Result<Matrix<T>> {
    let z = forward(mlp, x.clone(), None)?
        .outputs
        .pop()
        .ok_or_else(|| Error::param("network", "no layers", "an Mlp has at least one layer"))?;
    Ok(match mlp.layers.last().and_then(|l| l.act) {
        Some(act) => activation_forward(act, z),
        None => z,
    })
}

/// The loss of `mlp` on `batch` and its gradient, written into `grad`: forward through every
/// layer, the loss and its gradient, then backward through every layer, then L2. A batch of
/// a training step drops units if the model has dropout.
pub fn loss_and_grad<T: Scalar>(mlp: &Mlp<T>, batch: &Batch<'_, T>, grad: &mut [T]) -> Result<T> {
    same_size(
        "backprop::loss_and_grad",
        "gradient length",
        mlp.num_params(),
        grad.len(),
    )?;
    let (x, labels) = batch.to_matrix()?;
    let dropout = Dropout::for_batch(mlp.dropout, batch);
    let Forward { outputs, dropped } = forward(mlp, x.clone(), dropout.as_ref())?;
    let z = outputs
        .last()
        .ok_or_else(|| Error::param("network", "no layers", "an Mlp has at least one layer"))?;
    let output = mlp.layers.last().and_then(|l| l.act);
    let (mut loss, mut dz) = loss_forward_backward(mlp.loss, output, z, &labels)?;

    // Backward, from the last layer to the first: dz is ∂L/∂Z of layer l.
    for l in (0..mlp.layers.len()).rev() {
        let layer: &LayerSpec = &mlp.layers[l];
        let input = if l == 0 { &x } else { &outputs[l - 1] };
        let (dx, dw, db) = linear_backward(input, layer.weights(&mlp.params)?, &dz)?;
        grad[layer.w..layer.b].copy_from_slice(dw.as_slice());
        grad[layer.b..layer.b + layer.fan_out].copy_from_slice(&db);
        if l > 0 {
            dz = match (mlp.layers[l - 1].act, dropped.get(l - 1)) {
                (Some(act), Some((a, m))) => activation_backward(act, a, times_mask(&dx, m)?),
                (Some(act), None) => activation_backward(act, &outputs[l - 1], dx),
                (None, _) => dx,
            };
        }
    }

    // L2 on the weights (not the biases).
    if mlp.l2 > T::zero() {
        for layer in &mlp.layers {
            let w = &mlp.params[layer.w..layer.b];
            loss = loss + l2_penalty(mlp.l2, w);
            for (g, &w) in grad[layer.w..layer.b].iter_mut().zip(w) {
                *g = *g + mlp.l2 * w;
            }
        }
    }
    Ok(loss)
}
