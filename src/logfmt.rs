//! Field formatting for the text log that escapes control characters.
//!
//! Field values carry client strings (user names, paths, commands). Written
//! raw, a CR lets a client print a forged line over the real one on a
//! terminal, an LF starts a new record, and ESC sequences rewrite the screen
//! (CWE-117). tracing-subscriber's default text fields print `%` values as
//! they are and escape only some characters of messages, so this formatter
//! escapes every C0 control, DEL, C1 control and the Unicode line and
//! paragraph separators, in messages and field values alike. The JSON format
//! escapes by itself and does not use this.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// The text log's field formatter: `name=value` pairs separated by spaces, the
/// message first and bare, as tracing-subscriber's default, but escaped.
#[derive(Clone, Copy, Debug, Default)]
pub struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapedVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        EscapedVisitor {
            writer: target,
            first: true,
            result: Ok(()),
        }
    }
}

/// Writes the fields of one event or span.
pub struct EscapedVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl EscapedVisitor<'_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        // Metadata that the `log` bridge passes as fields, printed elsewhere.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        self.result = self.write_field(name, value);
    }

    fn write_field(&mut self, name: &str, value: fmt::Arguments<'_>) -> fmt::Result {
        if !self.first {
            self.writer.write_char(' ')?;
        }
        self.first = false;
        if name != "message" {
            self.writer
                .write_str(name.strip_prefix("r#").unwrap_or(name))?;
            self.writer.write_char('=')?;
        }
        write!(Escaping(&mut self.writer), "{value}")
    }
}

impl Visit for EscapedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As the default: a message bare, other strings quoted.
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for EscapedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// A writer that escapes control characters on the way through.
struct Escaping<W>(W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Runs of harmless characters go through in one call.
        let mut rest = s;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            self.0.write_str(&rest[..at])?;
            write_escaped(c, &mut self.0)?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

/// C0 controls, DEL, C1 controls, and the Unicode line and paragraph
/// separators (some viewers break lines there).
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

fn write_escaped(c: char, out: &mut impl fmt::Write) -> fmt::Result {
    match c {
        '\r' => out.write_str("\\r"),
        '\n' => out.write_str("\\n"),
        '\t' => out.write_str("\\t"),
        '\0' => out.write_str("\\0"),
        c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

/// `s` with control characters escaped as the text log writes them.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Writing to a String cannot fail.
    let _ = Escaping(&mut out).write_str(s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escape_controls("a\rFORGED\x1b[2K\0"),
            "a\\rFORGED\\x1b[2K\\0"
        );
        assert_eq!(escape_controls("l1\nl2\tx\x7f"), "l1\\nl2\\tx\\x7f");
        assert_eq!(escape_controls("\u{9b}31m \u{85}"), "\\u{9b}31m \\u{85}");
        assert_eq!(escape_controls("a\u{2028}b"), "a\\u{2028}b");
        assert_eq!(
            escape_controls("café ünïcode /p a\\th"),
            "café ünïcode /p a\\th"
        );
        assert_eq!(escape_controls(""), "");
    }

    #[test]
    fn events_are_written_escaped() {
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .finish();
        let name = "a\rFORGED\x1b[2K\0";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("session", peer = %name);
            let _in = span.enter();
            tracing::info!(user = %name, quoted = name, debug = ?name, "login {name}");
        });
        let text = String::from_utf8(buffer.0.lock().expect("log").clone()).expect("utf8");
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        assert!(text.ends_with('\n'));
        for raw in ['\r', '\x1b', '\0'] {
            assert!(!text.contains(raw), "{raw:?} in {text:?}");
        }
        assert!(text.contains("login a\\rFORGED\\x1b[2K\\0"), "{text}");
        assert!(text.contains("user=a\\rFORGED\\x1b[2K\\0"), "{text}");
        assert!(text.contains("session{peer=a\\rFORGED"), "{text}");
    }
}
