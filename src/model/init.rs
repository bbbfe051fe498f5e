//! How a layer's weights are drawn at construction (biases start at zero).

use crate::activation::Activation;

/// A weight initialisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Xavier/Glorot normal: N(0, 2 / (fan_in + fan_out)). Keeps the variance of σ and tanh
    /// layers' outputs and gradients roughly constant from layer to layer.
    Xavier,
    /// He normal: N(0, 2 / fan_in). The same idea for ReLU, which zeroes half its inputs.
    He,
    /// N(0, std²) with a fixed standard deviation, like the lecture's `randn * 0.0001`.
    Normal(f64),
    /// All weights zero.
    Zeros,
}

impl Init {
    /// The initialisation that suits a layer followed by `act`: He for ReLU, Xavier
    /// otherwise (and for an affine output layer).
    pub fn for_activation(act: Option<Activation>) -> Init {
        match act {
            Some(Activation::Relu) => Init::He,
            _ => Init::Xavier,
        }
    }

    /// The standard deviation of the weights of a `fan_in × fan_out` layer.
    pub fn std_dev(self, fan_in: usize, fan_out: usize) -> f64 {
        match self {
            Init::Xavier => (2.0 / (fan_in + fan_out).max(1) as f64).sqrt(),
            Init::He => (2.0 / fan_in.max(1) as f64).sqrt(),
            Init::Normal(std) => std,
            Init::Zeros => 0.0,
        }
    }
}
