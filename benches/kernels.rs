//! Kernel and training-step benchmarks: `cargo bench --bench kernels`.
//!
//! Each fused layer kernel is measured next to a bare `sgemm` of the same shape, so the cost of
//! the fusion (bias, activation, column sums) reads directly as the difference.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use downhill::kernels::{column_sums_into, dense_forward, gemm};
use downhill::matrix::Matrix;
use downhill::model::Activation;
use downhill::prelude::*;

fn filled(rows: usize, cols: usize, seed: u32) -> Matrix<f32> {
    let mut m = Matrix::zeros(rows, cols).unwrap();
    let mut s = seed.wrapping_mul(2654435761).max(1);
    for v in m.as_mut_slice() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        *v = (s as f32 / u32::MAX as f32) - 0.5;
    }
    m
}

fn layer_kernels(c: &mut Criterion) {
    let (batch, inputs, hidden) = (128, 784, 256);
    let x = filled(batch, inputs, 1);
    let w = filled(inputs, hidden, 2);
    let b = vec![0.1f32; hidden];
    let dz = filled(batch, hidden, 3);
    let mut out = Matrix::<f32>::zeros(batch, hidden).unwrap();
    let mut dw = Matrix::<f32>::zeros(inputs, hidden).unwrap();
    let mut db = vec![0.0f32; hidden];

    let mut g = c.benchmark_group("layer 128x784x256");
    g.bench_function("bare sgemm X·W", |bn| {
        bn.iter(|| gemm(1.0, x.as_ref(), w.as_ref(), 0.0, out.as_mut()).unwrap())
    });
    g.bench_function("dense_forward relu", |bn| {
        bn.iter(|| {
            dense_forward(
                x.as_ref(),
                w.as_ref(),
                &b,
                Some(Activation::Relu),
                out.as_mut(),
            )
            .unwrap()
        })
    });
    g.bench_function("bare sgemm Xᵀ·dZ", |bn| {
        bn.iter(|| gemm(1.0, x.as_ref().t(), dz.as_ref(), 1.0, dw.as_mut()).unwrap())
    });
    g.bench_function("backward: dW = Xᵀ·dZ and db = colsum(dZ)", |bn| {
        bn.iter(|| {
            gemm(1.0, x.as_ref().t(), dz.as_ref(), 0.0, dw.as_mut()).unwrap();
            column_sums_into(dz.as_ref(), 0.0, &mut db).unwrap();
        })
    });
    g.finish();
    black_box((&out, &dw, &db));

    // The roofline of one SGD step of the 784-256-10 MLP at batch 128: its five products as
    // bare sgemm calls, back to back, nothing else. Compare with "sgd step/batch 128 threads 1".
    let a1 = filled(batch, hidden, 4);
    let w2 = filled(hidden, 10, 5);
    let mut s2 = Matrix::<f32>::zeros(batch, 10).unwrap();
    let mut dw2 = Matrix::<f32>::zeros(hidden, 10).unwrap();
    let mut da1 = Matrix::<f32>::zeros(batch, hidden).unwrap();
    c.bench_function("roofline: the 5 products of a step, bare sgemm", |bn| {
        bn.iter(|| {
            gemm(1.0, x.as_ref(), w.as_ref(), 0.0, out.as_mut()).unwrap();
            gemm(1.0, a1.as_ref(), w2.as_ref(), 0.0, s2.as_mut()).unwrap();
            gemm(1.0, a1.as_ref().t(), s2.as_ref(), 0.0, dw2.as_mut()).unwrap();
            gemm(1.0, s2.as_ref(), w2.as_ref().t(), 0.0, da1.as_mut()).unwrap();
            gemm(1.0, x.as_ref().t(), dz.as_ref(), 0.0, dw.as_mut()).unwrap();
        })
    });
}

fn training_step(c: &mut Criterion) {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let Ok(mnist) = load_mnist::<f32>(shipped) else {
        eprintln!("shipped data missing: skipping training benchmarks");
        return;
    };
    let train = mnist.train;
    let mut mlp = Mlp::<f32>::builder(784)
        .hidden(256, Activation::Relu)
        .classes(10)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("sgd step 784-256-10");
    for (batch_size, threads) in [(128, 1), (128, 2), (256, 1), (256, 2)] {
        mlp.set_threads(threads).unwrap();
        let mut sgd = Sgd::new(0.01f32).unwrap().momentum(0.9).unwrap();
        sgd = sgd.batch_size(batch_size).unwrap();
        let idx: Vec<usize> = (0..batch_size).map(|i| (i * 61) % train.len()).collect();
        let batch = train.batch(&idx).unwrap();
        let name = format!("batch {batch_size} threads {threads}");
        g.bench_function(&name, |bn| {
            bn.iter(|| sgd.step(&mut mlp.on(&batch)).unwrap())
        });
    }
    g.finish();
    mlp.set_threads(1).unwrap();
    let mut grad = vec![0.0f32; mlp.num_params()];
    let mut g = c.benchmark_group("full batch");
    g.sample_size(10);
    g.bench_function("loss_and_grad 8000 images", |bn| {
        bn.iter(|| mlp.loss_and_grad(&train.all(), &mut grad).unwrap())
    });
    g.finish();
}

criterion_group!(benches, layer_kernels, training_step);
criterion_main!(benches);
