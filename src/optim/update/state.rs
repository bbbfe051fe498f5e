//! What a gradient method keeps between steps, as checkpoints store it.

use crate::error::{Error, Result};
use crate::kernels::elementwise::first_non_finite;
use crate::optim::update::GradientUpdate;
use crate::optim::{RuleState, StateDict};
use crate::scalar::Scalar;

impl<T: Scalar> GradientUpdate<T> {
    /// A state restored from a checkpoint must fit the model it is applied to.
    pub(super) fn check_state(&self, n: usize) -> Result<()> {
        for buf in self.state.buffers() {
            if !buf.is_empty() && buf.len() != n {
                return Err(Error::shape(
                    "optimizer state",
                    "buffer length (the model's parameter count)",
                    n,
                    buf.len(),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn state(&self) -> StateDict<T> {
        let buffers = self
            .rule
            .buffer_names()
            .iter()
            .zip(self.state.buffers())
            .filter(|(_, b)| !b.is_empty())
            .map(|(name, b)| (name.to_string(), b.to_vec()))
            .collect();
        StateDict {
            steps: self.steps,
            buffers,
            scalars: Vec::new(),
        }
    }

    /// Restores a state: every buffer must be one the rule keeps, all of the same length
    /// and finite; once steps have been taken, none may be missing. Nothing changes unless
    /// all of it fits.
    pub(crate) fn load_state(&mut self, saved: &StateDict<T>) -> Result<()> {
        let who = self.rule.name();
        let names = self.rule.buffer_names();
        let mut state = RuleState::for_rule(&self.rule);
        let mut loaded = vec![false; names.len()];
        let mut len = None;
        for (name, values) in &saved.buffers {
            let Some(slot) = names.iter().position(|n| n == name) else {
                return Err(Error::optimizer_state(
                    who,
                    format!(
                        "buffer {name:?} is not one this update rule keeps (it keeps {names:?})"
                    ),
                ));
            };
            if std::mem::replace(&mut loaded[slot], true) {
                return Err(Error::optimizer_state(
                    who,
                    format!("buffer {name:?} appears twice"),
                ));
            }
            if let Some(bad) = first_non_finite(values) {
                return Err(Error::optimizer_state(
                    who,
                    format!("buffer {name:?} holds {bad}: buffers must be finite"),
                ));
            }
            if *len.get_or_insert(values.len()) != values.len() {
                return Err(Error::optimizer_state(
                    who,
                    format!(
                        "buffer {name:?} has {} values, the others {}",
                        values.len(),
                        len.unwrap_or(0)
                    ),
                ));
            }
            if let Some(buf) = state.buffers_mut().into_iter().nth(slot) {
                buf.clone_from(values);
            }
        }
        if saved.steps > 0 {
            if let Some(i) = loaded.iter().position(|l| !l) {
                return Err(Error::optimizer_state(
                    who,
                    format!(
                        "buffer {:?} is missing after {} steps",
                        names[i], saved.steps
                    ),
                ));
            }
        }
        if let Some((name, _)) = saved.scalars.first() {
            return Err(Error::optimizer_state(
                who,
                format!("scalar {name:?} is not one this optimizer keeps"),
            ));
        }
        self.state = state;
        self.spare = RuleState::for_rule(&self.rule);
        self.state_peak = None;
        self.steps = saved.steps;
        Ok(())
    }
}
