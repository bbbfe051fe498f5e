//! The part every gradient method shares: one guarded update, all or nothing.
//!
//! A step is: the gradient at the current parameters; its global norm, if clipping; then
//! one fused pass per share of the parameters — clip, add L2 weight decay, advance the
//! rule's state, move the parameter (the rule's arithmetic, `kernels/update`). Whatever the
//! path, a step that would write a non-finite value changes nothing and is refused with
//! [`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged): the parameters and the
//! optimizer's state are bit for bit what they were, so a retry with a smaller learning rate
//! starts clean. There are three paths to that guarantee, tried in order.
//!
//! # Inside the model, when it proves the step finite
//!
//! Without clipping, the step's constants are known before the gradient, so the step is
//! offered to a model with a [fast path](crate::model::FastPath) (`fast_path/offer.rs`): a
//! model that computes part of its gradient in tiles (the `Mlp`'s sparse first layer) steps
//! those parameters from each tile in registers and never writes that part of the gradient.
//! It takes the offer only after proving, from a bound on every gradient element it can
//! produce, that the whole step is finite; the optimizer then steps the rest in place on the
//! strength of that one proof.
//!
//! # In place, when it cannot fail
//!
//! Otherwise the gradient is written whole. Most steps are nowhere near overflowing, and
//! whether a step can overflow is decidable beforehand: from the largest magnitudes of the
//! parameters, the gradient and the state, `stays_finite` (`fast_path/proof.rs`) bounds
//! every value the rule computes. When it proves the step finite, the step is taken in
//! place — same formulas, same bits — and there is nothing to refuse.
//!
//! The magnitudes must cost less than the writes they save, so none of them is a pass over
//! memory that is out of cache: the gradient's is measured by the model as it writes it (or
//! read here, just written, in cache); the state's and the parameters' are taken by the
//! in-place pass as it writes them. The parameters' is trusted only while the model's
//! version (its fast path's) is the one that pass left; a model without a fast path, or
//! whose parameters were changed since, gets the spare buffers.
//!
//! # Into spare buffers, checked
//!
//! Otherwise the pass writes a spare parameter vector and a spare copy of the rule's state,
//! never the live ones, checking everything it writes as it writes it. Only when every share
//! reports finite values is the step committed: the spare parameters are swapped in (a swap
//! of vectors for a model with a fast path, a copy otherwise) and the state buffers swapped.
//! Otherwise the spare buffers are abandoned and the step is refused.
//!
//! The order is PyTorch's: `clip_grad_norm_` runs on the raw gradient before the optimizer
//! step, and SGD's and Adam's `weight_decay` adds `λ·w` to the (clipped) gradient inside
//! the step.
//!
//! # One step of `Sgd` on an `Mlp`, file by file
//!
//! 1. `optim/descent.rs` — `Sgd::step` hands its objective (the model bound to a batch) to
//!    [`GradientUpdate::step`], here, which checks the rule's state against the parameter
//!    count (the one check), and computes the rule's constants for this step.
//! 2. `fast_path/offer.rs` — with no clipping and trusted magnitudes, the step is made one
//!    `StepOffer` (the constants, the magnitudes, the state buffers, lent) and lent to the
//!    model's fast path.
//! 3. `model/mlp.rs`, `model/blocked/` — the `Mlp`'s `loss_and_grad` walks the batch:
//!    phase A runs the rows forward and back; phase B, before it writes anything, asks the
//!    offer whether a bound on every gradient element proves the step finite
//!    (`fast_path/proof.rs`, once), cuts `W₁` and the state between its threads, and its
//!    sparse weight-gradient kernel (`kernels/sparse/weight_grad.rs`) steps them from each
//!    gradient tile with the rule's arithmetic (`kernels/update/`); the offer records what
//!    was taken.
//! 4. Here again: the offer comes back with the state, and the rest of the parameters are
//!    stepped in place on the model's threads (`passes.rs`), on the strength of the same
//!    proof; or, without an offer taken, the step goes in place or into spare buffers as
//!    above.

mod passes;
mod state;

use crate::error::{Error, Quantity, Result};
use crate::fast_path::{stays_finite, StepOffer};
use crate::kernels::update::{magnitude, Pass, RulePass};
use crate::model::Objective;
use crate::optim::{swap_params, RuleState, UpdateRule};
use crate::scalar::Scalar;
use crate::validate::{non_negative, positive};

use passes::{clip_factor, in_place, into_spare, resize};

/// The configuration and state of a gradient method's update.
#[derive(Debug, Clone)]
pub(crate) struct GradientUpdate<T> {
    pub(crate) learning_rate: T,
    pub(crate) rule: UpdateRule,
    /// L2 weight decay added to the gradient.
    pub(crate) weight_decay: T,
    /// Largest global gradient norm, if clipping.
    pub(crate) max_grad_norm: Option<T>,
    /// The last gradient (raw: before clipping and decay).
    pub(crate) grad: Vec<T>,
    /// Whether the last step wrote all of `grad` (a model that took part of the step did
    /// not write the gradient of what it stepped).
    pub(crate) grad_whole: bool,
    /// Never offer the step to the model, so that `grad` is always whole.
    pub(crate) keep_gradient: bool,
    /// The rule's live state, and the spare copy the next step writes into.
    pub(crate) state: RuleState<T>,
    spare: RuleState<T>,
    /// The spare parameter vector the next step writes into.
    next_params: Vec<T>,
    /// The largest magnitude in each state buffer, when known: recorded by the last step
    /// taken in place; `None` once anything else has written the state, until measured.
    state_peak: Option<[T; 2]>,
    /// The parameters' largest magnitude after the last step, with the model's parameter
    /// version then: `None` until a step has measured it.
    params_peak: Option<(u64, T)>,
    pub(crate) steps: u64,
}

/// What a model took of an offered step: its first `len` parameters, stepped, and the
/// largest magnitudes it wrote to each state buffer and to them.
type Taken<T> = (usize, [T; 3]);

impl<T: Scalar> GradientUpdate<T> {
    pub(crate) fn new(learning_rate: T) -> Result<Self> {
        let rule = UpdateRule::plain();
        Ok(GradientUpdate {
            learning_rate: positive("learning_rate", learning_rate)?,
            rule,
            weight_decay: T::zero(),
            max_grad_norm: None,
            grad: Vec::new(),
            grad_whole: true,
            keep_gradient: false,
            state: RuleState::for_rule(&rule),
            spare: RuleState::for_rule(&rule),
            next_params: Vec::new(),
            state_peak: None,
            params_peak: None,
            steps: 0,
        })
    }

    /// Changes the rule; another rule's state means something else, so it goes.
    pub(crate) fn set_rule(&mut self, rule: UpdateRule) {
        if rule.buffer_names() != self.rule.buffer_names() {
            self.state = RuleState::for_rule(&rule);
            self.spare = RuleState::for_rule(&rule);
            self.state_peak = None;
        }
        self.rule = rule;
    }

    pub(crate) fn set_weight_decay(&mut self, weight_decay: T) -> Result<()> {
        self.weight_decay = non_negative("weight_decay", weight_decay)?;
        Ok(())
    }

    pub(crate) fn set_max_grad_norm(&mut self, max: T) -> Result<()> {
        self.max_grad_norm = Some(positive("clip_grad_norm", max)?);
        Ok(())
    }

    /// Unlike the constructor this accepts 0, where cosine annealing to `η_min = 0` ends;
    /// a positive rate that rounds to 0 in `T` is an error.
    pub(crate) fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        let lr = non_negative("learning_rate", lr)?;
        let rounded = T::from_f64(lr);
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

    /// One step on `objective`; returns the loss before it. Refused, with nothing changed,
    /// if the loss, the gradient, its norm or anything the update would write is not
    /// finite.
    pub(crate) fn step(&mut self, objective: &mut dyn Objective<T>) -> Result<T> {
        let n = objective.params().len();
        // The one check of the state's length: every path below relies on it.
        self.check_state(n)?;
        resize(&mut self.grad, n);
        let rule = self.rule.pass(self.learning_rate, self.steps + 1);
        let (loss, taken) = self.gradient(objective, rule)?;
        self.grad_whole = taken.is_none();
        if !loss.is_finite() {
            if taken.is_some() {
                // A model takes part of a step only with a finite loss.
                return Err(Error::thread(
                    "the model stepped its parameters, then reported a non-finite loss",
                ));
            }
            return Err(Error::diverged(Quantity::Loss, loss.to_f64_lossless()));
        }
        let grad_scale = match self.max_grad_norm {
            Some(max) => clip_factor(objective, &self.grad, max)?,
            None => T::one(),
        };
        let pass = Pass {
            rule,
            grad_scale,
            weight_decay: self.weight_decay,
        };
        resize(&mut self.next_params, n);
        if let Some((len, wrote)) = taken {
            // The model's proof covered the whole step: the rest goes in place.
            self.commit_in_place(objective, &pass, len, wrote)?;
        } else if !self.step_in_place(objective, &pass)? {
            self.step_into_spare(objective, &pass)?;
        }
        self.steps += 1;
        Ok(loss)
    }

    /// The loss and the gradient, with the step offered to the model when its constants
    /// are known before the gradient (no clipping), the in-place step's magnitudes are
    /// trusted and every state buffer the rule keeps is filled (so that nothing about the
    /// state changes unless a step is taken). Returns what the model took.
    fn gradient(
        &mut self,
        objective: &mut dyn Objective<T>,
        rule: RulePass<T>,
    ) -> Result<(T, Option<Taken<T>>)> {
        let n = self.grad.len();
        let filled = self.state.buffers().iter().all(|b| b.len() == n);
        let peaks = match (self.max_grad_norm, filled, self.keep_gradient) {
            (None, true, false) => self.trusted_peaks(objective),
            _ => None,
        };
        let Some((w_peak, state_peak)) = peaks else {
            return Ok((objective.loss_and_grad(&mut self.grad)?, None));
        };
        let pass = Pass {
            rule,
            grad_scale: T::one(),
            weight_decay: self.weight_decay,
        };
        // `trusted_peaks` found a fast path: lend it the offer, with the state buffers.
        let offer = StepOffer::new(pass, n, w_peak, state_peak, self.state.lend());
        let Some(mut fast) = objective.fast_path() else {
            self.state.restore(offer.state);
            return Ok((objective.loss_and_grad(&mut self.grad)?, None));
        };
        fast.open().lend_step(offer);
        let loss = objective.loss_and_grad(&mut self.grad);
        // The state comes back whatever happened.
        let offer = objective
            .fast_path()
            .and_then(|mut f| f.open().reclaim_step());
        let Some(offer) = offer else {
            return Err(Error::thread(
                "the model's fast path lost the step it was offered (and the optimizer's state with it)",
            ));
        };
        self.state.restore(offer.state);
        let loss = loss?;
        if let Some((len, _)) = offer.taken.filter(|&(len, _)| len > n) {
            return Err(Error::thread(format!(
                "the model stepped {len} parameters of its {n}"
            )));
        }
        Ok((loss, offer.taken))
    }

    /// The largest magnitudes of the parameters and of each state buffer, if they are known
    /// without reading the parameters: the parameters' from the last in-place step, while
    /// the model's version is the one that step left; the state's from that step too (or
    /// measured here, once, if something else wrote it since). `None`: no fast path, or no
    /// trusted magnitude, and the step goes through the spare buffers.
    fn trusted_peaks(&mut self, objective: &mut dyn Objective<T>) -> Option<(T, [T; 2])> {
        let now = objective.fast_path()?.open().params_version();
        let w_peak = match self.params_peak {
            Some((written, peak)) if written == now => peak,
            _ => return None,
        };
        let state_peak = match self.state_peak {
            _ if self.state.is_empty() => [T::zero(); 2],
            Some(peak) => peak,
            None => {
                let mut peak = [T::zero(); 2];
                for (slot, b) in peak.iter_mut().zip(self.state.buffers()) {
                    *slot = magnitude(b)?;
                }
                self.state_peak = Some(peak);
                peak
            }
        };
        Some((w_peak, state_peak))
    }

    /// Takes the step in place if it is certain to be finite (`stays_finite`, from the
    /// largest magnitudes of the parameters, the gradient and the state), and says whether
    /// it did; otherwise changes nothing. Written in place, the pass reads the parameters,
    /// the gradient and the state and writes back where it read, instead of also filling
    /// spare buffers that are out of cache.
    ///
    /// Only for a model with a fast path, whose parameters' magnitude is trusted: reading
    /// the parameters as well cost as much as the spare buffers, so a step without a
    /// trusted magnitude for them goes through the spare buffers, and the in-place steps
    /// start from the next one.
    fn step_in_place(&mut self, objective: &mut dyn Objective<T>, pass: &Pass<T>) -> Result<bool> {
        let Some((w_peak, state_peak)) = self.trusted_peaks(objective) else {
            return Ok(false);
        };
        // The model's own measure if it took one as it wrote the gradient (`+∞` for a
        // non-finite element: `stays_finite` then says no); else one pass here.
        let measured = objective
            .fast_path()
            .and_then(|mut f| f.open().grad_magnitude());
        let g_peak = match measured {
            Some(m) => m,
            None => match passes::grad_peak(objective, &self.grad)? {
                Some(m) => m,
                None => return Ok(false),
            },
        };
        if !stays_finite(pass, w_peak, g_peak, state_peak) {
            return Ok(false);
        }
        // Certain: from here on the step is taken.
        self.commit_in_place(objective, pass, 0, [T::zero(); 3])?;
        Ok(true)
    }

    /// The in-place pass over parameters `from..` (the model stepped the ones before,
    /// writing magnitudes up to `prior`), on the model's threads; records the magnitudes it
    /// wrote for the next step's proof.
    fn commit_in_place(
        &mut self,
        objective: &mut dyn Objective<T>,
        pass: &Pass<T>,
        from: usize,
        prior: [T; 3],
    ) -> Result<()> {
        let n = self.grad.len();
        for b in self.state.buffers_mut() {
            resize(b, n);
        }
        let peaks = in_place(
            objective,
            pass,
            &self.grad,
            from,
            &mut self.state,
            &mut self.next_params,
        )?;
        let peak = peaks.into_iter().fold(prior, |a, b| {
            [a[0].max(b[0]), a[1].max(b[1]), a[2].max(b[2])]
        });
        debug_assert!(peak.iter().all(|p| p.is_finite()), "stays_finite was wrong");
        self.state_peak = Some([peak[0], peak[1]]);
        self.params_peak = objective
            .fast_path()
            .map(|mut f| (f.open().params_version(), peak[2]));
        Ok(())
    }

    /// The step through the spare buffers: written and checked there, then committed, or
    /// refused with nothing changed.
    fn step_into_spare(&mut self, objective: &mut dyn Objective<T>, pass: &Pass<T>) -> Result<()> {
        let n = self.grad.len();
        for b in self.spare.buffers_mut() {
            resize(b, n);
        }
        into_spare(
            objective,
            pass,
            &self.grad,
            &self.state,
            &mut self.next_params,
            &mut self.spare,
        )?;
        swap_params(objective, &mut self.next_params)?;
        std::mem::swap(&mut self.state, &mut self.spare);
        self.state_peak = None;
        // A model with a fast path gets its parameters' magnitude measured once here, so
        // that the next step can go in place.
        let version = objective.fast_path().map(|mut f| f.open().params_version());
        self.params_peak = version.and_then(|v| Some((v, magnitude(objective.params())?)));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
