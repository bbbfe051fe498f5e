//! The multi-layer perceptron: `y' = σ(W2·σ(W1·x + b1) + b2)`, and deeper.
//!
//! Layer `l` maps `A_{l−1}` (rows = examples) to `A_l = act_l(A_{l−1}·W_l + b_l)`; the last
//! layer's outputs are the class scores the [`Loss`] reads — affine by default, or through
//! an output activation, as the lecture's σ on the outside ([`MlpBuilder::output`]). `W_l` is
//! stored `fan_in × fan_out` row-major, so the forward pass is a plain product and both
//! backward products are the same call with swapped strides. (PyTorch's `nn.Linear` keeps
//! the transpose, `[out, in]`; [`param_groups`](Params::param_groups) says so, and
//! checkpoints are written in PyTorch's layout.)
//!
//! Two implementations of the same maths sit side by side: `backprop.rs`, serial and plain,
//! each layer's forward beside its backward (read it first; the tests check the fast path
//! against it), and `blocked.rs`, which training runs: a batch walked in **row blocks**,
//! each gathered, sent forward through every layer and straight back, and shared among the
//! model's threads. Gradient descent over the whole training set then needs memory for one
//! block of activations (at most [`BLOCK_BYTES`]), not for every example.
//!
//! Parameter layout in the flat vector: `W_1, b_1, W_2, b_2, ...`.

use std::marker::PhantomData;
use std::sync::Arc;

use rand_distr::{Distribution, StandardNormal};

use crate::activation::Activation;
use crate::data::{Batch, Dataset};
use crate::error::{Error, Result};
use crate::fast_path::{fresh_version, Capability, FastPath, Shares, StepOffer};
use crate::kernels::sparse::preferred_group;
use crate::loss::{l2_penalty, Loss};
use crate::matrix::{MatMut, MatRef};
use crate::metrics::ConfusionMatrix;
use crate::model::blocked::{
    block_size, forward_rows, run_block, BlockGrad, BlockJob, FirstLayer, Workspace,
};
use crate::model::dropout::Dropout;
use crate::model::layer::LayerSpec;
use crate::model::{evaluate_classifier, Classifier, Evaluation, Init, Model, ParamGroup, Params};
use crate::partition::split_range;
use crate::pool::ThreadPool;
use crate::rng::seeded;
use crate::scalar::Scalar;
use crate::validate::{non_negative, not_empty, same_size, thread_count, unit_interval};

/// Bytes of activations one row block may occupy (8 MiB). A block's rows are the `m` of
/// the forward product and the `k` of the weight-gradient product, and every block re-packs
/// the weights, so blocks must be large enough that packing a 784 × 1024 layer is a small
/// share of the arithmetic (≥ 256 rows); the products block for the caches themselves. The
/// cap matters only for full-batch methods, whose memory stays one block's worth however
/// many rows the training set has.
pub(crate) const BLOCK_BYTES: usize = 8 << 20;

/// Below this fraction of nonzero inputs, [`SparseInput::Auto`] takes the sparse first
/// layer: about where a training step takes as long either way.
///
/// The sparse kernels do work in proportion to the nonzeros (plus the zeros inside their
/// pixel blocks); the dense product does the same work whatever the density, at a higher
/// rate. The crossover is where the two meet, measured on the shipped digits thinned and
/// thickened to densities 0.01 … 1.0 (`cargo bench --features internals --bench kernels --
/// density`: a training step, and the first layer's two products alone); the README's
/// performance section gives the figures and the CPU. A CPU without AVX-512 runs the sparse
/// kernels on blocks of two pixels, and its crossover is likely lower.
pub const SPARSE_CROSSOVER: f64 = 0.75;

/// How an [`Mlp`]'s first layer reads a batch of byte features (pixels).
///
/// A digit is mostly zero pixels; read as compressed rows, the first layer's products skip
/// the zeros (`kernels/sparse.rs`). Dense data gains nothing from that and keeps the dense
/// products. Float features are always read dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SparseInput {
    /// Sparse when the dataset's measured [`density`](Dataset::density) is below
    /// [`SPARSE_CROSSOVER`] (the default).
    #[default]
    Auto,
    /// Sparse whatever the density (byte features only).
    Always,
    /// Dense whatever the density.
    Never,
}

/// A multi-layer perceptron classifier. Build one with [`Mlp::builder`].
///
/// ```
/// use downhill::model::{Activation, Mlp, Params};
///
/// // The lecture's network: 784 pixels → 256 sigmoid units → 10 scores.
/// let mlp = Mlp::<f32>::builder(784).hidden(256, Activation::Sigmoid).classes(10).build()?;
/// assert_eq!(mlp.num_params(), 784 * 256 + 256 + 256 * 10 + 10);
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Mlp<T> {
    pub(crate) layers: Vec<LayerSpec>,
    pub(crate) loss: Loss,
    pub(crate) l2: T,
    /// The probability that a training step drops a hidden unit (0: no dropout).
    pub(crate) dropout: f64,
    pub(crate) params: Vec<T>,
    /// The fast path's parameter version: renewed by every `params_mut`, `swap_params` and
    /// step taken in `loss_and_grad`, the only ways to change `params`.
    version: u64,
    /// The fast path's gradient magnitude: measured by the last `loss_and_grad`, as its last
    /// block wrote the gradient.
    grad_peak: Option<T>,
    /// A step an optimizer has lent for the next `loss_and_grad` (see [`FastPath`]).
    offer: Option<StepOffer<T>>,
    block_rows: usize,
    sparse_input: SparseInput,
    ws: Workspace<T>,
    pool: Arc<ThreadPool>,
}

/// Configuration of an [`Mlp`]; validated by [`build`](MlpBuilder::build).
#[derive(Debug, Clone)]
pub struct MlpBuilder<T> {
    inputs: usize,
    hidden: Vec<(usize, Activation)>,
    classes: usize,
    output: Option<Activation>,
    loss: Loss,
    l2: f64,
    dropout: f64,
    init: Option<Init>,
    seed: u64,
    block_rows: Option<usize>,
    sparse_input: SparseInput,
    threads: usize,
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
    /// The output layer's activation (default none: affine scores). The lecture's network
    /// `y' = σ(W2·σ(W1·x + b1) + b2)` has a sigmoid here, read by
    /// [`Loss::MeanSquared`] or [`Loss::BinaryCrossEntropy`].
    pub fn output(mut self, act: Option<Activation>) -> Self {
        self.output = act;
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
    /// Inverted dropout after every hidden layer (default 0: none): in each training step
    /// every hidden unit's output is set to 0 with probability `p` and the others are
    /// scaled by `1 / (1 − p)`; evaluation, scoring and a gradient check on a batch without
    /// a [`TrainingStep`](crate::data::TrainingStep) see the whole network, unscaled. The
    /// masks are drawn per row from the step's stream (see [`TrainingStep`]), so the same
    /// seed gives the same run on any number of threads. `p` must be in `[0, 1)`, checked
    /// by [`build`](MlpBuilder::build).
    ///
    /// [`TrainingStep`]: crate::data::TrainingStep
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
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
    /// Rows per block when walking a batch (default: as many as fit 8 MiB of
    /// activations, between 64 and 1024).
    pub fn block_rows(mut self, rows: usize) -> Self {
        self.block_rows = Some(rows);
        self
    }

    /// When the first layer reads byte inputs as sparse rows (default
    /// [`SparseInput::Auto`]).
    pub fn sparse_input(mut self, sparse: SparseInput) -> Self {
        self.sparse_input = sparse;
        self
    }

    /// Threads batches run on (default 1; a [`Trainer`](crate::Trainer) sets its own count
    /// when it runs). The result is bit-identical whatever the count.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
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
        let dropout = unit_interval("dropout", self.dropout)?;
        if self.loss.needs_probabilities() && self.output != Some(Activation::Sigmoid) {
            return Err(Error::param(
                "loss",
                self.loss,
                "reads outputs in (0, 1): give the network a sigmoid output",
            ));
        }
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
            layers.push(LayerSpec {
                fan_in,
                fan_out,
                w,
                b,
                act: match self.hidden.get(l) {
                    Some(&(_, act)) => Some(act),
                    None => self.output,
                },
            });
        }
        // Refuse absurd sizes before allocating: the parameters and one block's activations
        // must fit comfortably in memory (here: 2^31 parameters, 8 GiB of f32).
        if offset > (1 << 31) {
            return Err(Error::param(
                "layer sizes",
                offset,
                "must total at most 2^31 parameters",
            ));
        }

        let mut rng = seeded(self.seed);
        let mut params = vec![T::zero(); offset];
        for layer in &layers {
            let init = self.init.unwrap_or(Init::for_activation(layer.act));
            let std = init.std_dev(layer.fan_in, layer.fan_out);
            for w in &mut params[layer.w..layer.b] {
                let z: f64 = StandardNormal.sample(&mut rng);
                *w = T::from_f64(z * std);
            }
        }

        let row_bytes: usize = widths.iter().sum::<usize>() * std::mem::size_of::<T>() * 2;
        let block_rows = self
            .block_rows
            .unwrap_or_else(|| (BLOCK_BYTES / row_bytes.max(1)).clamp(64, 1024) / 8 * 8);
        Ok(Mlp {
            layers,
            loss: self.loss,
            l2: T::from_f64(l2),
            dropout,
            params,
            version: fresh_version(),
            grad_peak: None,
            offer: None,
            block_rows,
            sparse_input: self.sparse_input,
            ws: Workspace::default(),
            pool: Arc::new(start_pool(thread_count(self.threads)?)?),
        })
    }
}

fn start_pool(threads: usize) -> Result<ThreadPool> {
    ThreadPool::new(threads)
        .map_err(|e| Error::thread(format!("could not start {threads} threads: {e}")))
}

/// What an [`Mlp`] is, without its weights: layer widths, activations, loss and L2 strength.
/// Enough to build another one like it (a checkpoint records it for that).
///
/// ```
/// use downhill::model::{Activation, Mlp, Params};
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
    /// The output layer's activation, if any.
    pub output: Option<Activation>,
    /// The data loss.
    pub loss: Loss,
    /// L2 regularisation strength λ.
    pub l2: f64,
    /// The probability a training step drops a hidden unit (0: no dropout).
    pub dropout: f64,
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
            .output(self.output)
            .loss(self.loss)
            .l2(self.l2)
            .dropout(self.dropout);
        for (&width, &act) in hidden.iter().zip(&self.activations) {
            builder = builder.hidden(width, act);
        }
        Ok(builder)
    }
}

impl<T: Scalar> Mlp<T> {
    /// Starts configuring an MLP with `inputs` features per example.
    pub fn builder(inputs: usize) -> MlpBuilder<T> {
        MlpBuilder {
            inputs,
            hidden: Vec::new(),
            classes: 10,
            output: None,
            loss: Loss::SoftmaxCrossEntropy,
            l2: 0.0,
            dropout: 0.0,
            init: None,
            seed: 0,
            block_rows: None,
            sparse_input: SparseInput::Auto,
            threads: 1,
            scalar: PhantomData,
        }
    }

    /// The architecture of this network, to record or to build another like it.
    pub fn architecture(&self) -> MlpArchitecture {
        let (hidden, output) = self.layers.split_at(self.layers.len() - 1);
        MlpArchitecture {
            widths: self.widths(),
            activations: hidden.iter().filter_map(|l| l.act).collect(),
            output: output.first().and_then(|l| l.act),
            loss: self.loss,
            l2: self.l2.to_f64_lossless(),
            dropout: self.dropout,
        }
    }

    /// Layer widths from input to output, e.g. `[784, 256, 10]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.layers.first().map(|l| l.fan_in).into_iter().collect();
        w.extend(self.layers.iter().map(|l| l.fan_out));
        w
    }

    /// The data loss this model minimises.
    pub fn loss_fn(&self) -> Loss {
        self.loss
    }

    /// The probability a training step drops a hidden unit (0: no dropout; see
    /// [`MlpBuilder::dropout`]).
    pub fn dropout(&self) -> f64 {
        self.dropout
    }

    /// Rows per block when walking a batch.
    pub fn block_rows(&self) -> usize {
        self.block_rows
    }

    /// When the first layer reads byte inputs as sparse rows.
    pub fn sparse_input(&self) -> SparseInput {
        self.sparse_input
    }

    /// Whether a batch of `data` takes the sparse first layer.
    pub fn reads_sparse(&self, data: &Dataset<T>) -> bool {
        let wanted = match self.sparse_input {
            SparseInput::Never => false,
            SparseInput::Always => true,
            SparseInput::Auto => data.density() < SPARSE_CROSSOVER,
        };
        wanted && data.sparse_bytes().is_some()
    }

    /// The weights of layer `l` (`fan_in × fan_out`, row-major), or `None` past the last
    /// layer.
    pub fn weights(&self, l: usize) -> Option<MatRef<'_, T>> {
        self.layers.get(l)?.weights(&self.params).ok()
    }

    /// The number of threads batches run on (1 until set; a [`Trainer`](crate::Trainer)
    /// sets its own count when it runs).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Runs batches on `threads` threads (1 to 1024). Results are bit-identical whatever
    /// the count: each row block is split by rows for the forward and backward passes and
    /// by weight slices for the weight gradients, so every output element is computed by
    /// exactly one kernel call, the same way on any number of threads.
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        thread_count(threads)?;
        if threads != self.pool.threads() {
            self.pool = Arc::new(start_pool(threads)?);
        }
        Ok(())
    }

    /// The length of the parameter vector.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    fn check_batch(&self, context: &'static str, batch: &Batch<'_, T>) -> Result<()> {
        same_size(
            context,
            "features per example",
            self.num_inputs(),
            batch.num_features(),
        )?;
        same_size(context, "classes", self.num_classes(), batch.num_classes())?;
        not_empty("batch", batch.len())
    }

    /// The checks every gradient call makes: the batch fits, and so does `grad`.
    fn check_gradient_call(
        &self,
        context: &'static str,
        batch: &Batch<'_, T>,
        grad: &[T],
    ) -> Result<()> {
        self.check_batch(context, batch)?;
        same_size(context, "gradient length", self.params.len(), grad.len())
    }

    /// The shared driver of `loss` and `loss_and_grad`: walks the batch in row blocks, and
    /// with `grad` writes the gradient there, and may take the first layer's part of a
    /// step an optimizer has lent ([`FastPath`]).
    fn walk_batch(&mut self, batch: &Batch<'_, T>, mut grad: Option<&mut [T]>) -> Result<T> {
        if grad.is_some() {
            self.grad_peak = None;
        }
        // Only a gradient call takes a lent step, once, for parameters of this model, and
        // not with a penalty of the model's own: its gradient is added after the blocks,
        // where a step taken in them would miss it.
        let mut offer = self.offer.take();
        let open = offer.as_ref().is_some_and(|o| {
            o.taken.is_none() && o.fits(self.params.len()) && self.l2 == T::zero()
        });
        let walked = match grad.as_deref_mut() {
            Some(g) if open => self.run_blocks(batch, Some(g), None, offer.as_mut()),
            g => self.run_blocks(batch, g, None, None),
        };
        self.offer = offer;
        let mut loss = T::from_f64(walked?);
        // The penalty's gradient below changes what was measured.
        if grad.is_some() && self.l2 == T::zero() {
            self.grad_peak = Some(self.ws.grad_peak(self.pool.threads()));
        }
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

    /// Walks `batch` in row blocks on the model's threads, the first layer sparse when the
    /// data is: returns the mean data loss (no penalty); with `grad`, writes its gradient
    /// there; with `confusion`, counts each row by its label and its highest-scoring class;
    /// with `offer` and a batch of one block, may step `W₁` as its gradient is written (and
    /// then records so in the offer).
    fn run_blocks(
        &mut self,
        batch: &Batch<'_, T>,
        mut grad: Option<&mut [T]>,
        mut confusion: Option<&mut ConfusionMatrix>,
        mut offer: Option<&mut StepOffer<T>>,
    ) -> Result<f64> {
        let n = batch.len();
        let block = block_size(n, self.block_rows);
        let dropout = Dropout::for_batch(self.dropout, batch);
        self.ws
            .ensure(&self.layers, block, self.pool.threads(), dropout.is_some());
        self.ws.transpose_narrow(&self.layers, &self.params)?;
        let sparse = self.reads_sparse(batch.dataset());
        let block_rows = match batch.dataset().sparse_bytes() {
            Some(s) => &s.block_rows[..],
            None => &[],
        };
        let offset = batch
            .dataset()
            .transform()
            .map(|t| &t.offset[..])
            .filter(|o| o.iter().any(|&v| v != T::zero()));
        let first = if sparse {
            FirstLayer::Sparse {
                offset,
                group: preferred_group(),
                block_rows,
            }
        } else {
            FirstLayer::Dense
        };
        // Row losses are summed in f64, compensated (Neumaier), in row order: the total does
        // not depend on blocking or threads, and its rounding noise is far below what a
        // finite difference with a small h can resolve (the gradient check needs that).
        let mut total = CompensatedSum::default();
        let scale = T::one() / T::from_f64(n as f64);
        for start in (0..n).step_by(block) {
            let rows = block.min(n - start);
            let job = BlockJob {
                pool: &self.pool,
                layers: &self.layers,
                loss: self.loss,
                first,
                batch,
                block: start..start + rows,
                scale,
                predict: confusion.is_some(),
                dropout,
            };
            // The first block overwrites the gradient (β = 0, no zeroing pass); later
            // blocks add to it; the last one measures what it leaves. A step can be
            // offered to the block only if it is the whole batch.
            let grad = grad.as_deref_mut().map(|g| BlockGrad {
                grad: g,
                beta: if start == 0 { T::zero() } else { T::one() },
                measure: start + rows == n,
                step: offer.as_deref_mut().filter(|_| rows == n),
            });
            run_block(&job, &mut self.params, &mut self.ws, grad)?;
            if offer.as_ref().is_some_and(|o| o.taken.is_some()) {
                // `W₁` changed: the parameters have a new version.
                self.version = fresh_version();
            }
            self.ws.losses(rows).iter().for_each(|&l| total.add(l));
            if let Some(m) = confusion.as_deref_mut() {
                self.ws.count_predictions(rows, m);
            }
        }
        Ok(total.value() / n as f64)
    }
}

impl<T: Scalar> Params<T> for Mlp<T> {
    fn params(&self) -> &[T] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [T] {
        self.version = fresh_version();
        &mut self.params
    }
    fn param_groups(&self) -> Vec<ParamGroup> {
        let mut groups = Vec::with_capacity(2 * self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            // Held `fan_in × fan_out` row-major (the layer computes `x·W + b`): that is
            // PyTorch's `[out, in]` weight, transposed.
            groups.push(ParamGroup::transposed(
                format!("layers.{l}.weight"),
                layer.w,
                layer.fan_out,
                layer.fan_in,
            ));
            groups.push(ParamGroup::new(
                format!("layers.{l}.bias"),
                layer.b,
                vec![layer.fan_out],
            ));
        }
        groups
    }
}

/// The `Mlp`'s fast path ([`FastPath`]): its thread pool, a swap of its parameter vector,
/// its parameter version, the gradient magnitude phase B measures, and the first layer's
/// part of a lent step.
impl<T: Scalar> Capability<T> for Mlp<T> {
    fn set_threads(&mut self, threads: usize) -> Result<()> {
        Mlp::set_threads(self, threads)
    }
    /// Share `t` updates the rows of the first layer's weights for the input features that
    /// thread `t` reads in the first layer's forward and writes in its weight gradient (the
    /// ranges `model/blocked` gives it); the last share also takes every later tensor.
    fn shares(&self) -> Shares {
        let threads = self.pool.threads();
        let l0 = &self.layers[0];
        let mut bounds: Vec<usize> = (0..threads)
            .map(|t| l0.w + split_range(l0.fan_in, threads, t, 8).start * l0.fan_out)
            .collect();
        bounds.push(self.params.len());
        Shares::new(Arc::clone(&self.pool), bounds)
    }
    fn swap_params(&mut self, other: &mut Vec<T>) -> Result<()> {
        same_size(
            "Mlp::swap_params",
            "parameter count",
            self.params.len(),
            other.len(),
        )?;
        self.version = fresh_version();
        std::mem::swap(&mut self.params, other);
        Ok(())
    }
    fn params_version(&self) -> u64 {
        self.version
    }
    fn grad_magnitude(&self) -> Option<T> {
        self.grad_peak
    }
    fn lend_step(&mut self, offer: StepOffer<T>) {
        self.offer = Some(offer);
    }
    fn reclaim_step(&mut self) -> Option<StepOffer<T>> {
        self.offer.take()
    }
}

impl<T: Scalar> Model<T> for Mlp<T> {
    /// Measures the data's density and, if the first layer will read it sparse, builds its
    /// nonzero blocks (both are kept by the dataset).
    fn prepare(&mut self, data: &Dataset<T>) -> Result<()> {
        self.reads_sparse(data);
        Ok(())
    }
    fn loss(&mut self, batch: &Batch<'_, T>) -> Result<T> {
        self.check_batch("Mlp::loss", batch)?;
        self.walk_batch(batch, None)
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, T>, grad: &mut [T]) -> Result<T> {
        self.check_gradient_call("Mlp::loss_and_grad", batch, grad)?;
        self.walk_batch(batch, Some(grad))
    }
    /// The `Mlp`'s fast path: with a sparse first layer and a batch of one row block, the
    /// first layer's weight-gradient kernel takes its part of an offered step.
    fn fast_path(&mut self) -> Option<FastPath<'_, T>> {
        Some(FastPath::new(self))
    }
    /// Scores `data` the way training walks a batch: in row blocks on the model's threads,
    /// the first layer sparse when the data is (scoring every row through the dense path,
    /// after every epoch, was a visible share of a run's wall time), in evaluation mode (no
    /// dropout, images as stored). The loss is the mean data loss, without the L2 penalty;
    /// the confusion matrix is counted in the same pass, from the class each row's phase A
    /// picks. Data that does not fit the training path's checks (fewer classes than the
    /// model, say) is scored by [`evaluate_classifier`], as any classifier is.
    fn evaluate(&mut self, data: &Dataset<T>) -> Result<Evaluation> {
        let all = Batch::all(data);
        if data.is_empty() || self.check_batch("Mlp::evaluate", &all).is_err() {
            let loss = self.loss;
            return evaluate_classifier(self, data, Some(loss));
        }
        let mut confusion = ConfusionMatrix::new(self.num_classes())?;
        let loss = self.run_blocks(&all, None, Some(&mut confusion), None)?;
        Ok(Evaluation {
            loss: Some(loss),
            accuracy: Some(confusion.correct() as f64 / data.len() as f64),
            confusion: Some(confusion),
        })
    }
}

impl<T: Scalar> Classifier<T> for Mlp<T> {
    fn num_inputs(&self) -> usize {
        self.layers[0].fan_in
    }
    fn num_classes(&self) -> usize {
        self.layers[self.layers.len() - 1].fan_out
    }
    fn data_loss(&self) -> Option<Loss> {
        Some(self.loss)
    }
    fn scores(&mut self, x: MatRef<'_, T>, mut out: MatMut<'_, T>) -> Result<()> {
        let (inputs, classes) = (self.num_inputs(), self.num_classes());
        same_size("Mlp::scores", "features per example", inputs, x.cols())?;
        same_size("Mlp::scores", "score columns", classes, out.cols())?;
        same_size("Mlp::scores", "score rows", x.rows(), out.rows())?;
        let n = x.rows();
        let block = block_size(n, self.block_rows);
        self.ws
            .ensure(&self.layers, block, self.pool.threads(), false);
        self.ws.transpose_narrow(&self.layers, &self.params)?;
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
pub(crate) struct CompensatedSum {
    sum: f64,
    carry: f64,
}

impl CompensatedSum {
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.carry += (self.sum - t) + x;
        } else {
            self.carry += (x - t) + self.sum;
        }
        self.sum = t;
    }
    pub(crate) fn value(self) -> f64 {
        self.sum + self.carry
    }
}
