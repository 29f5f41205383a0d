//! How fast Cairn's SHA-2 (`cairn::checksum`, the RustCrypto `sha2` crate)
//! is on this machine beside `ring`'s (OpenSSL's hand-tuned assembly), over
//! the same bytes, in one run. Run by `bench/hash/run.sh`.

use std::time::Instant;

use cairn::checksum::{Algorithm, Hasher};

/// Bytes hashed per pass, in pieces the size of Cairn's reads.
const TOTAL: usize = 2 << 30;
const PIECE: usize = 256 * 1024;
const PASSES: usize = 5;

/// The median rate of `pass` in GB/s, and the digest it gave.
fn median_rate(mut pass: impl FnMut() -> Vec<u8>) -> (f64, Vec<u8>) {
    let mut rates = Vec::new();
    let mut digest = Vec::new();
    for _ in 0..PASSES {
        let started = Instant::now();
        digest = pass();
        rates.push(TOTAL as f64 / started.elapsed().as_secs_f64() / 1e9);
    }
    rates.sort_by(f64::total_cmp);
    (rates[PASSES / 2], digest)
}

fn main() {
    let piece: Vec<u8> = (0..PIECE).map(|i| (i * 31 % 251) as u8).collect();
    let pieces = TOTAL / PIECE;
    println!(
        "{} MiB in {} KiB pieces, median of {PASSES} passes\n",
        TOTAL >> 20,
        PIECE >> 10
    );
    println!("{:<10} {:>12} {:>12}", "", "Cairn", "ring");
    for (name, algorithm, peer) in [
        ("sha2-256", Algorithm::Sha2_256, &ring::digest::SHA256),
        ("sha2-512", Algorithm::Sha2_512, &ring::digest::SHA512),
    ] {
        let (ours, ours_digest) = median_rate(|| {
            let mut hasher = Hasher::new(algorithm);
            for _ in 0..pieces {
                hasher.update(&piece);
            }
            hasher.finish().digest
        });
        let (theirs, their_digest) = median_rate(|| {
            let mut context = ring::digest::Context::new(peer);
            for _ in 0..pieces {
                context.update(&piece);
            }
            context.finish().as_ref().to_vec()
        });
        assert_eq!(ours_digest, their_digest, "{name}: the digests differ");
        println!("{name:<10} {ours:>7.2} GB/s {theirs:>7.2} GB/s");
    }
}
