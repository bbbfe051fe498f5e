//! `--hidden WIDTHS` and `--activation relu|sigmoid|tanh`, for the examples that build an
//! MLP from flags.

use downhill::prelude::{Activation, Dataset, Mlp};

use super::cli::Failure;

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

/// An MLP's hidden layers: their widths and their activation. (An example that wants other
/// defaults sets them on its own command with `mut_arg`.)
#[derive(clap::Args, Debug)]
pub struct HiddenArgs {
    /// Hidden layer widths, comma-separated
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "WIDTHS",
        default_value = "256"
    )]
    pub hidden: Vec<usize>,
    /// The hidden layers' activation
    #[arg(long, value_enum, default_value_t = ActivationArg::Relu)]
    pub activation: ActivationArg,
}

impl HiddenArgs {
    /// An MLP for `data` with these hidden layers, its weights drawn from `seed`.
    pub fn mlp(&self, data: &Dataset<f64>, seed: u64) -> Result<Mlp<f64>, Failure> {
        let activation = Activation::from(self.activation);
        let input = Mlp::<f64>::builder(data.num_features());
        let hidden = self
            .hidden
            .iter()
            .fold(input, |b, &w| b.hidden(w, activation));
        Ok(hidden.classes(data.num_classes()).seed(seed).build()?)
    }
}
