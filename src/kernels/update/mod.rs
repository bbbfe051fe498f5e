//! The update rules' arithmetic, written once per rule, and the three ways a step commits it.
//!
//! After the backward pass, every gradient method does the same elementwise work per
//! parameter: clip (`c·g`, the factor from the gradient's global norm), add L2 weight decay
//! (`+ λ·w`), advance the rule's state (velocity, moment estimates) and move the parameter.
//! Each rule says that once, for one parameter, as a [`Rule`] (`rules.rs`); a *commit
//! strategy* (`commit.rs`) drives it over many:
//!
//! * **into spare buffers** ([`apply`]) — reads `w`, `g` and the state, writes the new `w` and
//!   state into separate buffers, and reports whether everything it wrote is finite. That is
//!   the transaction the optimizers build on (`optim/update`): a step whose outputs are all
//!   finite is committed by swapping buffers; otherwise nothing was overwritten. The check
//!   is part of the same pass: a chunk of 512 elements is computed, then checked while it is
//!   in L1 (`x · 0` is `0` for a finite `x` and NaN otherwise, summed in eight lanes), so it
//!   costs no branch per element and no second trip to memory;
//! * **in place** ([`apply_in_place`]) — over the live parameters and state, for a step
//!   already proved finite (`fast_path/proof.rs`): nothing to check and nothing to take
//!   back, and the largest magnitude written is kept for the next step's proof;
//! * **in a tile** ([`step_tile`]) — `W` parameters in registers, for a kernel that steps
//!   parameters as it computes their gradient (the sparse weight gradient's fused step).
//!
//! The strategies share each rule's arithmetic, so all three give the same bits. Each rule
//! is its own type, so a strategy's loop is compiled once per rule with the rule's branches
//! (Nesterov or not, how many state buffers) resolved: `with_rule!` is the one `match` from
//! the runtime rule to those types.
//!
//! Formulas are PyTorch's (`torch.optim.SGD`, `RMSprop`, `Adam`, `AdamW`), with
//! `d = c·g + λ·w` the clipped, decayed gradient:
//!
//! | rule | state | update |
//! |---|---|---|
//! | plain | — | `w ← w − lr·d` |
//! | momentum | `v` | `v ← μ·v + d`, `w ← w − lr·v` |
//! | Nesterov | `v` | `v ← μ·v + d`, `w ← w − lr·(d + μ·v)` |
//! | RMSProp | `s` | `s ← α·s + (1 − α)·d²`, `w ← w − lr·d/(√s + ε)` |
//! | Adam(W) | `m`, `v` | `m ← β₁·m + (1 − β₁)·d`, `v ← β₂·v + (1 − β₂)·d²`, `w ← κ·w − η·m/(√v/√(1 − β₂ᵗ) + ε)` |
//!
//! with `η = lr/(1 − β₁ᵗ)` and `κ = 1 − lr·λ_W` (AdamW's decoupled decay; 1 for Adam).
//! PyTorch divides `√v` by `√(1 − β₂ᵗ)`; here it is multiplied by the reciprocal, computed
//! once per step in `f64`: one division per element fewer (Adam's pass is bound by its
//! square root and division), a difference of at most an ulp in the denominator.

mod commit;
mod rules;

#[cfg(test)]
pub(crate) use commit::test_share;
pub(crate) use commit::{apply, apply_in_place, magnitude, step_tile, InPlace, Share, StepRows};
#[cfg(test)]
pub(crate) use rules::every_pass;
pub(crate) use rules::{AdamStep, Pass, RulePass};
