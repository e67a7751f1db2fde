//! TYPE A: lines end in CRLF on the wire and LF in storage. Both converters
//! keep one byte of state so a CRLF split across two reads is handled.

use bytes::{BufMut, Bytes, BytesMut};

/// Storage to wire: LF becomes CRLF; a LF already preceded by CR is kept as is.
#[derive(Debug, Default)]
pub struct ToWire {
    last_was_cr: bool,
}

impl ToWire {
    pub fn convert(&mut self, input: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(input.len() + input.len() / 32 + 1);
        for &b in input {
            if b == b'\n' && !self.last_was_cr {
                out.put_u8(b'\r');
            }
            out.put_u8(b);
            self.last_was_cr = b == b'\r';
        }
        out.freeze()
    }
}

/// Wire to storage: CRLF becomes LF; a lone CR is kept.
#[derive(Debug, Default)]
pub struct FromWire {
    pending_cr: bool,
}

impl FromWire {
    pub fn convert(&mut self, input: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(input.len() + 1);
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b != b'\n' {
                    out.put_u8(b'\r');
                }
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.put_u8(b);
            }
        }
        out.freeze()
    }

    /// What is held back at the end of the transfer (a final lone CR).
    pub fn finish(&mut self) -> Option<Bytes> {
        if std::mem::take(&mut self.pending_cr) {
            Some(Bytes::from_static(b"\r"))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_to_crlf_without_doubling() {
        let mut c = ToWire::default();
        assert_eq!(&c.convert(b"a\nb\r\nc\n")[..], b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn crlf_split_across_chunks_to_wire() {
        let mut c = ToWire::default();
        assert_eq!(&c.convert(b"a\r")[..], b"a\r");
        assert_eq!(&c.convert(b"\nb")[..], b"\nb");
    }

    #[test]
    fn crlf_to_lf_across_chunks() {
        let mut c = FromWire::default();
        let mut all = Vec::new();
        all.extend_from_slice(&c.convert(b"one\r"));
        all.extend_from_slice(&c.convert(b"\ntwo\r\nthree\rx\r"));
        if let Some(rest) = c.finish() {
            all.extend_from_slice(&rest);
        }
        assert_eq!(all, b"one\ntwo\nthree\rx\r");
    }

    #[test]
    fn round_trip() {
        let text = b"line 1\nline 2\n\nend";
        let wire = ToWire::default().convert(text);
        let mut back = FromWire::default();
        assert_eq!(&back.convert(&wire)[..], text);
        assert_eq!(back.finish(), None);
    }
}
