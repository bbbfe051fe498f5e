//! What the step-size tests share, on top of `tests/common`: test functions, a dense
//! quadratic, and a wrapper that counts and poisons evaluations.

use downhill::model::{FnObjective, Objective, Params};
use downhill::optim::StateDict;
use downhill::prelude::*;

use crate::common::{bits, Mix};

/// An optimizer's state with its floats as bits: steps, buffers, scalars.
pub type StateBits = (u64, Vec<(String, Vec<u64>)>, Vec<(String, u64)>);

/// A state compared bit for bit (NaN-safe, and −0 ≠ 0).
pub fn state_bits<T: Scalar>(s: &StateDict<T>) -> StateBits {
    (
        s.steps,
        s.buffers
            .iter()
            .map(|(n, b)| (n.clone(), bits(b)))
            .collect(),
        s.scalars
            .iter()
            .map(|(n, v)| (n.clone(), v.to_bits()))
            .collect(),
    )
}

/// `n` seeded uniforms in [-1, 1).
pub fn uniforms(n: usize, seed: u64) -> Vec<f64> {
    Mix(seed).uniforms(n, 1.0)
}

/// `|a − b|∞ / |b|∞`.
pub fn relative(a: &[f64], b: &[f64]) -> f64 {
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / b.iter().fold(0.0f64, |m, y| m.max(y.abs()))
}

/// The gradient of `f` where it stands, its loss, `−∇f`, and the slope along it, `−‖∇f‖²`.
pub fn downhill_from<O: Objective<f64>>(f: &mut O) -> (f64, Vec<f64>, Vec<f64>, f64) {
    let mut g = vec![0.0; f.params().len()];
    let loss = f.loss_and_grad(&mut g).unwrap();
    let d: Vec<f64> = g.iter().map(|x| -x).collect();
    let slope = -g.iter().map(|x| x * x).sum::<f64>();
    (loss, g, d, slope)
}

/// Rosenbrock's function in `x0.len()` dimensions (scipy's `rosen`), from `x0`.
pub fn rosenbrock(x0: Vec<f64>) -> impl Objective<f64> + Clone {
    FnObjective::new(
        x0,
        |x: &[f64]| {
            x.windows(2)
                .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
                .sum()
        },
        |x: &[f64], g: &mut [f64]| {
            g.fill(0.0);
            for i in 0..x.len() - 1 {
                let t = x[i + 1] - x[i] * x[i];
                g[i] += -400.0 * x[i] * t - 2.0 * (1.0 - x[i]);
                g[i + 1] += 200.0 * t;
            }
        },
    )
}

/// The landscape example's valley `½(x² + 50·y²)`, from `x0`.
pub fn valley(x0: [f64; 2]) -> impl Objective<f64> + Clone {
    FnObjective::new(
        x0.to_vec(),
        |p: &[f64]| 0.5 * (p[0] * p[0] + 50.0 * p[1] * p[1]),
        |p: &[f64], g: &mut [f64]| {
            g[0] = p[0];
            g[1] = 50.0 * p[1];
        },
    )
}

/// A one-dimensional function `φ` with derivative `dφ`, at `x = 0`: searched along `d = 1`,
/// the line is the function itself.
pub fn line(phi: fn(f64) -> f64, dphi: fn(f64) -> f64) -> impl Objective<f64> + Clone {
    FnObjective::new(
        vec![0.0],
        move |x: &[f64]| phi(x[0]),
        move |x: &[f64], g: &mut [f64]| g[0] = dphi(x[0]),
    )
}

/// `f(w) = ½·wᵀAw − bᵀw` with `A` symmetric positive definite (row-major, `n × n`), and the
/// start `w0` its objective begins from.
#[derive(Debug, Clone)]
pub struct Spd {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    pub w0: Vec<f64>,
}

impl Spd {
    /// A seeded random SPD matrix `MᵀM + (n/4)·I`, a random `b` and start.
    pub fn random(n: usize, seed: u64) -> Self {
        let m = uniforms(n * n, seed);
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[k * n + i] * m[k * n + j]).sum::<f64>()
                    + if i == j { n as f64 / 4.0 } else { 0.0 };
            }
        }
        Spd {
            a,
            b: uniforms(n, seed + 1),
            w0: uniforms(n, seed + 2),
        }
    }
    pub fn n(&self) -> usize {
        self.w0.len()
    }
    /// `A·v`.
    pub fn times(&self, v: &[f64]) -> Vec<f64> {
        multiply(&self.a, v)
    }
    /// `A⁻¹·v`, by Gaussian elimination with partial pivoting.
    pub fn solve(&self, v: &[f64]) -> Vec<f64> {
        let n = self.n();
        let mut m: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut row = self.a[i * n..(i + 1) * n].to_vec();
                row.push(v[i]);
                row
            })
            .collect();
        for c in 0..n {
            let p = (c..n)
                .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
                .unwrap();
            m.swap(c, p);
            let (top, below) = m.split_at_mut(c + 1);
            let pivot = &top[c];
            for row in below {
                let f = row[c] / pivot[c];
                for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
        let mut x = vec![0.0; n];
        for r in (0..n).rev() {
            let s: f64 = (r + 1..n).map(|k| m[r][k] * x[k]).sum();
            x[r] = (m[r][n] - s) / m[r][r];
        }
        x
    }
    /// The function, from `w0`.
    pub fn objective(&self) -> impl Objective<f64> + Clone {
        let (a, b) = (self.a.clone(), self.b.clone());
        let (a2, b2) = (a.clone(), b.clone());
        FnObjective::new(
            self.w0.clone(),
            move |w: &[f64]| {
                let aw = multiply(&a, w);
                (0..w.len()).map(|i| 0.5 * w[i] * aw[i] - b[i] * w[i]).sum()
            },
            move |w: &[f64], g: &mut [f64]| {
                for ((g, aw), b) in g.iter_mut().zip(multiply(&a2, w)).zip(&b2) {
                    *g = aw - b;
                }
            },
        )
    }
}

/// `A·v` for a square row-major `A`.
fn multiply(a: &[f64], v: &[f64]) -> Vec<f64> {
    a.chunks(v.len())
        .map(|row| row.iter().zip(v).map(|(a, v)| a * v).sum())
        .collect()
}

/// How a [`Watched`] objective poisons an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Poison {
    Loss,
    Gradient,
}

/// An objective that counts its evaluations and, from evaluation number `poison_from` on
/// (counting `loss` and `loss_and_grad` calls alike), returns a NaN loss or a NaN gradient
/// element (the latter from `loss_and_grad` only).
#[derive(Debug, Clone)]
pub struct Watched<O> {
    pub inner: O,
    pub losses: usize,
    pub gradients: usize,
    pub poison_from: Option<usize>,
    pub poison: Poison,
}

impl<O> Watched<O> {
    pub fn new(inner: O) -> Self {
        Watched {
            inner,
            losses: 0,
            gradients: 0,
            poison_from: None,
            poison: Poison::Gradient,
        }
    }
    /// Evaluations so far (loss-only and loss-and-gradient).
    pub fn calls(&self) -> usize {
        self.losses + self.gradients
    }
    /// Poisons the evaluation `k` calls from now, and all after it.
    pub fn poison_in(&mut self, k: usize, poison: Poison) {
        self.poison_from = Some(self.calls() + k);
        self.poison = poison;
    }
    fn poisoned(&self) -> bool {
        self.poison_from.is_some_and(|k| self.calls() >= k)
    }
}

impl<O: Params<f64>> Params<f64> for Watched<O> {
    fn params(&self) -> &[f64] {
        self.inner.params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        self.inner.params_mut()
    }
}

impl<O: Objective<f64>> Objective<f64> for Watched<O> {
    fn loss(&mut self) -> Result<f64> {
        self.losses += 1;
        let loss = self.inner.loss()?;
        // A poisoned gradient shows only where the gradient is evaluated.
        Ok(if self.poisoned() && self.poison == Poison::Loss {
            f64::NAN
        } else {
            loss
        })
    }
    fn loss_and_grad(&mut self, grad: &mut [f64]) -> Result<f64> {
        self.gradients += 1;
        let loss = self.inner.loss_and_grad(grad)?;
        if self.poisoned() {
            match self.poison {
                Poison::Loss => return Ok(f64::NAN),
                Poison::Gradient => grad[grad.len() - 1] = f64::NAN,
            }
        }
        Ok(loss)
    }
}
