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
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    seeded(z ^ (z >> 31))
}
