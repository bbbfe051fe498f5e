//! `--activation relu|sigmoid|tanh`, for the examples that build an MLP from flags.

use downhill::prelude::Activation;

/// A hidden layer's activation, as a flag names it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationArg {
    /// max(0, z)
    Relu,
    /// 1 / (1 + e^(−z)), the lecture's σ
    Sigmoid,
    /// tanh(z)
    Tanh,
}

impl From<ActivationArg> for Activation {
    fn from(a: ActivationArg) -> Self {
        match a {
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::Sigmoid => Activation::Sigmoid,
            ActivationArg::Tanh => Activation::Tanh,
        }
    }
}
