//! The step size, chosen by trying: line searches ([`LineSearch`]), and what the optimizers
//! that use them share (a kept point, evaluation counts, vector helpers).

use std::fmt;

use crate::error::{Error, LineSearchFailure, Quantity, Result};
use crate::model::Objective;
use crate::optim::StateDict;
use crate::scalar::Scalar;
use crate::validate::{at_least_one, positive, require, same_size};

/// How a step size is chosen along a direction: [`backtracking`](LineSearch::backtracking)
/// (sufficient decrease) or [`strong_wolfe`](LineSearch::strong_wolfe) (sufficient decrease
/// and curvature). Configuration only, validated by its setters; used by
/// [`GradientDescent::line_search`](crate::optim::Descent::line_search) and
/// [`Lbfgs`](crate::optim::Lbfgs), or directly with [`search`](LineSearch::search).
///
/// Gradient descent with a fixed step `η` asks the user the lecture's question — *what
/// should the step size be?* — and has no answer of its own. A line search answers it at
/// every iteration, along a direction `d` that goes downhill (`∇f·d < 0`), by evaluating the
/// objective on the line `φ(α) = f(w + α·d)` until a step `α` meets its conditions:
///
/// * **sufficient decrease** (Armijo): `φ(α) ≤ φ(0) + c₁·α·φ'(0)` — the loss falls by at least
///   a fraction `c₁` of what the slope promises. Too long a step fails it.
/// * **curvature** (strong Wolfe): `|φ'(α)| ≤ c₂·|φ'(0)|` — the slope has flattened: too
///   short a step, where the loss is still falling steeply, fails it.
///
/// [`backtracking`](LineSearch::backtracking) asks for the first alone: it tries a step and
/// halves it until the loss has fallen enough, and it needs only the loss at each trial.
/// [`strong_wolfe`](LineSearch::strong_wolfe) asks for both, so it also grows a step that is
/// too short: Nocedal & Wright's algorithms 3.5 (bracketing) and 3.6 (zoom), with each new
/// trial the minimum of the cubic through the two nearest points' values and slopes
/// (PyTorch's `line_search_fn="strong_wolfe"` is the same algorithm). Its trials cost a gradient each,
/// and the gradient at the accepted step is what L-BFGS needs for its next iteration anyway.
///
/// Every search counts its evaluations, and a search that finds no acceptable step within its
/// budget fails with [`ErrorKind::LineSearch`](crate::error::ErrorKind::LineSearch), the
/// parameters exactly where they were. A trial whose loss or gradient is not finite refuses
/// the whole search the same way, with
/// [`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged): a step that far is a sign
/// that the first trial is out of scale, not a point to interpolate through.
///
/// ```
/// use downhill::model::FnObjective;
/// use downhill::optim::LineSearch;
/// use downhill::prelude::*;
///
/// // f(x) = x⁴ from x = 1, along d = −f'(1) = −4: the step α = 1 lands at x = −3, f = 81.
/// let mut f = FnObjective::new(
///     vec![1.0],
///     |x: &[f64]| x[0].powi(4),
///     |x: &[f64], g: &mut [f64]| g[0] = 4.0 * x[0].powi(3),
/// );
/// let search = LineSearch::backtracking().initial_step(1.0)?;
/// let report = search.search(&mut f, 1.0, &[4.0], &[-4.0])?;
/// // Halved until the loss fell by at least c₁ = 1e-4 of the slope's promise: α = 1/4.
/// assert_eq!(report.step, 0.25);
/// assert_eq!(f.params(), &[0.0]);
/// assert_eq!((report.function_evals, report.gradient_evals), (3, 0));
/// # Ok::<(), downhill::Error>(())
/// ```
///
/// The settings:
///
/// ```
/// use downhill::optim::LineSearch;
///
/// let wolfe = LineSearch::strong_wolfe().c2(0.1)?.max_evals(40)?;
/// assert_eq!((wolfe.c1_value(), wolfe.c2_value()), (1e-4, Some(0.1)));
/// assert_eq!(wolfe.to_string(), "strong Wolfe (c1 = 0.0001, c2 = 0.1, at most 40 evaluations)");
/// assert!(LineSearch::strong_wolfe().c2(1e-5).is_err()); // c2 must exceed c1
/// assert!(LineSearch::backtracking().c2(0.9).is_err()); // backtracking has no c2
/// # Ok::<(), downhill::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineSearch {
    conditions: Conditions,
    c1: f64,
    max_evals: usize,
    initial_step: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Conditions {
    Armijo { shrink: f64 },
    StrongWolfe { c2: f64 },
}

/// What a line search found: the step, the loss there, and what it cost.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LineSearchReport {
    /// The accepted step size `α`: the parameters are now `w + α·d`.
    pub step: f64,
    /// The loss at the accepted step.
    pub loss: f64,
    /// The first step size tried.
    pub first_step: f64,
    /// The slope `∇f·d` at the start (negative).
    pub slope: f64,
    /// Evaluations of the loss (every trial's).
    pub function_evals: usize,
    /// Evaluations of the gradient (every trial's for strong Wolfe, none for backtracking).
    pub gradient_evals: usize,
}

impl LineSearchReport {
    /// Whether the search evaluated the gradient at the accepted step (strong Wolfe does:
    /// every trial evaluates both; backtracking evaluates only the loss).
    pub fn gradient_at_step(&self) -> bool {
        self.gradient_evals > 0
    }
}

impl LineSearch {
    /// Backtracking on sufficient decrease (Armijo): `c₁ = 1e-4`, each rejected step halved
    /// (shrink 0.5), at most 50 evaluations. Needs the loss alone at each trial.
    pub fn backtracking() -> Self {
        LineSearch {
            conditions: Conditions::Armijo { shrink: 0.5 },
            c1: 1e-4,
            max_evals: 50,
            initial_step: None,
        }
    }

    /// The strong Wolfe conditions, `c₁ = 1e-4` and `c₂ = 0.9` (PyTorch's and scipy's values
    /// for quasi-Newton methods), by bracketing and zoom with cubic interpolation, at most 25
    /// evaluations (PyTorch's `max_ls`). Evaluates the loss and the gradient at each trial.
    pub fn strong_wolfe() -> Self {
        LineSearch {
            conditions: Conditions::StrongWolfe { c2: 0.9 },
            c1: 1e-4,
            max_evals: 25,
            initial_step: None,
        }
    }

    /// The sufficient-decrease constant `c₁`, in `(0, 1)` and below `c₂` for strong Wolfe.
    pub fn c1(mut self, c1: f64) -> Result<Self> {
        let below = match self.conditions {
            Conditions::StrongWolfe { c2 } => c2,
            Conditions::Armijo { .. } => 1.0,
        };
        let why = "must be in (0, 1), and below c2 for strong Wolfe";
        require(c1 > 0.0 && c1 < below, "c1", c1, why)?;
        self.c1 = c1;
        Ok(self)
    }

    /// The curvature constant `c₂` of strong Wolfe, in `(c₁, 1)`: small for a nearly exact
    /// search, 0.9 (the default) for quasi-Newton methods, 0.1 for conjugate gradients.
    pub fn c2(self, value: f64) -> Result<Self> {
        let c1 = self.c1;
        let why = "only the strong Wolfe search has a curvature condition";
        self.set_constant("c2", value, (c1, "must be in (c1, 1)"), why, |c| match c {
            Conditions::StrongWolfe { c2 } => Some(c2),
            Conditions::Armijo { .. } => None,
        })
    }

    /// The factor backtracking shrinks a rejected step by, in `(0, 1)` (default 0.5).
    pub fn shrink(self, value: f64) -> Result<Self> {
        let why = "only the backtracking search shrinks its step by a factor";
        self.set_constant(
            "shrink",
            value,
            (0.0, "must be in (0, 1)"),
            why,
            |c| match c {
                Conditions::Armijo { shrink } => Some(shrink),
                Conditions::StrongWolfe { .. } => None,
            },
        )
    }

    /// What `c2` and `shrink` share: `field` finds the constant in the conditions that have
    /// it (the others refuse it, saying `why`), and `value` must lie strictly between the
    /// lower bound and 1 (else the error says `range`).
    fn set_constant(
        mut self,
        name: &'static str,
        value: f64,
        (low, range): (f64, &'static str),
        why: &'static str,
        field: impl FnOnce(&mut Conditions) -> Option<&mut f64>,
    ) -> Result<Self> {
        let Some(slot) = field(&mut self.conditions) else {
            return Err(Error::param(name, value, why));
        };
        require(value > low && value < 1.0, name, value, range)?;
        *slot = value;
        Ok(self)
    }

    /// The most evaluations one search may make (at least 1).
    pub fn max_evals(mut self, n: usize) -> Result<Self> {
        self.max_evals = at_least_one("max_evals", n)?;
        Ok(self)
    }

    /// The first step size tried by the first search (finite, > 0). Unset, the optimizer
    /// chooses: [`GradientDescent`](crate::optim::GradientDescent) tries its learning rate,
    /// [`Lbfgs`](crate::optim::Lbfgs) and [`search`](LineSearch::search) a step that moves
    /// the parameters a distance of 1 (`α = 1/‖d‖`, as scipy's L-BFGS-B).
    pub fn initial_step(mut self, step: f64) -> Result<Self> {
        self.initial_step = Some(positive("initial_step", step)?);
        Ok(self)
    }

    /// `"backtracking"` or `"strong Wolfe"`.
    pub fn name(&self) -> &'static str {
        match self.conditions {
            Conditions::Armijo { .. } => "backtracking",
            Conditions::StrongWolfe { .. } => "strong Wolfe",
        }
    }
    /// `c₁`.
    pub fn c1_value(&self) -> f64 {
        self.c1
    }
    /// `c₂` (strong Wolfe only).
    pub fn c2_value(&self) -> Option<f64> {
        match self.conditions {
            Conditions::StrongWolfe { c2 } => Some(c2),
            Conditions::Armijo { .. } => None,
        }
    }
    /// The shrink factor (backtracking only).
    pub fn shrink_value(&self) -> Option<f64> {
        match self.conditions {
            Conditions::Armijo { shrink } => Some(shrink),
            Conditions::StrongWolfe { .. } => None,
        }
    }
    /// The most evaluations one search may make.
    pub fn max_evals_value(&self) -> usize {
        self.max_evals
    }
    /// The first step size of the first search, if set.
    pub fn initial_step_value(&self) -> Option<f64> {
        self.initial_step
    }
    /// Whether every trial evaluates the gradient (strong Wolfe), so that the gradient at the
    /// accepted step comes with it.
    pub fn evaluates_gradient(&self) -> bool {
        matches!(self.conditions, Conditions::StrongWolfe { .. })
    }

    /// Searches along `direction` from the objective's parameters `w`, where the loss is
    /// `loss` and the gradient `grad`, for a step `α` this search's conditions accept,
    /// trying [`initial_step`](LineSearch::initial_step) first (unset: `1/‖d‖`). On success
    /// the objective holds `w + α·d` and the report says `α`, the loss there and the
    /// evaluations made; on failure the parameters are `w` again, bit for bit, and the error
    /// is [`ErrorKind::LineSearch`](crate::error::ErrorKind::LineSearch) (no acceptable
    /// step) or [`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged) (a trial's loss
    /// or gradient was not finite).
    pub fn search<T: Scalar>(
        &self,
        objective: &mut dyn Objective<T>,
        loss: T,
        grad: &[T],
        direction: &[T],
    ) -> Result<LineSearchReport> {
        let x = objective.params().to_vec();
        same_size("LineSearch::search", "gradient length", x.len(), grad.len())?;
        let slope = dot(grad, direction);
        let first = match self.initial_step {
            Some(step) => step,
            None => 1.0 / norm(direction),
        };
        let start = Start {
            x: &x,
            loss,
            direction,
            slope,
        };
        let mut trial_grad = Vec::new();
        self.run(objective, &start, first, &mut trial_grad)
    }

    /// The search from `start`, trying `first` first. Trials' gradients (strong Wolfe) go
    /// into `grad`, which holds the accepted step's when the search succeeds. Every error
    /// puts the parameters back to `start.x`.
    pub(crate) fn run<T: Scalar>(
        &self,
        objective: &mut dyn Objective<T>,
        start: &Start<'_, T>,
        first: f64,
        grad: &mut Vec<T>,
    ) -> Result<LineSearchReport> {
        let n = start.x.len();
        same_size(
            "LineSearch::search",
            "parameter count",
            n,
            objective.params().len(),
        )?;
        same_size(
            "LineSearch::search",
            "direction length",
            n,
            start.direction.len(),
        )?;
        if self.evaluates_gradient() && grad.len() != n {
            grad.clear();
            grad.resize(n, T::zero());
        }
        let mut line = Line {
            objective,
            start,
            grad,
            function_evals: 0,
            gradient_evals: 0,
            last_step: 0.0,
            resolution: T::epsilon().to_f64_lossless() * max_abs(start.x),
            reach: max_abs(start.direction),
        };
        let found = match line.check_start(first) {
            Ok(()) => match self.conditions {
                Conditions::Armijo { shrink } => line.backtrack(self, first, shrink),
                Conditions::StrongWolfe { c2 } => line.strong_wolfe(self, first, c2),
            },
            Err(e) => Err(e),
        };
        match found {
            Ok(step_and_loss) => Ok(line.report(step_and_loss, first)),
            Err(e) => {
                line.objective.params_mut().copy_from_slice(start.x);
                Err(e.into_error(self.name(), &line))
            }
        }
    }
}

impl fmt::Display for LineSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (c1 = {}", self.name(), self.c1)?;
        match self.conditions {
            Conditions::Armijo { shrink } => write!(f, ", shrink {shrink}")?,
            Conditions::StrongWolfe { c2 } => write!(f, ", c2 = {c2}")?,
        }
        write!(f, ", at most {} evaluations)", self.max_evals)
    }
}

/// Where a search starts: the parameters `x`, the loss there, the direction and its slope
/// `∇f·d`.
pub(crate) struct Start<'a, T> {
    pub(crate) x: &'a [T],
    pub(crate) loss: T,
    pub(crate) direction: &'a [T],
    pub(crate) slope: f64,
}

/// Why a search stopped without a step: it failed, or an evaluation did.
enum Stop {
    Failed(LineSearchFailure),
    Error(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Error(e)
    }
}

impl Stop {
    fn into_error<T>(self, search: &'static str, line: &Line<'_, '_, T>) -> Error {
        match self {
            Stop::Error(e) => e,
            Stop::Failed(failure) => {
                Error::line_search(search, failure, line.function_evals, line.last_step)
            }
        }
    }
}

/// One point on the line: the step, the loss there and the slope `∇f·d` (strong Wolfe).
#[derive(Debug, Clone, Copy)]
struct Point {
    step: f64,
    loss: f64,
    slope: f64,
}

/// A search under way: the objective on the line `w + α·d`, and what it has cost.
struct Line<'o, 's, T> {
    objective: &'o mut dyn Objective<T>,
    start: &'s Start<'s, T>,
    grad: &'o mut Vec<T>,
    function_evals: usize,
    gradient_evals: usize,
    last_step: f64,
    /// `ε·max|w|`: how far a step must move the largest parameter to change it.
    resolution: f64,
    /// `max|d|`.
    reach: f64,
}

impl<T: Scalar> Line<'_, '_, T> {
    fn check_start(&self, first: f64) -> Result<(), Stop> {
        let slope = self.start.slope;
        if !(slope < 0.0 && slope.is_finite()) {
            return Err(Stop::Failed(LineSearchFailure::NotDescent { slope }));
        }
        if !(first > 0.0 && first.is_finite()) {
            return Err(Stop::Error(Error::param(
                "initial_step",
                first,
                "must be finite and greater than zero",
            )));
        }
        Ok(())
    }

    /// Moves the parameters to `w + α·d`.
    fn move_to(&mut self, step: f64) {
        let a = T::from_f64(step);
        let (x, d) = (self.start.x, self.start.direction);
        for ((p, &x), &d) in self.objective.params_mut().iter_mut().zip(x).zip(d) {
            *p = x + a * d;
        }
        self.last_step = step;
    }

    /// The loss at `w + α·d`, refused unless finite.
    fn loss_at(&mut self, step: f64) -> Result<f64, Stop> {
        self.move_to(step);
        let loss = self.objective.loss()?.to_f64_lossless();
        self.function_evals += 1;
        if !loss.is_finite() {
            return Err(Error::diverged(Quantity::Loss, loss).into());
        }
        Ok(loss)
    }

    /// The loss and the slope `∇f·d` at `w + α·d` (the gradient into `grad`), refused unless
    /// both are finite.
    fn point_at(&mut self, step: f64) -> Result<Point, Stop> {
        self.move_to(step);
        let loss = self.objective.loss_and_grad(self.grad)?.to_f64_lossless();
        self.function_evals += 1;
        self.gradient_evals += 1;
        if !loss.is_finite() {
            return Err(Error::diverged(Quantity::Loss, loss).into());
        }
        if let Some(g) = self.grad.iter().find(|g| !g.is_finite()) {
            return Err(Error::diverged(Quantity::Gradient, g.to_f64_lossless()).into());
        }
        Ok(Point {
            step,
            loss,
            slope: dot(self.grad, self.start.direction),
        })
    }

    /// The sufficient-decrease condition at `p`.
    fn decreases_enough(&self, search: &LineSearch, step: f64, loss: f64) -> bool {
        let start = self.start.loss.to_f64_lossless();
        loss <= start + search.c1 * step * self.start.slope
    }

    /// Whether steps `a` and `b` apart move no parameter by more than rounding.
    fn indistinct(&self, a: f64, b: f64) -> bool {
        (a - b).abs() * self.reach <= self.resolution
    }

    fn budget_left(&self, search: &LineSearch) -> Result<(), Stop> {
        if self.function_evals >= search.max_evals {
            return Err(Stop::Failed(LineSearchFailure::Budget));
        }
        Ok(())
    }

    /// Armijo backtracking: `first`, `first·shrink`, … until the loss falls enough.
    fn backtrack(&mut self, search: &LineSearch, first: f64, shrink: f64) -> Result<f64, Stop> {
        let mut step = first;
        loop {
            self.budget_left(search)?;
            if self.indistinct(step, 0.0) {
                return Err(Stop::Failed(LineSearchFailure::Collapsed));
            }
            let loss = self.loss_at(step)?;
            if self.decreases_enough(search, step, loss) {
                return Ok(loss);
            }
            step *= shrink;
        }
    }

    /// Nocedal & Wright's algorithm 3.5: grow the step until it brackets an acceptable one,
    /// then zoom in on it (algorithm 3.6).
    fn strong_wolfe(&mut self, search: &LineSearch, first: f64, c2: f64) -> Result<f64, Stop> {
        let curvature = c2 * -self.start.slope;
        let mut prev = Point {
            step: 0.0,
            loss: self.start.loss.to_f64_lossless(),
            slope: self.start.slope,
        };
        let mut step = first;
        loop {
            self.budget_left(search)?;
            let p = self.point_at(step)?;
            if !self.decreases_enough(search, p.step, p.loss)
                || (self.function_evals > 1 && p.loss >= prev.loss)
            {
                return self.zoom(search, curvature, prev, p);
            }
            if p.slope.abs() <= curvature {
                return Ok(p.loss);
            }
            if p.slope >= 0.0 {
                return self.zoom(search, curvature, p, prev);
            }
            // Still going down steeply: a longer step, from the cubic through the last two
            // points, at least a little beyond this one and at most ten times it.
            let lowest = p.step + 0.01 * (p.step - prev.step);
            step = cubic_minimum(&prev, &p, lowest, 10.0 * p.step);
            prev = p;
        }
    }

    /// Algorithm 3.6: `lo` satisfies sufficient decrease and has the lowest loss so far, and
    /// the acceptable steps lie between `lo` and `hi`; each trial replaces one of them.
    fn zoom(
        &mut self,
        search: &LineSearch,
        curvature: f64,
        mut lo: Point,
        mut hi: Point,
    ) -> Result<f64, Stop> {
        let mut stalled = false;
        loop {
            self.budget_left(search)?;
            if self.indistinct(lo.step, hi.step) {
                return Err(Stop::Failed(LineSearchFailure::Collapsed));
            }
            let (left, right) = (lo.step.min(hi.step), lo.step.max(hi.step));
            let mut step = cubic_minimum(&lo, &hi, left, right);
            // A trial that hugs an end of the interval shrinks it by little: allow it once,
            // then move it a tenth of the width inside (PyTorch's safeguard).
            let margin = 0.1 * (right - left);
            if (right - step).min(step - left) < margin {
                if stalled || step >= right || step <= left {
                    step = if (step - right).abs() < (step - left).abs() {
                        right - margin
                    } else {
                        left + margin
                    };
                    stalled = false;
                } else {
                    stalled = true;
                }
            } else {
                stalled = false;
            }
            let p = self.point_at(step)?;
            if !self.decreases_enough(search, p.step, p.loss) || p.loss >= lo.loss {
                hi = p;
            } else {
                if p.slope.abs() <= curvature {
                    return Ok(p.loss);
                }
                if p.slope * (hi.step - lo.step) >= 0.0 {
                    hi = lo;
                }
                lo = p;
            }
        }
    }

    fn report(&self, loss: f64, first: f64) -> LineSearchReport {
        LineSearchReport {
            step: self.last_step,
            loss,
            first_step: first,
            slope: self.start.slope,
            function_evals: self.function_evals,
            gradient_evals: self.gradient_evals,
        }
    }
}

/// The minimiser of the cubic that matches the values and slopes at `a` and `b`, clamped to
/// `[low, high]`; the middle of that range when the cubic has no minimum (Nocedal & Wright,
/// eq. 3.59).
fn cubic_minimum(a: &Point, b: &Point, low: f64, high: f64) -> f64 {
    let d1 = a.slope + b.slope - 3.0 * (a.loss - b.loss) / (a.step - b.step);
    let d2_square = d1 * d1 - a.slope * b.slope;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt().copysign(b.step - a.step);
        let step =
            b.step - (b.step - a.step) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2);
        if step.is_finite() {
            return step.clamp(low, high);
        }
    }
    0.5 * (low + high)
}

/// Evaluations of an objective an optimizer made over its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Evaluations {
    /// Of the loss (each `loss` or `loss_and_grad` call).
    pub function: u64,
    /// Of the gradient (each `loss_and_grad` call).
    pub gradient: u64,
}

impl Evaluations {
    /// Counts a search's evaluations, and `start` more of the loss and gradient together.
    pub(crate) fn add(&mut self, start: usize, report: Option<&LineSearchReport>) {
        let (f, g) = report.map_or((0, 0), |r| (r.function_evals, r.gradient_evals));
        self.function += (start + f) as u64;
        self.gradient += (start + g) as u64;
    }

    /// Adds `other`'s counts.
    pub(crate) fn absorb(&mut self, other: Evaluations) {
        self.function += other.function;
        self.gradient += other.gradient;
    }

    /// As state scalars, under `prefix`.
    pub(crate) fn scalars(&self, prefix: &str) -> [(String, f64); 2] {
        [
            (format!("{prefix}function_evals"), self.function as f64),
            (format!("{prefix}gradient_evals"), self.gradient as f64),
        ]
    }

    /// Reads them back from `scalars` (the ones not there stay 0); `None` if one is not a
    /// count.
    pub(crate) fn from_scalars(scalars: &[(String, f64)], prefix: &str) -> Option<Self> {
        let mut counts = Evaluations::default();
        for (name, value) in scalars {
            let slot = match name.strip_prefix(prefix) {
                Some("function_evals") => &mut counts.function,
                Some("gradient_evals") => &mut counts.gradient,
                _ => continue,
            };
            if !(value.fract() == 0.0 && (0.0..=9.007_199_254_740_992e15).contains(value)) {
                return None;
            }
            *slot = *value as u64;
        }
        Some(counts)
    }
}

/// The loss and gradient at the point the last step reached, kept for the next step, which
/// reuses them while the parameters are still that point bit for bit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kept<T> {
    pub(crate) x: Vec<T>,
    pub(crate) loss: T,
    pub(crate) grad: Vec<T>,
    pub(crate) valid: bool,
}

impl<T: Scalar> Kept<T> {
    /// Makes this describe the objective's parameters: as kept while they have not moved,
    /// else evaluated there. Returns the evaluations made (0 or 1). A loss or gradient that
    /// is not finite is [`ErrorKind::Diverged`](crate::error::ErrorKind::Diverged), and
    /// nothing is kept.
    pub(crate) fn refresh(&mut self, objective: &mut dyn Objective<T>) -> Result<usize> {
        if self.valid && self.x.as_slice() == objective.params() {
            return Ok(0);
        }
        self.valid = false;
        self.x.clear();
        self.x.extend_from_slice(objective.params());
        self.grad.clear();
        self.grad.resize(self.x.len(), T::zero());
        self.loss = objective.loss_and_grad(&mut self.grad)?;
        if !self.loss.is_finite() {
            return Err(Error::diverged(Quantity::Loss, self.loss.to_f64_lossless()));
        }
        if let Some(g) = self.grad.iter().find(|g| !g.is_finite()) {
            return Err(Error::diverged(Quantity::Gradient, g.to_f64_lossless()));
        }
        self.valid = true;
        Ok(1)
    }

    /// Adds the kept point to a state, under `prefix`: buffers `params` and `grad`, scalar
    /// `loss` (nothing if none is kept).
    pub(crate) fn save(&self, prefix: &str, state: &mut StateDict<T>) {
        if self.valid {
            state
                .buffers
                .push((format!("{prefix}params"), self.x.clone()));
            state
                .buffers
                .push((format!("{prefix}grad"), self.grad.clone()));
            state
                .scalars
                .push((format!("{prefix}loss"), self.loss.to_f64_lossless()));
        }
    }

    /// The kept point [`save`](Self::save) wrote under `prefix`, checked: all three or none,
    /// of one length, finite. The error says what is wrong.
    pub(crate) fn load(state: &StateDict<T>, prefix: &str) -> Result<Kept<T>, String> {
        let params = state.buffer(&format!("{prefix}params"));
        let grad = state.buffer(&format!("{prefix}grad"));
        let loss = state.scalar(&format!("{prefix}loss"));
        match (params, grad, loss) {
            (None, None, None) => Ok(Kept::default()),
            (Some(x), Some(g), Some(loss))
                if x.len() == g.len()
                    && loss.is_finite()
                    && x.iter().chain(g).all(|v| v.is_finite()) =>
            {
                Ok(Kept {
                    x: x.to_vec(),
                    loss: T::from_f64(loss),
                    grad: g.to_vec(),
                    valid: true,
                })
            }
            _ => Err(format!(
                "the point it kept ({prefix}params, {prefix}grad and {prefix}loss) is \
                 incomplete, of two lengths or not finite"
            )),
        }
    }

    /// Keeps the point the objective holds now, where a search found the loss `loss` and the
    /// gradient `grad` (swapped in: `grad` gets the old buffer).
    pub(crate) fn reached(&mut self, objective: &dyn Objective<T>, loss: f64, grad: &mut Vec<T>) {
        self.x.clear();
        self.x.extend_from_slice(objective.params());
        self.loss = T::from_f64(loss);
        std::mem::swap(&mut self.grad, grad);
        self.valid = true;
    }
}

/// `Σ aᵢ·bᵢ`, summed in `f64`.
pub(crate) fn dot<T: Scalar>(a: &[T], b: &[T]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| a.to_f64_lossless() * b.to_f64_lossless())
        .sum()
}

/// `‖a‖₂`, summed in `f64`.
pub(crate) fn norm<T: Scalar>(a: &[T]) -> f64 {
    dot(a, a).sqrt()
}

/// `max |aᵢ|` (0 for an empty slice; NaN if any element is NaN).
pub(crate) fn max_abs<T: Scalar>(a: &[T]) -> f64 {
    a.iter().fold(0.0, |m: f64, &v| {
        let v = v.to_f64_lossless().abs();
        if v.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(v)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cubic_through_a_parabola_finds_its_minimum() {
        // φ(α) = (α − 3)²: values and slopes at 0 and 1.
        let a = Point {
            step: 0.0,
            loss: 9.0,
            slope: -6.0,
        };
        let b = Point {
            step: 1.0,
            loss: 4.0,
            slope: -4.0,
        };
        assert!((cubic_minimum(&a, &b, 0.0, 10.0) - 3.0).abs() < 1e-12);
        // Clamped to the range asked for.
        assert_eq!(cubic_minimum(&a, &b, 0.0, 2.0), 2.0);
    }
}
