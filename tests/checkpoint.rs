//! Checkpoints: a save and a load give back the same state to the bit; a run resumed from a
//! checkpoint ends where the uninterrupted run ends, to the bit, for every optimizer; and a
//! file that is truncated, garbled, of another dtype, missing a tensor or made for another
//! network is an error that says which, never a panic.

use std::path::{Path, PathBuf};

use downhill::checkpoint::{Checkpoint, CheckpointSaver};
use downhill::optim::OptimizerState;
use downhill::prelude::*;
use downhill::train::TrainState;

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
    Sgd::new(0.2)
        .unwrap()
        .momentum(0.9)
        .unwrap()
        .batch_size(10)
        .unwrap()
}

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("downhill-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    let dir = temp_dir("roundtrip");
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
    search.step(&mut model, &d.all()).unwrap();
    let ckpt = Checkpoint::capture(&model, &search, TrainState::default());
    let bytes = ckpt.to_bytes().unwrap();
    let back = Checkpoint::<f64>::from_bytes(&bytes, Path::new("mem")).unwrap();
    assert_eq!(back, ckpt);
    assert_eq!(
        back.optimizer.scalar("best_loss"),
        search.state().scalar("best_loss")
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Trains `total` epochs straight, and `first` epochs + a save + a load into fresh objects +
/// the rest; returns both final parameter vectors and optimizer states.
fn straight_and_resumed<O: Optimizer<f32>>(
    new_opt: impl Fn() -> O,
    first: usize,
    total: usize,
) -> [(Vec<u32>, OptimizerState<f32>); 2] {
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

    let dir = temp_dir(&format!("resume-{}", opt.name()));
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
    std::fs::remove_dir_all(&dir).ok();
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
        let msg = err.to_string();
        assert!(msg.starts_with("cut.st: "), "{msg}");
        assert!(matches!(err, Error::Format { .. }), "{msg}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Checkpoint::<f32>::from_bytes(&longer, Path::new("long.st")).is_err());
}

#[test]
fn bad_headers_and_missing_files_say_what_is_wrong() {
    let msg = |bytes: &[u8]| {
        Checkpoint::<f32>::from_bytes(bytes, Path::new("c.st"))
            .unwrap_err()
            .to_string()
    };
    assert!(msg(b"").contains("truncated or bad header"));
    let mut garbage = 20u64.to_le_bytes().to_vec();
    garbage.extend_from_slice(b"{not json at all!!!}");
    assert!(msg(&garbage).contains("bad header") || msg(&garbage).contains("header"));
    // A header that claims more than the file has.
    let mut liar = u64::MAX.to_le_bytes().to_vec();
    liar.extend_from_slice(b"{}");
    assert!(msg(&liar).starts_with("c.st: "));
    // A valid safetensors file that is not a checkpoint.
    let mut plain = 2u64.to_le_bytes().to_vec();
    plain.extend_from_slice(b"{}");
    assert_eq!(msg(&plain), "c.st: metadata key \"format\" is missing");

    let missing = Checkpoint::<f32>::load("no/such/checkpoint.st").unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
    assert!(missing.to_string().contains("no/such/checkpoint.st"));
}

#[test]
fn wrong_dtype_is_named() {
    let bytes = trained_checkpoint().to_bytes().unwrap();
    let err = Checkpoint::<f64>::from_bytes(&bytes, Path::new("c.st")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "c.st: the checkpoint holds F32 tensors, this program reads F64"
    );
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
    let load = |b: &[u8]| {
        Checkpoint::<f32>::from_bytes(b, Path::new("c.st"))
            .unwrap_err()
            .to_string()
    };
    let no_bias = rewrite(&bytes, |t, _| t.retain(|x| x.0 != "layers.1.bias"));
    assert_eq!(load(&no_bias), "c.st: tensor layers.1.bias is missing");
    let no_velocity = rewrite(&bytes, |t, _| t.retain(|x| x.0 != "optimizer.velocity"));
    assert_eq!(
        load(&no_velocity),
        "c.st: tensor optimizer.velocity is missing"
    );
    let stray = rewrite(&bytes, |t, _| {
        t.push(("extra".into(), safetensors::Dtype::F32, vec![1], vec![0; 4]))
    });
    assert!(
        load(&stray).contains("tensor extra is neither"),
        "{}",
        load(&stray)
    );
    let f16 = rewrite(&bytes, |t, _| {
        let w = t.iter_mut().find(|x| x.0 == "layers.0.bias").unwrap();
        w.1 = safetensors::Dtype::F16;
        w.2 = vec![14];
    });
    assert_eq!(
        load(&f16),
        "c.st: tensor layers.0.bias is F16, expected F32"
    );
    let liar = rewrite(&bytes, |_, m| {
        m.insert("mlp.widths".into(), "5,8,4,3".into());
    });
    assert!(
        load(&liar).contains("architecture [5, 8, 4, 3] needs tensors layers.0.weight [5, 8]"),
        "{}",
        load(&liar)
    );
    let bad_act = rewrite(&bytes, |_, m| {
        m.insert("mlp.activations".into(), "tanh,swish".into());
    });
    assert!(
        load(&bad_act).contains("mlp.activations"),
        "{}",
        load(&bad_act)
    );
    let bad_epoch = rewrite(&bytes, |_, m| {
        m.insert("train.epoch".into(), "-1".into());
    });
    assert!(load(&bad_epoch).starts_with("c.st: metadata train.epoch = \"-1\""));
}

#[test]
fn restoring_into_another_network_or_optimizer_is_refused() {
    let ckpt = trained_checkpoint();
    let mut wider = Mlp::<f32>::builder(5)
        .hidden(8, Activation::Tanh)
        .hidden(4, Activation::Relu)
        .classes(3)
        .build()
        .unwrap();
    let before = bits(wider.params());
    let err = ckpt.restore_model(&mut wider).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }));
    assert_eq!(
        err.to_string(),
        "checkpoint: tensor 0 is layers.0.weight [5, 7], the model has layers.0.weight [5, 8]"
    );
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
    assert_eq!(
        err.to_string(),
        "checkpoint: the state is sgd's, it cannot go into gd"
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
    assert_eq!(
        err.to_string(),
        "c.st: tensor layers.0.bias holds a non-finite value at element 2"
    );
}
