//! The part every gradient method shares: one guarded update, all or nothing.
//!
//! A step is: the gradient at the current parameters; its global norm, if clipping; then
//! one fused pass per share of the parameters — clip, add L2 weight decay, advance the
//! rule's state, move the parameter — written by `kernels/update.rs` into *spare* buffers
//! (a spare parameter vector and a spare copy of the rule's state), never over the live
//! ones. The pass checks everything it writes as it writes it. Only when every share
//! reports finite values is the step committed: the model swaps the spare parameters in
//! ([`Params::swap_params`]) and the optimizer swaps its state buffers. Otherwise the
//! spare buffers are simply abandoned, and the step is refused with
//! [`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged): the parameters and the
//! optimizer's state are bit for bit what they were, so a retry with a smaller learning
//! rate starts clean.
//!
//! That is the mechanism every rule, with or without decay and clipping, commits through; a
//! faster fused pass for a rule only has to write into the spare buffers and say whether
//! what it wrote is finite.
//!
//! # In place, when it cannot fail
//!
//! Writing spare buffers costs memory traffic: the pass reads three arrays the size of the
//! model and writes two more that have not been touched since the step before, so on a CPU
//! whose L2 cannot hold them all the pass runs at L3 bandwidth. Most steps are nowhere
//! near overflowing, and whether a step can overflow is decidable beforehand: from the
//! largest magnitudes of the parameters, the gradient and the state, `stays_finite`
//! (`kernels/update.rs`) bounds every value the rule's formula computes. When the bound
//! proves the step finite, it is taken in place — same formulas, same bits — and there is
//! nothing to refuse. When it cannot (a non-finite or huge gradient, a learning rate that
//! would carry the parameters past the float range), the step goes through the spare
//! buffers as above, and is committed or refused exactly as before.
//!
//! The magnitudes must cost less than the writes they save, so none of them is a pass over
//! memory that is out of cache: the gradient's is read (just written, it is in cache), the
//! state's and the parameters' are taken by the in-place pass as it writes them. The
//! parameters' is trusted only while the model's [`Params::params_version`] is the one
//! that pass left — a model that does not track its version, or whose parameters were
//! changed since, gets the spare buffers (and, with a version, its magnitude measured for
//! the next step). Reading the parameters every step instead measured no faster than the
//! spare buffers.
//!
//! # Inside the model, when it can prove the step finite
//!
//! Without clipping, the step's constants are known before the gradient, so the step is
//! offered to the model ([`StepOffer`]): a model that computes part of its gradient in
//! tiles (the `Mlp`'s sparse first layer) can step those parameters from each tile in
//! registers and never write that part of the gradient. It takes the offer only after
//! proving, from a bound on every gradient element it can produce, that the whole step is
//! finite (`stays_finite` again, with the magnitudes the offer carries); the optimizer then
//! steps the rest in place, as above. Same formulas, same bits.
//!
//! The order is PyTorch's: `clip_grad_norm_` runs on the raw gradient before the optimizer
//! step, and SGD's and Adam's `weight_decay` adds `λ·w` to the (clipped) gradient inside
//! the step.

use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Quantity, Result};
use crate::kernels::elementwise::{first_non_finite, sum_squares};
use crate::kernels::pool::split_range;
use crate::kernels::update::{
    apply, apply_in_place, magnitude, stays_finite, InPlace, Pass, RulePass, Share,
};
use crate::model::{Objective, StepOffer};
use crate::optim::{RuleState, StateDict, UpdateRule};
use crate::validate::{non_negative, positive, same_size};
use crate::Scalar;

/// Shares of the update start on multiples of this many elements (64 bytes of `f32`), so no
/// cache line is written by two threads.
const SHARE_ALIGN: usize = 16;

/// The gradient's norm is summed in chunks of this many elements, whatever the thread
/// count, so its rounding — and the clipped step — does not depend on the thread count.
const NORM_CHUNK: usize = 4096;

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
    /// The parameters' largest magnitude after the last step, with the model's
    /// [`Params::params_version`] then: `None` until a step has measured it.
    params_peak: Option<(u64, T)>,
    pub(crate) steps: u64,
}

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
        let n = objective.num_params();
        self.check_state(n)?;
        resize(&mut self.grad, n);
        let rule = self.rule.pass(self.learning_rate, self.steps + 1);
        let (loss, taken) = self.gradient(objective, rule)?;
        self.grad_whole = taken.is_none();
        if !loss.is_finite() {
            // A model takes part of a step only with a finite loss (`StepOffer`).
            debug_assert!(taken.is_none(), "a step was taken with a non-finite loss");
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
        if self.step_in_place(objective, &pass, taken)? {
            self.steps += 1;
            return Ok(loss);
        }
        if let Some(Taken { len, .. }) = taken {
            // The model stepped its first `len` parameters after proving the whole step
            // finite; the rest cannot fail to be. If it did, the model broke that promise.
            return Err(Error::thread(format!(
                "the model stepped {len} parameters itself, but the rest of the step is \
                 not certain to be finite"
            )));
        }
        for b in self.spare.buffers_mut() {
            resize(b, n);
        }
        // Before the first step the state is empty: read as zeros, PyTorch's start.
        let zeros;
        let state_in: Vec<&[T]> = if self.state.is_empty() {
            zeros = vec![T::zero(); n];
            self.rule
                .buffer_names()
                .iter()
                .map(|_| &zeros[..])
                .collect()
        } else {
            self.state.buffers()
        };
        run_pass(
            objective,
            &pass,
            &self.grad,
            &state_in,
            &mut self.next_params,
            &mut self.spare,
        )?;
        objective.swap_params(&mut self.next_params)?;
        std::mem::swap(&mut self.state, &mut self.spare);
        self.state_peak = None;
        // A model that tracks its version gets its parameters' magnitude measured once
        // here, so that the next step can go in place.
        self.params_peak = objective
            .params_version()
            .and_then(|v| Some((v, magnitude(objective.params())?)));
        self.steps += 1;
        Ok(loss)
    }

    /// The loss and the gradient, with the step offered to the model ([`StepOffer`]) when
    /// its constants are known before the gradient (no clipping) and the in-place step's
    /// magnitudes are trusted, and every state buffer the rule keeps is filled (so that
    /// nothing about the state changes unless a step is taken). Returns what the model took.
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
        let mut buffers = self.state.buffers_mut().into_iter();
        let mut next = || buffers.next().map_or(&mut [][..], |b| &mut b[..]);
        let state = [next(), next()];
        let mut offer = StepOffer {
            pass,
            w_peak,
            state_peak,
            state,
            taken: None,
        };
        let loss = objective.loss_and_grad_with_step(&mut self.grad, &mut offer)?;
        if let Some((len, _)) = offer.taken {
            same_size(
                "Objective::loss_and_grad_with_step",
                "parameters the model stepped (at most all of them)",
                n,
                len.max(n),
            )?;
        }
        let taken = offer.taken.map(|(len, wrote)| Taken {
            len,
            wrote,
            w_peak,
            state_peak,
        });
        Ok((loss, taken))
    }

    /// The largest magnitudes of the parameters and of each state buffer, if they are known
    /// without reading the parameters: the parameters' from the last in-place step, while
    /// the model's version is the one that step left; the state's from that step too (or
    /// measured here, once, if something else wrote it since). `None`: the step goes
    /// through the spare buffers.
    fn trusted_peaks(&mut self, objective: &dyn Objective<T>) -> Option<(T, [T; 2])> {
        let w_peak = match (self.params_peak, objective.params_version()) {
            (Some((written, peak)), Some(now)) if written == now => peak,
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

    /// Takes the step in place if it is certain to be finite ([`stays_finite`], from the
    /// largest magnitudes of the parameters, the gradient and the state), and says whether
    /// it did; otherwise changes nothing. Written in place, the pass reads the parameters,
    /// the gradient and the state and writes back where it read, instead of also filling
    /// spare buffers that are out of cache.
    ///
    /// Only for a model that tracks [`Params::params_version`]: the magnitudes must cost
    /// less than the writes they save. The gradient's comes from the model
    /// ([`Objective::grad_magnitude`], measured as it wrote the gradient) or is read here
    /// (it was just written, so it is mostly in cache); the state's and the parameters' are the ones the last in-place step
    /// wrote, the parameters' trusted only while the model's version is the one that step
    /// left. Reading the parameters as well cost as much as the spare buffers (measured on
    /// a Xeon with 2 MiB of L2 per core), so a step without a trusted magnitude for them
    /// goes through the spare buffers, and the in-place steps start from the next one.
    ///
    /// With more than one share, the model lends its parameter vector for the pass
    /// ([`Params::swap_params`], free for a model that owns its vector) so that its
    /// threads can each update their share while it is borrowed.
    ///
    /// With `taken`, the model has already stepped its first `taken.len` parameters, and
    /// this steps the rest, from the magnitudes the offer carried (the model's version has
    /// changed since: it wrote them).
    fn step_in_place(
        &mut self,
        objective: &mut dyn Objective<T>,
        pass: &Pass<T>,
        taken: Option<Taken<T>>,
    ) -> Result<bool> {
        let n = self.grad.len();
        let (from, prior) = taken.map_or((0, [T::zero(); 3]), |t| (t.len, t.wrote));
        let peaks = match taken {
            Some(t) => Some((t.w_peak, t.state_peak)),
            None => self.trusted_peaks(objective),
        };
        let Some((w_peak, state_peak)) = peaks else {
            return Ok(false);
        };
        // The shares' ranges, less what the model stepped.
        let ranges: Vec<_> = share_ranges(objective, n, SHARE_ALIGN)?
            .into_iter()
            .map(|r| r.start.max(from)..r.end.max(from))
            .collect();
        let g = &self.grad[..];
        // The model's own measure if it took one as it wrote the gradient (`+∞` for a
        // non-finite element: `stays_finite` then says no); else one pass here.
        let g_peak = match objective.grad_magnitude() {
            Some(m) => m,
            None => {
                let peaks = on_shares(objective, ranges.clone(), |r| magnitude(&g[r]))?;
                let measured = peaks
                    .into_iter()
                    .try_fold(T::zero(), |top, share| share.map(|m| top.max(m)));
                match measured {
                    Some(m) => m,
                    None => return Ok(false),
                }
            }
        };
        if !stays_finite(pass, w_peak, g_peak, state_peak) {
            return Ok(false);
        }
        // Certain: from here on the step is taken.
        for b in self.state.buffers_mut() {
            resize(b, n);
        }
        let states = self.state.buffers_mut().into_iter().map(|b| &mut b[from..]);
        let states: Vec<&mut [T]> = states.collect();
        let peaks = if objective.parallelism() <= 1 {
            let items = cut_into_shares(
                std::slice::from_ref(&(from..n)),
                &mut objective.params_mut()[from..],
                states,
            );
            items
                .into_iter()
                .map(|(r, w, [s0, s1])| {
                    apply_in_place(
                        pass,
                        InPlace {
                            w,
                            g: &g[r],
                            s0,
                            s1,
                        },
                    )
                })
                .collect()
        } else {
            objective.swap_params(&mut self.next_params)?;
            let items = cut_into_shares(&ranges, &mut self.next_params[from..], states);
            let peaks = on_shares(objective, items, |(r, w, [s0, s1])| {
                apply_in_place(
                    pass,
                    InPlace {
                        w,
                        g: &g[r],
                        s0,
                        s1,
                    },
                )
            });
            // The parameters go back to the model whatever happened.
            objective.swap_params(&mut self.next_params)?;
            peaks?
        };
        let peak = peaks.into_iter().fold(prior, |a, b| {
            [a[0].max(b[0]), a[1].max(b[1]), a[2].max(b[2])]
        });
        debug_assert!(peak.iter().all(|p| p.is_finite()), "stays_finite was wrong");
        self.state_peak = Some([peak[0], peak[1]]);
        self.params_peak = objective.params_version().map(|v| (v, peak[2]));
        Ok(true)
    }

    /// A state restored from a checkpoint must fit the model it is applied to.
    fn check_state(&self, n: usize) -> Result<()> {
        for buf in self.state.buffers() {
            if !buf.is_empty() && buf.len() != n {
                return Err(Error::shape(
                    "optimizer state",
                    "buffer length (the model's parameter count)",
                    n,
                    buf.len(),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn state(&self) -> StateDict<T> {
        let buffers = self
            .rule
            .buffer_names()
            .iter()
            .zip(self.state.buffers())
            .filter(|(_, b)| !b.is_empty())
            .map(|(name, b)| (name.to_string(), b.to_vec()))
            .collect();
        StateDict {
            steps: self.steps,
            buffers,
            scalars: Vec::new(),
        }
    }

    /// Restores a state: every buffer must be one the rule keeps, all of the same length
    /// and finite; once steps have been taken, none may be missing. Nothing changes unless
    /// all of it fits.
    pub(crate) fn load_state(&mut self, saved: &StateDict<T>) -> Result<()> {
        let who = self.rule.name();
        let names = self.rule.buffer_names();
        let mut state = RuleState::for_rule(&self.rule);
        let mut loaded = vec![false; names.len()];
        let mut len = None;
        for (name, values) in &saved.buffers {
            let Some(slot) = names.iter().position(|n| n == name) else {
                return Err(Error::optimizer_state(
                    who,
                    format!(
                        "buffer {name:?} is not one this update rule keeps (it keeps {names:?})"
                    ),
                ));
            };
            if std::mem::replace(&mut loaded[slot], true) {
                return Err(Error::optimizer_state(
                    who,
                    format!("buffer {name:?} appears twice"),
                ));
            }
            if let Some(bad) = first_non_finite(values) {
                return Err(Error::optimizer_state(
                    who,
                    format!("buffer {name:?} holds {bad}: buffers must be finite"),
                ));
            }
            if *len.get_or_insert(values.len()) != values.len() {
                return Err(Error::optimizer_state(
                    who,
                    format!(
                        "buffer {name:?} has {} values, the others {}",
                        values.len(),
                        len.unwrap_or(0)
                    ),
                ));
            }
            if let Some(buf) = state.buffers_mut().into_iter().nth(slot) {
                buf.clone_from(values);
            }
        }
        if saved.steps > 0 {
            if let Some(i) = loaded.iter().position(|l| !l) {
                return Err(Error::optimizer_state(
                    who,
                    format!(
                        "buffer {:?} is missing after {} steps",
                        names[i], saved.steps
                    ),
                ));
            }
        }
        if let Some((name, _)) = saved.scalars.first() {
            return Err(Error::optimizer_state(
                who,
                format!("scalar {name:?} is not one this optimizer keeps"),
            ));
        }
        self.state = state;
        self.spare = RuleState::for_rule(&self.rule);
        self.state_peak = None;
        self.steps = saved.steps;
        Ok(())
    }
}

/// What a model took of an offered step ([`StepOffer`]): its first `len` parameters,
/// stepped, with the largest magnitudes it wrote to each state buffer and to them; and the
/// magnitudes the offer carried.
#[derive(Debug, Clone, Copy)]
struct Taken<T> {
    len: usize,
    wrote: [T; 3],
    w_peak: T,
    state_peak: [T; 2],
}

/// Resizes `buf` to `len` (new elements zero), keeping its allocation across steps.
fn resize<T: Scalar>(buf: &mut Vec<T>, len: usize) {
    if buf.len() != len {
        buf.clear();
        buf.resize(len, T::zero());
    }
}

/// Runs `work` once per share of `params`' threads, share `i` getting `items[i]`, and
/// returns what each returned, in share order. The items hand each thread its disjoint
/// slices; the mutexes are never contended (each is locked once, by its share), they only
/// prove to the compiler that the slices go to one thread each.
fn on_shares<T: Scalar, S: Send, R: Send>(
    params: &dyn Objective<T>,
    items: Vec<S>,
    work: impl Fn(S) -> R + Sync,
) -> Result<Vec<R>> {
    let slots: Vec<Mutex<(Option<S>, Option<R>)>> = items
        .into_iter()
        .map(|s| Mutex::new((Some(s), None)))
        .collect();
    params.run_shares(&|i| {
        if let Some(slot) = slots.get(i) {
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(item) = slot.0.take() {
                slot.1 = Some(work(item));
            }
        }
    });
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .1
                .ok_or_else(|| {
                    Error::thread(format!(
                        "Params::run_shares did not run share {i} of {}",
                        params.parallelism()
                    ))
                })
        })
        .collect()
}

/// The shares' ranges of `0..n`: one per thread of `params`, aligned to `align`, or where
/// the model asks for the update to be cut ([`Params::share_bounds`](crate::model::Params)).
fn share_ranges<T: Scalar>(
    params: &dyn Objective<T>,
    n: usize,
    align: usize,
) -> Result<Vec<std::ops::Range<usize>>> {
    let shares = params.parallelism().max(1);
    if let Some(bounds) = params.share_bounds() {
        let fits = bounds.len() == shares + 1
            && bounds.first() == Some(&0)
            && bounds.last() == Some(&n)
            && bounds.windows(2).all(|w| w[0] <= w[1]);
        if !fits {
            return Err(Error::param(
                "Params::share_bounds",
                format!("{bounds:?}"),
                "must run from 0 to the parameter count, increasing, one range per share",
            ));
        }
        return Ok(bounds.windows(2).map(|w| w[0]..w[1]).collect());
    }
    Ok((0..shares)
        .map(|t| split_range(n, shares, t, align))
        .collect())
}

/// The factor that scales `g` to global norm at most `max` (PyTorch's `clip_grad_norm_`:
/// `max/(‖g‖ + 1e-6)`, capped at 1). The norm is summed in fixed chunks, on the model's
/// threads, so its value does not depend on how many there are.
fn clip_factor<T: Scalar>(objective: &dyn Objective<T>, g: &[T], max: T) -> Result<T> {
    let chunks = g.len().div_ceil(NORM_CHUNK);
    let mut partials = vec![0.0f64; chunks];
    let shares = objective.parallelism().max(1);
    let ranges: Vec<_> = (0..shares)
        .map(|t| split_range(chunks, shares, t, 1))
        .collect();
    let mut items = Vec::with_capacity(ranges.len());
    let mut rest = &mut partials[..];
    for r in &ranges {
        let (mine, tail) = rest.split_at_mut(r.len());
        items.push((r.start, mine));
        rest = tail;
    }
    on_shares(objective, items, |(first, out)| {
        for (k, p) in out.iter_mut().enumerate() {
            let start = (first + k) * NORM_CHUNK;
            *p = sum_squares(&g[start..(start + NORM_CHUNK).min(g.len())]);
        }
    })?;
    let norm = partials.iter().sum::<f64>().sqrt();
    if !norm.is_finite() {
        return Err(Error::diverged(Quantity::GradientNorm, norm));
    }
    let factor = max.to_f64_lossless() / (norm + 1e-6);
    Ok(if factor < 1.0 {
        T::from_f64(factor)
    } else {
        T::one()
    })
}

/// One share's pieces: its range, its piece of the parameters, and its pieces of the rule's
/// two state buffers (empty for a buffer the rule does not keep).
type SharePieces<'a, T> = (std::ops::Range<usize>, &'a mut [T], [&'a mut [T]; 2]);

/// Cuts `w` and each of `states` (at most two, each as long as `w` or empty) into the
/// pieces `ranges` name, in order: what both update passes hand their shares.
fn cut_into_shares<'a, T>(
    ranges: &[std::ops::Range<usize>],
    mut w: &'a mut [T],
    states: Vec<&'a mut [T]>,
) -> Vec<SharePieces<'a, T>> {
    let mut states = states.into_iter();
    let mut s0: &'a mut [T] = states.next().unwrap_or(&mut []);
    let mut s1: &'a mut [T] = states.next().unwrap_or(&mut []);
    ranges
        .iter()
        .map(|r| {
            let mine = |rest: &mut &'a mut [T]| -> &'a mut [T] {
                if rest.is_empty() {
                    return &mut [];
                }
                let (piece, tail) = std::mem::take(rest).split_at_mut(r.len());
                *rest = tail;
                piece
            };
            (r.clone(), mine(&mut w), [mine(&mut s0), mine(&mut s1)])
        })
        .collect()
}

/// The update pass over every share: reads the live parameters, `grad` and `state_in`;
/// writes `params_out` and `state_out`. `Err(Diverged)` if any share wrote a non-finite
/// value, naming the gradient element if the gradient itself was not finite, else the
/// first non-finite value the step computed.
fn run_pass<T: Scalar>(
    objective: &dyn Objective<T>,
    pass: &Pass<T>,
    grad: &[T],
    state_in: &[&[T]],
    params_out: &mut [T],
    state_out: &mut RuleState<T>,
) -> Result<()> {
    let w = objective.params();
    let ranges = share_ranges(objective, w.len(), SHARE_ALIGN)?;
    let finite = {
        let states = state_out.buffers_mut().into_iter().map(|v| &mut v[..]);
        let items = cut_into_shares(&ranges, params_out, states.collect());
        let none: &[T] = &[];
        on_shares(objective, items, |(r, w_out, [s0_out, s1_out])| {
            apply(
                pass,
                Share {
                    w: &w[r.clone()],
                    g: &grad[r.clone()],
                    s0: state_in.first().map_or(none, |s| &s[r.clone()]),
                    s1: state_in.get(1).map_or(none, |s| &s[r.clone()]),
                    w_out,
                    s0_out,
                    s1_out,
                },
            )
        })?
    };
    if finite.iter().all(|&ok| ok) {
        return Ok(());
    }
    // Refused. Say what was not finite: the gradient, or else what the step computed.
    let (quantity, value) = match first_non_finite(grad) {
        Some(g) => (Quantity::Gradient, g),
        None => {
            let written = std::iter::once(&*params_out).chain(state_out.buffers());
            let bad = written.filter_map(first_non_finite).next();
            (Quantity::Step, bad.unwrap_or_else(T::nan))
        }
    };
    Err(ErrorKind::Diverged {
        quantity,
        value: value.to_f64_lossless(),
        epoch: None,
        step: None,
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::model::{FnObjective, Mlp, Model, Params};
    use crate::optim::UpdateRule;

    /// A versioned model (the MLP on fixed data) and an unversioned one with the same
    /// parameters and loss (the same MLP behind `FnObjective`, whose steps always go
    /// through the spare buffers) take the same steps, to the bit, for every rule.
    #[test]
    fn in_place_steps_engage_and_match_the_spare_buffer_steps() {
        let x: Vec<f64> = (0..24 * 5)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) / 4.0)
            .collect();
        let labels = (0..24).map(|i| i % 3).collect();
        let x = crate::matrix::Matrix::from_vec(x, 24, 5).unwrap();
        let data = crate::data::Dataset::from_matrix(x, labels, 3).unwrap();
        for rule in [
            UpdateRule::plain(),
            UpdateRule::momentum(0.9).unwrap(),
            UpdateRule::nesterov(0.9).unwrap(),
            UpdateRule::rmsprop(),
            UpdateRule::adam(),
            UpdateRule::adamw(),
        ] {
            let mut mlp = Mlp::<f64>::builder(5)
                .hidden(6, Activation::Tanh)
                .classes(3)
                .seed(2)
                .build()
                .unwrap();
            let twin = mlp.clone();
            let mut plain = FnObjective::new(
                mlp.params().to_vec(),
                |p: &[f64]| {
                    let mut m = twin.clone();
                    m.params_mut().copy_from_slice(p);
                    m.on(&data.all()).loss().unwrap()
                },
                |p: &[f64], g: &mut [f64]| {
                    let mut m = twin.clone();
                    m.params_mut().copy_from_slice(p);
                    m.on(&data.all()).loss_and_grad(g).unwrap();
                },
            );
            let mut fast = GradientUpdate::new(0.05).unwrap();
            let mut slow = GradientUpdate::new(0.05).unwrap();
            fast.set_rule(rule);
            slow.set_rule(rule);
            fast.set_weight_decay(0.01).unwrap();
            slow.set_weight_decay(0.01).unwrap();
            for step in 0..4 {
                fast.step(&mut mlp.on(&data.all())).unwrap();
                slow.step(&mut plain).unwrap();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(mlp.params()),
                    bits(plain.point()),
                    "{rule}, step {step}"
                );
                assert_eq!(fast.state(), slow.state(), "{rule}, step {step}");
                // After the first step the MLP's magnitude is known: the next goes in place.
                let trusted = fast.params_peak.map(|(v, _)| v) == mlp.params_version();
                assert!(trusted, "{rule}, step {step}");
                assert!(slow.params_peak.is_none(), "{rule}");
            }
            // In-place steps record the state's magnitude; the spare-buffer path does not.
            assert!(fast.state_peak.is_some(), "{rule}");
            assert!(slow.state_peak.is_none(), "{rule}");
        }
    }
}
