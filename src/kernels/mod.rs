//! The compute kernels: the only `unsafe` code in the crate.
//!
//! * [`gemm`](gemm::gemm) — `C ← α·A·B + β·C` on matrixmultiply's `sgemm`/`dgemm`, behind
//!   checked views. Transposes are strides, never copies.
//! * [`dense`] — a dense layer forward (`act(X·W + b)`, bias and activation fused onto the
//!   block while it is in cache) and backward (`dW += Xᵀ·dZ`, `db += colsum(dZ)`, `dX = dZ·Wᵀ`).
//!
//! * [`elementwise`] — the loops around the products (gathering pixels, the optimizer update,
//!   ReLU, column sums), built for AVX2 when the CPU has it.
//! * [`pool`] — a persistent thread pool for the row-block phases (no thread spawned per
//!   step).
//! * `counting_alloc` (feature `testing`) — a counting global allocator for allocation tests,
//!   re-exported as [`testing::CountingAllocator`](crate::testing::CountingAllocator).
//!
//! The public functions check every shape and return [`Error::Shape`](crate::Error::Shape) on a
//! mismatch, so nothing outside this folder can reach an unchecked pointer.

#[cfg(feature = "testing")]
pub(crate) mod counting_alloc;
pub mod dense;
pub mod elementwise;
pub mod gemm;
pub mod pool;

pub use dense::{column_sums_into, dense_backward, dense_forward};
pub use gemm::{gemm, GemmScalar};
pub use pool::ThreadPool;
