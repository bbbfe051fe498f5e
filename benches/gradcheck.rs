//! The cost of the numeric gradient: `cargo bench --bench gradcheck`.
//!
//! The lecture's point is that the numeric gradient is slow: two loss evaluations per
//! parameter with centred differences. The target is that it costs no more than that — at
//! most `2 × num_params × (one forward pass)` — i.e. the numeric side does no backward pass
//! and no per-coordinate allocation or copying. A full centred gradient of the 784-256-10
//! MLP (203,530 parameters) takes minutes, so the bench measures a fixed set of 256
//! coordinates; the per-coordinate time is linear in nothing else. Compare:
//!
//! * `forward pass (scores)`: the 16-image batch already gathered, forward only;
//! * `loss`: what the numeric side calls — gather the 16 images, forward, loss;
//! * `numeric, 256 coordinates`: ÷ 256 is the cost of one coordinate, to be ≤ 2 × forward.
//! * `analytic gradient`: one forward and backward pass, for the lecture's speed ratio.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{net, SHIPPED};
use criterion::{criterion_group, criterion_main, Criterion};
use downhill::gradcheck::{numeric_partial, Difference};
use downhill::prelude::*;

fn numeric_vs_forward(c: &mut Criterion) {
    let mnist = load_mnist::<f64>(SHIPPED).unwrap();
    let data = mnist.train.take(16);
    let batch = data.all();
    let mut mlp = net::<f64>([784, 256, 10], Activation::Relu, 1);
    mlp.set_threads(1).unwrap();
    let (x, _) = batch.to_matrix().unwrap();
    let mut scores = Matrix::zeros(16, 10).unwrap();
    let n = mlp.num_params();
    // Spread over every tensor: 256 coordinates a stride apart.
    let coords: Vec<usize> = (0..256).map(|k| k * (n / 256)).collect();
    let mut grad = vec![0.0; n];

    let mut g = c.benchmark_group("numeric gradient, 784-256-10 f64, batch 16");
    g.sample_size(20);
    g.bench_function("forward pass (scores)", |b| {
        b.iter(|| mlp.scores(x.as_ref(), scores.as_mut()).unwrap())
    });
    g.bench_function("loss", |b| b.iter(|| black_box(mlp.loss(&batch).unwrap())));
    g.bench_function("analytic gradient", |b| {
        b.iter(|| black_box(mlp.loss_and_grad(&batch, &mut grad).unwrap()))
    });
    g.bench_function("numeric, 256 coordinates (centred)", |b| {
        b.iter(|| {
            for &i in &coords {
                black_box(
                    numeric_partial(&mut mlp.on(&batch), i, 1e-5, Difference::Central).unwrap(),
                );
            }
        })
    });
    g.finish();
}

criterion_group!(benches, numeric_vs_forward);
criterion_main!(benches);
