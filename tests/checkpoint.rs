//! Checkpoints: a save and a load give back the same state to the bit; the file holds the
//! weights in PyTorch's `[out, in]` layout, and files of 0.1 (`[in, out]`) still load; a
//! run resumed from a checkpoint ends where the uninterrupted run ends, to the bit, for
//! every optimizer and with early stopping; and a file that is truncated, garbled, of
//! another dtype, missing a tensor or made for another network is an error that names the
//! file and says which, never a panic.

mod common;

use std::path::Path;

use common::{bits, momentum_sgd, TempDir};
use downhill::checkpoint::{Checkpoint, CheckpointSaver};
use downhill::error::ErrorKind;
use downhill::optim::StateDict;
use downhill::prelude::*;
use downhill::train::{EarlyStopping, Monitor, TrainState};

/// 64 rows of 5 features from a SplitMix64 stream, 3 classes.
fn data() -> Dataset<f32> {
    let mut state = 11u64;
    let x: Vec<f32> = (0..64 * 5)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect();
    let labels = (0..64)
        .map(|i| usize::from(x[i * 5] > 0.0) + usize::from(x[i * 5 + 1] > 0.3))
        .collect();
    Dataset::from_matrix(Matrix::from_vec(x, 64, 5).unwrap(), labels, 3).unwrap()
}

fn mlp() -> Mlp<f32> {
    Mlp::builder(5)
        .hidden(7, Activation::Tanh)
        .hidden(4, Activation::Relu)
        .classes(3)
        .l2(1e-3)
        .seed(2)
        .build()
        .unwrap()
}

fn sgd() -> Sgd<f32> {
    momentum_sgd(0.2, 0.9, 10)
}

/// Asserts `err` is a format error about file `file` whose problem names `fact`.
#[track_caller]
fn assert_format(err: &downhill::Error, file: &str, fact: &str) {
    match err.kind() {
        ErrorKind::Format {
            path: Some(p),
            problem,
            ..
        } => {
            assert_eq!(p, Path::new(file), "{err}");
            assert!(problem.contains(fact), "{err} does not name {fact:?}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

/// A small valid checkpoint: trained two epochs with momentum SGD.
fn trained_checkpoint() -> Checkpoint<f32> {
    let (mut model, mut opt) = (mlp(), sgd());
    Trainer::new(2)
        .unwrap()
        .seed(3)
        .run(&mut model, &mut opt, &data(), None)
        .unwrap();
    let state = TrainState {
        epoch: 2,
        step: 12,
        seed: 3,
    };
    Checkpoint::capture(&model, &opt, state)
        .with_architecture(model.architecture())
        .with_hyper("lr", 0.2)
}

#[test]
fn save_and_load_give_back_everything_to_the_bit() {
    let ckpt = trained_checkpoint();
    assert!(ckpt.optimizer.buffer("velocity").is_some());
    let dir = TempDir::new("ckpt-roundtrip");
    let path = dir.join("c.safetensors");
    ckpt.save(&path).unwrap();
    let back = Checkpoint::<f32>::load(&path).unwrap();
    assert_eq!(back, ckpt);
    assert_eq!(bits(back.params()), bits(ckpt.params()));
    assert_eq!(back.hyper.get("lr").map(String::as_str), Some("0.2"));
    assert_eq!(
        back.optimizer.buffer("velocity").map(bits),
        ckpt.optimizer.buffer("velocity").map(bits)
    );
    // The rebuilt network is the saved one, parameter for parameter.
    let rebuilt = back.build_mlp().unwrap();
    assert_eq!(bits(rebuilt.params()), bits(ckpt.params()));
    assert_eq!(rebuilt.architecture(), mlp().architecture());

    // f64 too, and scalars in the optimizer state survive exactly.
    let mut model = Mlp::<f64>::builder(3).classes(2).build().unwrap();
    model.params_mut()[0] = 0.1 + 0.2; // not a short decimal
    let mut search = LocalSearch::<f64>::new(0.1, 4).unwrap();
    let d =
        Dataset::from_matrix(Matrix::from_vec(vec![1.0; 6], 2, 3).unwrap(), vec![0, 1], 2).unwrap();
    search.step(&mut model.on(&d.all())).unwrap();
    let ckpt = Checkpoint::capture(&model, &search, TrainState::default());
    let bytes = ckpt.to_bytes().unwrap();
    let back = Checkpoint::<f64>::from_bytes(&bytes, Path::new("mem")).unwrap();
    assert_eq!(back, ckpt);
    assert_eq!(
        back.optimizer.scalar("best_loss"),
        search.state().scalar("best_loss")
    );
}

/// Trains `total` epochs straight, and `first` epochs + a save + a load into fresh objects +
/// the rest; returns both final parameter vectors and optimizer states.
fn straight_and_resumed<O: Optimizer<f32>>(
    new_opt: impl Fn() -> O,
    first: usize,
    total: usize,
) -> [(Vec<u64>, StateDict<f32>); 2] {
    let train = data();
    let (mut model, mut opt) = (mlp(), new_opt());
    Trainer::new(total)
        .unwrap()
        .seed(9)
        .threads(2)
        .unwrap()
        .run(&mut model, &mut opt, &train, None)
        .unwrap();
    let straight = (bits(model.params()), opt.state());

    let dir = TempDir::new(&format!("ckpt-resume-{}", opt.name()));
    let path = dir.join("run.safetensors");
    let (mut model, mut opt) = (mlp(), new_opt());
    let mut saver = CheckpointSaver::new(&path, 9).architecture(model.architecture());
    Trainer::new(first)
        .unwrap()
        .seed(9)
        .threads(1)
        .unwrap()
        .run_with(&mut model, &mut opt, &train, None, &mut saver)
        .unwrap();
    drop(model);

    let ckpt = Checkpoint::<f32>::load(&path).unwrap();
    assert_eq!(ckpt.train.epoch, first);
    let (mut model, mut opt) = (ckpt.build_mlp().unwrap(), new_opt());
    ckpt.restore_optimizer(&mut opt).unwrap();
    let report = Trainer::new(total)
        .unwrap()
        .resume(&ckpt.train)
        .unwrap()
        .run(&mut model, &mut opt, &train, None)
        .unwrap();
    assert_eq!(report.history.first().map(|e| e.epoch), Some(first + 1));
    [straight, (bits(model.params()), opt.state())]
}

#[test]
fn four_epochs_straight_equal_two_plus_two_resumed() {
    let [straight, resumed] = straight_and_resumed(sgd, 2, 4);
    assert_eq!(straight.0, resumed.0, "parameters");
    assert_eq!(straight.1, resumed.1, "optimizer state");
    assert_eq!(straight.1.steps, 4 * 6);
}

#[test]
fn resume_is_exact_for_every_optimizer() {
    let gd = || GradientDescent::new(0.3).unwrap();
    let [a, b] = straight_and_resumed(gd, 3, 5);
    assert_eq!(a, b, "gradient descent");
    let random = || RandomSearch::new(0.5, 4).unwrap();
    let [a, b] = straight_and_resumed(random, 3, 6);
    assert_eq!(a, b, "random search");
    let local = || LocalSearch::new(0.05, 4).unwrap();
    let [a, b] = straight_and_resumed(local, 4, 9);
    assert_eq!(a, b, "local search");
    assert!(a.1.scalar("accepted").unwrap() > 0.0, "local search moved");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = trained_checkpoint().to_bytes().unwrap();
    for len in 0..bytes.len() {
        let err = Checkpoint::<f32>::from_bytes(&bytes[..len], Path::new("cut.st")).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Format { path: Some(p), .. } if p == Path::new("cut.st")),
            "{err}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Checkpoint::<f32>::from_bytes(&longer, Path::new("long.st")).is_err());
}

#[test]
fn bad_headers_and_missing_files_say_what_is_wrong() {
    let err = |bytes: &[u8]| Checkpoint::<f32>::from_bytes(bytes, Path::new("c.st")).unwrap_err();
    assert_format(&err(b""), "c.st", "header");
    let mut garbage = 20u64.to_le_bytes().to_vec();
    garbage.extend_from_slice(b"{not json at all!!!}");
    assert_format(&err(&garbage), "c.st", "header");
    // A header that claims more than the file has.
    let mut liar = u64::MAX.to_le_bytes().to_vec();
    liar.extend_from_slice(b"{}");
    assert_format(&err(&liar), "c.st", "header");
    // A valid safetensors file that is not a checkpoint.
    let mut plain = 2u64.to_le_bytes().to_vec();
    plain.extend_from_slice(b"{}");
    assert_format(&err(&plain), "c.st", "\"format\"");
    // One message, in full: what and where.
    assert_eq!(
        err(&plain).to_string(),
        "c.st: metadata key \"format\" is missing"
    );

    let missing = Checkpoint::<f32>::load("no/such/checkpoint.st").unwrap_err();
    assert!(
        matches!(missing.kind(), ErrorKind::Io { path: Some(p), .. } if p == Path::new("no/such/checkpoint.st")),
        "{missing}"
    );
}

#[test]
fn wrong_dtype_is_named() {
    let bytes = trained_checkpoint().to_bytes().unwrap();
    let err = Checkpoint::<f64>::from_bytes(&bytes, Path::new("c.st")).unwrap_err();
    assert_format(&err, "c.st", "F32");
}

/// Rewrites a checkpoint's tensors and metadata through the safetensors crate itself.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(
        &mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
        &mut std::collections::HashMap<String, String>,
    ),
) -> Vec<u8> {
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    edit(&mut tensors, &mut meta);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

#[test]
fn missing_or_stray_tensors_and_lying_architectures_are_named() {
    let bytes = trained_checkpoint().to_bytes().unwrap();
    let load = |b: &[u8]| Checkpoint::<f32>::from_bytes(b, Path::new("c.st")).unwrap_err();
    let no_bias = rewrite(&bytes, |t, _| t.retain(|x| x.0 != "layers.1.bias"));
    assert_format(&load(&no_bias), "c.st", "layers.1.bias");
    let no_velocity = rewrite(&bytes, |t, _| t.retain(|x| x.0 != "optimizer.velocity"));
    assert_format(&load(&no_velocity), "c.st", "optimizer.velocity");
    let stray = rewrite(&bytes, |t, _| {
        t.push(("extra".into(), safetensors::Dtype::F32, vec![1], vec![0; 4]))
    });
    assert_format(&load(&stray), "c.st", "tensor extra");
    let f16 = rewrite(&bytes, |t, _| {
        let w = t.iter_mut().find(|x| x.0 == "layers.0.bias").unwrap();
        w.1 = safetensors::Dtype::F16;
        w.2 = vec![14];
    });
    assert_format(&load(&f16), "c.st", "F16");
    // Metadata that lies: the key, the value written over the true one, what the error names.
    for (key, value, named) in [
        ("mlp.widths", "5,8,4,3", "layers.0.weight [8, 5]"),
        ("mlp.activations", "tanh,swish", "mlp.activations"),
        ("train.epoch", "-1", "train.epoch"),
        ("transposed", "layers.0.bias", "layers.0.bias"),
    ] {
        let liar = rewrite(&bytes, |_, m| {
            m.insert(key.into(), value.into());
        });
        assert_format(&load(&liar), "c.st", named);
    }
}

#[test]
fn restoring_into_another_network_or_optimizer_is_refused_naming_the_file() {
    let dir = TempDir::new("ckpt-restore");
    let path = dir.join("run.st");
    trained_checkpoint().save(&path).unwrap();
    let ckpt = Checkpoint::<f32>::load(&path).unwrap();
    assert_eq!(ckpt.source(), Some(path.as_path()));
    let mut wider = Mlp::<f32>::builder(5)
        .hidden(8, Activation::Tanh)
        .hidden(4, Activation::Relu)
        .classes(3)
        .build()
        .unwrap();
    let before = bits(wider.params());
    let err = ckpt.restore_model(&mut wider).unwrap_err();
    match err.kind() {
        ErrorKind::Checkpoint {
            path: Some(p),
            problem,
        } => {
            assert_eq!(p, &path);
            assert!(problem.contains("layers.0.weight [7, 5]"), "{err}");
            assert!(problem.contains("layers.0.weight [8, 5]"), "{err}");
        }
        other => panic!("expected a checkpoint mismatch, got {other:?}"),
    }
    assert_eq!(
        bits(wider.params()),
        before,
        "a refused restore changes nothing"
    );

    let mut shallow = Mlp::<f32>::builder(5)
        .hidden(7, Activation::Tanh)
        .classes(3)
        .build()
        .unwrap();
    assert!(ckpt.restore_model(&mut shallow).is_err());

    let mut gd = GradientDescent::<f32>::new(0.1).unwrap();
    let err = ckpt.restore_optimizer(&mut gd).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Checkpoint { path: Some(p), .. } if *p == path),
        "{err}"
    );
    // Another rule's state is an optimizer-state error, and it names the file too.
    let mut adam = Sgd::<f32>::new(0.1).unwrap().rule(UpdateRule::adam());
    let err = ckpt.restore_optimizer(&mut adam).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::OptimizerState { path: Some(p), optimizer: "adam", .. } if *p == path),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn non_finite_parameters_are_damage() {
    // Found by the checkpoint fuzzer: a tensor whose bytes decode to NaN.
    let bytes = trained_checkpoint().to_bytes().unwrap();
    let nan = rewrite(&bytes, |t, _| {
        let b = t.iter_mut().find(|x| x.0 == "layers.0.bias").unwrap();
        b.3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let err = Checkpoint::<f32>::from_bytes(&nan, Path::new("c.st")).unwrap_err();
    assert_format(&err, "c.st", "element 2");
}

/// The file's tensors, by name: shape and values.
fn tensors(bytes: &[u8]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut all: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let v = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (n, t.shape().to_vec(), v)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn weights_are_stored_as_pytorch_holds_them_out_by_in() {
    let ckpt = trained_checkpoint();
    let model = ckpt.build_mlp().unwrap();
    let file = tensors(&ckpt.to_bytes().unwrap());
    for l in 0..3 {
        let w = model.weights(l).unwrap(); // in × out, for x·W
        let (name, shape, values) = file
            .iter()
            .find(|t| t.0 == format!("layers.{l}.weight"))
            .unwrap();
        assert_eq!(shape, &[w.cols(), w.rows()], "{name} is [out, in]");
        // torch.nn.Linear computes x @ weight.T: weight[o][i] is W[i][o].
        for o in 0..w.cols() {
            for i in 0..w.rows() {
                assert_eq!(
                    values[o * w.rows() + i],
                    w.get(i, o).unwrap(),
                    "{name}[{o}][{i}]"
                );
            }
        }
    }
}

#[test]
fn files_written_by_0_1_still_load() {
    // A 0.1 file: the same tensors with weights `[in, out]` as the model holds them, format
    // "downhill-checkpoint-1" and no "transposed" key.
    let ckpt = trained_checkpoint();
    let v2 = ckpt.to_bytes().unwrap();
    let v1 = rewrite(&v2, |t, m| {
        m.insert("format".into(), "downhill-checkpoint-1".into());
        m.remove("transposed");
        m.remove("observers");
        for (name, _, shape, bytes) in t.iter_mut() {
            if name.ends_with(".weight") {
                let (out, inp) = (shape[0], shape[1]);
                let held: Vec<u8> = (0..inp)
                    .flat_map(|i| (0..out).map(move |o| (o, i)))
                    .flat_map(|(o, i)| bytes[(o * inp + i) * 4..(o * inp + i) * 4 + 4].to_vec())
                    .collect();
                *bytes = held;
                *shape = vec![inp, out];
            }
        }
    });
    let back = Checkpoint::<f32>::from_bytes(&v1, Path::new("old.st")).unwrap();
    assert_eq!(back, ckpt, "a 0.1 file reads as the same checkpoint");
    assert_eq!(
        bits(back.build_mlp().unwrap().params()),
        bits(ckpt.params())
    );
    // Saved again, it is written in the new layout.
    assert_eq!(tensors(&back.to_bytes().unwrap()), tensors(&v2));
}

#[test]
fn an_early_stopped_run_resumed_ends_where_the_straight_run_ends() {
    let (train, valid) = (data(), data().take(20));
    let stopper = || EarlyStopping::<f32>::new(Monitor::ValidLoss, 2).unwrap();
    let fast = || momentum_sgd(0.8, 0.9, 10);
    // Straight: a rate high enough that validation stops improving within a few epochs.
    let (mut model, mut opt, mut stop) = (mlp(), fast(), stopper());
    let straight = Trainer::new(40)
        .unwrap()
        .seed(5)
        .run_with(&mut model, &mut opt, &train, Some(&valid), &mut stop)
        .unwrap();
    let stopped_at = straight.history.last().unwrap().epoch;
    assert!(
        straight.stopped.is_some() && stopped_at < 40,
        "the run must stop early"
    );
    let best = stop.best_epoch().unwrap();
    assert!(best < stopped_at, "and keep an earlier epoch's parameters");
    let want = bits(model.params());

    // Cut one epoch before the stop (so the best-so-far is in the checkpoint), resume.
    let dir = TempDir::new("ckpt-early-stop");
    let path = dir.join("run.st");
    let (mut model, mut opt, mut stop) = (mlp(), fast(), stopper());
    let mut saver = CheckpointSaver::new(&path, 5)
        .architecture(model.architecture())
        .including(&mut stop);
    Trainer::new(stopped_at - 1)
        .unwrap()
        .seed(5)
        .run_with(&mut model, &mut opt, &train, Some(&valid), &mut saver)
        .unwrap();
    let ckpt = Checkpoint::<f32>::load(&path).unwrap();
    assert_eq!(ckpt.observers.len(), 1);
    let (mut model, mut opt, mut stop) = (ckpt.build_mlp().unwrap(), fast(), stopper());
    ckpt.restore_optimizer(&mut opt).unwrap();
    ckpt.restore_observer(&mut stop).unwrap();
    let resumed = Trainer::new(40)
        .unwrap()
        .resume(&ckpt.train)
        .unwrap()
        .run_with(&mut model, &mut opt, &train, Some(&valid), &mut stop)
        .unwrap();
    assert_eq!(resumed.history.last().unwrap().epoch, stopped_at);
    assert_eq!(resumed.stopped, straight.stopped);
    assert_eq!(
        bits(model.params()),
        want,
        "the same best parameters, restored"
    );

    // A checkpoint with early stopping's state, resumed without it, is refused.
    let err = ckpt
        .restore_observer(&mut |_: &EpochRecord| {})
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Checkpoint { path: Some(p), .. } if *p == path),
        "{err}"
    );
}
