//! One layer of an [`Mlp`](super::Mlp): where its weights and bias sit in the flat
//! parameter vector, and which kernels its products run on.

use crate::activation::Activation;
use crate::error::Result;
use crate::kernels::narrow::NARROW_MAX;
use crate::matrix::MatRef;
use crate::scalar::Scalar;

/// Where one layer lives in the flat parameter vector, and what follows it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerSpec {
    pub fan_in: usize,
    pub fan_out: usize,
    /// Offset of `W` (`fan_in × fan_out`, row-major); `b` follows it.
    pub w: usize,
    pub b: usize,
    pub act: Option<Activation>,
}

impl LayerSpec {
    /// The layer's weights, `fan_in × fan_out`.
    pub fn weights<'a, T: Scalar>(&self, params: &'a [T]) -> Result<MatRef<'a, T>> {
        MatRef::new(&params[self.w..self.b], self.fan_in, self.fan_out)
    }
    /// The layer's bias, `fan_out` long.
    pub fn bias<'a, T>(&self, params: &'a [T]) -> &'a [T] {
        &params[self.b..self.b + self.fan_out]
    }
    /// Whether the layer's products run on the narrow kernels (few outputs: the class
    /// scores) rather than `gemm`.
    pub fn narrow(&self) -> bool {
        self.fan_out <= NARROW_MAX
    }
}
