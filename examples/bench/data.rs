//! Test data: files are windows over one pseudo-random block.

use super::*;

/// A 16 MiB block of pseudo-random bytes; files are windows over it, so no
/// workload holds a file in memory and nothing compresses.
pub(crate) struct Pattern(pub(crate) Bytes);

impl Pattern {
    pub(crate) fn new() -> Pattern {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut data = Vec::with_capacity(16 * MIB as usize);
        while data.len() < 16 * MIB as usize {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        Pattern(Bytes::from(data))
    }

    /// Chunks of at most `chunk` bytes making `len` bytes of file `seed`.
    pub(crate) fn chunks(
        &self,
        seed: u64,
        len: u64,
        chunk: u64,
    ) -> impl Iterator<Item = Bytes> + '_ {
        let block = self.0.len() as u64;
        let start = (seed * 4096 + seed * seed * 131) % (block / 2);
        let mut sent = 0u64;
        std::iter::from_fn(move || {
            if sent >= len {
                return None;
            }
            let at = (start + sent) % block;
            let n = chunk.min(len - sent).min(block - at);
            sent += n;
            Some(self.0.slice(at as usize..(at + n) as usize))
        })
    }

    pub(crate) fn sha256(&self, seed: u64, len: u64) -> String {
        let mut h = Sha256::new();
        for c in self.chunks(seed, len, MIB) {
            h.update(&c);
        }
        hex(&h.finalize())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
