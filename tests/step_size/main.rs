//! The step size, answered: line searches against the conditions they promise, L-BFGS
//! (its two-loop direction, its pairs, resume bit for bit, poisoned steps refused whole,
//! its stop reasons) and the Hessian-vector product. One test binary, three modules: on CI's
//! two cores every test binary is a link of its own.

#[path = "../common/mod.rs"]
mod common;
mod helpers;

mod hessian;
mod lbfgs;
mod line_search;
