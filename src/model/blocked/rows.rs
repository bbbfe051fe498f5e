//! Phase A: each thread runs its rows forward through every layer, takes their losses, and
//! back-propagates `dZ` through every layer. The forward pass here is also what scoring
//! runs.

use crate::error::Result;
use crate::kernels::elementwise::{
    activate, activate_backward, add_assign, flush_subnormal, mul_assign,
};
use crate::kernels::narrow::{narrow_forward, narrow_input_grad};
use crate::kernels::sparse::ColumnBlocks;
use crate::kernels::update::magnitude;
use crate::kernels::{dense_forward, gemm};
use crate::matrix::{MatMut, MatRef};
use crate::model::argmax;
use crate::model::blocked::{BlockJob, FirstLayer, Workspace};
use crate::model::layer::LayerSpec;
use crate::scalar::Scalar;

/// One thread's rows in phase A.
pub(super) struct RowShare<'a, T> {
    pub start: usize,
    pub rows: usize,
    pub x: &'a mut [T],
    /// Its rows' nonzeros (the sparse first layer).
    pub sparse: Option<&'a ColumnBlocks<T>>,
    /// Where it leaves, when a step is offered, the largest magnitude in its rows of each
    /// layer's input and of each layer's `dZ` (see [`gradient_bound`]).
    pub peaks: &'a mut Vec<T>,
    /// The sparse first layer's second half of `Z₁` for these rows (empty for the dense
    /// path, and on one thread, where the forward added it).
    pub partial: &'a [T],
    pub labels: &'a mut [usize],
    pub acts: Vec<&'a mut [T]>,
    pub deltas: Vec<&'a mut [T]>,
    /// Its rows of dropout's backward factors, per hidden layer (empty without dropout).
    pub masks: Vec<&'a mut [T]>,
    pub losses: &'a mut [f64],
    pub predicted: &'a mut [usize],
}

/// Forward through layers `from..` for `n` rows: `acts[l]` receives layer `l`'s output, the
/// last one the class scores; layer 0 reads `x`, the others the layer before. Shared by
/// training (one thread's rows) and `Mlp::scores`. Training keeps the last layer's
/// pre-activation `z` (`Head::Logits`): the loss reads its output activation from there.
/// `after(l, out)` sees each layer's output before the next layer reads it (dropout).
#[allow(clippy::too_many_arguments)]
fn forward_layers<T: Scalar, A: AsRef<[T]> + AsMut<[T]>>(
    layers: &[LayerSpec],
    params: &[T],
    transposed: &[Vec<T>],
    x: &[T],
    acts: &mut [A],
    n: usize,
    from: usize,
    head: Head,
    after: &mut dyn FnMut(usize, &mut [T]),
) -> Result<()> {
    let last = layers.len() - 1;
    for (l, layer) in layers.iter().enumerate().skip(from) {
        let (before, rest) = acts.split_at_mut(l);
        let input = match before.last() {
            Some(prev) => MatRef::new(prev.as_ref(), n, layer.fan_in)?,
            None => MatRef::new(x, n, layer.fan_in)?,
        };
        let out = MatMut::new(rest[0].as_mut(), n, layer.fan_out)?;
        let act = if l == last && head == Head::Logits {
            None
        } else {
            layer.act
        };
        match layer.narrow() {
            true => {
                let wt = MatRef::new(&transposed[l], layer.fan_out, layer.fan_in)?;
                narrow_forward(input, wt, layer.bias(params), act, out)?;
            }
            false => dense_forward(input, layer.weights(params)?, layer.bias(params), act, out)?,
        }
        after(l, &mut rest[0].as_mut()[..n * layer.fan_out]);
    }
    Ok(())
}

/// What the last layer's buffer holds after a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// `z`, before the output activation (training: the loss applies it).
    Logits,
    /// The scores, after it.
    Scores,
}

/// What phase A computes beyond the forward pass and the row losses.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wants {
    /// `dZ` of every layer (training).
    pub grad: bool,
    /// Each row's highest-scoring class (evaluation).
    pub predict: bool,
    /// The magnitudes a step's gradient bound needs ([`RowShare::peaks`]).
    pub bound: bool,
}

/// Phase A for one thread's rows: gather, forward, loss, and dZ for every layer.
pub(super) fn phase_a<T: Scalar>(
    job: &BlockJob<'_, '_, T>,
    params: &[T],
    transposed: &[Vec<T>],
    s: &mut RowShare<'_, T>,
    wants: Wants,
) -> Result<()> {
    let (layers, loss, first, scale) = (job.layers, job.loss, job.first, job.scale);
    let n = s.rows;
    if n == 0 {
        // No rows, nothing to bound: zeros, not the last block's values.
        if wants.bound {
            s.peaks.clear();
            s.peaks.resize(2 * layers.len(), T::zero());
        }
        return Ok(());
    }
    let rows = s.start..s.start + n;
    let last = layers.len() - 1;
    // Dropout after each hidden layer's activation, from the rows' own streams; the factor
    // its backward multiplies `dA` by is kept in `masks`.
    let (first_row, masks) = (s.start, &mut s.masks);
    let mut drop = |l: usize, out: &mut [T]| {
        if let (Some(d), Some(act), true) = (job.dropout, layers[l].act, l < last) {
            let width = layers[l].fan_out;
            d.apply(l, first_row, act, out, &mut masks[l][..n * width], width);
        }
    };
    // The layers left to run forward after the first layer's own work.
    let from = match first {
        FirstLayer::Dense => {
            job.batch.gather(rows, s.x, s.labels)?;
            0
        }
        FirstLayer::Sparse { .. } => {
            // Z₁ = (first half) + (second half), then the activation (unless the first
            // layer is also the output layer, whose activation the loss applies); the
            // labels came with the gather. On one thread the forward did both.
            let l0 = &layers[0];
            let z = &mut s.acts[0][..n * l0.fan_out];
            if !s.partial.is_empty() {
                add_assign(z, s.partial);
                if let (Some(act), true) = (l0.act, layers.len() > 1) {
                    activate(act, z);
                }
            }
            drop(0, z);
            1
        }
    };
    forward_layers(
        layers,
        params,
        transposed,
        s.x,
        &mut s.acts,
        n,
        from,
        Head::Logits,
        &mut drop,
    )?;
    let (classes, output) = (layers[last].fan_out, layers[last].act);
    // The loss of each row from the output layer's z, and dZ of the output layer (through
    // its activation, if it has one).
    let logits = s.acts[last].chunks_exact(classes);
    let dlogits = s.deltas[last].chunks_exact_mut(classes);
    for ((((&y, out), z), dz), class) in s
        .labels
        .iter()
        .zip(s.losses.iter_mut())
        .zip(logits)
        .zip(dlogits)
        .zip(s.predicted.iter_mut())
    {
        if wants.predict {
            // The class `argmax_rows` picks from the scores (the output activation of z).
            *class = match output {
                None => argmax(z.iter().copied()),
                Some(act) => argmax(z.iter().map(|&v| act.apply(v))),
            };
        }
        let l = if wants.grad {
            loss.head_loss_and_grad(output, z, y, scale, dz)
        } else {
            loss.head_loss(output, z, y, dz)
        };
        *out = l.to_f64_lossless();
    }
    if !wants.grad {
        return Ok(());
    }
    // dZ_{l−1} = (dZ_l · W_lᵀ) ⊙ act'(A_{l−1}), from the output layer down to the first;
    // with dropout, ⊙ the factor the forward left (the mask and the derivative in one).
    for l in (1..=last).rev() {
        let layer = &layers[l];
        let (lower, upper) = s.deltas.split_at_mut(l);
        let dz = MatRef::new(&*upper[0], n, layer.fan_out)?;
        let dx = &mut *lower[l - 1];
        let size = n * layer.fan_in;
        let dropped = job.dropout.map(|_| &s.masks[l - 1][..size]);
        if layer.narrow() {
            // dZ_{l−1} in one pass: the product and the derivative, row group by row group.
            let wt = MatRef::new(&transposed[l], layer.fan_out, layer.fan_in)?;
            let below = layers[l - 1]
                .act
                .filter(|_| dropped.is_none())
                .map(|act| MatRef::new(&s.acts[l - 1][..size], n, layer.fan_in).map(|a| (act, a)));
            narrow_input_grad(
                dz,
                wt,
                below.transpose()?,
                MatMut::new(dx, n, layer.fan_in)?,
            )?;
        } else {
            let w = layer.weights(params)?.t();
            gemm(
                T::one(),
                dz,
                w,
                T::zero(),
                MatMut::new(dx, n, layer.fan_in)?,
            )?;
            if let (Some(act), None) = (layers[l - 1].act, dropped) {
                activate_backward(act, &s.acts[l - 1][..size], &mut dx[..size]);
            }
        }
        if let Some(factor) = dropped {
            mul_assign(&mut dx[..size], factor);
        }
    }
    // Phase B multiplies these by every lit pixel and activation: no subnormals (see
    // `flush_subnormal`).
    for (d, layer) in s.deltas.iter_mut().zip(layers) {
        flush_subnormal(&mut d[..n * layer.fan_out]);
    }
    if wants.bound {
        // Each layer's input (the sparse values, then the layer below's output) and its
        // `dZ`, while these rows are in cache: what `gradient_bound` reads.
        let peak = |xs: &[T]| slices_peak([xs]);
        s.peaks.clear();
        for (l, layer) in layers.iter().enumerate() {
            let input = match l {
                0 => s.sparse.map_or(T::infinity(), |p| {
                    p.value_peak().unwrap_or_else(T::infinity)
                }),
                _ => peak(&s.acts[l - 1][..n * layer.fan_in]),
            };
            s.peaks.push(input);
            s.peaks.push(peak(&s.deltas[l][..n * layer.fan_out]));
        }
    }
    Ok(())
}

/// The largest magnitude in `slices`, `+∞` if any element is not finite.
pub(super) fn slices_peak<'s, T: Scalar>(slices: impl IntoIterator<Item = &'s [T]>) -> T {
    slices
        .into_iter()
        .fold(T::zero(), |top, s| match magnitude(s) {
            Some(m) => top.max(m),
            None => T::infinity(),
        })
}

/// Scores of rows `start..start + rows` of `x` into the same rows of `out`, on one thread:
/// `Mlp::scores`, for any dense matrix of examples (`Mlp::evaluate`, which has the dataset,
/// runs blocks on the training path instead).
pub(crate) fn forward_rows<T: Scalar>(
    layers: &[LayerSpec],
    params: &[T],
    ws: &mut Workspace<T>,
    x: MatRef<'_, T>,
    out: &mut MatMut<'_, T>,
    start: usize,
    rows: usize,
) -> Result<()> {
    let inputs = layers[0].fan_in;
    for (r, dst) in ws.x.chunks_exact_mut(inputs).take(rows).enumerate() {
        x.copy_row(start + r, dst)?;
    }
    let transposed = &ws.transposed;
    forward_layers(
        layers,
        params,
        transposed,
        &ws.x,
        &mut ws.acts,
        rows,
        0,
        Head::Scores,
        &mut |_, _| {},
    )?;
    let last = layers.len() - 1;
    let classes = layers[last].fan_out;
    for r in 0..rows {
        if let Some(dst) = out.row_mut(start + r) {
            dst.copy_from_slice(&ws.acts[last][r * classes..(r + 1) * classes]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_finite_element_anywhere_makes_the_peak_infinite() {
        let a = [1.0f32, -3.0, 2.0];
        let b = [0.5f32; 9];
        assert_eq!(slices_peak([&a[..], &b[..]]), 3.0);
        assert_eq!(slices_peak::<f32>([]), 0.0);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut c = [0.25f32; 20];
            c[13] = bad;
            assert_eq!(
                slices_peak([&a[..], &c[..], &b[..]]),
                f32::INFINITY,
                "{bad}"
            );
            assert_eq!(slices_peak([&c[..], &a[..]]), f32::INFINITY, "{bad}");
        }
    }
}
