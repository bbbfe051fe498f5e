//! Hidden-layer nonlinearities: the lecture's σ (sigmoid), tanh and ReLU.
//!
//! All three have derivatives that can be written in terms of the layer's *output*
//! `a = f(z)`: σ' = a(1−a), tanh' = 1−a², ReLU' = [a > 0]. So the backward pass needs only the
//! activations the forward pass kept, never the pre-activations, which halves the memory a
//! row block needs.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::kernels::elementwise;
use crate::Scalar;

/// A hidden layer's activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// The logistic sigmoid σ(z) = 1 / (1 + e^(−z)), the lecture's σ.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// The rectified linear unit max(0, z).
    Relu,
}

impl Activation {
    /// f(z).
    #[inline(always)]
    pub fn apply<T: Scalar>(self, z: T) -> T {
        match self {
            // exp(-z) overflows to +inf for z < -88 (f32): 1/(1+inf) = 0, the right limit.
            Activation::Sigmoid => T::one() / (T::one() + (-z).exp()),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.max(T::zero()),
        }
    }

    /// f'(z), written through the output `a = f(z)`.
    #[inline(always)]
    pub fn derivative_from_output<T: Scalar>(self, a: T) -> T {
        match self {
            Activation::Sigmoid => a * (T::one() - a),
            Activation::Tanh => T::one() - a * a,
            Activation::Relu => {
                if a > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
        }
    }

    /// `z ← f(z)` for every element.
    pub(crate) fn forward_in_place<T: Scalar>(self, z: &mut [T]) {
        match self {
            // ReLU is memory-bound and vectorises; the others are dominated by exp/tanh.
            Activation::Relu => elementwise::relu(z),
            _ => z.iter_mut().for_each(|v| *v = self.apply(*v)),
        }
    }

    /// `d ← d ⊙ f'(z)`, with f' computed from the outputs `a`.
    pub(crate) fn backward_in_place<T: Scalar>(self, a: &[T], d: &mut [T]) {
        match self {
            Activation::Relu => elementwise::relu_backward(a, d),
            _ => d
                .iter_mut()
                .zip(a)
                .for_each(|(d, &a)| *d = *d * self.derivative_from_output(a)),
        }
    }

    /// The weight initialisation that suits this activation: He for ReLU, Xavier otherwise.
    pub fn default_init(self) -> Init {
        match self {
            Activation::Relu => Init::He,
            _ => Init::Xavier,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        })
    }
}

impl FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            "relu" => Ok(Activation::Relu),
            _ => Err(Error::param(
                "activation",
                s,
                "must be one of sigmoid, tanh, relu",
            )),
        }
    }
}

/// How a layer's weights are drawn at construction (biases start at zero).
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
