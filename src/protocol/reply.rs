//! Replies: a code from a closed set and one or more lines of text, formatted
//! for the wire (RFC 959 section 4.2, multi-line form included).

use std::fmt;

/// Every reply code the server sends. Handlers name codes, never numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ReplyCode {
    RestartMarker = 110,
    DataConnectionAlreadyOpen = 125,
    FileStatusOkay = 150,
    CommandOkay = 200,
    CommandSuperfluous = 202,
    SystemStatus = 211,
    DirectoryStatus = 212,
    FileStatus = 213,
    HelpMessage = 214,
    SystemType = 215,
    ServiceReady = 220,
    ClosingControlConnection = 221,
    DataConnectionOpenNoTransfer = 225,
    ClosingDataConnection = 226,
    EnteringPassiveMode = 227,
    EnteringLongPassiveMode = 228,
    EnteringExtendedPassiveMode = 229,
    UserLoggedIn = 230,
    /// RFC 4217: logged in by the TLS exchange (a client certificate).
    LoggedInBySecurityData = 232,
    AuthOkayNoDataNeeded = 234,
    FileActionOkay = 250,
    PathCreated = 257,
    NeedPassword = 331,
    NeedAccount = 332,
    FileActionPending = 350,
    ServiceNotAvailable = 421,
    CantOpenDataConnection = 425,
    ConnectionClosedTransferAborted = 426,
    FileActionNotTakenBusy = 450,
    LocalError = 451,
    InsufficientStorage = 452,
    SyntaxError = 500,
    ParameterSyntaxError = 501,
    NotImplemented = 502,
    BadSequence = 503,
    ParameterNotImplemented = 504,
    ProtectionRequired = 521,
    NetworkProtocolNotSupported = 522,
    NotLoggedIn = 530,
    NeedAccountForStoring = 532,
    PolicyDenied = 534,
    ProtectionLevelNotSupported = 536,
    FileUnavailable = 550,
    PageTypeUnknown = 551,
    ExceededStorageAllocation = 552,
    FileNameNotAllowed = 553,
    InvalidRestParameter = 554,
}

impl ReplyCode {
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// 4xx and 5xx: the command failed.
    pub fn is_error(self) -> bool {
        self.as_u16() >= 400
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u16())
    }
}

/// A reply: one line, or several in the RFC 959 multi-line form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: ReplyCode,
    /// At least one line. Text never contains CR or LF (they are replaced when
    /// the reply is built, so a file name cannot inject a reply).
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Self {
        Reply {
            code,
            lines: vec![sanitize(text.into())],
        }
    }

    /// A multi-line reply: the first line, the body, and the last line.
    pub fn multi(code: ReplyCode, lines: impl IntoIterator<Item = String>) -> Self {
        let mut lines: Vec<String> = lines.into_iter().map(sanitize).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Reply { code, lines }
    }

    /// The first line of text, for logs.
    pub fn text(&self) -> &str {
        &self.lines[0]
    }

    /// The reply as it goes on the wire, CRLF-terminated.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = String::new();
        let code = self.code.as_u16();
        match self.lines.split_last() {
            Some((last, [])) => out.push_str(&format!("{code} {last}\r\n")),
            Some((last, rest)) => {
                out.push_str(&format!("{code}-{}\r\n", rest[0]));
                for line in &rest[1..] {
                    // A body line must not look like the end of the reply:
                    // RFC 959 asks to indent lines that start with digits.
                    if line.starts_with(|c: char| c.is_ascii_digit()) {
                        out.push(' ');
                    }
                    out.push_str(line);
                    out.push_str("\r\n");
                }
                out.push_str(&format!("{code} {last}\r\n"));
            }
            None => out.push_str(&format!("{code} \r\n")),
        }
        out.into_bytes()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

fn sanitize(text: String) -> String {
    if text.contains(['\r', '\n']) {
        text.replace(['\r', '\n'], " ")
    } else {
        text
    }
}

/// Quotes a path for a 257 reply: the path in double quotes, with quotes inside
/// it doubled (RFC 959 appendix II).
pub fn quote_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        let r = Reply::new(ReplyCode::CommandOkay, "NOOP ok.");
        assert_eq!(r.to_wire(), b"200 NOOP ok.\r\n");
    }

    #[test]
    fn multi_line_has_dash_first_and_space_last() {
        let r = Reply::multi(
            ReplyCode::SystemStatus,
            vec![
                "Features:".into(),
                " SIZE".into(),
                " MDTM".into(),
                "End".into(),
            ],
        );
        assert_eq!(
            r.to_wire(),
            b"211-Features:\r\n SIZE\r\n MDTM\r\n211 End\r\n"
        );
    }

    #[test]
    fn body_lines_starting_with_digits_are_indented() {
        let r = Reply::multi(
            ReplyCode::FileStatus,
            vec![
                "Status:".into(),
                "226 looks like an end".into(),
                "End".into(),
            ],
        );
        assert_eq!(
            r.to_wire(),
            b"213-Status:\r\n 226 looks like an end\r\n213 End\r\n"
        );
    }

    #[test]
    fn newlines_in_text_cannot_inject_a_reply() {
        let r = Reply::new(ReplyCode::FileUnavailable, "a\r\n230 Logged in");
        assert_eq!(r.to_wire(), b"550 a  230 Logged in\r\n");
    }

    #[test]
    fn quotes_in_paths_are_doubled() {
        assert_eq!(quote_path("/a\"b"), "\"/a\"\"b\"");
    }

    #[test]
    fn error_codes() {
        assert!(ReplyCode::FileUnavailable.is_error());
        assert!(ReplyCode::LocalError.is_error());
        assert!(!ReplyCode::FileActionPending.is_error());
    }
}
