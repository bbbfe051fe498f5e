//! Gradient descent that picks its own step: [`Descent::line_search`](crate::optim::Descent::line_search).
//!
//! Every step searches along `d = −∇f` with the [`LineSearch`] it was given, from a first
//! trial that is the learning rate on the first step (or the search's
//! [`initial_step`](LineSearch::initial_step)) and, after that, Nocedal & Wright's guess
//! (their eq. 3.60): the step that would make this iteration's first-order decrease equal
//! twice the last one's, `α₀ = 2·(f_k − f_{k−1}) / ∇f_k·d_k`. A first step far too small
//! grows by about 2× an iteration until the conditions bite; one far too large is cut back
//! by the search. The step does not go through the guarded update (`optim/update.rs`): it
//! keeps the same all-or-nothing promise itself — a step whose search fails, or whose loss or
//! gradient is not finite anywhere, leaves the parameters and the state as they were.

use crate::error::{Error, Result};
use crate::model::Objective;
use crate::optim::line_search::{dot, Evaluations, Kept, LineSearch, LineSearchReport, Start};
use crate::optim::update::GradientUpdate;
use crate::optim::{StateDict, UpdateRule};
use crate::scalar::Scalar;

/// The prefix of the state scalars and buffers a searching gradient descent keeps.
const PREFIX: &str = "line_search.";
/// The prefix of the point it kept.
const KEPT: &str = "line_search.last.";

/// What a searching gradient descent keeps beside the update: the search, the loss before
/// the last step (for the next first trial), its counts and its buffers.
#[derive(Debug, Clone)]
pub(crate) struct SearchedDescent<T> {
    pub(crate) search: LineSearch,
    /// The loss before the last step and the step it took.
    last: Option<(f64, f64)>,
    pub(crate) evaluations: Evaluations,
    pub(crate) report: Option<LineSearchReport>,
    kept: Kept<T>,
    direction: Vec<T>,
    trial_grad: Vec<T>,
}

impl<T: Scalar> SearchedDescent<T> {
    pub(crate) fn new(search: LineSearch) -> Self {
        SearchedDescent {
            search,
            last: None,
            evaluations: Evaluations::default(),
            report: None,
            kept: Kept::default(),
            direction: Vec::new(),
            trial_grad: Vec::new(),
        }
    }

    /// One step: the gradient (kept from the last step's search when the parameters have not
    /// moved since), then a search along `−∇f`. Returns the loss before it.
    pub(crate) fn step(
        &mut self,
        update: &mut GradientUpdate<T>,
        objective: &mut dyn Objective<T>,
    ) -> Result<T> {
        if update.rule != UpdateRule::plain()
            || update.weight_decay != T::zero()
            || update.max_grad_norm.is_some()
        {
            return Err(Error::param(
                "line_search",
                update.rule,
                "needs the plain rule, without weight decay or clipping (a line search picks \
                 the step along −∇f)",
            ));
        }
        let evaluated = self.kept.refresh(objective)?;
        let Kept { x, loss, grad, .. } = &self.kept;
        self.direction.clear();
        self.direction.extend(grad.iter().map(|&g| -g));
        let slope = dot(grad, &self.direction);
        let report = if slope == 0.0 {
            // A stationary point: there is no slope to step along, and none to search.
            None
        } else {
            let first = match (self.last, self.search.initial_step_value()) {
                (None, Some(first)) => first,
                (None, None) => update.learning_rate.to_f64_lossless(),
                (Some((before, step)), _) => {
                    let guess = 2.0 * (loss.to_f64_lossless() - before) / slope;
                    if guess.is_finite() && guess > 0.0 {
                        guess
                    } else if step > 0.0 {
                        step
                    } else {
                        update.learning_rate.to_f64_lossless()
                    }
                }
            };
            let start = Start {
                x,
                loss: *loss,
                direction: &self.direction,
                slope,
            };
            Some(
                self.search
                    .run(objective, &start, first, &mut self.trial_grad)?,
            )
        };
        // Committed: nothing below can fail.
        let loss = *loss;
        update.grad.clone_from(grad);
        update.steps += 1;
        self.evaluations.add(evaluated, report.as_ref());
        self.last = Some((loss.to_f64_lossless(), report.map_or(0.0, |r| r.step)));
        match report {
            Some(r) if r.gradient_at_step() => {
                self.kept.reached(objective, r.loss, &mut self.trial_grad)
            }
            Some(_) => self.kept.valid = false,
            None => {}
        }
        self.report = report;
        Ok(loss)
    }

    /// Adds what it keeps to the optimizer's state: its counts, the loss before the last
    /// step and that step, and the point it reached with its loss and gradient (all under
    /// `line_search.`).
    pub(crate) fn save(&self, state: &mut StateDict<T>) {
        state.scalars.extend(self.evaluations.scalars(PREFIX));
        if let Some((loss, step)) = self.last {
            state.scalars.push((format!("{PREFIX}last_loss"), loss));
            state.scalars.push((format!("{PREFIX}last_step"), step));
        }
        self.kept.save(KEPT, state);
    }

    /// Takes what [`save`](Self::save) wrote out of `state` (the rest returned, for the
    /// update to load), checked; `apply` then loads it, once the rest has loaded.
    pub(crate) fn split(&self, state: &StateDict<T>) -> Result<(StateDict<T>, SavedSearch<T>)> {
        let (mine, rest): (Vec<_>, Vec<_>) = state
            .scalars
            .iter()
            .cloned()
            .partition(|(name, _)| name.starts_with(PREFIX));
        let bad = |name: &str, value: f64| {
            Error::optimizer_state(
                "gd",
                format!("scalar {name:?} = {value} is not what a line search keeps"),
            )
        };
        let kept = Kept::load(state, KEPT).map_err(|e| Error::optimizer_state("gd", e))?;
        let evaluations =
            Evaluations::from_scalars(&mine, PREFIX).ok_or_else(|| bad("evaluations", f64::NAN))?;
        let (mut loss, mut step) = (None, None);
        for (name, value) in &mine {
            let slot = match &name[PREFIX.len()..] {
                "last_loss" => &mut loss,
                "last_step" => &mut step,
                "function_evals" | "gradient_evals" => continue,
                _ if name.starts_with(KEPT) => continue,
                _ => return Err(bad(name, *value)),
            };
            if !value.is_finite() {
                return Err(bad(name, *value));
            }
            *slot = Some(*value);
        }
        let last = match (loss, step) {
            (Some(loss), Some(step)) => Some((loss, step)),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "last_loss and last_step (one without the other)",
                    f64::NAN,
                ))
            }
        };
        let rest = StateDict {
            steps: state.steps,
            buffers: state
                .buffers
                .iter()
                .filter(|(name, _)| !name.starts_with(PREFIX))
                .cloned()
                .collect(),
            scalars: rest,
        };
        let saved = SavedSearch {
            last,
            evaluations,
            kept,
        };
        Ok((rest, saved))
    }

    /// Loads what [`split`](Self::split) took out.
    pub(crate) fn apply(&mut self, saved: SavedSearch<T>) {
        self.last = saved.last;
        self.evaluations = saved.evaluations;
        self.kept = saved.kept;
        self.report = None;
    }
}

/// A searching gradient descent's state, read from a [`StateDict`] and checked.
pub(crate) struct SavedSearch<T> {
    last: Option<(f64, f64)>,
    evaluations: Evaluations,
    kept: Kept<T>,
}
