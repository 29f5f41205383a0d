//! Fixity: checksums as the STAC file extension writes them.
//!
//! `file:checksum` is a [multihash](https://multiformats.io/multihash/) in hex: a
//! varint code naming the algorithm, a varint length, then the digest. The
//! `multihash` crate reads and writes that framing; the digests come from the
//! RustCrypto hashers. A [`Fixity`] hashes a stream once and checks it against
//! what the catalog promised, while always computing the sha2-256 that Cairn
//! records for every file it keeps.

use digest::DynDigest;
use serde::{Deserialize, Serialize};

/// The digest algorithms Cairn can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// sha2-256 (multihash code 0x12), Cairn's own record.
    Sha2_256,
    /// sha2-512 (0x13).
    Sha2_512,
    /// sha1 (0x11).
    Sha1,
    /// md5 (0xd5).
    Md5,
    /// blake2b-256 (0xb220).
    Blake2b256,
    /// blake2b-512 (0xb240).
    Blake2b512,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Sha2_256,
        Algorithm::Sha2_512,
        Algorithm::Sha1,
        Algorithm::Md5,
        Algorithm::Blake2b256,
        Algorithm::Blake2b512,
    ];

    /// The multihash code.
    pub fn code(self) -> u64 {
        match self {
            Algorithm::Sha2_256 => 0x12,
            Algorithm::Sha2_512 => 0x13,
            Algorithm::Sha1 => 0x11,
            Algorithm::Md5 => 0xd5,
            Algorithm::Blake2b256 => 0xb220,
            Algorithm::Blake2b512 => 0xb240,
        }
    }

    /// The algorithm a multihash code names, if Cairn supports it.
    pub fn from_code(code: u64) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.code() == code)
    }

    /// The multiformats name ("sha2-256", ...).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha2_256 => "sha2-256",
            Algorithm::Sha2_512 => "sha2-512",
            Algorithm::Sha1 => "sha1",
            Algorithm::Md5 => "md5",
            Algorithm::Blake2b256 => "blake2b-256",
            Algorithm::Blake2b512 => "blake2b-512",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha2_256 | Algorithm::Blake2b256 => 32,
            Algorithm::Sha2_512 | Algorithm::Blake2b512 => 64,
            Algorithm::Sha1 => 20,
            Algorithm::Md5 => 16,
        }
    }

    fn hasher(self) -> Box<dyn DynDigest + Send> {
        match self {
            Algorithm::Sha2_256 => Box::new(sha2::Sha256::default()),
            Algorithm::Sha2_512 => Box::new(sha2::Sha512::default()),
            Algorithm::Sha1 => Box::new(sha1::Sha1::default()),
            Algorithm::Md5 => Box::new(md5::Md5::default()),
            Algorithm::Blake2b256 => Box::new(blake2::Blake2b::<digest::consts::U32>::default()),
            Algorithm::Blake2b512 => Box::new(blake2::Blake2b512::default()),
        }
    }
}

/// Why a `file:checksum` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// Not hexadecimal.
    #[error("the checksum {0:?} is not hexadecimal")]
    NotHex(String),
    /// Hex, but not a well-formed multihash.
    #[error("the checksum {0:?} is not a multihash (code, length, digest)")]
    NotMultihash(String),
    /// A multihash of an algorithm Cairn cannot compute.
    #[error(
        "the checksum {value:?} uses multihash code 0x{code:x}, which Cairn cannot verify (it can: sha2-256, sha2-512, sha1, md5, blake2b-256, blake2b-512)"
    )]
    Unsupported {
        /// The value as given.
        value: String,
        /// Its multihash code.
        code: u64,
    },
    /// The digest length does not match the algorithm.
    #[error("the checksum {value:?} has a {got}-byte digest; {algorithm} digests have {expected}")]
    WrongLength {
        /// The value as given.
        value: String,
        /// The algorithm's name.
        algorithm: &'static str,
        /// The length the algorithm produces.
        expected: usize,
        /// The length found.
        got: usize,
    },
}

/// A digest with its algorithm: one `file:checksum` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The raw digest.
    pub digest: Vec<u8>,
}

impl Checksum {
    /// Reads a `file:checksum` value (hex multihash).
    pub fn parse(value: &str) -> Result<Checksum, ChecksumError> {
        let trimmed = value.trim();
        let bytes = hex::decode(trimmed).map_err(|_| ChecksumError::NotHex(value.to_string()))?;
        let multihash = multihash::Multihash::<64>::from_bytes(&bytes)
            .map_err(|_| ChecksumError::NotMultihash(value.to_string()))?;
        let algorithm =
            Algorithm::from_code(multihash.code()).ok_or_else(|| ChecksumError::Unsupported {
                value: value.to_string(),
                code: multihash.code(),
            })?;
        let digest = multihash.digest().to_vec();
        if digest.len() != algorithm.digest_len() {
            return Err(ChecksumError::WrongLength {
                value: value.to_string(),
                algorithm: algorithm.name(),
                expected: algorithm.digest_len(),
                got: digest.len(),
            });
        }
        Ok(Checksum { algorithm, digest })
    }

    /// The `file:checksum` form: hex multihash.
    pub fn to_hex(&self) -> String {
        // The digest length always fits: it is checked on parse and produced by
        // the hashers, none longer than 64 bytes.
        match multihash::Multihash::<64>::wrap(self.algorithm.code(), &self.digest) {
            Ok(multihash) => hex::encode(multihash.to_bytes()),
            Err(_) => String::new(),
        }
    }

    /// The checksum of `bytes` with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Checksum {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A running digest of one algorithm.
pub struct Hasher {
    algorithm: Algorithm,
    inner: Box<dyn DynDigest + Send>,
}

impl Hasher {
    /// A new digest.
    pub fn new(algorithm: Algorithm) -> Hasher {
        Hasher {
            algorithm,
            inner: algorithm.hasher(),
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The checksum of everything added.
    pub fn finish(self) -> Checksum {
        Checksum {
            algorithm: self.algorithm,
            digest: self.inner.finalize().into_vec(),
        }
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// What a verified stream of bytes was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Bytes seen.
    pub size: u64,
    /// Its sha2-256 (always computed).
    pub sha256: Checksum,
}

/// Why bytes failed verification, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// Fewer or more bytes than promised.
    #[error("expected {expected} bytes but received {got}")]
    Size {
        /// The promised size.
        expected: u64,
        /// The size received.
        got: u64,
    },
    /// The digest differs.
    #[error("the {algorithm} checksum does not match (expected {expected}, got {got})")]
    Checksum {
        /// The algorithm's name.
        algorithm: &'static str,
        /// The promised checksum, hex multihash.
        expected: String,
        /// The computed one.
        got: String,
    },
}

/// Hashes a stream once and checks it against the expected size and checksum.
#[derive(Debug)]
pub struct Fixity {
    size: u64,
    sha256: Hasher,
    expected: Option<(Checksum, Hasher)>,
}

impl Fixity {
    /// Starts checking; `expected` is the catalog's `file:checksum`, if any.
    pub fn new(expected: Option<Checksum>) -> Fixity {
        let expected = expected
            .filter(|c| c.algorithm != Algorithm::Sha2_256 || c.digest.len() == 32)
            .map(|c| {
                let hasher = Hasher::new(c.algorithm);
                (c, hasher)
            });
        Fixity {
            size: 0,
            sha256: Hasher::new(Algorithm::Sha2_256),
            expected,
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        self.sha256.update(bytes);
        if let Some((checksum, hasher)) = &mut self.expected
            && checksum.algorithm != Algorithm::Sha2_256
        {
            hasher.update(bytes);
        }
    }

    /// Bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Checks everything seen against `expected_size` (the catalog's `file:size`)
    /// and the expected checksum.
    pub fn finish(self, expected_size: Option<u64>) -> Result<Verified, Mismatch> {
        if let Some(expected) = expected_size
            && expected != self.size
        {
            return Err(Mismatch::Size {
                expected,
                got: self.size,
            });
        }
        let sha256 = self.sha256.finish();
        if let Some((expected, hasher)) = self.expected {
            let got = if expected.algorithm == Algorithm::Sha2_256 {
                sha256.clone()
            } else {
                hasher.finish()
            };
            if got != expected {
                return Err(Mismatch::Checksum {
                    algorithm: expected.algorithm.name(),
                    expected: expected.to_hex(),
                    got: got.to_hex(),
                });
            }
        }
        Ok(Verified {
            size: self.size,
            sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Digests of "abc" from the algorithms' published test vectors, with the
    /// multihash prefix (code varint, length) in front.
    const ABC: [(Algorithm, &str); 6] = [
        (
            Algorithm::Sha2_256,
            "1220ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            Algorithm::Sha2_512,
            "1340ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
        (
            Algorithm::Sha1,
            "1114a9993e364706816aba3e25717850c26c9cd0d89d",
        ),
        (Algorithm::Md5, "d50110900150983cd24fb0d6963f7d28e17f72"),
        (
            Algorithm::Blake2b256,
            "a0e40220bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
        ),
        (
            Algorithm::Blake2b512,
            "c0e40240ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
        ),
    ];

    #[test]
    fn every_algorithm_matches_its_test_vector() {
        for (algorithm, hex) in ABC {
            assert_eq!(
                Checksum::of(algorithm, b"abc").to_hex(),
                hex,
                "{algorithm:?}"
            );
            let parsed = Checksum::parse(hex).unwrap();
            assert_eq!(parsed.algorithm, algorithm);
            assert_eq!(parsed.to_hex(), hex);
        }
    }

    #[test]
    fn fixity_verifies_size_and_any_supported_checksum() {
        for (algorithm, hex) in ABC {
            let mut fixity = Fixity::new(Some(Checksum::parse(hex).unwrap()));
            fixity.update(b"a");
            fixity.update(b"bc");
            let verified = fixity.finish(Some(3)).unwrap();
            assert_eq!(verified.sha256.to_hex(), ABC[0].1, "{algorithm:?}");
        }
        let mut fixity = Fixity::new(Some(Checksum::parse(ABC[3].1).unwrap()));
        fixity.update(b"abd");
        let mismatch = fixity.finish(Some(3)).unwrap_err();
        assert!(
            mismatch.to_string().contains("md5 checksum does not match"),
            "{mismatch}"
        );
        let mut fixity = Fixity::new(None);
        fixity.update(b"ab");
        assert_eq!(
            fixity.finish(Some(3)).unwrap_err(),
            Mismatch::Size {
                expected: 3,
                got: 2
            }
        );
    }

    #[test]
    fn bad_checksums_are_explained() {
        assert!(matches!(
            Checksum::parse("zz"),
            Err(ChecksumError::NotHex(_))
        ));
        assert!(matches!(
            Checksum::parse("12"),
            Err(ChecksumError::NotMultihash(_))
        ));
        // sha3-256 (0x16) is a valid multihash Cairn does not compute.
        let sha3 = format!("1620{}", "00".repeat(32));
        let error = Checksum::parse(&sha3).unwrap_err();
        assert!(error.to_string().contains("0x16"), "{error}");
        let short = format!("1210{}", "00".repeat(16));
        assert!(matches!(
            Checksum::parse(&short),
            Err(ChecksumError::WrongLength {
                expected: 32,
                got: 16,
                ..
            })
        ));
    }
}
