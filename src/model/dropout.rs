//! Dropout's masks: which hidden units a training step drops, row by row.
//!
//! Inverted dropout (Srivastava et al., 2014, as PyTorch's `nn.Dropout`): in a training step
//! each hidden unit's output is kept with probability `1 − p` and multiplied by
//! `1 / (1 − p)`, or set to zero; in evaluation the network is used whole, unscaled — the
//! scaling during training already made each unit's expected output what evaluation sees.
//! Backward, the same mask multiplies the unit's gradient.
//!
//! The mask of row `r` of a batch in layer `l` is drawn from its own stream, seeded by the
//! batch's [`TrainingStep`] — `(seed, epoch, step)` — then `l`, then `r`: so it does not
//! depend on which thread runs the row, or on how the batch is cut in blocks; a resumed run
//! draws what a straight one did; and every evaluation of the loss on the same batch (an
//! optimizer's probes, a gradient check's) sees the same masks, so the loss is one smooth
//! function of the parameters and its numeric gradient is the analytic one.

use rand::Rng;

use crate::activation::Activation;
use crate::data::{Batch, Examples, TrainingStep};
use crate::rng::{derive, purpose, stream_rng};
use crate::scalar::Scalar;

/// One batch's dropout: the masks' seed, the keep threshold, and the scale `1 / (1 − p)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dropout<T> {
    key: u64,
    /// A unit is kept when a 32-bit draw is below this: `(1 − p)·2³²`.
    threshold: u64,
    scale: T,
}

impl<T: Scalar> Dropout<T> {
    /// The dropout of a training batch, for a model that drops with probability `p`; `None`
    /// for `p = 0` or a batch without a training step (evaluation).
    pub(crate) fn for_batch<D: Examples + ?Sized>(p: f64, batch: &Batch<'_, T, D>) -> Option<Self> {
        let step = batch.training_step()?;
        (p > 0.0).then(|| Dropout::at(p, step))
    }

    /// The dropout of training step `step`, with probability `p` in `(0, 1)`.
    pub(crate) fn at(p: f64, step: TrainingStep) -> Self {
        let key = derive(
            step.seed,
            &[purpose::DROPOUT, step.epoch as u64, step.step as u64],
        );
        Dropout {
            key,
            threshold: ((1.0 - p) * 4_294_967_296.0).round() as u64,
            scale: T::from_f64(1.0 / (1.0 - p)),
        }
    }

    /// Writes the mask of row `row` (its index in the batch) of hidden layer `layer` into
    /// `out` (one element per unit): `1 / (1 − p)` for a kept unit, 0 for a dropped one.
    pub(crate) fn row_mask(&self, layer: usize, row: usize, out: &mut [T]) {
        let mut rng = stream_rng(derive(self.key, &[layer as u64]), row as u64);
        for pair in out.chunks_mut(2) {
            let bits = rng.next_u64();
            for (m, lane) in pair.iter_mut().zip([bits & 0xFFFF_FFFF, bits >> 32]) {
                *m = if lane < self.threshold {
                    self.scale
                } else {
                    T::zero()
                };
            }
        }
    }

    /// Drops units of `rows` rows of hidden layer `layer`'s output `out` (`width` units
    /// each, the activation `act` applied; the first row is row `first` of the batch): each
    /// kept unit's output is scaled by `1 / (1 − p)` and a dropped one's set to 0, and
    /// `grad_factor` receives what the backward pass multiplies the unit's `dA` by to give
    /// its `dZ`: `f'(a)/(1 − p)` kept, 0 dropped (`f'` through the output before the mask).
    pub(crate) fn apply(
        &self,
        layer: usize,
        first: usize,
        act: Activation,
        out: &mut [T],
        grad_factor: &mut [T],
        width: usize,
    ) {
        let rows = out
            .chunks_exact_mut(width)
            .zip(grad_factor.chunks_exact_mut(width));
        for (i, (a, g)) in rows.enumerate() {
            self.row_mask(layer, first + i, g);
            for (a, g) in a.iter_mut().zip(g.iter_mut()) {
                if *g == T::zero() {
                    *a = T::zero();
                } else {
                    *g = *g * act.derivative_from_output(*a);
                    *a = *a * self.scale;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_a_fraction_p_is_dropped_and_kept_units_are_scaled() {
        for p in [0.1, 0.5, 0.9] {
            let d = Dropout::<f64>::at(p, TrainingStep::new(3, 1, 0));
            let mut mask = vec![0.0; 1000];
            let mut dropped = 0;
            for row in 0..100 {
                d.row_mask(0, row, &mut mask);
                dropped += mask.iter().filter(|&&m| m == 0.0).count();
                assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0 / (1.0 - p)));
            }
            let share = dropped as f64 / 100_000.0;
            assert!((share - p).abs() < 0.01, "p {p}: dropped {share}");
        }
    }

    #[test]
    fn masks_differ_between_rows_layers_and_steps_and_repeat_for_the_same() {
        let draw = |step: usize, layer: usize, row: usize| {
            let mut m = vec![0.0f32; 64];
            Dropout::<f32>::at(0.5, TrainingStep::new(1, 2, step)).row_mask(layer, row, &mut m);
            m
        };
        let base = draw(5, 0, 7);
        assert_eq!(base, draw(5, 0, 7));
        for other in [draw(6, 0, 7), draw(5, 1, 7), draw(5, 0, 8)] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn apply_scales_kept_units_and_factors_in_the_derivative() {
        let d = Dropout::<f64>::at(0.5, TrainingStep::new(0, 1, 0));
        let a0: Vec<f64> = (0..16).map(|i| (i as f64 - 8.0) / 10.0).collect();
        let (mut a, mut g) = (a0.clone(), vec![0.0; 16]);
        d.apply(0, 3, Activation::Tanh, &mut a, &mut g, 8);
        let mut mask = vec![0.0; 8];
        for r in 0..2 {
            d.row_mask(0, 3 + r, &mut mask);
            for (j, &m) in mask.iter().enumerate() {
                let i = r * 8 + j;
                assert_eq!(a[i], if m == 0.0 { 0.0 } else { a0[i] * 2.0 });
                assert_eq!(g[i], m * (1.0 - a0[i] * a0[i]));
            }
        }
    }
}
