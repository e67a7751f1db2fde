//! Checksums of file contents: the algorithms FTP clients ask for (HASH,
//! XCRC, XMD5, XSHA1, XSHA256, XSHA512), computed in one pass over bytes
//! already in memory. A leaf module: pure computation, no I/O, used by the
//! protocol (names), storage (what is kept with an object) and the session.

use std::fmt::Write as _;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};

/// A checksum algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
    Md5,
    Crc32,
}

impl Algorithm {
    /// Every algorithm, in the order FEAT lists them.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha512,
        Algorithm::Md5,
        Algorithm::Crc32,
    ];

    /// The name HASH uses (draft-bryan-ftpext-hash-02, IANA hash names).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512 => "SHA-512",
            Algorithm::Md5 => "MD5",
            Algorithm::Crc32 => "CRC32",
        }
    }

    /// A HASH name, case-insensitively (also without the dash: `SHA256`).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        let wanted = name.trim().to_ascii_uppercase().replace('-', "");
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name().replace('-', "") == wanted)
    }

    /// The key under which the value is kept with an object (metadata,
    /// extended attributes): `sha256`, `crc32`...
    pub fn key(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
            Algorithm::Md5 => "md5",
            Algorithm::Crc32 => "crc32",
        }
    }
}

enum Running {
    Sha1(Sha1),
    Sha256(Box<Sha256>),
    Sha512(Box<Sha512>),
    Md5(Md5),
    Crc32(crc32fast::Hasher),
}

/// Running checksums of the chosen algorithms.
pub struct Hasher {
    running: Vec<(Algorithm, Running)>,
    len: u64,
}

impl Hasher {
    pub fn new(algorithms: &[Algorithm]) -> Hasher {
        let running = algorithms
            .iter()
            .map(|&a| {
                let r = match a {
                    Algorithm::Sha1 => Running::Sha1(Sha1::new()),
                    Algorithm::Sha256 => Running::Sha256(Box::default()),
                    Algorithm::Sha512 => Running::Sha512(Box::default()),
                    Algorithm::Md5 => Running::Md5(Md5::new()),
                    Algorithm::Crc32 => Running::Crc32(crc32fast::Hasher::new()),
                };
                (a, r)
            })
            .collect();
        Hasher { running, len: 0 }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        for (_, r) in &mut self.running {
            match r {
                Running::Sha1(h) => h.update(data),
                Running::Sha256(h) => h.update(data),
                Running::Sha512(h) => h.update(data),
                Running::Md5(h) => h.update(data),
                Running::Crc32(h) => h.update(data),
            }
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digests {
        let values = self
            .running
            .into_iter()
            .map(|(a, r)| {
                let value = match r {
                    Running::Sha1(h) => hex(&h.finalize()),
                    Running::Sha256(h) => hex(&h.finalize()),
                    Running::Sha512(h) => hex(&h.finalize()),
                    Running::Md5(h) => hex(&h.finalize()),
                    Running::Crc32(h) => format!("{:08x}", h.finalize()),
                };
                (a, value)
            })
            .collect();
        Digests { values }
    }
}

/// Finished checksums, lower-case hex (CRC32 as 8 digits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    values: Vec<(Algorithm, String)>,
}

impl Digests {
    pub fn get(&self, algorithm: Algorithm) -> Option<&str> {
        self.values
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, v)| v.as_str())
    }

    pub fn insert(&mut self, algorithm: Algorithm, value: String) {
        self.values.retain(|(a, _)| *a != algorithm);
        self.values.push((algorithm, value));
    }

    pub fn iter(&self) -> impl Iterator<Item = (Algorithm, &str)> {
        self.values.iter().map(|(a, v)| (*a, v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A checksum value as read back from storage: lower-case hex of the right
/// length for its algorithm, else None (a foreign or damaged value).
pub fn checked_value(algorithm: Algorithm, value: &str) -> Option<String> {
    let len = match algorithm {
        Algorithm::Sha1 => 40,
        Algorithm::Sha256 => 64,
        Algorithm::Sha512 => 128,
        Algorithm::Md5 => 32,
        Algorithm::Crc32 => 8,
    };
    let value = value.trim().to_ascii_lowercase();
    (value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut h = Hasher::new(&Algorithm::ALL);
        h.update(b"1234");
        h.update(b"56789");
        assert_eq!(h.len(), 9);
        let d = h.finish();
        assert_eq!(d.get(Algorithm::Crc32), Some("cbf43926"));
        assert_eq!(
            d.get(Algorithm::Md5),
            Some("25f9e794323b453885f5181f1b624d0b")
        );
        assert_eq!(
            d.get(Algorithm::Sha1),
            Some("f7c3bc1d808e04732adf679965ccc34ca7ae3441")
        );
        assert_eq!(
            d.get(Algorithm::Sha256),
            Some("15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225")
        );
        assert!(d.get(Algorithm::Sha512).is_some_and(|v| v.len() == 128));
    }

    #[test]
    fn names() {
        assert_eq!(Algorithm::from_name("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_name("SHA256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_name("crc32"), Some(Algorithm::Crc32));
        assert_eq!(Algorithm::from_name("SHA-3"), None);
        assert_eq!(
            checked_value(Algorithm::Crc32, "CBF43926"),
            Some("cbf43926".into())
        );
        assert_eq!(checked_value(Algorithm::Crc32, "xyz"), None);
    }
}
