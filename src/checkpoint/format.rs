//! The file format: safetensors, with everything that is not a tensor in its metadata.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header naming each
//! tensor's dtype, shape and byte range (plus a `__metadata__` map of strings to strings), and
//! the raw little-endian tensor data. What a checkpoint puts there:
//!
//! | tensors                        | contents                                              |
//! |--------------------------------|-------------------------------------------------------|
//! | one per parameter group        | e.g. `layers.0.weight` `[fan_in, fan_out]`, `layers.0.bias` `[fan_out]` |
//! | `optimizer.NAME`               | each optimizer buffer (e.g. `optimizer.velocity`), 1-D |
//!
//! | metadata key                   | value                                                 |
//! |--------------------------------|-------------------------------------------------------|
//! | `format`                       | `downhill-checkpoint-1`                               |
//! | `dtype`                        | `F32` or `F64`, the element type of every tensor      |
//! | `param_groups`                 | the parameter tensors' names, in parameter order, comma-separated |
//! | `model`, `mlp.*`               | for an MLP: `mlp`, and widths, activations, loss, l2  |
//! | `optimizer`, `optimizer.steps` | the optimizer's name and step count                   |
//! | `optimizer.buffers`, `optimizer.scalars`, `optimizer.scalar.NAME` | its state's names and scalar values |
//! | `train.epoch`, `train.step`, `train.seed` | where the run stood ([`TrainState`])       |
//! | `hyper.NAME`                   | hyper-parameters, as the program that saved them wrote them |
//!
//! Numbers are written in Rust's shortest round-trip form, so an `f64` read back is the same
//! bits. Weights are stored as the model holds them, `[fan_in, fan_out]` (the layer computes
//! `x·W + b`): that is the transpose of `torch.nn.Linear.weight` (`[out, in]`), so a PyTorch
//! user loads it with `safetensors.torch.load_file` and takes `.T` of each weight.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::{Activation, MlpArchitecture, ParamGroup};
use crate::optim::OptimizerState;
use crate::train::TrainState;
use crate::Scalar;

/// The value of the `format` key: the layout this module writes.
pub(crate) const FORMAT: &str = "downhill-checkpoint-1";

/// The safetensors dtype for `T`.
fn dtype_of<T: Scalar>() -> Dtype {
    if std::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// `xs` as little-endian bytes of `T`'s width.
fn to_le_bytes<T: Scalar>(xs: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(xs));
    for &x in xs {
        let x = x.to_f64_lossless();
        if std::mem::size_of::<T>() == 4 {
            out.extend_from_slice(&(x as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Little-endian bytes of `T`'s width, appended to `out` as `T` (exact: same width).
fn extend_from_le_bytes<T: Scalar>(out: &mut Vec<T>, bytes: &[u8]) {
    if std::mem::size_of::<T>() == 4 {
        out.extend(bytes.chunks_exact(4).map(|c| {
            let mut b = [0u8; 4];
            b.copy_from_slice(c);
            T::of(f64::from(f32::from_le_bytes(b)))
        }));
    } else {
        out.extend(bytes.chunks_exact(8).map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            T::of(f64::from_le_bytes(b))
        }));
    }
}

fn list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A name that goes into a comma-separated list must not hold a comma.
fn listable(name: &str, path: &Path) -> Result<()> {
    if name.is_empty() || name.contains(',') {
        return Err(Error::checkpoint(
            path,
            format!("the name {name:?} cannot be stored (empty or holding a comma)"),
        ));
    }
    Ok(())
}

/// Serialises a checkpoint; `path` is used only in error messages.
pub(crate) fn to_bytes<T: Scalar>(ckpt: &Checkpoint<T>, path: &Path) -> Result<Vec<u8>> {
    let dtype = dtype_of::<T>();
    let mut meta = HashMap::new();
    let mut put = |k: &str, v: String| {
        meta.insert(k.to_string(), v);
    };
    put("format", FORMAT.into());
    put("dtype", format!("{dtype}"));

    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for g in &ckpt.groups {
        listable(&g.name, path)?;
        let values = ckpt.params.get(g.range()).ok_or_else(|| {
            Error::checkpoint(path, format!("group {} is outside the parameters", g.name))
        })?;
        tensors.push((g.name.clone(), g.shape.clone(), to_le_bytes(values)));
    }
    put("param_groups", list(ckpt.groups.iter().map(|g| &g.name)));

    if let Some(arch) = &ckpt.architecture {
        put("model", "mlp".into());
        put("mlp.widths", list(arch.widths.iter().map(usize::to_string)));
        put(
            "mlp.activations",
            list(arch.activations.iter().map(Activation::to_string)),
        );
        put("mlp.loss", arch.loss.to_string());
        put("mlp.l2", arch.l2.to_string());
    }

    let opt = &ckpt.optimizer;
    if let Some(name) = &ckpt.optimizer_name {
        put("optimizer", name.clone());
    }
    put("optimizer.steps", opt.steps.to_string());
    for (name, buf) in &opt.buffers {
        listable(name, path)?;
        tensors.push((
            format!("optimizer.{name}"),
            vec![buf.len()],
            to_le_bytes(buf),
        ));
    }
    put("optimizer.buffers", list(opt.buffers.iter().map(|b| &b.0)));
    for (name, value) in &opt.scalars {
        listable(name, path)?;
        put(&format!("optimizer.scalar.{name}"), value.to_string());
    }
    put("optimizer.scalars", list(opt.scalars.iter().map(|s| &s.0)));

    put("train.epoch", ckpt.train.epoch.to_string());
    put("train.step", ckpt.train.step.to_string());
    put("train.seed", ckpt.train.seed.to_string());
    for (k, v) in &ckpt.hyper {
        put(&format!("hyper.{k}"), v.clone());
    }

    let mut views = Vec::with_capacity(tensors.len());
    for (name, shape, bytes) in &tensors {
        let view = TensorView::new(dtype, shape.clone(), bytes)
            .map_err(|e| Error::checkpoint(path, format!("tensor {name}: {e}")))?;
        views.push((name.as_str(), view));
    }
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise: {e}")))
}

/// Reads the metadata map and tensors of a checkpoint, checking everything.
struct Reader<'a> {
    path: &'a Path,
    meta: &'a HashMap<String, String>,
}

impl Reader<'_> {
    fn bad(&self, problem: impl Into<String>) -> Error {
        Error::format(self.path, problem)
    }
    fn get(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.bad(format!("metadata key {key:?} is missing")))
    }
    fn parse<V: std::str::FromStr>(&self, key: &str) -> Result<V>
    where
        V::Err: std::fmt::Display,
    {
        let raw = self.get(key)?;
        raw.parse()
            .map_err(|e| self.bad(format!("metadata {key} = {raw:?}: {e}")))
    }
    /// A comma-separated list (empty string: no items).
    fn names(&self, key: &str) -> Result<Vec<&str>> {
        let raw = self.get(key)?;
        Ok(if raw.is_empty() {
            Vec::new()
        } else {
            raw.split(',').collect()
        })
    }
    fn parsed_list<V: std::str::FromStr>(&self, key: &str) -> Result<Vec<V>>
    where
        V::Err: std::fmt::Display,
    {
        self.names(key)?
            .into_iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| self.bad(format!("metadata {key}: {s:?}: {e}")))
            })
            .collect()
    }
}

/// Parses and validates a checkpoint; `path` is used only in error messages.
pub(crate) fn from_bytes<T: Scalar>(bytes: &[u8], path: &Path) -> Result<Checkpoint<T>> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::format(
            path,
            format!("not a readable safetensors file (truncated or bad header): {e}"),
        )
    })?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::format(path, format!("bad safetensors header: {e}")))?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);
    let r = Reader { path, meta };

    let format = r.get("format")?;
    if format != FORMAT {
        return Err(r.bad(format!(
            "format {format:?} is not a downhill checkpoint ({FORMAT:?})"
        )));
    }
    let want = dtype_of::<T>();
    let dtype = r.get("dtype")?;
    if dtype != format!("{want}") {
        return Err(r.bad(format!(
            "the checkpoint holds {dtype} tensors, this program reads {want}"
        )));
    }
    // Reads one tensor by name, checking its dtype; appends its values to `out`.
    let read_tensor = |name: &str, out: &mut Vec<T>| -> Result<Vec<usize>> {
        let t = file
            .tensor(name)
            .map_err(|_| r.bad(format!("tensor {name} is missing")))?;
        if t.dtype() != want {
            return Err(r.bad(format!("tensor {name} is {}, expected {want}", t.dtype())));
        }
        let start = out.len();
        extend_from_le_bytes(out, t.data());
        // Training never saves a NaN or an infinity (it stops first): one here is damage.
        if let Some(i) = out
            .get(start..)
            .and_then(|v| v.iter().position(|x| !x.is_finite()))
        {
            return Err(r.bad(format!(
                "tensor {name} holds a non-finite value at element {i}"
            )));
        }
        Ok(t.shape().to_vec())
    };

    let mut params = Vec::new();
    let mut groups = Vec::new();
    let group_names = r.names("param_groups")?;
    for name in &group_names {
        let offset = params.len();
        let shape = read_tensor(name, &mut params)?;
        groups.push(ParamGroup::new(*name, offset, shape));
    }

    let architecture = match r.meta.get("model").map(String::as_str) {
        None => None,
        Some("mlp") => {
            let arch = MlpArchitecture {
                widths: r.parsed_list("mlp.widths")?,
                activations: r.parsed_list::<Activation>("mlp.activations")?,
                loss: r.parse::<Loss>("mlp.loss")?,
                l2: r.parse("mlp.l2")?,
            };
            check_architecture(&arch, &groups, path)?;
            Some(arch)
        }
        Some(other) => return Err(r.bad(format!("model kind {other:?} is unknown"))),
    };

    let mut optimizer = OptimizerState {
        steps: r.parse("optimizer.steps")?,
        ..OptimizerState::default()
    };
    let buffer_names = r.names("optimizer.buffers")?;
    for name in &buffer_names {
        let tensor = format!("optimizer.{name}");
        let mut buf = Vec::new();
        let shape = read_tensor(&tensor, &mut buf)?;
        if shape.len() != 1 || buf.len() != params.len() {
            return Err(r.bad(format!(
                "tensor {tensor} has shape {shape:?}, expected [{}] (one value per parameter)",
                params.len()
            )));
        }
        optimizer.buffers.push((name.to_string(), buf));
    }
    for name in r.names("optimizer.scalars")? {
        let value = r.parse(&format!("optimizer.scalar.{name}"))?;
        optimizer.scalars.push((name.to_string(), value));
    }

    // Nothing in the file may go unread: a stray tensor means another writer or a mix-up.
    for name in file.names() {
        let known = group_names.contains(&name)
            || name
                .strip_prefix("optimizer.")
                .is_some_and(|b| buffer_names.contains(&b));
        if !known {
            return Err(r.bad(format!(
                "tensor {name} is neither a parameter group nor an optimizer buffer"
            )));
        }
    }

    let train = TrainState {
        epoch: r.parse("train.epoch")?,
        step: r.parse("train.step")?,
        seed: r.parse("train.seed")?,
    };
    let hyper = meta
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("hyper.")?.to_string(), v.clone())))
        .collect();
    Ok(Checkpoint {
        groups,
        params,
        architecture,
        optimizer_name: meta.get("optimizer").cloned(),
        optimizer,
        train,
        hyper,
    })
}

/// The tensors an MLP of `arch` has, and the tensors the file has, must be the same.
fn check_architecture(arch: &MlpArchitecture, groups: &[ParamGroup], path: &Path) -> Result<()> {
    if arch.widths.len() < 2 || arch.activations.len() + 2 != arch.widths.len() {
        return Err(Error::format(
            path,
            format!(
                "architecture: {} widths need {} activations, found {}",
                arch.widths.len(),
                arch.widths.len().saturating_sub(2),
                arch.activations.len()
            ),
        ));
    }
    let mut expected = Vec::new();
    for (l, pair) in arch.widths.windows(2).enumerate() {
        expected.push((format!("layers.{l}.weight"), vec![pair[0], pair[1]]));
        expected.push((format!("layers.{l}.bias"), vec![pair[1]]));
    }
    let found: Vec<(String, Vec<usize>)> = groups
        .iter()
        .map(|g| (g.name.clone(), g.shape.clone()))
        .collect();
    if expected != found {
        let show = |v: &[(String, Vec<usize>)]| {
            v.iter()
                .map(|(n, s)| format!("{n} {s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::format(
            path,
            format!(
                "architecture {:?} needs tensors {}, the file has {}",
                arch.widths,
                show(&expected),
                show(&found)
            ),
        ));
    }
    Ok(())
}
