//! Seeded randomness: one generator type, and numbered streams of one seed.
//!
//! Every random choice in the crate (initial weights, an epoch's shuffle, a search's try, a
//! gradient check's sample) comes from a generator seeded here, so the same seed gives the
//! same run on every platform. A run never carries a generator from one epoch (or try) to
//! the next: stream `k` of seed `s` is a fresh generator, which is why a run can resume at
//! any epoch without replaying the ones before it.

use rand::SeedableRng;

/// The random number generator behind every seeded choice in the crate: small, fast, and
/// the same sequence on every platform for the same seed.
pub(crate) type DefaultRng = rand::rngs::Xoshiro256PlusPlus;

/// A generator seeded with `seed`.
pub(crate) fn seeded(seed: u64) -> DefaultRng {
    DefaultRng::seed_from_u64(seed)
}

/// A generator for one numbered stream of a seeded run (an epoch's shuffle, a search step's
/// draw): the seed and the stream number mixed by SplitMix64's finaliser, so neighbouring
/// streams are unrelated.
pub(crate) fn stream_rng(seed: u64, stream: u64) -> DefaultRng {
    seeded(derive(seed, &[stream]))
}

/// A seed for one part of a run, from the run's `seed` and the numbers that name the part
/// (a purpose, an epoch, a step, a layer), each mixed in by SplitMix64's finaliser: the
/// streams of different parts are unrelated, and a part's seed depends on nothing else (not
/// on the thread that draws from it, nor on what was drawn before).
pub(crate) fn derive(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(seed, |s, &part| {
        let mut z = s ^ part.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// What a stream is for, mixed into its seed first so that two purposes never share draws.
pub(crate) mod purpose {
    /// Dropout's masks ([`Mlp`](crate::model::Mlp)).
    pub(crate) const DROPOUT: u64 = 0x6472_6f70_6f75_7401;
    /// Augmentation's distortions ([`Augment`](crate::data::Augment)).
    pub(crate) const AUGMENT: u64 = 0x6175_676d_656e_7402;
}
