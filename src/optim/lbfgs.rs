//! L-BFGS ([`Lbfgs`]): the second-order term of the Taylor expansion, learnt from the
//! gradients; its typed stop reason ([`Convergence`]).

use std::fmt;

use crate::error::{Error, ErrorKind, Quantity, Result};
use crate::model::Objective;
use crate::optim::line_search::{
    dot, max_abs, norm, Evaluations, Kept, LineSearch, LineSearchReport, Start,
};
use crate::optim::{Optimizer, StateDict};
use crate::scalar::Scalar;
use crate::validate::{at_least_one, non_negative, same_size};

/// Limited-memory BFGS (Nocedal & Wright, algorithm 7.5): a quasi-Newton method, full batch,
/// with a line search at every iteration. One [`step`](Optimizer::step) is one iteration.
///
/// Built like PyTorch's `torch.optim.LBFGS`: a history size, a line search (strong Wolfe by
/// default, `line_search_fn="strong_wolfe"`), and the tolerances `tolerance_grad` (1e-7) and
/// `tolerance_change` (1e-9). It is an [`Optimizer`], so it minimises any
/// [`Objective`], and a model through the [`Trainer`](crate::Trainer) (one epoch is one
/// iteration on the whole training set).
///
/// ```
/// use downhill::model::FnObjective;
/// use downhill::optim::{Convergence, Lbfgs};
/// use downhill::prelude::*;
///
/// // Rosenbrock's banana from the classic start (−1.2, 1).
/// let mut f = FnObjective::new(
///     vec![-1.2, 1.0],
///     |p: &[f64]| (1.0 - p[0]).powi(2) + 100.0 * (p[1] - p[0] * p[0]).powi(2),
///     |p: &[f64], g: &mut [f64]| {
///         g[0] = -2.0 * (1.0 - p[0]) - 400.0 * p[0] * (p[1] - p[0] * p[0]);
///         g[1] = 200.0 * (p[1] - p[0] * p[0]);
///     },
/// );
/// let mut lbfgs = Lbfgs::new(10)?;
/// while lbfgs.stop_reason().is_none() {
///     lbfgs.step(&mut f)?;
/// }
/// // Stopped where a step changed the loss by less than tolerance_change (1e-9).
/// assert!(matches!(lbfgs.stop_reason(), Some(Convergence::ChangeTolerance { .. })));
/// assert!(f.loss()? < 1e-10 && lbfgs.iterations() < 50);
/// println!("{} iterations, {} evaluations", lbfgs.iterations(), lbfgs.evaluations().function);
/// # Ok::<(), downhill::Error>(())
/// ```
///
/// Near a minimum the loss is close to its quadratic model,
/// `L(w + Δw) ≈ L(w) + Δwᵀ·∇L + ½·Δwᵀ·H·Δw`, whose minimum is the Newton step
/// `Δw = −H⁻¹·∇L`: the step size *and* the direction, per direction of curvature. The Hessian
/// `H` of a network is far too big to form, but every step shows how the gradient changed
/// along it: `y = ∇L(w + s) − ∇L(w) ≈ H·s`. L-BFGS keeps the last `m` pairs `(s, y)` and
/// applies an approximation of `H⁻¹` built from them to the gradient with the two-loop
/// recursion — `4·m·n` multiply-adds, no matrix (Nocedal & Wright, algorithm 7.4):
///
/// ```text
/// q ← ∇f
/// for i = newest … oldest:  αᵢ ← ρᵢ·sᵢᵀq,  q ← q − αᵢ·yᵢ        (ρᵢ = 1/yᵢᵀsᵢ)
/// r ← γ·q                                                  (γ = sᵀy/yᵀy of the newest pair)
/// for i = oldest … newest:  β ← ρᵢ·yᵢᵀr,  r ← r + (αᵢ − β)·sᵢ
/// d = −r
/// ```
///
/// The initial matrix `H₀ = γ·I` is scaled as Nocedal & Wright recommend (their eq. 7.20), so
/// that the quasi-Newton step `α = 1` is the step to try first; before there is any pair, the
/// direction is `−∇f` and the first trial moves the parameters a distance of 1 (`α = 1/‖∇f‖`,
/// as scipy's L-BFGS-B). A line search — [strong Wolfe](LineSearch::strong_wolfe) by default
/// — takes the step; a pair whose curvature `yᵀs` is not positive enough (`yᵀs ≤ ε·sᵀs`,
/// `ε` the element type's machine epsilon) would break the approximation's positive
/// definiteness and is skipped, not stored. When the search finds no step along the L-BFGS
/// direction, the history is cleared and `−∇f` tried, as L-BFGS-B does; when that fails too,
/// the optimizer has stopped making progress.
///
/// Each step reuses the loss and gradient its line search found at the point it reached
/// while the parameters are still that point bit for bit, so an iteration usually costs one
/// evaluation. That assumes the objective stays the same from step to step, as a full batch
/// does; call [`reset`](Lbfgs::reset) before stepping on another one.
///
/// A step refuses, with [`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged), a loss or
/// gradient that is not finite anywhere — at the start or at any trial of its search — and
/// leaves the parameters and the history exactly as they were. Once it has converged
/// ([`stop_reason`](Lbfgs::stop_reason)) it stays where it is: each further step returns
/// the loss there and moves nothing, until [`reset`](Lbfgs::reset).
#[derive(Debug, Clone)]
pub struct Lbfgs<T> {
    history: usize,
    search: LineSearch,
    tolerance_grad: f64,
    tolerance_change: f64,
    /// The stored pairs, oldest first.
    pairs: Vec<Pair<T>>,
    steps: u64,
    stopped: Option<Convergence>,
    evaluations: Evaluations,
    report: Option<LineSearchReport>,
    kept: Kept<T>,
    direction: Vec<T>,
    trial_grad: Vec<T>,
}

/// The prefix of the kept point's names in the state.
const KEPT: &str = "last.";

/// One curvature pair: a step `s`, the change of the gradient along it `y`, and `1/yᵀs`.
#[derive(Debug, Clone)]
struct Pair<T> {
    s: Vec<T>,
    y: Vec<T>,
    rho: f64,
}

/// Why an [`Lbfgs`] stopped: its typed stop reason.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Convergence {
    /// The largest element of the gradient is within
    /// [`tolerance_grad`](Lbfgs::tolerance_grad).
    GradientTolerance {
        /// `max |∂f/∂wᵢ|` where it stopped.
        max_gradient: f64,
    },
    /// The last step moved no parameter, or changed the loss, by more than
    /// [`tolerance_change`](Lbfgs::tolerance_change).
    ChangeTolerance {
        /// `max |Δwᵢ|` of the last step.
        max_change: f64,
        /// `|Δf|` of the last step.
        loss_change: f64,
    },
    /// No step along the L-BFGS direction, nor along `−∇f` after clearing the history,
    /// met the line search's conditions: the loss cannot be lowered further at this
    /// precision (or the gradient does not describe the loss).
    NoProgress,
}

impl Convergence {
    /// The stop reason recorded in an [`Lbfgs`]'s [`state`](Optimizer::state), if any: what
    /// an [`Observer`](crate::Observer) that sees the optimizer only as `dyn Optimizer`
    /// reads to stop a run when L-BFGS has converged.
    ///
    /// ```
    /// use downhill::optim::{Convergence, Lbfgs, Optimizer};
    ///
    /// let fresh = Lbfgs::<f64>::new(5)?;
    /// assert_eq!(Convergence::from_state(&fresh.state()), None);
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn from_state<T>(state: &StateDict<T>) -> Option<Convergence> {
        let value = |name: &str| state.scalar(name).unwrap_or(f64::NAN);
        Some(match state.scalar("stop")? as u8 {
            1 => Convergence::GradientTolerance {
                max_gradient: value("stop_max_gradient"),
            },
            2 => Convergence::ChangeTolerance {
                max_change: value("stop_max_change"),
                loss_change: value("stop_loss_change"),
            },
            3 => Convergence::NoProgress,
            _ => return None,
        })
    }

    /// As state scalars.
    fn scalars(&self) -> Vec<(String, f64)> {
        let named = |pairs: &[(&str, f64)]| {
            pairs
                .iter()
                .map(|&(n, v)| (n.to_string(), v))
                .collect::<Vec<_>>()
        };
        match *self {
            Convergence::GradientTolerance { max_gradient } => {
                named(&[("stop", 1.0), ("stop_max_gradient", max_gradient)])
            }
            Convergence::ChangeTolerance {
                max_change,
                loss_change,
            } => named(&[
                ("stop", 2.0),
                ("stop_max_change", max_change),
                ("stop_loss_change", loss_change),
            ]),
            Convergence::NoProgress => named(&[("stop", 3.0)]),
        }
    }
}

impl fmt::Display for Convergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Convergence::GradientTolerance { max_gradient } => write!(
                f,
                "the gradient is within tolerance (largest element {max_gradient:.3e})"
            ),
            Convergence::ChangeTolerance {
                max_change,
                loss_change,
            } => write!(
                f,
                "the last step changed little (parameters by at most {max_change:.3e}, the loss \
                 by {loss_change:.3e})"
            ),
            Convergence::NoProgress => f.write_str(
                "no progress: the line search found no acceptable step, along the L-BFGS \
                 direction nor along −∇f",
            ),
        }
    }
}

impl<T: Scalar> Lbfgs<T> {
    /// L-BFGS keeping the last `history` pairs (at least 1; PyTorch's default is 100,
    /// scipy's 10), with a strong Wolfe line search.
    pub fn new(history: usize) -> Result<Self> {
        Ok(Lbfgs {
            history: at_least_one("history", history)?,
            search: LineSearch::strong_wolfe(),
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            pairs: Vec::new(),
            steps: 0,
            stopped: None,
            evaluations: Evaluations::default(),
            report: None,
            kept: Kept::default(),
            direction: Vec::new(),
            trial_grad: Vec::new(),
        })
    }

    /// The line search each iteration takes its step with (default
    /// [`LineSearch::strong_wolfe`], whose curvature condition keeps every pair's `yᵀs`
    /// positive; with [`backtracking`](LineSearch::backtracking) some pairs may be skipped,
    /// and the gradient at each accepted step costs an evaluation of its own). Its
    /// [`initial_step`](LineSearch::initial_step), if set, is the first trial of a search
    /// along `−∇f` (the first, and any after a restart); later searches try `α = 1` first.
    pub fn line_search(mut self, search: LineSearch) -> Self {
        self.search = search;
        self
    }

    /// Stops once the largest gradient element is at most this (finite, ≥ 0; default 1e-7,
    /// PyTorch's).
    pub fn tolerance_grad(mut self, tolerance: f64) -> Result<Self> {
        self.tolerance_grad = non_negative("tolerance_grad", tolerance)?;
        Ok(self)
    }

    /// Stops once a step moves no parameter, or changes the loss, by more than this (finite,
    /// ≥ 0; default 1e-9, PyTorch's).
    pub fn tolerance_change(mut self, tolerance: f64) -> Result<Self> {
        self.tolerance_change = non_negative("tolerance_change", tolerance)?;
        Ok(self)
    }

    /// The most pairs kept.
    pub fn history_size(&self) -> usize {
        self.history
    }
    /// The pairs kept now (at most [`history_size`](Self::history_size)).
    pub fn stored_pairs(&self) -> usize {
        self.pairs.len()
    }
    /// The line search.
    pub fn line_search_value(&self) -> LineSearch {
        self.search
    }
    /// The gradient tolerance.
    pub fn tolerance_grad_value(&self) -> f64 {
        self.tolerance_grad
    }
    /// The change tolerance.
    pub fn tolerance_change_value(&self) -> f64 {
        self.tolerance_change
    }
    /// Iterations taken (steps that moved the parameters).
    pub fn iterations(&self) -> u64 {
        self.steps
    }
    /// Why it stopped, once it has.
    pub fn stop_reason(&self) -> Option<Convergence> {
        self.stopped
    }
    /// The evaluations of the objective its steps have made, in all.
    pub fn evaluations(&self) -> Evaluations {
        self.evaluations
    }
    /// The last step's line search: the step size it accepted and what it cost.
    pub fn last_search(&self) -> Option<LineSearchReport> {
        self.report
    }

    /// Forgets the history, the stop reason and the point it kept: the next step starts
    /// afresh along `−∇f` (the iteration and evaluation counts go on).
    pub fn reset(&mut self) {
        self.pairs.clear();
        self.stopped = None;
        self.report = None;
        self.kept.valid = false;
    }

    /// The search direction the history gives for the gradient `grad`, `−H·grad` with `H` the
    /// two-loop recursion's approximation of the inverse Hessian, written into `out` (with no
    /// history, `−grad`). On a quadratic `½·wᵀAw`, a history of as many `A`-conjugate pairs
    /// as dimensions makes it `−A⁻¹·grad`, the Newton step.
    ///
    /// ```
    /// use downhill::optim::{Lbfgs, Optimizer, StateDict};
    ///
    /// // f = ½(x² + 10·y²): two conjugate pairs s = eᵢ, y = A·eᵢ.
    /// let mut lbfgs = Lbfgs::<f64>::new(2)?;
    /// let state = StateDict {
    ///     steps: 2,
    ///     buffers: vec![
    ///         ("s.0".into(), vec![1.0, 0.0]), ("y.0".into(), vec![1.0, 0.0]),
    ///         ("s.1".into(), vec![0.0, 1.0]), ("y.1".into(), vec![0.0, 10.0]),
    ///     ],
    ///     scalars: vec![],
    /// };
    /// lbfgs.load_state(&state)?;
    /// let mut d = [0.0; 2];
    /// lbfgs.direction(&[3.0, 20.0], &mut d)?; // the gradient at (3, 2)
    /// assert!((d[0] + 3.0).abs() < 1e-15 && (d[1] + 2.0).abs() < 1e-15); // −A⁻¹·g = −(3, 2)
    /// # Ok::<(), downhill::Error>(())
    /// ```
    pub fn direction(&self, grad: &[T], out: &mut [T]) -> Result<()> {
        same_size("Lbfgs::direction", "output length", grad.len(), out.len())?;
        if let Some(p) = self.pairs.first() {
            same_size(
                "Lbfgs::direction",
                "gradient length (the history's)",
                p.s.len(),
                grad.len(),
            )?;
        }
        two_loop(&self.pairs, grad, out);
        Ok(())
    }

    /// Commits a stop where the parameters stand.
    fn stop(&mut self, why: Convergence) -> T {
        self.stopped = Some(why);
        self.kept.loss
    }

    /// The search from the kept point along `−∇f` (`restart`) or the two-loop direction;
    /// `Ok(None)` if no step met the conditions (the failed searches' evaluations counted
    /// into `spent`).
    fn search_from_kept(
        &mut self,
        objective: &mut dyn Objective<T>,
        restart: bool,
        spent: &mut Evaluations,
    ) -> Result<Option<LineSearchReport>> {
        let grad = &self.kept.grad;
        self.direction.resize(grad.len(), T::zero());
        let first = if restart {
            for (d, &g) in self.direction.iter_mut().zip(grad) {
                *d = -g;
            }
            self.search
                .initial_step_value()
                .unwrap_or_else(|| 1.0 / norm(grad))
        } else {
            two_loop(&self.pairs, grad, &mut self.direction);
            1.0
        };
        let start = Start {
            x: &self.kept.x,
            loss: self.kept.loss,
            direction: &self.direction,
            slope: dot(grad, &self.direction),
        };
        match self
            .search
            .run(objective, &start, first, &mut self.trial_grad)
        {
            Ok(report) => Ok(Some(report)),
            Err(e) => match e.kind() {
                ErrorKind::LineSearch { evaluations, .. } => {
                    spent.function += *evaluations as u64;
                    if self.search.evaluates_gradient() {
                        spent.gradient += *evaluations as u64;
                    }
                    Ok(None)
                }
                _ => Err(e),
            },
        }
    }

    /// The gradient at the accepted step, into `trial_grad`, when the search did not
    /// evaluate it (backtracking); the parameters go back to the start if it fails.
    fn gradient_at_step(
        &mut self,
        objective: &mut dyn Objective<T>,
        report: &mut LineSearchReport,
    ) -> Result<()> {
        if report.gradient_at_step() {
            return Ok(());
        }
        self.trial_grad.resize(self.kept.x.len(), T::zero());
        let checked = objective
            .loss_and_grad(&mut self.trial_grad)
            .and_then(|loss| {
                if !loss.is_finite() {
                    return Err(Error::diverged(Quantity::Loss, loss.to_f64_lossless()));
                }
                match self.trial_grad.iter().find(|g| !g.is_finite()) {
                    Some(g) => Err(Error::diverged(Quantity::Gradient, g.to_f64_lossless())),
                    None => Ok(loss),
                }
            });
        match checked {
            Ok(loss) => {
                report.loss = loss.to_f64_lossless();
                report.function_evals += 1;
                report.gradient_evals += 1;
                Ok(())
            }
            Err(e) => {
                objective.params_mut().copy_from_slice(&self.kept.x);
                Err(e)
            }
        }
    }

    /// Stores the pair of the step just taken (from the kept point to the objective's
    /// parameters, with the gradient in `trial_grad`) unless its curvature is too small;
    /// reuses the oldest pair's buffers once the history is full.
    fn store_pair(&mut self, objective: &dyn Objective<T>) {
        let mut pair = if self.pairs.len() >= self.history {
            self.pairs.remove(0)
        } else {
            Pair {
                s: Vec::new(),
                y: Vec::new(),
                rho: 0.0,
            }
        };
        pair.s.clear();
        pair.s.extend(
            objective
                .params()
                .iter()
                .zip(&self.kept.x)
                .map(|(&new, &old)| new - old),
        );
        pair.y.clear();
        pair.y.extend(
            self.trial_grad
                .iter()
                .zip(&self.kept.grad)
                .map(|(&new, &old)| new - old),
        );
        if let Some(rho) = curvature(&pair.s, &pair.y) {
            pair.rho = rho;
            self.pairs.push(pair);
        }
    }
}

/// `1/yᵀs` if the pair's curvature is positive enough to keep (`yᵀs > ε·sᵀs`).
fn curvature<T: Scalar>(s: &[T], y: &[T]) -> Option<f64> {
    let ys = dot(y, s);
    let ss = dot(s, s);
    (ys > T::epsilon().to_f64_lossless() * ss && ys.is_finite()).then(|| 1.0 / ys)
}

/// The two-loop recursion: `out = −H·grad`.
fn two_loop<T: Scalar>(pairs: &[Pair<T>], grad: &[T], out: &mut [T]) {
    out.copy_from_slice(grad);
    let mut alphas = vec![0.0; pairs.len()];
    for (p, a) in pairs.iter().zip(alphas.iter_mut()).rev() {
        *a = p.rho * dot(&p.s, out);
        let at = T::from_f64(*a);
        for (q, &y) in out.iter_mut().zip(&p.y) {
            *q = *q - at * y;
        }
    }
    if let Some(newest) = pairs.last() {
        let gamma = T::from_f64(1.0 / (newest.rho * dot(&newest.y, &newest.y)));
        for q in out.iter_mut() {
            *q = *q * gamma;
        }
    }
    for (p, &a) in pairs.iter().zip(&alphas) {
        let beta = p.rho * dot(&p.y, out);
        let by = T::from_f64(a - beta);
        for (r, &s) in out.iter_mut().zip(&p.s) {
            *r = *r + by * s;
        }
    }
    for r in out.iter_mut() {
        *r = -*r;
    }
}

impl<T: Scalar> Optimizer<T> for Lbfgs<T> {
    /// One iteration; returns the loss before it.
    fn step(&mut self, objective: &mut dyn Objective<T>) -> Result<T> {
        let n = objective.params().len();
        if let Some(p) = self.pairs.first() {
            same_size(
                "Lbfgs::step",
                "history length (the parameter count)",
                n,
                p.s.len(),
            )?;
        }
        if self.stopped.is_some() {
            if self.kept.valid && self.kept.x.as_slice() == objective.params() {
                return Ok(self.kept.loss);
            }
            let loss = objective.loss()?;
            if !loss.is_finite() {
                return Err(Error::diverged(Quantity::Loss, loss.to_f64_lossless()));
            }
            self.evaluations.function += 1;
            return Ok(loss);
        }
        let mut spent = Evaluations::default();
        spent.add(self.kept.refresh(objective)?, None);
        let max_gradient = max_abs(&self.kept.grad);
        if max_gradient <= self.tolerance_grad {
            self.evaluations.absorb(spent);
            return Ok(self.stop(Convergence::GradientTolerance { max_gradient }));
        }
        // The L-BFGS direction, unless there is no history or it does not go downhill;
        // then −∇f, with the history to be cleared if the step is taken.
        let mut restart = self.pairs.is_empty();
        let mut found = self.search_from_kept(objective, restart, &mut spent)?;
        if found.is_none() && !restart {
            restart = true;
            found = self.search_from_kept(objective, restart, &mut spent)?;
        }
        let Some(mut report) = found else {
            self.evaluations.absorb(spent);
            return Ok(self.stop(Convergence::NoProgress));
        };
        self.gradient_at_step(objective, &mut report)?;
        // Committed: nothing below can fail.
        if restart {
            self.pairs.clear();
        }
        self.store_pair(objective);
        let before = self.kept.loss;
        let max_change = step_size(objective.params(), &self.kept.x);
        self.kept
            .reached(objective, report.loss, &mut self.trial_grad);
        self.steps += 1;
        spent.add(0, Some(&report));
        self.evaluations.absorb(spent);
        self.report = Some(report);
        let max_gradient = max_abs(&self.kept.grad);
        let loss_change = (report.loss - before.to_f64_lossless()).abs();
        if max_gradient <= self.tolerance_grad {
            self.stopped = Some(Convergence::GradientTolerance { max_gradient });
        } else if max_change <= self.tolerance_change || loss_change < self.tolerance_change {
            self.stopped = Some(Convergence::ChangeTolerance {
                max_change,
                loss_change,
            });
        }
        Ok(before)
    }

    /// `"lbfgs"`.
    fn name(&self) -> &'static str {
        "lbfgs"
    }

    // Full batch (the default `batching`): the pairs describe one function.

    /// The history as buffers `s.0`, `y.0`, `s.1`, … (oldest first, each as long as the
    /// parameters), and as scalars the evaluation counts and the stop reason.
    fn state(&self) -> StateDict<T> {
        let mut buffers = Vec::with_capacity(2 * self.pairs.len());
        for (i, p) in self.pairs.iter().enumerate() {
            buffers.push((format!("s.{i}"), p.s.clone()));
            buffers.push((format!("y.{i}"), p.y.clone()));
        }
        let mut scalars = self.evaluations.scalars("").to_vec();
        if let Some(stop) = &self.stopped {
            scalars.extend(stop.scalars());
        }
        let mut state = StateDict {
            steps: self.steps,
            buffers,
            scalars,
        };
        self.kept.save(KEPT, &mut state);
        state
    }

    /// Restores a history: pairs `s.i`/`y.i` for `i` from 0 up, at most
    /// [`history_size`](Lbfgs::history_size) of them, all of one length, finite, each with
    /// the positive curvature a stored pair has; and the point the last step reached, with
    /// its loss and gradient (`last.params`, `last.grad`, `last.loss`), if it was kept.
    /// Nothing changes unless all of it fits.
    fn load_state(&mut self, state: &StateDict<T>) -> Result<()> {
        let bad = |problem: String| Error::optimizer_state("lbfgs", problem);
        let kept = Kept::load(state, KEPT).map_err(bad)?;
        let mut len = kept.valid.then_some(kept.x.len());
        let mut pairs: Vec<Pair<T>> = Vec::new();
        while let (Some(s), Some(y)) = (
            state.buffer(&format!("s.{}", pairs.len())),
            state.buffer(&format!("y.{}", pairs.len())),
        ) {
            let i = pairs.len();
            if *len.get_or_insert(s.len()) != s.len() || s.len() != y.len() {
                return Err(bad(format!(
                    "pair {i} has {} and {} values, the rest {}",
                    s.len(),
                    y.len(),
                    len.unwrap_or(0)
                )));
            }
            if s.iter().chain(y).any(|v| !v.is_finite()) {
                return Err(bad(format!("pair {i} holds a value that is not finite")));
            }
            let rho = curvature(s, y).ok_or_else(|| {
                bad(format!(
                    "pair {i} has yᵀs ≤ ε·sᵀs: not a pair L-BFGS would have stored"
                ))
            })?;
            pairs.push(Pair {
                s: s.to_vec(),
                y: y.to_vec(),
                rho,
            });
        }
        let buffers = 2 * pairs.len() + if kept.valid { 2 } else { 0 };
        if pairs.len() > self.history || buffers != state.buffers.len() {
            return Err(bad(format!(
                "{} buffers: expected pairs s.i, y.i from 0 up (each name once, at most {} \
                 pairs) and the last point",
                state.buffers.len(),
                self.history
            )));
        }
        let known = [
            "function_evals",
            "gradient_evals",
            "stop",
            "stop_max_gradient",
            "stop_max_change",
            "stop_loss_change",
        ];
        if let Some((name, _)) = state
            .scalars
            .iter()
            .find(|(n, _)| !known.contains(&n.as_str()) && !n.starts_with(KEPT))
        {
            return Err(bad(format!(
                "scalar {name:?} is not one this optimizer keeps"
            )));
        }
        let evaluations = Evaluations::from_scalars(&state.scalars, "")
            .ok_or_else(|| bad("the evaluation counts are not counts".to_string()))?;
        let stopped = Convergence::from_state(state);
        if state.scalar("stop").is_some() && stopped.is_none() {
            return Err(bad("scalar \"stop\" is not a stop reason".to_string()));
        }
        self.pairs = pairs;
        self.steps = state.steps;
        self.evaluations = evaluations;
        self.stopped = stopped;
        self.report = None;
        self.kept = kept;
        Ok(())
    }
}

/// `max |newᵢ − oldᵢ|`.
fn step_size<T: Scalar>(new: &[T], old: &[T]) -> f64 {
    new.iter()
        .zip(old)
        .map(|(&a, &b)| (a - b).to_f64_lossless().abs())
        .fold(0.0, f64::max)
}
