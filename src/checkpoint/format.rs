//! The file format: safetensors, in PyTorch's layout, with everything that is not a tensor
//! in its metadata.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header naming each
//! tensor's dtype, shape and byte range (plus a `__metadata__` map of strings to strings), and
//! the raw little-endian tensor data. What a checkpoint puts there:
//!
//! | tensors                        | contents                                              |
//! |--------------------------------|-------------------------------------------------------|
//! | one per parameter group        | e.g. `layers.0.weight` `[out, in]`, `layers.0.bias` `[out]`: what `torch.nn.Linear` holds |
//! | `optimizer.NAME`               | each optimizer buffer (e.g. `optimizer.velocity`), 1-D |
//! | `observer.OBS.NAME`            | each buffer of an observer's state (e.g. `observer.early_stopping.best_params`) |
//!
//! | metadata key                   | value                                                 |
//! |--------------------------------|-------------------------------------------------------|
//! | `format`                       | `downhill-checkpoint-2`                               |
//! | `dtype`                        | `F32` or `F64`, the element type of every tensor      |
//! | `param_groups`                 | the parameter tensors' names, in parameter order, comma-separated |
//! | `transposed`                   | the groups the model holds transposed (`in × out` for a layer's weight) |
//! | `model`, `mlp.*`               | for an MLP: `mlp`, and widths, activations, output activation, loss, l2 (and dropout, when not 0) |
//! | `optimizer`, `optimizer.steps` | the optimizer's name and step count                   |
//! | `optimizer.buffers`, `optimizer.scalars`, `optimizer.scalar.NAME` | its state's names and scalar values |
//! | `observers`, `observer.OBS.*`  | the same for each observer's state                    |
//! | `train.epoch`, `train.step`, `train.seed` | where the run stood ([`TrainState`])       |
//! | `hyper.NAME`                   | hyper-parameters, as the program that saved them wrote them |
//!
//! Numbers are written in Rust's shortest round-trip form, so an `f64` read back is the same
//! bits. Weights are written as PyTorch's `nn.Linear` and candle's `linear` hold them,
//! `[out, in]`, so `load_state_dict` takes them as they are; the model's own layout
//! (`in × out`, for `x·W`) is restored on load.
//!
//! Files of version 0.1 (`downhill-checkpoint-1`) stored weights the model's way round,
//! `[in, out]`; they are recognised by their `format` and still load.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::activation::Activation;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::model::{check_groups, Layout, MlpArchitecture, ParamGroup};
use crate::optim::StateDict;
use crate::scalar::Scalar;
use crate::train::TrainState;

/// The value of the `format` key: the layout this module writes.
pub(crate) const FORMAT: &str = "downhill-checkpoint-2";

/// The layout of version 0.1: weights `[in, out]`.
const FORMAT_V1: &str = "downhill-checkpoint-1";

/// The safetensors dtype for `T`.
fn dtype_of<T: Scalar>() -> Dtype {
    if std::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// `xs` as little-endian bytes of `T`'s width.
fn to_le_bytes<T: Scalar>(xs: impl Iterator<Item = T>, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len * std::mem::size_of::<T>());
    for x in xs {
        let x = x.to_f64_lossless();
        if std::mem::size_of::<T>() == 4 {
            out.extend_from_slice(&(x as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Little-endian bytes of `T`'s width, as `T` (exact: same width).
fn from_le_bytes<T: Scalar>(bytes: &[u8]) -> Vec<T> {
    if std::mem::size_of::<T>() == 4 {
        bytes
            .chunks_exact(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b.copy_from_slice(c);
                T::from_f64(f64::from(f32::from_le_bytes(b)))
            })
            .collect()
    } else {
        bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                T::from_f64(f64::from_le_bytes(b))
            })
            .collect()
    }
}

/// A group's elements in the file's (row-major, logical) order: a transposed group's
/// `rows × cols` tensor is held `cols × rows` in the parameters.
fn logical<'a, T: Scalar>(g: &ParamGroup, held: &'a [T]) -> Box<dyn Iterator<Item = T> + 'a> {
    match (g.layout, g.shape.as_slice()) {
        (Layout::Transposed, &[rows, cols]) => {
            Box::new((0..rows).flat_map(move |i| (0..cols).map(move |j| held[j * rows + i])))
        }
        _ => Box::new(held.iter().copied()),
    }
}

/// The inverse of [`logical`]: a row-major `rows × cols` tensor as the parameters hold it.
fn held<T: Scalar>(layout: Layout, shape: &[usize], file: Vec<T>) -> Vec<T> {
    match (layout, shape) {
        (Layout::Transposed, &[rows, cols]) => (0..cols)
            .flat_map(|j| (0..rows).map(move |i| (i, j)))
            .map(|(i, j)| file[i * cols + j])
            .collect(),
        _ => file,
    }
}

fn list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A name that goes into a comma-separated list must not hold a comma (nor a dot, for an
/// observer's name, which prefixes keys).
fn listable(name: &str, dots: bool, path: Option<&Path>) -> Result<()> {
    if name.is_empty() || name.contains(',') || (!dots && name.contains('.')) {
        return Err(Error::checkpoint(
            path,
            format!("the name {name:?} cannot be stored (empty, or holding a comma or a dot)"),
        ));
    }
    Ok(())
}

/// Writes a state's buffers as tensors `PREFIX.NAME` and its names and scalars as metadata.
fn put_state<T: Scalar>(
    prefix: &str,
    state: &StateDict<T>,
    meta: &mut HashMap<String, String>,
    tensors: &mut Vec<(String, Vec<usize>, Vec<u8>)>,
    path: Option<&Path>,
) -> Result<()> {
    meta.insert(format!("{prefix}.steps"), state.steps.to_string());
    for (name, buf) in &state.buffers {
        listable(name, true, path)?;
        tensors.push((
            format!("{prefix}.{name}"),
            vec![buf.len()],
            to_le_bytes(buf.iter().copied(), buf.len()),
        ));
    }
    meta.insert(
        format!("{prefix}.buffers"),
        list(state.buffers.iter().map(|b| &b.0)),
    );
    for (name, value) in &state.scalars {
        listable(name, true, path)?;
        meta.insert(format!("{prefix}.scalar.{name}"), value.to_string());
    }
    meta.insert(
        format!("{prefix}.scalars"),
        list(state.scalars.iter().map(|s| &s.0)),
    );
    Ok(())
}

/// Serialises a checkpoint; `path` names it in errors.
pub(crate) fn to_bytes<T: Scalar>(ckpt: &Checkpoint<T>, path: Option<&Path>) -> Result<Vec<u8>> {
    let dtype = dtype_of::<T>();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("dtype".to_string(), format!("{dtype}"));

    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for g in &ckpt.groups {
        listable(&g.name, true, path)?;
        let values = ckpt.params.get(g.range()).ok_or_else(|| {
            Error::checkpoint(path, format!("group {} is outside the parameters", g.name))
        })?;
        tensors.push((
            g.name.clone(),
            g.shape.clone(),
            to_le_bytes(logical(g, values), g.len()),
        ));
    }
    meta.insert(
        "param_groups".into(),
        list(ckpt.groups.iter().map(|g| &g.name)),
    );
    let transposed = ckpt
        .groups
        .iter()
        .filter(|g| g.layout == Layout::Transposed);
    meta.insert("transposed".into(), list(transposed.map(|g| &g.name)));

    if let Some(arch) = &ckpt.architecture {
        meta.insert("model".into(), "mlp".into());
        meta.insert(
            "mlp.widths".into(),
            list(arch.widths.iter().map(usize::to_string)),
        );
        meta.insert(
            "mlp.activations".into(),
            list(arch.activations.iter().map(Activation::to_string)),
        );
        meta.insert(
            "mlp.output".into(),
            arch.output.map_or("none".to_string(), |a| a.to_string()),
        );
        meta.insert("mlp.loss".into(), arch.loss.to_string());
        meta.insert("mlp.l2".into(), arch.l2.to_string());
        if arch.dropout != 0.0 {
            meta.insert("mlp.dropout".into(), arch.dropout.to_string());
        }
    }

    if let Some(name) = &ckpt.optimizer_name {
        meta.insert("optimizer".into(), name.clone());
    }
    put_state("optimizer", &ckpt.optimizer, &mut meta, &mut tensors, path)?;
    for (name, state) in &ckpt.observers {
        listable(name, false, path)?;
        put_state(
            &format!("observer.{name}"),
            state,
            &mut meta,
            &mut tensors,
            path,
        )?;
    }
    meta.insert(
        "observers".into(),
        list(ckpt.observers.iter().map(|o| &o.0)),
    );

    meta.insert("train.epoch".into(), ckpt.train.epoch.to_string());
    meta.insert("train.step".into(), ckpt.train.step.to_string());
    meta.insert("train.seed".into(), ckpt.train.seed.to_string());
    for (k, v) in &ckpt.hyper {
        meta.insert(format!("hyper.{k}"), v.clone());
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
    file: &'a SafeTensors<'a>,
    dtype: Dtype,
    /// Tensors read so far: every tensor in the file must be read by the end.
    read: Vec<String>,
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
    /// A comma-separated list (empty string: no items); `None` if the key is absent.
    fn names_or_none(&self, key: &str) -> Option<Vec<&str>> {
        self.meta.get(key).map(|raw| {
            if raw.is_empty() {
                Vec::new()
            } else {
                raw.split(',').collect()
            }
        })
    }
    fn names(&self, key: &str) -> Result<Vec<&str>> {
        self.names_or_none(key)
            .ok_or_else(|| self.bad(format!("metadata key {key:?} is missing")))
    }
    /// [`names`](Self::names), owned (so the reader can be borrowed again while they are used).
    fn owned_names(&self, key: &str) -> Result<Vec<String>> {
        Ok(self.names(key)?.into_iter().map(String::from).collect())
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
    /// Reads one tensor by name, checking its dtype and that it is finite.
    fn tensor<T: Scalar>(&mut self, name: &str) -> Result<(Vec<usize>, Vec<T>)> {
        let t = self
            .file
            .tensor(name)
            .map_err(|_| self.bad(format!("tensor {name} is missing")))?;
        if t.dtype() != self.dtype {
            return Err(self.bad(format!(
                "tensor {name} is {}, expected {}",
                t.dtype(),
                self.dtype
            )));
        }
        let values: Vec<T> = from_le_bytes(t.data());
        // Training never saves a NaN or an infinity (it stops first): one here is damage.
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(self.bad(format!(
                "tensor {name} holds a non-finite value at element {i}"
            )));
        }
        self.read.push(name.to_string());
        Ok((t.shape().to_vec(), values))
    }
    /// A state written by [`put_state`] under `prefix`, its buffers `len` long each.
    fn state<T: Scalar>(&mut self, prefix: &str, len: usize) -> Result<StateDict<T>> {
        let mut state = StateDict {
            steps: self.parse(&format!("{prefix}.steps"))?,
            ..StateDict::default()
        };
        let buffers = self.owned_names(&format!("{prefix}.buffers"))?;
        for name in buffers {
            let tensor = format!("{prefix}.{name}");
            let (shape, buf) = self.tensor(&tensor)?;
            if shape.len() != 1 || buf.len() != len {
                return Err(self.bad(format!(
                    "tensor {tensor} has shape {shape:?}, expected [{len}] (one value per parameter)"
                )));
            }
            state.buffers.push((name, buf));
        }
        let scalars = self.owned_names(&format!("{prefix}.scalars"))?;
        for name in scalars {
            let value = self.parse(&format!("{prefix}.scalar.{name}"))?;
            state.scalars.push((name, value));
        }
        Ok(state)
    }
}

/// Parses and validates a checkpoint; `path` names it in errors.
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
    let mut r = Reader {
        path,
        meta,
        file: &file,
        dtype: dtype_of::<T>(),
        read: Vec::new(),
    };

    let format = r.get("format")?;
    let v1 = match format {
        FORMAT => false,
        FORMAT_V1 => true,
        other => {
            return Err(r.bad(format!(
                "format {other:?} is not a downhill checkpoint ({FORMAT:?} or {FORMAT_V1:?})"
            )))
        }
    };
    let dtype = r.get("dtype")?;
    if dtype != format!("{}", r.dtype) {
        return Err(r.bad(format!(
            "the checkpoint holds {dtype} tensors, this program reads {}",
            r.dtype
        )));
    }
    let is_mlp = match r.meta.get("model").map(String::as_str) {
        None => false,
        Some("mlp") => true,
        Some(other) => return Err(r.bad(format!("model kind {other:?} is unknown"))),
    };

    // Which groups the model holds transposed: recorded from 0.2 on; in 0.1 files, an MLP's
    // weights were written as held (`[in, out]`), so they are transposed groups of shape
    // `[out, in]` whose data needs no reordering.
    let transposed: Vec<String> = match r.names_or_none("transposed") {
        Some(names) => names.into_iter().map(String::from).collect(),
        None if v1 => Vec::new(),
        None => return Err(r.bad("metadata key \"transposed\" is missing")),
    };
    let mut params = Vec::new();
    let mut groups = Vec::new();
    let group_names: Vec<String> = r
        .names("param_groups")?
        .into_iter()
        .map(String::from)
        .collect();
    for name in &group_names {
        let offset = params.len();
        let (shape, values) = r.tensor::<T>(name)?;
        let v1_weight = v1 && is_mlp && name.ends_with(".weight") && shape.len() == 2;
        let group = if v1_weight {
            params.extend(values);
            ParamGroup::transposed(name.clone(), offset, shape[1], shape[0])
        } else if transposed.contains(name) {
            if shape.len() != 2 {
                return Err(r.bad(format!(
                    "tensor {name} is listed as transposed but has shape {shape:?}"
                )));
            }
            params.extend(held(Layout::Transposed, &shape, values));
            ParamGroup::transposed(name.clone(), offset, shape[0], shape[1])
        } else {
            params.extend(values);
            ParamGroup::new(name.clone(), offset, shape)
        };
        groups.push(group);
    }
    if let Some(stray) = transposed.iter().find(|t| !group_names.contains(t)) {
        return Err(r.bad(format!(
            "{stray} is listed as transposed but is not a parameter group"
        )));
    }
    check_groups(&groups, params.len()).map_err(|e| e.in_file(path))?;

    let architecture = if is_mlp {
        let arch = MlpArchitecture {
            widths: r.parsed_list("mlp.widths")?,
            activations: r.parsed_list::<Activation>("mlp.activations")?,
            // 0.1 files have no output activation.
            output: match r.meta.get("mlp.output").map(String::as_str) {
                None | Some("none") => None,
                Some(_) => Some(r.parse::<Activation>("mlp.output")?),
            },
            loss: r.parse::<Loss>("mlp.loss")?,
            l2: r.parse("mlp.l2")?,
            // Files without dropout do not record it.
            dropout: match r.meta.get("mlp.dropout") {
                None => 0.0,
                Some(_) => r.parse("mlp.dropout")?,
            },
        };
        check_architecture(&arch, &groups, path)?;
        Some(arch)
    } else {
        None
    };

    let optimizer = r.state("optimizer", params.len())?;
    let mut observers = Vec::new();
    let observer_names: Vec<String> = r
        .names_or_none("observers")
        .unwrap_or_default()
        .into_iter()
        .map(String::from)
        .collect();
    for name in observer_names {
        let state = r.state(&format!("observer.{name}"), params.len())?;
        observers.push((name, state));
    }

    // Nothing in the file may go unread: a stray tensor means another writer or a mix-up.
    if let Some(stray) = file
        .names()
        .into_iter()
        .find(|n| !r.read.iter().any(|m| m == *n))
    {
        return Err(r.bad(format!(
            "tensor {stray} is neither a parameter group nor saved state"
        )));
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
        source: Some(path.to_path_buf()),
        groups,
        params,
        architecture,
        optimizer_name: meta.get("optimizer").cloned(),
        optimizer,
        observers,
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
        expected.push(ParamGroup::transposed(
            format!("layers.{l}.weight"),
            0,
            pair[1],
            pair[0],
        ));
        expected.push(ParamGroup::new(
            format!("layers.{l}.bias"),
            0,
            vec![pair[1]],
        ));
    }
    let same = expected.len() == groups.len()
        && expected
            .iter()
            .zip(groups)
            .all(|(e, g)| e.name == g.name && e.shape == g.shape && e.layout == g.layout);
    if !same {
        let show = |v: &[ParamGroup]| {
            v.iter()
                .map(|g| format!("{} {:?}", g.name, g.shape))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::format(
            path,
            format!(
                "architecture {:?} needs tensors {}, the file has {}",
                arch.widths,
                show(&expected),
                show(groups)
            ),
        ));
    }
    Ok(())
}
