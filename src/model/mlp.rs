//! The multi-layer perceptron: `y' = σ(W2·σ(W1·x + b1) + b2)`, and deeper.
//!
//! Layer `l` maps `A_{l−1}` (rows = examples) to `A_l = act_l(A_{l−1}·W_l + b_l)`; the last
//! layer has no activation and its outputs are the class scores the [`Loss`] reads. `W_l` is
//! stored `fan_in × fan_out` row-major, so the forward pass is a plain product and both
//! backward products are the same call with swapped strides.
//!
//! A batch is walked in **row blocks**: each block is gathered from the dataset, goes forward
//! through every layer and straight back, adding its share into the gradient, so gradient
//! descent over the whole training set needs memory for one block (at most 8 MiB of
//! activations), not for every example. Within a block the work is shared among the model's
//! threads; `blocked.rs` explains how, and why the result does not depend on their number.
//!
//! Parameter layout in the flat vector: `W_1, b_1, W_2, b_2, ...`.

use std::marker::PhantomData;
use std::sync::Arc;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::Batch;
use crate::error::{non_negative, thread_count, Error, Result};
use crate::kernels::ThreadPool;
use crate::loss::{l2_penalty, Loss};
use crate::matrix::{MatMut, MatRef};
use crate::model::blocked::{
    apply_step_parallel, block_losses, block_size, forward_rows, run_block, Layer, Workspace,
};
use crate::model::{Activation, Init, Model, ParamGroup};
use crate::{DefaultRng, Scalar};

/// Bytes of activations one row block may occupy. A block's rows are the `m` of the forward
/// product and the `k` of the weight-gradient product, and every block re-packs the weights,
/// so blocks must be large enough that packing a 784 × 1024 layer is a small share of the
/// arithmetic (≥ 256 rows); the products block for L1/L2 internally. The cap only matters
/// for full-batch methods, whose memory stays one block's worth: 8 MiB however many rows.
const BLOCK_BYTES: usize = 8 << 20;

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
    pool: Arc<ThreadPool>,
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
            .unwrap_or_else(|| (BLOCK_BYTES / row_bytes.max(1)).clamp(64, 1024) / 8 * 8);
        Ok(Mlp {
            layers,
            loss: self.loss,
            l2: T::of(l2),
            params,
            block_rows,
            ws: Workspace::default(),
            pool: Arc::new(
                ThreadPool::new(1)
                    .map_err(|e| Error::param("threads", format!("1 ({e})"), "could not start"))?,
            ),
        })
    }
}

/// What an [`Mlp`] is, without its weights: layer widths, activations, loss and L2 strength.
/// Enough to build another one like it (a checkpoint records it for that).
///
/// ```
/// use downhill::model::{Activation, Mlp, Model};
///
/// let mlp = Mlp::<f32>::builder(784).hidden(32, Activation::Tanh).classes(10).build()?;
/// let arch = mlp.architecture();
/// assert_eq!(arch.widths, vec![784, 32, 10]);
/// let twin = arch.builder::<f32>()?.build()?;
/// assert_eq!(twin.num_params(), mlp.num_params());
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MlpArchitecture {
    /// Layer widths from input to output, e.g. `[784, 256, 10]`.
    pub widths: Vec<usize>,
    /// The activation of each hidden layer (one fewer than the layers).
    pub activations: Vec<Activation>,
    /// The data loss.
    pub loss: Loss,
    /// L2 regularisation strength λ.
    pub l2: f64,
}

impl MlpArchitecture {
    /// A builder for an MLP of this architecture (initial weights from the builder's seed;
    /// restore a checkpoint's parameters over them). Fails if the widths and activations do
    /// not describe a network.
    pub fn builder<T: Scalar>(&self) -> Result<MlpBuilder<T>> {
        let (Some(&inputs), Some(&classes)) = (self.widths.first(), self.widths.last()) else {
            return Err(Error::param(
                "architecture widths",
                "[]",
                "need at least an input and an output width",
            ));
        };
        let hidden = self.widths.get(1..self.widths.len() - 1).unwrap_or(&[]);
        if self.widths.len() < 2 || hidden.len() != self.activations.len() {
            return Err(Error::param(
                "architecture activations",
                self.activations.len(),
                "must be one per hidden layer (two fewer than the widths)",
            ));
        }
        let mut builder = Mlp::builder(inputs)
            .classes(classes)
            .loss(self.loss)
            .l2(self.l2);
        for (&width, &act) in hidden.iter().zip(&self.activations) {
            builder = builder.hidden(width, act);
        }
        Ok(builder)
    }
}

impl<T: Scalar> Mlp<T> {
    /// The architecture of this network, to record or to build another like it.
    pub fn architecture(&self) -> MlpArchitecture {
        MlpArchitecture {
            widths: self.widths(),
            activations: self.layers.iter().filter_map(|l| l.act).collect(),
            loss: self.loss,
            l2: self.l2.to_f64_lossless(),
        }
    }

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

    /// Runs batches on `threads` threads (at least 1). Results are bit-identical whatever the
    /// count: each row block is split by rows for the forward and backward passes and by
    /// weight slices for the weight gradients, so every output element is computed by exactly
    /// one kernel call, the same way on any number of threads.
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        thread_count(threads)?;
        if threads != self.pool.threads() {
            let pool = ThreadPool::new(threads).map_err(|e| {
                Error::param(
                    "threads",
                    format!("{threads} ({e})"),
                    "could not start the threads",
                )
            })?;
            self.pool = Arc::new(pool);
        }
        Ok(())
    }

    /// The number of threads batches run on.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// The shared driver of `loss` and `loss_and_grad`: walk the batch in row blocks.
    /// With `grad = Some((g, beta))`: `g ← beta·g + ∇L`.
    fn evaluate(&mut self, batch: &Batch<'_, T>, mut grad: Option<(&mut [T], T)>) -> Result<T> {
        let n = batch.len();
        let block = block_size(n, self.block_rows);
        self.ws.ensure(&self.layers, block);
        // Row losses are summed in f64, compensated (Neumaier), in row order: the total does
        // not depend on blocking or threads, and its rounding noise is far below what a
        // finite difference with a small h can resolve (the gradient check needs that).
        let mut total = CompensatedSum::default();
        let scale = T::one() / T::of(n as f64);
        for start in (0..n).step_by(block) {
            let rows = block.min(n - start);
            run_block(
                &self.pool,
                &self.layers,
                &self.params,
                self.loss,
                &mut self.ws,
                batch,
                start..start + rows,
                scale,
                // Old contents are scaled once, by the first block; later blocks add.
                grad.as_mut()
                    .map(|(g, beta)| (&mut **g, if start == 0 { *beta } else { T::one() })),
            )?;
            block_losses(&self.ws, rows)
                .iter()
                .for_each(|&l| total.add(l));
        }
        let mut loss = T::of(total.value() / n as f64);
        if self.l2 > T::zero() {
            for layer in &self.layers {
                let w = &self.params[layer.w..layer.b];
                loss = loss + l2_penalty(self.l2, w);
                if let Some((g, _)) = grad.as_mut() {
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
    fn data_loss(&self) -> Option<Loss> {
        Some(self.loss)
    }
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
        // β = 0: the products overwrite the gradient, no separate zeroing pass.
        self.loss_and_accumulate_grad(batch, grad, T::zero())
    }
    fn loss_and_accumulate_grad(
        &mut self,
        batch: &Batch<'_, T>,
        grad: &mut [T],
        beta: T,
    ) -> Result<T> {
        self.check_batch("Mlp::loss_and_grad", batch)?;
        if grad.len() != self.params.len() {
            return Err(Error::shape(
                "Mlp::loss_and_grad",
                self.params.len(),
                grad.len(),
            ));
        }
        self.evaluate(batch, Some((grad, beta)))
    }

    fn param_groups(&self) -> Vec<ParamGroup> {
        let mut groups = Vec::with_capacity(2 * self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            // Stored `fan_in × fan_out`, row-major: the layer computes `x·W + b`.
            groups.push(ParamGroup::new(
                format!("layers.{l}.weight"),
                layer.w,
                vec![layer.fan_in, layer.fan_out],
            ));
            groups.push(ParamGroup::new(
                format!("layers.{l}.bias"),
                layer.b,
                vec![layer.fan_out],
            ));
        }
        groups
    }
    fn set_threads(&mut self, threads: usize) -> Result<()> {
        Mlp::set_threads(self, threads)
    }
    fn apply_step(&mut self, step: &[T], lr: T) -> Result<()> {
        if step.len() != self.params.len() {
            return Err(Error::shape(
                "Mlp::apply_step",
                self.params.len(),
                step.len(),
            ));
        }
        // A poisoned gradient never reaches the parameters (see the trait).
        apply_step_parallel(&self.pool, &mut self.params, step, lr)
            .map_err(|bad| Error::non_finite_gradient(bad.to_f64_lossless()))
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
        let block = block_size(n, self.block_rows);
        self.ws.ensure(&self.layers, block);
        for start in (0..n).step_by(block.max(1)) {
            let rows = block.min(n - start);
            forward_rows(
                &self.layers,
                &self.params,
                &mut self.ws,
                x,
                &mut out,
                start,
                rows,
            )?;
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
