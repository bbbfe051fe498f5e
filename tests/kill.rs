//! Atomic saves, tested the hard way: a child process saves checkpoints in a loop and is
//! killed with SIGKILL at random moments; after every kill the checkpoint must load, and hold
//! one of the states the child saved, whole.
//!
//! The child is this test binary itself (a test without the standard harness: `main` is
//! the parent unless `DOWNHILL_KILL_CHILD` names the file the child is to write).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use downhill::checkpoint::Checkpoint;
use downhill::model::{Activation, Mlp, Params};
use downhill::optim::Sgd;
use downhill::train::TrainState;

const CHILD_ENV: &str = "DOWNHILL_KILL_CHILD";

/// The network the child saves: big enough (about 0.8 MB of parameters) that a save takes a
/// while and a kill often lands in the middle of one.
fn network() -> Mlp<f32> {
    Mlp::builder(784)
        .hidden(256, Activation::Relu)
        .classes(10)
        .build()
        .unwrap()
}

/// The state saved as number `k`: every parameter is `k`, so a torn mix of two saves shows.
fn save_number(model: &mut Mlp<f32>, k: usize, path: &Path) {
    model.params_mut().fill(k as f32);
    let sgd = Sgd::<f32>::new(0.1).unwrap();
    let state = TrainState {
        epoch: k,
        step: k,
        seed: 0,
    };
    Checkpoint::capture(model, &sgd, state)
        .with_architecture(model.architecture())
        .save(path)
        .unwrap();
}

fn main() {
    match std::env::var_os(CHILD_ENV) {
        Some(path) => child_saves_forever(Path::new(&path)),
        None => sigkill_at_random_moments_leaves_a_loadable_checkpoint(),
    }
}

/// The child: saves numbered checkpoints until it is killed.
fn child_saves_forever(path: &Path) {
    let mut model = network();
    for k in 1.. {
        save_number(&mut model, k, path);
    }
}

/// The parent.
fn sigkill_at_random_moments_leaves_a_loadable_checkpoint() {
    let dir = std::env::temp_dir().join(format!("downhill-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.safetensors");
    save_number(&mut network(), 0, &path);

    // A small deterministic generator for the kill times, 5–150 ms after the start: the child
    // needs a few ms to start, and each save (0.8 MB, fsync) takes a few more.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next_delay = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Duration::from_micros(5_000 + state % 145_000)
    };
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut highest = 0;
    for kill in 0..25 {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(next_delay());
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let ckpt = Checkpoint::<f32>::load(&path)
            .unwrap_or_else(|e| panic!("after kill {kill}, the checkpoint does not load: {e}"));
        let k = ckpt.train.epoch;
        assert!(
            ckpt.params().iter().all(|&p| p == k as f32),
            "after kill {kill}: a torn checkpoint (epoch {k} with other parameters)"
        );
        highest = highest.max(k);
    }
    // Leftover temporary files (from kills in the middle of a save) are all that a kill may
    // leave behind.
    let mut torn_saves = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name == "run.safetensors" || name.ends_with(".tmp"),
            "{name}"
        );
        torn_saves += usize::from(name.ends_with(".tmp"));
    }
    assert!(
        highest > 0,
        "the child never completed a save: the test proves nothing"
    );
    eprintln!(
        "25 kills in {:.1} s; the child got as far as save {highest}; \
         {torn_saves} kills interrupted a save",
        started.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).ok();
    println!("test sigkill_at_random_moments_leaves_a_loadable_checkpoint ... ok");
}
