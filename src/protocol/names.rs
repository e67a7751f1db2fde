//! File-name encodings on the wire. Keys are always UTF-8; clients that send
//! raw bytes of a legacy code page (Latin-1, GBK...) get them converted when
//! `S3FTP_LEGACY_ENCODING` names it.
//!
//! - In: a line that is valid UTF-8 is taken as UTF-8 (a legacy name is
//!   practically never valid UTF-8); any other line is decoded from the
//!   legacy encoding.
//! - Out: names go out in the legacy encoding until the client sends
//!   `OPTS UTF8 ON`. A name the legacy encoding cannot represent goes out as
//!   UTF-8, so a client that sends those bytes back still names it.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// How names are put on the wire; `Default` is UTF-8 (no conversion).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameEncoding(Option<&'static Encoding>);

impl NameEncoding {
    /// The legacy encoding with this WHATWG label (`latin1`, `gbk`,
    /// `shift_jis`, `windows-1251`...). None for unknown labels and for
    /// UTF-8/UTF-16, which are not legacy byte encodings.
    pub fn legacy(label: &str) -> Option<NameEncoding> {
        let encoding = Encoding::for_label(label.trim().as_bytes())?;
        if encoding == encoding_rs::UTF_8
            || encoding == encoding_rs::UTF_16LE
            || encoding == encoding_rs::UTF_16BE
            || encoding == encoding_rs::REPLACEMENT
        {
            return None;
        }
        Some(NameEncoding(Some(encoding)))
    }

    pub fn is_legacy(self) -> bool {
        self.0.is_some()
    }

    /// The encoding's canonical name (`UTF-8` when none).
    pub fn name(self) -> &'static str {
        self.0.map_or("UTF-8", Encoding::name)
    }

    /// A command line as UTF-8.
    pub fn decode(self, line: &[u8]) -> Cow<'_, [u8]> {
        match self.0 {
            Some(encoding) if std::str::from_utf8(line).is_err() => {
                let (text, _) = encoding.decode_without_bom_handling(line);
                Cow::Owned(text.into_owned().into_bytes())
            }
            _ => Cow::Borrowed(line),
        }
    }

    /// Text for the wire.
    pub fn encode(self, text: &str) -> Cow<'_, [u8]> {
        match self.0 {
            Some(encoding) if !text.is_ascii() => {
                let (bytes, _, unmappable) = encoding.encode(text);
                if unmappable {
                    Cow::Borrowed(text.as_bytes())
                } else {
                    bytes
                }
            }
            _ => Cow::Borrowed(text.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(
            NameEncoding::legacy("latin1").map(|e| e.name()),
            Some("windows-1252")
        );
        assert_eq!(NameEncoding::legacy(" GBK ").map(|e| e.name()), Some("GBK"));
        assert!(NameEncoding::legacy("utf-8").is_none());
        assert!(NameEncoding::legacy("utf-16").is_none());
        assert!(NameEncoding::legacy("klingon").is_none());
        assert!(!NameEncoding::default().is_legacy());
    }

    #[test]
    fn latin1_round_trip() {
        let latin1 = NameEncoding::legacy("iso-8859-1").expect("latin1");
        let line = b"STOR caf\xe9.txt";
        assert_eq!(&*latin1.decode(line), "STOR café.txt".as_bytes());
        assert_eq!(&*latin1.encode("café.txt"), b"caf\xe9.txt");
        // Valid UTF-8 is taken as UTF-8.
        assert_eq!(
            &*latin1.decode("STOR café".as_bytes()),
            "STOR café".as_bytes()
        );
        // What Latin-1 cannot hold goes out as UTF-8.
        assert_eq!(&*latin1.encode("日本.txt"), "日本.txt".as_bytes());
    }

    #[test]
    fn gbk_round_trip() {
        let gbk = NameEncoding::legacy("gbk").expect("gbk");
        let name = "报告.csv";
        let wire = gbk.encode(name).into_owned();
        assert_ne!(wire, name.as_bytes());
        assert_eq!(&*gbk.decode(&wire), name.as_bytes());
    }

    #[test]
    fn utf8_passes_through() {
        let utf8 = NameEncoding::default();
        assert_eq!(&*utf8.decode(b"STOR caf\xe9"), b"STOR caf\xe9");
        assert_eq!(&*utf8.encode("café"), "café".as_bytes());
    }
}
