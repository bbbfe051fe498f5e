//! Divergence: a NaN or infinite gradient is caught before it reaches the parameters, even
//! when the loss is still finite, and the training loop reports it with the epoch, the step
//! and the value; the model keeps the last finite parameters.

use downhill::prelude::*;

/// A model whose loss is always finite, but whose gradient blows up once its first
/// parameter passes `cliff`: the case a loss check alone would miss.
struct Cliff {
    w: Vec<f64>,
    cliff: f64,
}

impl Model<f64> for Cliff {
    fn num_inputs(&self) -> usize {
        1
    }
    fn num_classes(&self) -> usize {
        2
    }
    fn params(&self) -> &[f64] {
        &self.w
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut self.w
    }
    fn loss(&mut self, _batch: &Batch<'_, f64>) -> Result<f64> {
        Ok(1.0 / (1.0 + self.w[0].abs()))
    }
    fn loss_and_grad(&mut self, batch: &Batch<'_, f64>, grad: &mut [f64]) -> Result<f64> {
        let loss = self.loss(batch)?;
        // Moves w0 up by 1 per unit of learning rate, until the cliff.
        grad[0] = if self.w[0] >= self.cliff {
            f64::INFINITY
        } else {
            -1.0
        };
        grad[1] = if self.w[0] > self.cliff {
            f64::NAN
        } else {
            0.0
        };
        Ok(loss)
    }
    fn scores(&mut self, _x: MatRef<'_, f64>, mut out: MatMut<'_, f64>) -> Result<()> {
        for r in 0..out.rows() {
            if let Some(row) = out.row_mut(r) {
                row.fill(0.0);
            }
        }
        Ok(())
    }
}

fn data(rows: usize) -> Dataset<f64> {
    let x = Matrix::from_vec((0..rows).map(|i| i as f64).collect(), rows, 1).unwrap();
    Dataset::from_matrix(x, (0..rows).map(|i| i % 2).collect(), 2).unwrap()
}

#[test]
fn an_infinite_gradient_with_a_finite_loss_stops_the_run_with_epoch_and_step() {
    // Two steps an epoch; w0 goes 0, 1, 2, 3, then the gradient at w0 = 3 is infinite:
    // step 3, in epoch 2.
    let mut model = Cliff {
        w: vec![0.0, 5.0],
        cliff: 3.0,
    };
    for momentum in [0.0, 0.5] {
        model.w = vec![0.0, 5.0];
        let mut sgd = Sgd::new(1.0)
            .unwrap()
            .momentum(momentum)
            .unwrap()
            .batch_size(2)
            .unwrap();
        let mut epochs = 0;
        let err = Trainer::new(10)
            .unwrap()
            .run_with(
                &mut model,
                &mut sgd,
                &data(4),
                None,
                &mut |_: &EpochRecord| epochs += 1,
            )
            .unwrap_err();
        let w0_last = model.w[0];
        match err {
            Error::Diverged {
                epoch,
                step,
                quantity,
                value,
            } => {
                assert_eq!(quantity, "gradient");
                assert_eq!(value, f64::INFINITY);
                if momentum == 0.0 {
                    assert_eq!((epoch, step), (2, 3));
                    assert_eq!(w0_last, 3.0, "the last finite parameters are kept");
                }
            }
            other => panic!("expected a divergence, got {other:?}"),
        }
        assert!(model.w.iter().all(|w| w.is_finite()), "{:?}", model.w);
        assert_eq!(model.w[1], 5.0);
        assert!(epochs >= 1);
    }
}

#[test]
fn gradient_descent_is_stopped_the_same_way() {
    let mut model = Cliff {
        w: vec![0.0, 5.0],
        cliff: 2.0,
    };
    let mut gd = GradientDescent::new(1.0).unwrap();
    let err = Trainer::new(10)
        .unwrap()
        .run(&mut model, &mut gd, &data(4), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "training diverged: gradient inf at epoch 3, step 2 (try a smaller learning rate)"
    );
    assert_eq!(model.w, [2.0, 5.0]);
}

#[test]
fn an_mlp_refuses_a_poisoned_step_and_keeps_its_parameters() {
    let mut mlp = Mlp::<f32>::builder(3)
        .hidden(4, Activation::Tanh)
        .classes(2)
        .build()
        .unwrap();
    let before = mlp.params().to_vec();
    let n = mlp.num_params();
    // On one thread, and on two, where each checks its own share of the step.
    for threads in [1, 2] {
        mlp.set_threads(threads).unwrap();
        for (i, bad) in [
            (0, f32::NAN),
            (n / 2, f32::INFINITY),
            (n - 1, f32::NEG_INFINITY),
        ] {
            let mut step = vec![0.5f32; n];
            step[i] = bad;
            match mlp.apply_step(&step, 0.1).unwrap_err() {
                Error::Diverged {
                    quantity: "gradient",
                    value,
                    ..
                } => assert_eq!(value.to_bits(), f64::from(bad).to_bits()),
                other => panic!("expected a divergence, got {other}"),
            }
            assert_eq!(mlp.params(), &before[..], "{threads} threads, bad at {i}");
        }
    }
    // A finite step that the learning rate scales past the float range.
    let err = mlp.apply_step(&vec![1e30f32; n], 1e20).unwrap_err();
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    assert_eq!(mlp.params(), &before[..]);
    // And a healthy one goes through.
    mlp.apply_step(&vec![1.0f32; n], 0.5).unwrap();
    assert_eq!(mlp.params()[0], before[0] - 0.5);
}
