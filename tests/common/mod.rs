//! What the integration tests share: a deterministic generator for test data, small
//! datasets, the toy objectives the optimizer tests run on, and temporary files.
//!
//! Each test binary compiles this module and uses a different part of it, so unused items
//! are expected here (and only here).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use downhill::model::{Objective, Params};
use downhill::prelude::*;

pub mod logging;

/// The shipped MNIST subset (8000 train, 2000 test digits), in this repository.
pub const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");

/// SplitMix64: a tiny deterministic generator for test data.
#[derive(Debug, Clone)]
pub struct Mix(pub u64);

impl Mix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    /// `n` uniforms in [-a, a).
    pub fn uniforms(&mut self, n: usize, a: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform() * a).collect()
    }
}

/// `n` rows of `f` features uniform in [-scale, scale), labelled by the sign of the first
/// feature (2 classes).
pub fn synthetic<T: Scalar>(n: usize, f: usize, scale: f64, seed: u64) -> Dataset<T> {
    let x = Mix(seed).uniforms(n * f, scale);
    let labels = (0..n).map(|i| usize::from(x[i * f] > 0.0)).collect();
    let x = x.into_iter().map(T::from_f64).collect();
    Dataset::from_matrix(Matrix::from_vec(x, n, f).unwrap(), labels, 2).unwrap()
}

/// Four points of the plane in two classes, linearly separable.
pub fn blobs() -> Dataset<f64> {
    let x = Matrix::from_vec(vec![0.0, 1.0, 1.0, 0.0, 0.9, 0.1, 0.2, 0.8], 4, 2).unwrap();
    Dataset::from_matrix(x, vec![1, 0, 0, 1], 2).unwrap()
}

/// `n` points in the square, class 1 iff `u + 0.5·v > 0`, none within 0.2 of the boundary:
/// linearly separable with a margin.
pub fn separable(n: usize, seed: u64) -> Dataset<f64> {
    let mut rng = Mix(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    while y.len() < n {
        let (u, v) = (rng.uniform(), rng.uniform());
        let m = u + 0.5 * v;
        if m.abs() < 0.2 {
            continue;
        }
        x.extend_from_slice(&[u, v]);
        y.push(usize::from(m > 0.0));
    }
    Dataset::from_matrix(Matrix::from_vec(x, n, 2).unwrap(), y, 2).unwrap()
}

/// An MLP with one hidden layer, widths `[inputs, hidden, classes]`, the hidden layer's
/// activation `act`, its weights drawn from `seed`.
pub fn net<T: Scalar>(widths: [usize; 3], act: Activation, seed: u64) -> Mlp<T> {
    let [inputs, hidden, classes] = widths;
    Mlp::<T>::builder(inputs)
        .hidden(hidden, act)
        .classes(classes)
        .seed(seed)
        .build()
        .unwrap()
}

/// Minibatch SGD with momentum `mu`: learning rate `lr`, batches of `batch`.
pub fn momentum_sgd<T: Scalar>(lr: T, mu: f64, batch: usize) -> Sgd<T> {
    Sgd::new(lr)
        .unwrap()
        .momentum(mu)
        .unwrap()
        .batch_size(batch)
        .unwrap()
}

/// Every update rule, with PyTorch's defaults (momentum and Nesterov at 0.9).
pub fn every_rule() -> Vec<UpdateRule> {
    vec![
        UpdateRule::plain(),
        UpdateRule::momentum(0.9).unwrap(),
        UpdateRule::nesterov(0.9).unwrap(),
        UpdateRule::rmsprop(),
        UpdateRule::adam(),
        UpdateRule::adamw(),
    ]
}

/// The bits of a float vector, for bit-for-bit comparisons with readable failures.
pub fn bits<T: Scalar>(xs: &[T]) -> Vec<u64> {
    xs.iter().map(|x| x.to_f64_lossless().to_bits()).collect()
}

/// `f(w) = ½ Σ λᵢ wᵢ²`: curvature λᵢ along axis i. No data: the objective is the function.
#[derive(Debug, Clone)]
pub struct Quadratic {
    pub curvature: Vec<f64>,
    pub w: Vec<f64>,
}

impl Quadratic {
    /// The lecture's bowl `w₀² + 2·w₁²` (curvatures 2 and 4) at `(1, −1)`.
    pub fn bowl() -> Quadratic {
        Quadratic {
            curvature: vec![2.0, 4.0],
            w: vec![1.0, -1.0],
        }
    }
}

impl Params<f64> for Quadratic {
    downhill::forward_params!(f64, w);
}

impl Objective<f64> for Quadratic {
    fn loss(&mut self) -> Result<f64> {
        Ok(0.5
            * self
                .curvature
                .iter()
                .zip(&self.w)
                .map(|(l, w)| l * w * w)
                .sum::<f64>())
    }
    fn loss_and_grad(&mut self, grad: &mut [f64]) -> Result<f64> {
        for ((g, l), w) in grad.iter_mut().zip(&self.curvature).zip(&self.w) {
            *g = l * w;
        }
        self.loss()
    }
}

/// An objective whose loss is always finite, but whose gradient blows up once its first
/// parameter reaches `cliff` (infinite there, NaN beyond): the case a loss check alone
/// would miss. Below the cliff the gradient is `(−1, 0)`, so plain descent moves `w₀` up by
/// the learning rate each step.
#[derive(Debug, Clone)]
pub struct Cliff {
    pub w: Vec<f64>,
    pub cliff: f64,
}

impl Params<f64> for Cliff {
    downhill::forward_params!(f64, w);
}

impl Objective<f64> for Cliff {
    fn loss(&mut self) -> Result<f64> {
        Ok(1.0 / (1.0 + self.w[0].abs()))
    }
    fn loss_and_grad(&mut self, grad: &mut [f64]) -> Result<f64> {
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
        self.loss()
    }
}

/// A fresh directory under the system's temporary one, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("downhill-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An IDX file of unsigned bytes with `dims` and `data`.
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

/// `bytes`, gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Asserts that `result` is an `Err` whose [`kind`](downhill::Error::kind) matches `pattern`
/// (with an optional `if` guard), showing the kind it got if not; evaluates to the error.
///
/// ```ignore
/// let err = assert_kind!(
///     Sgd::<f32>::new(0.0),
///     ErrorKind::InvalidParameter { name: "learning_rate", .. }
/// );
/// ```
#[allow(unused_macros)]
macro_rules! assert_kind {
    ($result:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $result {
            // Not the value itself: it may be a whole dataset.
            Ok(value) => panic!(
                "expected an error matching {}, got Ok({})",
                stringify!($pattern),
                std::any::type_name_of_val(&value)
            ),
            Err(err) => {
                let err: downhill::Error = err;
                assert!(
                    matches!(err.kind(), $pattern $(if $guard)?),
                    "expected an error matching {}, got {:?}",
                    stringify!($pattern),
                    err.kind()
                );
                err
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use assert_kind;

/// The pixel pattern of the images [`write_mnist`] writes: pixel `k` (counting through all
/// images) is `k · 13 mod 256`.
pub fn pixels(n: usize) -> Vec<u8> {
    (0..n).map(|k| (k * 13 % 256) as u8).collect()
}

/// An IDX images file of `count` images of `rows × cols`, with [`pixels`].
pub fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    idx(
        &[count, rows, cols],
        &pixels((count * rows * cols) as usize),
    )
}

/// Writes a valid MNIST-format directory into `dir` (plain files): `train` and `test` are
/// the labels, images are `rows × cols` with [`pixels`].
pub fn write_mnist(dir: &TempDir, rows: u32, cols: u32, train: &[u8], test: &[u8]) {
    for (prefix, labels) in [("train", train), ("t10k", test)] {
        let images = idx_images(labels.len() as u32, rows, cols);
        dir.write(&format!("{prefix}-images-idx3-ubyte"), &images);
        dir.write(
            &format!("{prefix}-labels-idx1-ubyte"),
            &idx(&[labels.len() as u32], labels),
        );
    }
}

/// Byte `j` of image `k`'s pixels in the CIFAR-10 batches [`cifar_batch`] writes:
/// `(k · 131 + j · 7) mod 256`, so every image and every channel differs.
pub fn cifar_pixel(k: usize, j: usize) -> u8 {
    ((k * 131 + j * 7) % 256) as u8
}

/// A CIFAR-10 batch file: one 3073-byte record per label, image `first + i`'s pixels by
/// [`cifar_pixel`].
pub fn cifar_batch(first: usize, labels: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(labels.len() * 3073);
    for (i, &label) in labels.iter().enumerate() {
        bytes.push(label);
        bytes.extend((0..3072).map(|j| cifar_pixel(first + i, j)));
    }
    bytes
}

/// Writes a CIFAR-10 directory into `dir`: `data_batch_{i+1}.bin` for each of `train` (image
/// numbers continuing from one file to the next) and `test_batch.bin` (images numbered from
/// 1000).
pub fn write_cifar(dir: &Path, train: &[&[u8]], test: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    let mut first = 0;
    for (i, labels) in train.iter().enumerate() {
        let path = dir.join(format!("data_batch_{}.bin", i + 1));
        fs::write(path, cifar_batch(first, labels)).unwrap();
        first += labels.len();
    }
    fs::write(dir.join("test_batch.bin"), cifar_batch(1000, test)).unwrap();
}
