//! The nonlinearities: the lecture's σ (sigmoid), tanh and ReLU, as plain functions of one
//! number. The kernels apply them to whole rows; the models choose them per layer.
//!
//! All three have derivatives that can be written in terms of the layer's *output*
//! `a = f(z)`: σ' = a(1−a), tanh' = 1−a², ReLU' = [a > 0]. So the backward pass needs only
//! the activations the forward pass kept, never the pre-activations, which halves the
//! memory a row block needs.
//!
//! ```
//! use downhill::model::Activation;
//!
//! let a = Activation::Sigmoid.apply(0.0f64);
//! assert_eq!(a, 0.5);
//! assert_eq!(Activation::Sigmoid.derivative_from_output(a), 0.25);
//! assert_eq!("relu".parse::<Activation>()?, Activation::Relu);
//! # Ok::<(), downhill::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::scalar::Scalar;

/// A layer's activation function.
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

    /// f'(z), from `z`: σ(z)·σ(−z), 1/cosh²(z), `[z > 0]`. Exact where the output
    /// saturates, where [`derivative_from_output`](Activation::derivative_from_output)
    /// loses digits to `1 − a`.
    #[inline(always)]
    pub fn derivative<T: Scalar>(self, z: T) -> T {
        match self {
            Activation::Sigmoid => Activation::Sigmoid.apply(z) * Activation::Sigmoid.apply(-z),
            Activation::Tanh => {
                let c = z.cosh();
                T::one() / (c * c)
            }
            Activation::Relu => {
                if z > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
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

    /// The name used by `Display` and `FromStr`: `sigmoid`, `tanh` or `relu`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
