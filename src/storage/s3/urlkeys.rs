//! Keys in listings are asked for with `encoding-type=url`: without it the
//! store writes a key's raw bytes into the XML, and one key holding a control
//! character (`\x01`, `\x0c`, `\x1b`, which XML 1.0 cannot carry) makes the
//! SDK reject the whole page, so every listing of that directory failed.
//! With it, Key, Prefix, CommonPrefixes, StartAfter, KeyMarker and
//! NextKeyMarker come back URL-encoded (continuation tokens and upload ids
//! stay opaque) and are decoded here before anything else sees them.

use crate::storage::{Result, StorageError};

/// Decodes one URL-encoded listing value. `+` is a space, as AWS writes it
/// (botocore decodes these values with `unquote_plus` too); a literal `+`
/// arrives as `%2B`. Keys are UTF-8, so anything else is an error rather
/// than a silently different name.
pub(super) fn decode(value: &str) -> Result<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad(value))?;
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad(value))
}

/// Decodes an optional listing value.
pub(super) fn decode_opt(value: Option<&str>) -> Result<Option<String>> {
    value.map(decode).transpose()
}

fn bad(value: &str) -> StorageError {
    StorageError::Other(format!(
        "the store listed a key that is not URL-encoded UTF-8: {:?}",
        value.chars().take(200).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_spaces_and_plus_signs_decode() {
        assert_eq!(decode("a%01b%0Cc%1Bd").unwrap(), "a\u{1}b\u{c}c\u{1b}d");
        assert_eq!(decode("dir/a+b%2Bc%20d").unwrap(), "dir/a b+c d");
        assert_eq!(decode("caf%C3%A9/%E2%82%AC").unwrap(), "café/€");
        assert_eq!(decode("plain/key.txt").unwrap(), "plain/key.txt");
        assert_eq!(decode("").unwrap(), "");
        assert_eq!(decode("line%0D%0Abreak").unwrap(), "line\r\nbreak");
    }

    #[test]
    fn malformed_values_are_errors() {
        assert!(decode("100%").is_err());
        assert!(decode("%zz").is_err());
        assert!(decode("%C3").is_err(), "a lone UTF-8 lead byte");
        assert!(decode("%FF%FE").is_err());
        assert_eq!(decode_opt(None).unwrap(), None);
        assert_eq!(decode_opt(Some("a%2Fb")).unwrap().as_deref(), Some("a/b"));
    }
}
