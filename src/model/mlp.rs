//! The multi-layer perceptron: `y' = σ(W2·σ(W1·x + b1) + b2)`, and deeper.
//!
//! Layer `l` maps `A_{l−1}` (rows = examples) to `A_l = act_l(A_{l−1}·W_l + b_l)`; the last
//! layer has no activation and its outputs are the class scores the [`Loss`] reads. `W_l` is
//! stored `fan_in × fan_out` row-major, so the forward pass is a plain product and both
//! backward products are the same call with swapped strides.
//!
//! A batch is walked in **row blocks**: each block is gathered from the dataset, goes forward
//! through every layer and straight back, adding its share into the gradient. The block size
//! is chosen so one block's activations stay in cache, and so that gradient descent over the
//! whole training set needs memory for one block, not for every example.
//!
//! Parameter layout in the flat vector: `W_1, b_1, W_2, b_2, ...`.

use std::marker::PhantomData;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::Batch;
use crate::error::{non_negative, Error, Result};
use crate::kernels::{dense_backward, dense_forward};
use crate::loss::{l2_penalty, Loss};
use crate::matrix::{MatMut, MatRef};
use crate::model::{Activation, Init, Model};
use crate::{DefaultRng, Scalar};

/// Bytes of activations one row block may occupy: about half of a 2 MiB L2, leaving room for
/// the weights streaming through.
const BLOCK_BYTES: usize = 1 << 20;

/// A multi-layer perceptron classifier. Build one with [`Mlp::builder`].
///
/// ```
/// use downhill::model::{Activation, Mlp, Model};
///
/// // The lecture's network: 784 pixels → 256 sigmoid units → 10 scores.
/// let mlp = Mlp::<f32>::builder(784).hidden(256, Activation::Sigmoid).classes(10).build()?;
/// assert_eq!(mlp.num_params(), 784 * 256 + 256 + 256 * 10 + 10);
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Mlp<T> {
    layers: Vec<Layer>,
    loss: Loss,
    l2: T,
    params: Vec<T>,
    block_rows: usize,
    ws: Workspace<T>,
}

/// Where one layer lives in the flat parameter vector, and what follows it.
#[derive(Debug, Clone, Copy)]
struct Layer {
    fan_in: usize,
    fan_out: usize,
    w: usize,
    b: usize,
    act: Option<Activation>,
}

/// Per-block buffers, sized on first use and reused for every later block and batch.
#[derive(Debug, Clone, Default)]
struct Workspace<T> {
    rows: usize,
    x: Vec<T>,
    labels: Vec<usize>,
    /// Output of each layer for the current block (the last one: scores, then dScores).
    acts: Vec<Vec<T>>,
    /// dZ of the layer being back-propagated, and the dX it produces.
    delta: Vec<T>,
    delta_next: Vec<T>,
}

/// Configuration of an [`Mlp`]; validated by [`build`](MlpBuilder::build).
#[derive(Debug, Clone)]
pub struct MlpBuilder<T> {
    inputs: usize,
    hidden: Vec<(usize, Activation)>,
    classes: usize,
    loss: Loss,
    l2: f64,
    init: Option<Init>,
    seed: u64,
    block_rows: Option<usize>,
    scalar: PhantomData<T>,
}

impl<T: Scalar> MlpBuilder<T> {
    /// Appends a hidden layer of `width` units with activation `act`.
    pub fn hidden(mut self, width: usize, act: Activation) -> Self {
        self.hidden.push((width, act));
        self
    }
    /// Number of output classes (default 10).
    pub fn classes(mut self, classes: usize) -> Self {
        self.classes = classes;
        self
    }
    /// The data loss (default softmax cross-entropy).
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }
    /// L2 regularisation strength λ: adds `½·λ·‖W‖²` over all weights (default 0).
    pub fn l2(mut self, lambda: f64) -> Self {
        self.l2 = lambda;
        self
    }
    /// Weight initialisation for every layer. Default: He before ReLU, Xavier otherwise.
    pub fn init(mut self, init: Init) -> Self {
        self.init = Some(init);
        self
    }
    /// Seed for the initial weights (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Rows per block when walking a batch (default: sized for the L2 cache).
    pub fn block_rows(mut self, rows: usize) -> Self {
        self.block_rows = Some(rows);
        self
    }

    /// Validates the configuration and draws the initial weights.
    pub fn build(self) -> Result<Mlp<T>> {
        if self.inputs == 0 {
            return Err(Error::param("inputs", 0, "must be at least 1"));
        }
        if self.classes == 0 {
            return Err(Error::param("classes", 0, "must be at least 1"));
        }
        if let Some((i, _)) = self.hidden.iter().enumerate().find(|(_, (w, _))| *w == 0) {
            return Err(Error::param(
                "hidden",
                format!("0 (layer {i})"),
                "widths must be at least 1",
            ));
        }
        let l2 = non_negative("l2", self.l2)?;
        if let Some(Init::Normal(std)) = self.init {
            non_negative("init std", std)?;
        }
        if self.block_rows == Some(0) {
            return Err(Error::param("block_rows", 0, "must be at least 1"));
        }

        let mut widths = vec![self.inputs];
        widths.extend(self.hidden.iter().map(|&(w, _)| w));
        widths.push(self.classes);
        let mut layers = Vec::with_capacity(widths.len() - 1);
        let mut offset = 0usize;
        let too_big = || {
            Error::param(
                "layer sizes",
                "too large",
                "parameter count overflows usize",
            )
        };
        for (l, pair) in widths.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let w = offset;
            let b = fan_in
                .checked_mul(fan_out)
                .and_then(|n| w.checked_add(n))
                .ok_or_else(too_big)?;
            offset = b.checked_add(fan_out).ok_or_else(too_big)?;
            layers.push(Layer {
                fan_in,
                fan_out,
                w,
                b,
                act: self.hidden.get(l).map(|h| h.1),
            });
        }
        // Refuse absurd sizes before allocating: the parameters and one block's activations
        // must fit comfortably in memory (here: 2^31 parameters, 8 GiB of f32).
        if offset > (1 << 31) {
            return Err(Error::param(
                "layer sizes",
                offset,
                "more than 2^31 parameters",
            ));
        }

        let mut rng = DefaultRng::seed_from_u64(self.seed);
        let mut params = vec![T::zero(); offset];
        for (l, layer) in layers.iter().enumerate() {
            let init = self.init.unwrap_or(match self.hidden.get(l) {
                Some(&(_, act)) => act.default_init(),
                None => Init::Xavier,
            });
            let std = init.std_dev(layer.fan_in, layer.fan_out);
            for w in &mut params[layer.w..layer.b] {
                let z: f64 = StandardNormal.sample(&mut rng);
                *w = T::of(z * std);
            }
        }

        let row_bytes: usize = widths.iter().sum::<usize>() * std::mem::size_of::<T>() * 2;
        let block_rows = self
            .block_rows
            .unwrap_or_else(|| (BLOCK_BYTES / row_bytes.max(1)).clamp(32, 1024) / 8 * 8);
        Ok(Mlp {
            layers,
            loss: self.loss,
            l2: T::of(l2),
            params,
            block_rows,
            ws: Workspace::default(),
        })
    }
}

impl<T: Scalar> Mlp<T> {
    /// Starts configuring an MLP with `inputs` features per example.
    pub fn builder(inputs: usize) -> MlpBuilder<T> {
        MlpBuilder {
            inputs,
            hidden: Vec::new(),
            classes: 10,
            loss: Loss::SoftmaxCrossEntropy,
            l2: 0.0,
            init: None,
            seed: 0,
            block_rows: None,
            scalar: PhantomData,
        }
    }

    /// Layer widths from input to output, e.g. `[784, 256, 10]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.layers[0].fan_in];
        w.extend(self.layers.iter().map(|l| l.fan_out));
        w
    }

    /// The data loss this model minimises.
    pub fn loss_fn(&self) -> Loss {
        self.loss
    }

    /// Rows per block when walking a batch.
    pub fn block_rows(&self) -> usize {
        self.block_rows
    }

    /// The weights of layer `l` (`fan_in × fan_out`, row-major), or `None` past the last layer.
    pub fn weights(&self, l: usize) -> Option<MatRef<'_, T>> {
        let layer = self.layers.get(l)?;
        MatRef::new(&self.params[layer.w..layer.b], layer.fan_in, layer.fan_out).ok()
    }

    fn ensure_workspace(&mut self, rows: usize) {
        if self.ws.rows >= rows {
            return;
        }
        let widest = self.layers.iter().map(|l| l.fan_out).max().unwrap_or(0);
        self.ws = Workspace {
            rows,
            x: vec![T::zero(); rows * self.layers[0].fan_in],
            labels: vec![0; rows],
            acts: self
                .layers
                .iter()
                .map(|l| vec![T::zero(); rows * l.fan_out])
                .collect(),
            delta: vec![T::zero(); rows * widest],
            delta_next: vec![T::zero(); rows * widest],
        };
    }

    fn check_batch(&self, context: &'static str, batch: &Batch<'_, T>) -> Result<()> {
        let (inputs, classes) = (self.layers[0].fan_in, self.num_classes());
        if batch.num_features() != inputs || batch.num_classes() != classes {
            return Err(Error::shape(
                context,
                format!("{inputs} features and {classes} classes"),
                format!(
                    "{} features and {} classes",
                    batch.num_features(),
                    batch.num_classes()
                ),
            ));
        }
        if batch.is_empty() {
            return Err(Error::shape(context, "a non-empty batch", "0 examples"));
        }
        Ok(())
    }

    /// Forward through every layer for the `rows` rows in `ws.x`; scores end in `ws.acts[last]`.
    fn forward_block(&mut self, rows: usize) -> Result<()> {
        let ws = &mut self.ws;
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, rest) = ws.acts.split_at_mut(l);
            let input = match before.last() {
                Some(prev) => MatRef::new(prev, rows, layer.fan_in)?,
                None => MatRef::new(&ws.x, rows, layer.fan_in)?,
            };
            let w = MatRef::new(&self.params[layer.w..layer.b], layer.fan_in, layer.fan_out)?;
            let b = &self.params[layer.b..layer.b + layer.fan_out];
            let out = MatMut::new(&mut rest[0], rows, layer.fan_out)?;
            dense_forward(input, w, b, layer.act, out)?;
        }
        Ok(())
    }

    /// Backward through every layer for the current block; `ws.acts[last]` holds dScores.
    fn backward_block(&mut self, rows: usize, grad: &mut [T]) -> Result<()> {
        let ws = &mut self.ws;
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let input = match l {
                0 => MatRef::new(&ws.x, rows, layer.fan_in)?,
                _ => MatRef::new(&ws.acts[l - 1], rows, layer.fan_in)?,
            };
            let dz_buf = if l == last { &ws.acts[last] } else { &ws.delta };
            let dz = MatRef::new(dz_buf, rows, layer.fan_out)?;
            let w = MatRef::new(&self.params[layer.w..layer.b], layer.fan_in, layer.fan_out)?;
            let (gw, gb) = grad[layer.w..layer.b + layer.fan_out].split_at_mut(layer.b - layer.w);
            let dw = MatMut::new(gw, layer.fan_in, layer.fan_out)?;
            // The first layer's input is the data: no gradient to pass further back.
            let dx = match l {
                0 => None,
                _ => Some(MatMut::new(&mut ws.delta_next, rows, layer.fan_in)?),
            };
            dense_backward(input, w, dz, dw, gb, dx)?;
            if l > 0 {
                let prev = &self.layers[l - 1];
                if let Some(act) = prev.act {
                    let n = rows * prev.fan_out;
                    act.backward_in_place(&ws.acts[l - 1][..n], &mut ws.delta_next[..n]);
                }
                std::mem::swap(&mut ws.delta, &mut ws.delta_next);
            }
        }
        Ok(())
    }

    /// The shared driver of `loss` and `loss_and_grad`: walk the batch in row blocks.
    fn evaluate(&mut self, batch: &Batch<'_, T>, mut grad: Option<&mut [T]>) -> Result<T> {
        let n = batch.len();
        let block = self.block_rows.min(n);
        self.ensure_workspace(block);
        if let Some(g) = grad.as_deref_mut() {
            g.iter_mut().for_each(|v| *v = T::zero());
        }
        let classes = self.num_classes();
        let inputs = self.num_inputs();
        let last = self.layers.len() - 1;
        // Row losses are summed in f64, compensated (Neumaier), in row order: the total does
        // not depend on blocking, and its rounding noise is far below what a centred
        // difference with a small h can resolve (the gradient check needs that).
        let mut total = CompensatedSum::default();
        let scale = T::one() / T::of(n as f64);
        for start in (0..n).step_by(block) {
            let rows = block.min(n - start);
            batch.gather(
                start..start + rows,
                &mut self.ws.x[..rows * inputs],
                &mut self.ws.labels,
            )?;
            self.forward_block(rows)?;
            let scores = &mut self.ws.acts[last];
            for (r, &y) in self.ws.labels[..rows].iter().enumerate() {
                let s = &mut scores[r * classes..(r + 1) * classes];
                let loss = match grad {
                    Some(_) => self.loss.row_loss_and_grad(s, y, scale),
                    None => self.loss.row_loss(s, y),
                };
                total.add(loss.to_f64_lossless());
            }
            if let Some(g) = grad.as_deref_mut() {
                self.backward_block(rows, g)?;
            }
        }
        let mut loss = T::of(total.value() / n as f64);
        if self.l2 > T::zero() {
            for layer in &self.layers {
                let w = &self.params[layer.w..layer.b];
                loss = loss + l2_penalty(self.l2, w);
                if let Some(g) = grad.as_deref_mut() {
                    for (g, &w) in g[layer.w..layer.b].iter_mut().zip(w) {
                        *g = *g + self.l2 * w;
                    }
                }
            }
        }
        Ok(loss)
    }
}

impl<T: Scalar> Model<T> for Mlp<T> {
    fn num_inputs(&self) -> usize {
        self.layers[0].fan_in
    }
    fn num_classes(&self) -> usize {
        self.layers[self.layers.len() - 1].fan_out
    }
    fn params(&self) -> &[T] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [T] {
        &mut self.params
    }
    fn loss(&mut self, batch: &Batch<'_, T>) -> Result<T> {
        self.check_batch("Mlp::loss", batch)?;
        self.evaluate(batch, None)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, T>, grad: &mut [T]) -> Result<T> {
        self.check_batch("Mlp::loss_and_grad", batch)?;
        if grad.len() != self.params.len() {
            return Err(Error::shape(
                "Mlp::loss_and_grad",
                self.params.len(),
                grad.len(),
            ));
        }
        self.evaluate(batch, Some(grad))
    }
    fn scores(&mut self, x: MatRef<'_, T>, mut out: MatMut<'_, T>) -> Result<()> {
        let (inputs, classes) = (self.num_inputs(), self.num_classes());
        if x.cols() != inputs || out.cols() != classes || out.rows() != x.rows() {
            return Err(Error::shape(
                "Mlp::scores",
                format!(
                    "x with {inputs} columns and out of {} × {classes}",
                    x.rows()
                ),
                format!(
                    "x with {} columns and out of {} × {}",
                    x.cols(),
                    out.rows(),
                    out.cols()
                ),
            ));
        }
        let n = x.rows();
        let block = self.block_rows.min(n).max(1);
        self.ensure_workspace(block);
        let last = self.layers.len() - 1;
        for start in (0..n).step_by(block) {
            let rows = block.min(n - start);
            for r in 0..rows {
                for c in 0..inputs {
                    self.ws.x[r * inputs + c] = x.data[(start + r) * x.rs + c * x.cs];
                }
            }
            self.forward_block(rows)?;
            for r in 0..rows {
                if let Some(dst) = out.row_mut(start + r) {
                    dst.copy_from_slice(&self.ws.acts[last][r * classes..(r + 1) * classes]);
                }
            }
        }
        Ok(())
    }
}

/// Neumaier's compensated sum: the running rounding error is carried and added back.
#[derive(Debug, Default, Clone, Copy)]
struct CompensatedSum {
    sum: f64,
    carry: f64,
}

impl CompensatedSum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.carry += (self.sum - t) + x;
        } else {
            self.carry += (x - t) + self.sum;
        }
        self.sum = t;
    }
    fn value(self) -> f64 {
        self.sum + self.carry
    }
}
