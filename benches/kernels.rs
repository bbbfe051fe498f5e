//! Kernel and training-step benchmarks: `cargo bench --bench kernels`.
//!
//! Each fused layer kernel is measured next to a bare `sgemm` of the same shape, so the cost of
//! the fusion (bias, activation, column sums) reads directly as the difference.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use downhill::kernels::narrow::{
    narrow_forward, narrow_input_grad, narrow_weight_grad, transpose_into,
};
use downhill::kernels::sparse::{
    preferred_group, sparse_forward, sparse_weight_grad, ColumnBlocks,
};
use downhill::kernels::{column_sums_into, dense_forward, gemm};
use downhill::matrix::Matrix;
use downhill::model::Activation;
use downhill::model::SparseInput;
use downhill::pool::ThreadPool;
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

/// The output layer's three products (10 classes), by `gemm` and by the narrow kernels:
/// `Z = A·W`, `dA = dZ·Wᵀ` (without the activation's derivative, as the bare `gemm`) and
/// `dW = Aᵀ·dZ`.
fn output_layer(c: &mut Criterion) {
    for (batch, hidden) in [(128, 256), (256, 1024)] {
        let classes = 10;
        let a = filled(batch, hidden, 6);
        let w = filled(hidden, classes, 7);
        let dz = filled(batch, classes, 8);
        let b = vec![0.0f32; classes];
        let mut wt = Vec::new();
        transpose_into(w.as_ref(), &mut wt);
        let wt = Matrix::from_vec(wt, classes, hidden).unwrap();
        let mut z = Matrix::<f32>::zeros(batch, classes).unwrap();
        let mut da = Matrix::<f32>::zeros(batch, hidden).unwrap();
        let mut dw = Matrix::<f32>::zeros(hidden, classes).unwrap();
        let mut g = c.benchmark_group(format!("output layer {batch}x{hidden}x{classes}"));
        g.bench_function("forward gemm", |bn| {
            bn.iter(|| gemm(1.0, a.as_ref(), w.as_ref(), 0.0, z.as_mut()).unwrap())
        });
        g.bench_function("forward narrow", |bn| {
            bn.iter(|| narrow_forward(a.as_ref(), wt.as_ref(), &b, None, z.as_mut()).unwrap())
        });
        g.bench_function("input grad gemm", |bn| {
            bn.iter(|| gemm(1.0, dz.as_ref(), w.as_ref().t(), 0.0, da.as_mut()).unwrap())
        });
        g.bench_function("input grad narrow", |bn| {
            bn.iter(|| narrow_input_grad(dz.as_ref(), wt.as_ref(), None, da.as_mut()).unwrap())
        });
        g.bench_function("weight grad gemm", |bn| {
            bn.iter(|| gemm(1.0, a.as_ref().t(), dz.as_ref(), 0.0, dw.as_mut()).unwrap())
        });
        g.bench_function("weight grad narrow", |bn| {
            bn.iter(|| narrow_weight_grad(a.as_ref(), dz.as_ref(), 0.0, dw.as_mut()).unwrap())
        });
        g.finish();
        black_box((&z, &da, &dw));
    }
}

/// The shipped training digits as bytes (28 × 28), or `None` if the data is missing.
fn shipped_digits() -> Option<(Vec<u8>, usize)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let (bytes, rows, cols) =
        downhill::data::idx::read_images(format!("{dir}/train-images-idx3-ubyte.gz")).ok()?;
    (cols == 784).then_some((bytes, rows))
}

/// Digits made denser or sparser: `dilate` rounds of a 3 × 3 maximum filter thicken every
/// stroke (density 0.19 → 0.32, 0.44, 0.56, 0.67, 0.85 after 1, 2, 3, 4, 6), a `threshold`
/// keeps only the pixels above it (thinner strokes: 0.12 above 160, about 0.05 above 254),
/// and `lit` adds 1 to every pixel (density 1).
fn reshaped(digits: &[u8], threshold: u8, dilate: usize, lit: bool) -> Vec<u8> {
    let mut out: Vec<u8> = digits
        .iter()
        .map(|&p| if p > threshold { p } else { 0 })
        .collect();
    for _ in 0..dilate {
        let src = out.clone();
        for (img, dst) in src.chunks_exact(784).zip(out.chunks_exact_mut(784)) {
            for r in 0..28usize {
                for c in 0..28usize {
                    let mut m = 0;
                    for rr in r.saturating_sub(1)..(r + 2).min(28) {
                        for cc in c.saturating_sub(1)..(c + 2).min(28) {
                            m = m.max(img[rr * 28 + cc]);
                        }
                    }
                    dst[r * 28 + c] = m;
                }
            }
        }
    }
    if lit {
        out.iter_mut().for_each(|p| *p = p.saturating_add(1));
    }
    out
}

/// The density variants of the shipped digits the crossover is measured on.
fn density_variants(digits: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let variants = [
        (254, 0, false),
        (160, 0, false),
        (0, 0, false),
        (0, 1, false),
        (0, 2, false),
        (0, 3, false),
        (0, 4, false),
        (0, 6, false),
        (0, 0, true),
    ];
    for (threshold, dilate, lit) in variants {
        let bytes = reshaped(digits, threshold, dilate, lit);
        let density = bytes.iter().filter(|&&b| b != 0).count() as f64 / bytes.len() as f64;
        v.push((format!("density {density:.2}"), bytes));
    }
    v
}

/// The first layer's two products, sparse kernels against dense, on a batch of digits made
/// sparser and denser (see [`reshaped`]): the kernels' side of `SPARSE_CROSSOVER`
/// (`src/model/mlp.rs`; the step benchmark by density below is the whole step's side).
fn first_layer_by_density(c: &mut Criterion) {
    let Some((digits, n)) = shipped_digits() else {
        eprintln!("shipped data missing: skipping the first-layer benchmarks");
        return;
    };
    for (batch, hidden) in [(128, 256), (256, 1024)] {
        let inputs = 784;
        let w = filled(inputs, hidden, 2);
        let b = vec![0.1f32; hidden];
        let dz = filled(batch, hidden, 3);
        let mut out = Matrix::<f32>::zeros(batch, hidden).unwrap();
        let mut dw = Matrix::<f32>::zeros(inputs, hidden).unwrap();
        let mut g = c.benchmark_group(format!("first layer {batch}x{inputs}x{hidden}"));
        g.sample_size(20)
            .warm_up_time(std::time::Duration::from_millis(300))
            .measurement_time(std::time::Duration::from_secs(1));
        for (name, bytes) in density_variants(&digits) {
            let rows: Vec<usize> = (0..batch).map(|i| (i * 61) % n).collect();
            let mut x = Matrix::<f32>::zeros(batch, inputs).unwrap();
            let mut entries = Vec::new();
            for (k, &r) in rows.iter().enumerate() {
                let img = &bytes[r * inputs..(r + 1) * inputs];
                for (c, &p) in img.iter().enumerate() {
                    x.as_mut_slice()[k * inputs + c] = f32::from(p) / 255.0;
                }
                entries.push(
                    img.iter()
                        .enumerate()
                        .filter(|(_, &p)| p != 0)
                        .map(|(c, &p)| (c, f32::from(p) / 255.0))
                        .collect(),
                );
            }
            let a = ColumnBlocks::from_rows(inputs, preferred_group(), &entries).unwrap();
            g.bench_function(format!("forward dense {name}"), |bn| {
                bn.iter(|| dense_forward(x.as_ref(), w.as_ref(), &b, None, out.as_mut()).unwrap())
            });
            g.bench_function(format!("forward sparse {name}"), |bn| {
                bn.iter(|| {
                    sparse_forward(&[&a], 0..inputs, w.as_ref(), Some(&b), None, out.as_mut())
                        .unwrap()
                })
            });
            g.bench_function(format!("weight grad dense {name}"), |bn| {
                bn.iter(|| gemm(1.0, x.as_ref().t(), dz.as_ref(), 0.0, dw.as_mut()).unwrap())
            });
            let mut packed = Vec::new();
            g.bench_function(format!("weight grad sparse {name}"), |bn| {
                bn.iter(|| {
                    sparse_weight_grad(
                        &[&a],
                        0..inputs,
                        dz.as_ref(),
                        0.0,
                        None,
                        dw.as_mut(),
                        &mut packed,
                    )
                    .unwrap()
                })
            });
        }
        g.finish();
        black_box((&out, &dw));
    }
}

/// One SGD step (784-256-10, batch 128, one thread, standardised pixels) with the sparse
/// first layer and with the dense one, on the digits made sparser and denser: where the two
/// cross is `SPARSE_CROSSOVER` (`src/model/mlp.rs`).
fn step_by_density(c: &mut Criterion) {
    let Some((digits, n)) = shipped_digits() else {
        return;
    };
    let labels: Vec<usize> = (0..n).map(|i| i % 10).collect();
    let mut g = c.benchmark_group("sgd step by density 784-256-10 b128");
    g.sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    for (name, bytes) in density_variants(&digits) {
        let data = Dataset::<f32>::from_bytes(bytes, 784, labels.clone(), 10)
            .unwrap()
            .with_transform(FeatureTransform::uniform(784, 1.0 / 255.0, 0.0))
            .unwrap();
        let standardize = FeatureTransform::standardize(&data, 0.01).unwrap();
        let data = data.with_transform(standardize).unwrap();
        let idx: Vec<usize> = (0..128).map(|i| (i * 61) % n).collect();
        let batch = data.batch(&idx).unwrap();
        for (path, input) in [
            ("sparse", SparseInput::Always),
            ("dense", SparseInput::Never),
        ] {
            let mut mlp = Mlp::<f32>::builder(784)
                .hidden(256, Activation::Relu)
                .classes(10)
                .sparse_input(input)
                .build()
                .unwrap();
            let mut sgd = Sgd::new(0.01f32).unwrap().momentum(0.9).unwrap();
            g.bench_function(format!("{path} {name}"), |bn| {
                bn.iter(|| sgd.step(&mut mlp.on(&batch)).unwrap())
            });
        }
    }
    g.finish();
}

// A user's wrapper around an `Mlp` that forwards its fast path (the tests' own).
#[path = "../tests/common/logging.rs"]
mod logging;

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
        // The same step without the model stepping `W₁` in its kernel (`StepOffer`): the
        // gradient written whole, then one pass over parameters, gradient and velocity.
        let mut kept = sgd.clone().keep_gradient(true);
        g.bench_function(format!("{name}, gradient kept"), |bn| {
            bn.iter(|| kept.step(&mut mlp.on(&batch)).unwrap())
        });
    }
    // Through a wrapper that logs each loss and forwards the fast path (one method): the
    // same step, the wrapper's cost on top.
    for threads in [1, 2] {
        mlp.set_threads(threads).unwrap();
        let mut logged = logging::Logging::new(mlp.clone());
        let mut bare = mlp.clone();
        let mut sgd = Sgd::new(0.01f32).unwrap().momentum(0.9).unwrap();
        let mut sgd_bare = sgd.clone();
        let idx: Vec<usize> = (0..128).map(|i| (i * 61) % train.len()).collect();
        let batch = train.batch(&idx).unwrap();
        g.bench_function(format!("batch 128 threads {threads}, bare"), |bn| {
            bn.iter(|| sgd_bare.step(&mut bare.on(&batch)).unwrap())
        });
        g.bench_function(
            format!("batch 128 threads {threads}, logging wrapper"),
            |bn| bn.iter(|| sgd.step(&mut logged.on(&batch)).unwrap()),
        );
    }
    // The dense path on one thread, for the roofline ("roofline: the 5 products of a step").
    let mut dense = Mlp::<f32>::builder(784)
        .hidden(256, Activation::Relu)
        .classes(10)
        .sparse_input(SparseInput::Never)
        .build()
        .unwrap();
    dense.set_threads(1).unwrap();
    let mut sgd = Sgd::new(0.01f32).unwrap().momentum(0.9).unwrap();
    let idx: Vec<usize> = (0..128).map(|i| (i * 61) % train.len()).collect();
    let batch = train.batch(&idx).unwrap();
    g.bench_function("dense batch 128 threads 1", |bn| {
        bn.iter(|| sgd.step(&mut dense.on(&batch)).unwrap())
    });
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

/// One round trip of the model's thread pool with nothing to do (2 threads: the caller and
/// one worker): what each of a step's five parallel phases pays before any work. Run back to
/// back, so the worker is still spinning when the next job comes, as in training.
fn pool_round_trip(c: &mut Criterion) {
    let pool = ThreadPool::new(2).unwrap();
    c.bench_function("thread pool round trip, 2 threads", |bn| {
        bn.iter(|| {
            pool.run(&|t| {
                black_box(t);
            })
        })
    });
}

criterion_group!(
    benches,
    pool_round_trip,
    layer_kernels,
    output_layer,
    first_layer_by_density,
    step_by_density,
    training_step
);
criterion_main!(benches);
