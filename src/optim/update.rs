//! The part every gradient method shares: get the gradient, clip it, add weight decay, and
//! hand it to the [`UpdateRule`], whose per-parameter buffers live here.
//!
//! The order is PyTorch's: `clip_grad_norm_` runs on the raw gradient before the optimizer
//! step, and SGD/Adam's `weight_decay` adds `λ·w` to the (clipped) gradient inside the step.
//!
//! Classical momentum without clipping or weight decay has a fast path: the model adds the
//! gradient straight into the velocity (`v ← μ·v + ∇L`, [`Model::loss_and_accumulate_grad`]),
//! so no gradient buffer and no extra pass over the parameters. Starting from `v = 0` that is
//! exactly PyTorch's first step `v ← g`.

use crate::data::Batch;
use crate::error::{positive, Error, Result};
use crate::model::Model;
use crate::optim::{ensure_len, OptimizerState, UpdateRule};
use crate::Scalar;

/// The configuration and state of a gradient method's update.
#[derive(Debug, Clone)]
pub(crate) struct GradientUpdate<T> {
    pub(crate) learning_rate: T,
    pub(crate) rule: UpdateRule,
    /// L2 weight decay added to the gradient.
    pub(crate) weight_decay: T,
    /// Largest global gradient norm, if clipping.
    pub(crate) max_grad_norm: Option<T>,
    /// Whether classical momentum may sum the gradient straight into the velocity.
    fused_momentum: bool,
    pub(crate) grad: Vec<T>,
    /// `velocity`, `square_avg` or `exp_avg`, as the rule says.
    first: Vec<T>,
    /// `exp_avg_sq` (Adam and AdamW).
    second: Vec<T>,
    pub(crate) steps: u64,
}

impl<T: Scalar> GradientUpdate<T> {
    pub(crate) fn new(learning_rate: T, fused_momentum: bool) -> Result<Self> {
        Ok(GradientUpdate {
            learning_rate: positive("learning_rate", learning_rate)?,
            rule: UpdateRule::Plain,
            weight_decay: T::zero(),
            max_grad_norm: None,
            fused_momentum,
            grad: Vec::new(),
            first: Vec::new(),
            second: Vec::new(),
            steps: 0,
        })
    }

    /// Changes the rule; buffers of a different rule mean something else, so they go.
    pub(crate) fn set_rule(&mut self, rule: UpdateRule) {
        if rule.buffer_names() != self.rule.buffer_names() {
            self.first.clear();
            self.second.clear();
        }
        self.rule = rule;
    }

    pub(crate) fn set_weight_decay(&mut self, weight_decay: T) -> Result<()> {
        if !(weight_decay.is_finite() && weight_decay >= T::zero()) {
            return Err(Error::param(
                "weight_decay",
                weight_decay,
                "must be finite and not negative",
            ));
        }
        self.weight_decay = weight_decay;
        Ok(())
    }

    pub(crate) fn set_max_grad_norm(&mut self, max: T) -> Result<()> {
        self.max_grad_norm = Some(positive("clip_grad_norm", max)?);
        Ok(())
    }

    /// Unlike the constructor this accepts 0, where cosine annealing to `η_min = 0` ends;
    /// a positive rate that rounds to 0 in `T` is an error.
    pub(crate) fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::param(
                "learning_rate",
                lr,
                "must be finite and not negative",
            ));
        }
        let rounded = T::of(lr);
        if lr > 0.0 && rounded == T::zero() {
            return Err(Error::param(
                "learning_rate",
                lr,
                "is too small for the element type (rounds to 0)",
            ));
        }
        self.learning_rate = rounded;
        Ok(())
    }

    /// The velocity of the momentum rules (empty otherwise, and before the first step).
    pub(crate) fn velocity(&self) -> &[T] {
        match self.rule {
            UpdateRule::Momentum { .. } | UpdateRule::Nesterov { .. } => &self.first,
            _ => &[],
        }
    }

    /// One step on `batch`; returns the loss before it. A non-finite loss leaves the
    /// parameters where it was observed (the trainer reports it).
    pub(crate) fn step(&mut self, model: &mut dyn Model<T>, batch: &Batch<'_, T>) -> Result<T> {
        let n = model.num_params();
        self.check_buffers(n)?;
        let lr = self.learning_rate;
        if let UpdateRule::Momentum { mu } = self.rule {
            if self.fused_momentum && self.weight_decay == T::zero() && self.max_grad_norm.is_none()
            {
                ensure_len(&mut self.first, n);
                let loss = model.loss_and_accumulate_grad(batch, &mut self.first, T::of(mu))?;
                if loss.is_finite() {
                    model.apply_step(&self.first, lr)?;
                    self.steps += 1;
                }
                return Ok(loss);
            }
        }
        ensure_len(&mut self.grad, n);
        let loss = model.loss_and_grad(batch, &mut self.grad)?;
        if !loss.is_finite() {
            return Ok(loss);
        }
        if let Some(max) = self.max_grad_norm {
            clip_by_global_norm(&mut self.grad, max)?;
        }
        if self.weight_decay > T::zero() {
            let wd = self.weight_decay;
            for (g, &w) in self.grad.iter_mut().zip(model.params()) {
                *g = *g + wd * w;
            }
        }
        let grad = &mut self.grad;
        match self.rule {
            UpdateRule::Plain => model.apply_step(grad, lr)?,
            UpdateRule::Momentum { mu } => {
                ensure_len(&mut self.first, n);
                accumulate(&mut self.first, grad, T::of(mu));
                model.apply_step(&self.first, lr)?;
            }
            UpdateRule::Nesterov { mu } => {
                let mu = T::of(mu);
                ensure_len(&mut self.first, n);
                accumulate(&mut self.first, grad, mu);
                // The look-ahead step g + μ·v, built in the gradient buffer.
                for (g, &v) in grad.iter_mut().zip(&self.first) {
                    *g = *g + mu * v;
                }
                model.apply_step(grad, lr)?;
            }
            UpdateRule::RmsProp { alpha, eps } => {
                ensure_len(&mut self.first, n);
                rmsprop(
                    model.params_mut(),
                    grad,
                    &mut self.first,
                    lr,
                    T::of(alpha),
                    T::of(eps),
                );
            }
            UpdateRule::Adam { beta1, beta2, eps } => {
                self.adam(model, beta1, beta2, eps);
            }
            UpdateRule::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let keep = T::one() - lr * T::of(weight_decay);
                model.params_mut().iter_mut().for_each(|w| *w = *w * keep);
                self.adam(model, beta1, beta2, eps);
            }
        }
        self.steps += 1;
        Ok(loss)
    }

    fn adam(&mut self, model: &mut dyn Model<T>, beta1: f64, beta2: f64, eps: f64) {
        let n = self.grad.len();
        ensure_len(&mut self.first, n);
        ensure_len(&mut self.second, n);
        // Bias correction: m and v start at zero, so early on they underestimate the
        // moments by the factors 1 − βᵗ; dividing those out makes the first steps full size.
        let t = i32::try_from(self.steps + 1).unwrap_or(i32::MAX);
        let bc1 = 1.0 - beta1.powi(t);
        let bc2 = 1.0 - beta2.powi(t);
        let step_size = T::of(self.learning_rate.to_f64_lossless() / bc1);
        let moments = AdamMoments {
            beta1: T::of(beta1),
            beta2: T::of(beta2),
            eps: T::of(eps),
            bc2_sqrt: T::of(bc2.sqrt()),
            step_size,
        };
        moments.apply(
            model.params_mut(),
            &self.grad,
            &mut self.first,
            &mut self.second,
        );
    }

    /// A buffer restored from a checkpoint must fit the model it is applied to.
    fn check_buffers(&self, n: usize) -> Result<()> {
        for buf in [&self.first, &self.second] {
            if !buf.is_empty() && buf.len() != n {
                return Err(Error::shape(
                    "optimizer state (buffers vs model parameters)",
                    n,
                    buf.len(),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn state(&self) -> OptimizerState<T> {
        let names = self.rule.buffer_names();
        let buffers = names
            .iter()
            .zip([&self.first, &self.second])
            .filter(|(_, b)| !b.is_empty())
            .map(|(name, b)| (name.to_string(), b.clone()))
            .collect();
        OptimizerState {
            steps: self.steps,
            buffers,
            scalars: Vec::new(),
        }
    }

    /// Restores a state: every buffer must be one the rule keeps, all of the same length
    /// and finite; once steps have been taken, none may be missing.
    pub(crate) fn load_state(&mut self, state: &OptimizerState<T>) -> Result<()> {
        let names = self.rule.buffer_names();
        let mut loaded: [Option<&[T]>; 2] = [None, None];
        for (name, values) in &state.buffers {
            let Some(slot) = names.iter().position(|n| n == name) else {
                return Err(Error::param(
                    "optimizer state",
                    format!("buffer {name:?} for rule {}", self.rule.name()),
                    "is not a buffer this update rule keeps",
                ));
            };
            if loaded[slot].replace(values).is_some() {
                return Err(Error::param(
                    "optimizer state",
                    format!("buffer {name:?}"),
                    "appears twice",
                ));
            }
            if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                return Err(Error::param(
                    "optimizer state",
                    format!("{bad} in buffer {name:?}"),
                    "buffers must be finite",
                ));
            }
        }
        let lens: Vec<usize> = loaded.iter().flatten().map(|b| b.len()).collect();
        if lens.windows(2).any(|w| w[0] != w[1]) {
            return Err(Error::shape(
                "optimizer state (buffers of one rule)",
                format!("equal lengths, {}", lens[0]),
                format!("{lens:?}"),
            ));
        }
        if state.steps > 0 {
            if let Some(missing) = names.iter().zip(&loaded).find(|(_, b)| b.is_none()) {
                return Err(Error::param(
                    "optimizer state",
                    format!("buffer {:?} after {} steps", missing.0, state.steps),
                    "is missing",
                ));
            }
        }
        if let Some((name, _)) = state.scalars.first() {
            return Err(Error::param(
                "optimizer state",
                format!("scalar {name:?}"),
                "is not a scalar this optimizer keeps",
            ));
        }
        let [first, second] = loaded;
        self.first = first.map(<[T]>::to_vec).unwrap_or_default();
        self.second = second.map(<[T]>::to_vec).unwrap_or_default();
        self.steps = state.steps;
        Ok(())
    }
}

/// `v ← μ·v + g`.
fn accumulate<T: Scalar>(v: &mut [T], g: &[T], mu: T) {
    for (v, &g) in v.iter_mut().zip(g) {
        *v = mu * *v + g;
    }
}

/// `s ← α·s + (1 − α)·g²`, `w ← w − lr·g/(√s + ε)`, in one pass.
fn rmsprop<T: Scalar>(w: &mut [T], g: &[T], s: &mut [T], lr: T, alpha: T, eps: T) {
    let one_minus_alpha = T::one() - alpha;
    let n = w.len().min(g.len()).min(s.len());
    let (w, g, s) = (&mut w[..n], &g[..n], &mut s[..n]);
    for j in 0..n {
        s[j] = alpha * s[j] + one_minus_alpha * g[j] * g[j];
        w[j] = w[j] - lr * g[j] / (s[j].sqrt() + eps);
    }
}

/// Adam's constants for one step.
struct AdamMoments<T> {
    beta1: T,
    beta2: T,
    eps: T,
    /// `√(1 − β₂ᵗ)`.
    bc2_sqrt: T,
    /// `lr / (1 − β₁ᵗ)`.
    step_size: T,
}

impl<T: Scalar> AdamMoments<T> {
    /// `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²`,
    /// `w ← w − step_size·m/(√v/√(1 − β₂ᵗ) + ε)`, in one pass (slices cut to one length so
    /// the loop vectorises).
    fn apply(&self, w: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        let (b1, b2) = (self.beta1, self.beta2);
        let (c1, c2) = (T::one() - b1, T::one() - b2);
        let n = w.len().min(g.len()).min(m.len()).min(v.len());
        let (w, g, m, v) = (&mut w[..n], &g[..n], &mut m[..n], &mut v[..n]);
        for j in 0..n {
            m[j] = b1 * m[j] + c1 * g[j];
            v[j] = b2 * v[j] + c2 * g[j] * g[j];
            let denom = v[j].sqrt() / self.bc2_sqrt + self.eps;
            w[j] = w[j] - self.step_size * m[j] / denom;
        }
    }
}

/// Scales `g` so its Euclidean norm is at most `max` (PyTorch's `clip_grad_norm_`: the
/// factor is `max/(‖g‖ + 1e-6)`, capped at 1).
fn clip_by_global_norm<T: Scalar>(g: &mut [T], max: T) -> Result<()> {
    let norm = g
        .iter()
        .map(|&x| {
            let x = x.to_f64_lossless();
            x * x
        })
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() {
        return Err(Error::param(
            "gradient norm",
            norm,
            "must be finite to clip (training diverged: try a smaller learning rate)",
        ));
    }
    let factor = max.to_f64_lossless() / (norm + 1e-6);
    if factor < 1.0 {
        let factor = T::of(factor);
        g.iter_mut().for_each(|x| *x = *x * factor);
    }
    Ok(())
}
