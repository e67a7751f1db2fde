//! Parses one command line (CRLF and Telnet sequences already removed) into a
//! [`Command`]. Verbs are case-insensitive; X-aliases (XPWD, XCWD, ...) map to
//! their RFC 959 equivalents.

use super::address::{self, EprtError};
use super::command::{Command, EpsvArg, ListArgs, TransferType};
use super::listing::parse_time;
use super::reply::{Reply, ReplyCode};

/// Why a line is not a valid command; each maps to one reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A blank line.
    #[error("empty command line")]
    Empty,
    /// 500: the verb is unknown.
    #[error("unknown command {0}")]
    Unknown(String),
    /// 501: the verb is known, the arguments are wrong.
    #[error("{verb}: {reason}")]
    Syntax { verb: String, reason: String },
    /// 504: a valid parameter this server does not implement (TYPE E, MODE B...).
    #[error("{verb}: {reason}")]
    ParameterNotImplemented { verb: String, reason: String },
    /// 522: EPRT/EPSV with a network protocol other than 1 (IPv4) or 2 (IPv6).
    #[error("{verb}: network protocol not supported")]
    NetworkProtocol { verb: String },
    /// 553: a path argument that is not valid UTF-8.
    #[error("{verb}: file name is not valid UTF-8")]
    Encoding { verb: String },
}

/// How much of an unknown verb is echoed back.
const MAX_ECHOED_VERB: usize = 32;

impl ParseError {
    pub fn reply(&self) -> Reply {
        match self {
            ParseError::Empty => Reply::new(ReplyCode::SyntaxError, "Empty command line."),
            ParseError::Unknown(verb) => Reply::new(
                ReplyCode::SyntaxError,
                format!("Unknown command \"{}\".", printable(verb)),
            ),
            ParseError::Syntax { verb, reason } => Reply::new(
                ReplyCode::ParameterSyntaxError,
                format!("{verb}: {reason}."),
            ),
            ParseError::ParameterNotImplemented { verb, reason } => Reply::new(
                ReplyCode::ParameterNotImplemented,
                format!("{verb}: {reason}."),
            ),
            ParseError::NetworkProtocol { .. } => Reply::new(
                ReplyCode::NetworkProtocolNotSupported,
                "Network protocol not supported, use (1,2)",
            ),
            ParseError::Encoding { verb } => Reply::new(
                ReplyCode::FileNameNotAllowed,
                format!("{verb}: file name is not valid UTF-8."),
            ),
        }
    }
}

/// Client text safe to echo: at most 32 characters, anything but printable
/// ASCII replaced by `?` (no control bytes reach a terminal or log).
fn printable(s: &str) -> String {
    s.chars()
        .take(MAX_ECHOED_VERB)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The argument of one command line, decoded on demand so that commands
/// without arguments ignore whatever bytes follow them.
struct Arg<'a> {
    verb: &'a str,
    raw: Option<&'a [u8]>,
}

impl Arg<'_> {
    fn syntax(&self, reason: &str) -> ParseError {
        ParseError::Syntax {
            verb: self.verb.to_string(),
            reason: reason.to_string(),
        }
    }

    fn not_implemented(&self, reason: &str) -> ParseError {
        ParseError::ParameterNotImplemented {
            verb: self.verb.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A non-path argument as sent; bad UTF-8 is a syntax error (501).
    fn text(&self) -> Result<Option<String>, ParseError> {
        self.raw
            .map(|raw| {
                String::from_utf8(raw.to_vec())
                    .map_err(|_| self.syntax("argument is not valid UTF-8"))
            })
            .transpose()
    }

    /// A path argument as sent; bad UTF-8 is a file name not allowed (553).
    fn path(&self) -> Result<Option<String>, ParseError> {
        self.raw
            .map(|raw| {
                String::from_utf8(raw.to_vec()).map_err(|_| ParseError::Encoding {
                    verb: self.verb.to_string(),
                })
            })
            .transpose()
    }

    fn required_text(&self) -> Result<String, ParseError> {
        self.text()?.ok_or_else(|| self.syntax("argument required"))
    }

    fn required_path(&self) -> Result<String, ParseError> {
        self.path()?.ok_or_else(|| self.syntax("path required"))
    }
}

/// Parses one command line.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let (verb, raw) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let raw = raw.filter(|r| !r.iter().all(|&b| b == b' '));
    let verb = String::from_utf8_lossy(verb).to_ascii_uppercase();
    let arg = Arg { verb: &verb, raw };

    use Command as C;
    Ok(match verb.as_str() {
        // Access control
        "USER" => C::User(arg.required_text()?),
        // Anonymous logins often send an empty password.
        "PASS" => C::Pass(arg.text()?.unwrap_or_default()),
        "ACCT" => C::Acct(arg.required_text()?),
        "REIN" => C::Rein,
        "QUIT" => C::Quit,
        // Navigation
        "PWD" | "XPWD" => C::Pwd,
        "CWD" | "XCWD" => C::Cwd(arg.required_path()?),
        "CDUP" | "XCUP" => C::Cdup,
        // Files and directories
        "MKD" | "XMKD" => C::Mkd(arg.required_path()?),
        "RMD" | "XRMD" => C::Rmd(arg.required_path()?),
        "RMDA" => C::Rmda(arg.required_path()?),
        "DELE" => C::Dele(arg.required_path()?),
        "RNFR" => C::Rnfr(arg.required_path()?),
        "RNTO" => C::Rnto(arg.required_path()?),
        "SIZE" => C::Size(arg.required_path()?),
        "MDTM" => C::Mdtm(arg.required_path()?),
        "HASH" => C::Hash(arg.required_path()?),
        "RANG" => {
            let text = arg.required_text()?;
            let numbers: Vec<Option<u64>> = text.split_whitespace().map(decimal).collect();
            match numbers[..] {
                [Some(start), Some(end)] => C::Rang { start, end },
                _ => return Err(arg.syntax("expected RANG <start> <end>")),
            }
        }
        "XCRC" | "XMD5" | "XSHA1" | "XSHA256" | "XSHA512" => {
            let algorithm = match verb.as_str() {
                "XCRC" => crate::digest::Algorithm::Crc32,
                "XMD5" => crate::digest::Algorithm::Md5,
                "XSHA1" => crate::digest::Algorithm::Sha1,
                "XSHA256" => crate::digest::Algorithm::Sha256,
                _ => crate::digest::Algorithm::Sha512,
            };
            C::XHash {
                algorithm,
                arg: arg.required_path()?,
            }
        }
        "MFMT" => {
            let (time, path) = time_and_path(&arg)?;
            C::Mfmt { time, path }
        }
        "MFCT" => {
            let (time, path) = time_and_path(&arg)?;
            C::Mfct { time, path }
        }
        "MFF" => parse_mff(&arg)?,
        "DSIZ" => C::Dsiz(arg.path()?),
        "AVBL" => C::Avbl(arg.path()?),
        // Listings
        "LIST" => C::List(list_args(arg.path()?)),
        "NLST" => C::Nlst(list_args(arg.path()?)),
        "MLSD" => C::Mlsd(arg.path()?),
        "MLST" => C::Mlst(arg.path()?),
        // Transfers
        "RETR" => C::Retr(arg.required_path()?),
        "STOR" => C::Stor(arg.required_path()?),
        "STOU" => C::Stou(arg.path()?),
        "APPE" => C::Appe(arg.required_path()?),
        "REST" => {
            let text = arg.required_text()?;
            C::Rest(decimal(text.trim()).ok_or_else(|| arg.syntax("a byte offset is required"))?)
        }
        "ABOR" => C::Abor,
        "ALLO" => parse_allo(&arg)?,
        "TYPE" => C::Type(parse_type(&arg)?),
        "MODE" => C::Mode(letter(&arg, "SBCZ")?),
        "STRU" => C::Stru(letter(&arg, "FRP")?),
        // Data channel
        "PASV" => C::Pasv,
        "EPSV" => C::Epsv(parse_epsv(&arg)?),
        "PORT" => C::Port(
            address::parse_port(&arg.required_text()?)
                .ok_or_else(|| arg.syntax("expected h1,h2,h3,h4,p1,p2"))?,
        ),
        "EPRT" => C::Eprt(match address::parse_eprt(&arg.required_text()?) {
            Ok(addr) => addr,
            Err(EprtError::Protocol) => {
                return Err(ParseError::NetworkProtocol { verb: verb.clone() })
            }
            Err(EprtError::Syntax) => return Err(arg.syntax("expected |proto|address|port|")),
        }),
        "LPRT" => C::Lprt(
            address::parse_lprt(&arg.required_text()?)
                .ok_or_else(|| arg.syntax("expected 4,4,h1,h2,h3,h4,2,p1,p2 or 6,16,..."))?,
        ),
        "LPSV" => C::Lpsv,
        "SPSV" => C::Spsv,
        // Information and options
        "NOOP" => C::Noop,
        "SYST" => C::Syst,
        "FEAT" => C::Feat,
        "OPTS" => {
            let text = arg.required_text()?;
            let (option, value) = split_word(text.trim_start());
            let value = value.map(str::trim).filter(|v| !v.is_empty());
            C::Opts {
                option: option.to_ascii_uppercase(),
                value: value.map(str::to_string),
            }
        }
        "HELP" => C::Help(arg.text()?),
        "STAT" => C::Stat(arg.path()?),
        "SITE" => {
            // SITE CHMOD and friends carry file names.
            let text = arg
                .path()?
                .ok_or_else(|| arg.syntax("sub-command required"))?;
            let (command, args) = split_word(text.trim_start());
            let args = args.filter(|a| !a.bytes().all(|b| b == b' '));
            C::Site {
                command: command.to_ascii_uppercase(),
                args: args.map(str::to_string),
            }
        }
        "HOST" => C::Host(arg.required_text()?),
        "LANG" => C::Lang(arg.text()?),
        "CSID" => C::Csid(arg.required_text()?),
        "CLNT" => C::Clnt(arg.required_text()?),
        // Security extensions
        "AUTH" => C::Auth(arg.required_text()?),
        "PBSZ" => C::Pbsz(arg.required_text()?),
        "PROT" => C::Prot(arg.required_text()?),
        "CCC" => C::Ccc,
        "ADAT" => C::Adat(arg.required_text()?),
        "CONF" => C::Conf(arg.required_text()?),
        "ENC" => C::Enc(arg.required_text()?),
        "MIC" => C::Mic(arg.required_text()?),
        // Standard commands deliberately not implemented: 502, not 500.
        other => match UNIMPLEMENTED.iter().find(|v| **v == other) {
            Some(v) => C::NotImplemented(v),
            None => return Err(ParseError::Unknown(verb.clone())),
        },
    })
}

/// Standard commands deliberately not implemented: 502, not 500.
const UNIMPLEMENTED: [&str; 6] = ["SMNT", "THMB", "XRCP", "XRSQ", "XSEM", "XSEN"];

/// The first word and, after the first space, the rest (if any).
fn split_word(s: &str) -> (&str, Option<&str>) {
    match s.split_once(' ') {
        Some((word, rest)) => (word, Some(rest)),
        None => (s, None),
    }
}

/// An unsigned decimal number: digits only, no sign, no overflow.
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// TYPE (RFC 959 4.1.2): A [N], I and L 8 are served; the other valid forms
/// (A T, A C, E [N|T|C], L n) are 504; anything else is 501.
fn parse_type(arg: &Arg) -> Result<TransferType, ParseError> {
    let text = arg.required_text()?.to_ascii_uppercase();
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    match words[..] {
        ["A"] | ["A", "N"] => Ok(TransferType::Ascii),
        ["I"] | ["L", "8"] => Ok(TransferType::Image),
        ["A", "T" | "C"] | ["E"] | ["E", "N" | "T" | "C"] => {
            Err(arg.not_implemented("only TYPE A N, I and L 8 are supported"))
        }
        ["L", size] if decimal(size).is_some_and(|n| n > 0 && n <= 255) => {
            Err(arg.not_implemented("only byte size 8 is supported"))
        }
        _ => Err(arg.syntax("unknown representation type")),
    }
}

/// MODE and STRU: exactly one letter among `allowed`, upper-cased.
fn letter(arg: &Arg, allowed: &str) -> Result<char, ParseError> {
    let text = arg.required_text()?;
    let mut chars = text.trim().chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if allowed.contains(c.to_ascii_uppercase()) => Ok(c.to_ascii_uppercase()),
        _ => Err(arg.syntax("unknown parameter")),
    }
}

/// EPSV (RFC 2428): nothing, ALL, or a network protocol number.
fn parse_epsv(arg: &Arg) -> Result<EpsvArg, ParseError> {
    let Some(text) = arg.text()? else {
        return Ok(EpsvArg::Any);
    };
    let text = text.trim();
    if text.eq_ignore_ascii_case("ALL") {
        return Ok(EpsvArg::All);
    }
    match decimal(text) {
        Some(1) => Ok(EpsvArg::Protocol(1)),
        Some(2) => Ok(EpsvArg::Protocol(2)),
        Some(_) => Err(ParseError::NetworkProtocol {
            verb: arg.verb.to_string(),
        }),
        // All digits but too large for u64 is still a protocol number.
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Err(ParseError::NetworkProtocol {
                verb: arg.verb.to_string(),
            })
        }
        None => Err(arg.syntax("expected ALL, 1 or 2")),
    }
}

/// ALLO n [R m]: validated, then ignored (object stores need no reservation).
fn parse_allo(arg: &Arg) -> Result<Command, ParseError> {
    let text = arg.required_text()?;
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let ok = match words[..] {
        [n] => decimal(n).is_some(),
        [n, r, m] => decimal(n).is_some() && r.eq_ignore_ascii_case("R") && decimal(m).is_some(),
        _ => false,
    };
    if ok {
        Ok(Command::Allo)
    } else {
        Err(arg.syntax("expected a size in bytes"))
    }
}

/// LIST/NLST: leading `-xyz` words are `ls` options, the rest is the path
/// (kept exactly). A lone `-` is a path; `--` ends the options.
fn list_args(arg: Option<String>) -> ListArgs {
    let Some(text) = arg else {
        return ListArgs::default();
    };
    let mut options = String::new();
    let mut rest = text.as_str();
    loop {
        let (word, after) = split_word(rest);
        if word == "--" {
            rest = after.unwrap_or("").trim_start_matches(' ');
            break;
        }
        if word.len() < 2 || !word.starts_with('-') {
            break;
        }
        options.push_str(&word[1..]);
        rest = after.unwrap_or("").trim_start_matches(' ');
    }
    ListArgs {
        options,
        path: (!rest.is_empty()).then(|| rest.to_string()),
    }
}

/// MFMT/MFCT: `YYYYMMDDHHMMSS[.sss] path`, the path after the first space.
fn time_and_path(arg: &Arg) -> Result<(std::time::SystemTime, String), ParseError> {
    let text = arg.required_path()?;
    let (time, path) = split_word(&text);
    let time = parse_time(time).ok_or_else(|| arg.syntax("expected YYYYMMDDHHMMSS time"))?;
    match path {
        Some(path) if !path.is_empty() => Ok((time, path.to_string())),
        _ => Err(arg.syntax("path required")),
    }
}

/// MFF: `fact=value;fact=value; path`, fact names lower-cased.
fn parse_mff(arg: &Arg) -> Result<Command, ParseError> {
    let text = arg.required_path()?;
    let malformed = || arg.syntax("expected fact=value; ... path");
    let (facts_text, path) = split_word(&text);
    let path = path.filter(|p| !p.is_empty()).ok_or_else(malformed)?;
    let facts_text = facts_text.strip_suffix(';').unwrap_or(facts_text);
    let facts = facts_text
        .split(';')
        .map(|fact| match fact.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                Some((name.to_ascii_lowercase(), value.to_string()))
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(malformed)?;
    Ok(Command::Mff {
        facts,
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::time::{Duration, UNIX_EPOCH};

    fn ok(line: &str) -> Command {
        parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn code(line: &[u8]) -> u16 {
        parse(line).unwrap_err().reply().code.as_u16()
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(ok("noop"), Command::Noop);
        assert_eq!(ok("NoOp"), Command::Noop);
        assert_eq!(ok("user Bob"), Command::User("Bob".into()));
    }

    #[test]
    fn blank_line_is_empty_and_500() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"   "), Err(ParseError::Empty));
        assert_eq!(code(b""), 500);
    }

    #[test]
    fn unknown_verb_is_500_naming_the_verb() {
        assert_eq!(parse(b"FOO bar"), Err(ParseError::Unknown("FOO".into())));
        let reply = parse(b"foo").unwrap_err().reply();
        assert_eq!(reply.code, ReplyCode::SyntaxError);
        assert!(reply.text().contains("FOO"));
    }

    #[test]
    fn unknown_verb_echo_is_truncated_and_printable() {
        let mut line = b"\x1b[2J\x07".to_vec();
        line.extend_from_slice(&[b'A'; 100]);
        let reply = parse(&line).unwrap_err().reply();
        assert_eq!(reply.code.as_u16(), 500);
        assert!(reply
            .text()
            .chars()
            .all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(reply.text().len() <= MAX_ECHOED_VERB + 20);
        assert!(reply.text().contains("?[2J?"));
    }

    #[test]
    fn path_keeps_spaces_including_trailing() {
        assert_eq!(
            ok("RETR my file.txt "),
            Command::Retr("my file.txt ".into())
        );
        assert_eq!(ok("CWD  lead"), Command::Cwd(" lead".into()));
    }

    #[test]
    fn verb_followed_by_spaces_has_no_argument() {
        assert_eq!(code(b"RETR   "), 501);
        assert_eq!(ok("MLSD   "), Command::Mlsd(None));
        assert_eq!(ok("PASS   "), Command::Pass(String::new()));
    }

    #[test]
    fn missing_required_path_is_501() {
        for verb in [
            "RETR", "STOR", "APPE", "CWD", "MKD", "RMD", "RMDA", "DELE", "RNFR", "RNTO", "SIZE",
            "MDTM",
        ] {
            assert_eq!(code(verb.as_bytes()), 501, "{verb}");
        }
    }

    #[test]
    fn missing_required_text_is_501() {
        for verb in [
            "USER", "ACCT", "HOST", "CSID", "CLNT", "AUTH", "PBSZ", "PROT", "ADAT", "CONF", "ENC",
            "MIC", "OPTS", "SITE",
        ] {
            assert_eq!(code(verb.as_bytes()), 501, "{verb}");
        }
    }

    #[test]
    fn non_utf8_path_is_553() {
        assert_eq!(
            parse(b"STOR caf\xe9.txt"),
            Err(ParseError::Encoding {
                verb: "STOR".into()
            })
        );
        assert_eq!(code(b"STOR caf\xe9.txt"), 553);
        assert_eq!(code(b"LIST -l \xe9"), 553);
        assert_eq!(code(b"MFMT 20240101000000 \xe9"), 553);
    }

    #[test]
    fn non_utf8_non_path_is_501() {
        assert_eq!(code(b"USER \xe9"), 501);
        assert_eq!(code(b"TYPE \xe9"), 501);
    }

    #[test]
    fn no_argument_commands_ignore_stray_bytes() {
        assert_eq!(ok("PWD x"), Command::Pwd);
        assert_eq!(parse(b"NOOP \xff\xfe"), Ok(Command::Noop));
        assert_eq!(ok("QUIT now"), Command::Quit);
        for (verb, cmd) in [
            ("REIN", Command::Rein),
            ("SYST", Command::Syst),
            ("FEAT", Command::Feat),
            ("CDUP", Command::Cdup),
            ("PASV", Command::Pasv),
            ("LPSV", Command::Lpsv),
            ("SPSV", Command::Spsv),
            ("ABOR", Command::Abor),
            ("CCC", Command::Ccc),
        ] {
            assert_eq!(ok(verb), cmd);
        }
    }

    #[test]
    fn rfc775_x_aliases() {
        assert_eq!(ok("XPWD"), Command::Pwd);
        assert_eq!(ok("XCWD /a"), Command::Cwd("/a".into()));
        assert_eq!(ok("XCUP"), Command::Cdup);
        assert_eq!(ok("XMKD d"), Command::Mkd("d".into()));
        assert_eq!(ok("XRMD d"), Command::Rmd("d".into()));
        assert_eq!(ok("XPWD").verb(), "PWD");
    }

    #[test]
    fn unimplemented_standard_verbs_are_502() {
        for verb in ["SMNT", "THMB", "XRCP", "XRSQ", "XSEM", "XSEN"] {
            assert_eq!(
                ok(&format!("{} x", verb.to_lowercase())),
                Command::NotImplemented(verb)
            );
        }
    }

    #[test]
    fn pass_may_be_empty_and_keeps_spaces() {
        assert_eq!(ok("PASS"), Command::Pass(String::new()));
        assert_eq!(ok("PASS  se cret "), Command::Pass(" se cret ".into()));
    }

    #[test]
    fn type_accepted_forms() {
        assert_eq!(ok("TYPE A"), Command::Type(TransferType::Ascii));
        assert_eq!(ok("type a n"), Command::Type(TransferType::Ascii));
        assert_eq!(ok("TYPE I"), Command::Type(TransferType::Image));
        assert_eq!(ok("TYPE L 8"), Command::Type(TransferType::Image));
        assert_eq!(ok("TYPE i "), Command::Type(TransferType::Image));
    }

    #[test]
    fn type_valid_but_unsupported_is_504() {
        for arg in ["A T", "A C", "E", "E N", "L 16", "L 7", "e c"] {
            assert_eq!(code(format!("TYPE {arg}").as_bytes()), 504, "{arg}");
        }
    }

    #[test]
    fn type_garbage_is_501() {
        for line in [
            "TYPE", "TYPE X", "TYPE A X", "TYPE L", "TYPE L x", "TYPE I N", "TYPE AN",
        ] {
            assert_eq!(code(line.as_bytes()), 501, "{line}");
        }
    }

    #[test]
    fn mode_and_stru() {
        assert_eq!(ok("MODE s"), Command::Mode('S'));
        assert_eq!(ok("MODE B"), Command::Mode('B'));
        assert_eq!(ok("MODE z"), Command::Mode('Z'));
        assert_eq!(code(b"MODE X"), 501);
        assert_eq!(code(b"MODE SS"), 501);
        assert_eq!(ok("STRU f"), Command::Stru('F'));
        assert_eq!(ok("STRU R"), Command::Stru('R'));
        assert_eq!(code(b"STRU Q"), 501);
        assert_eq!(code(b"STRU"), 501);
    }

    #[test]
    fn port_command() {
        let addr: SocketAddr = "10.0.0.1:1025".parse().unwrap();
        assert_eq!(ok("PORT 10,0,0,1,4,1"), Command::Port(addr));
        assert_eq!(code(b"PORT 10,0,0,1,4"), 501);
        assert_eq!(code(b"PORT 10,0,0,256,4,1"), 501);
        assert_eq!(code(b"PORT"), 501);
    }

    #[test]
    fn eprt_command() {
        let addr: SocketAddr = "[::1]:2121".parse().unwrap();
        assert_eq!(ok("EPRT |2|::1|2121|"), Command::Eprt(addr));
        assert_eq!(code(b"EPRT |1|::1|2121|"), 501);
        assert_eq!(code(b"EPRT |1|10.0.0.1|70000|"), 501);
        assert_eq!(code(b"EPRT"), 501);
    }

    #[test]
    fn eprt_unknown_protocol_is_522_listing_supported() {
        let err = parse(b"EPRT |3|10.0.0.1|21|").unwrap_err();
        assert_eq!(
            err,
            ParseError::NetworkProtocol {
                verb: "EPRT".into()
            }
        );
        let reply = err.reply();
        assert_eq!(reply.code.as_u16(), 522);
        assert!(reply.text().contains("(1,2)"));
    }

    #[test]
    fn lprt_command() {
        let addr: SocketAddr = "132.235.1.2:6275".parse().unwrap();
        assert_eq!(ok("LPRT 4,4,132,235,1,2,2,24,131"), Command::Lprt(addr));
        assert_eq!(code(b"LPRT 4,4,132,235,1,2,2,24"), 501);
        assert_eq!(code(b"LPRT 8,4,132,235,1,2,2,24,131"), 501);
    }

    #[test]
    fn epsv_arguments() {
        assert_eq!(ok("EPSV"), Command::Epsv(EpsvArg::Any));
        assert_eq!(ok("EPSV all"), Command::Epsv(EpsvArg::All));
        assert_eq!(ok("EPSV 1"), Command::Epsv(EpsvArg::Protocol(1)));
        assert_eq!(ok("EPSV 2"), Command::Epsv(EpsvArg::Protocol(2)));
        assert_eq!(code(b"EPSV 3"), 522);
        assert_eq!(code(b"EPSV 99999999999999999999999"), 522);
        assert_eq!(code(b"EPSV x"), 501);
        assert_eq!(code(b"EPSV -1"), 501);
    }

    #[test]
    fn rest_offsets() {
        assert_eq!(ok("REST 0"), Command::Rest(0));
        assert_eq!(ok("REST 18446744073709551615"), Command::Rest(u64::MAX));
        for line in [
            "REST",
            "REST abc",
            "REST -1",
            "REST +1",
            "REST 1.5",
            "REST 0x10",
            "REST 18446744073709551616",
        ] {
            assert_eq!(code(line.as_bytes()), 501, "{line}");
        }
    }

    #[test]
    fn allo_forms() {
        assert_eq!(ok("ALLO 1024"), Command::Allo);
        assert_eq!(ok("ALLO 1024 R 512"), Command::Allo);
        assert_eq!(ok("ALLO 1024 r 512"), Command::Allo);
        for line in ["ALLO", "ALLO x", "ALLO 1 R", "ALLO 1 X 2", "ALLO -5"] {
            assert_eq!(code(line.as_bytes()), 501, "{line}");
        }
    }

    #[test]
    fn list_without_argument() {
        assert_eq!(ok("LIST"), Command::List(ListArgs::default()));
        assert_eq!(ok("NLST"), Command::Nlst(ListArgs::default()));
    }

    #[test]
    fn list_options_are_collected() {
        let Command::List(args) = ok("LIST -la") else {
            panic!()
        };
        assert_eq!(
            args,
            ListArgs {
                options: "la".into(),
                path: None
            }
        );
        let Command::List(args) = ok("LIST -a -l my dir ") else {
            panic!()
        };
        assert_eq!(
            args,
            ListArgs {
                options: "al".into(),
                path: Some("my dir ".into())
            }
        );
        assert!(args.has_option('l'));
    }

    #[test]
    fn list_lone_dash_is_a_path() {
        let Command::Nlst(args) = ok("NLST -") else {
            panic!()
        };
        assert_eq!(
            args,
            ListArgs {
                options: String::new(),
                path: Some("-".into())
            }
        );
    }

    #[test]
    fn list_double_dash_ends_options() {
        let Command::List(args) = ok("LIST -l -- -weird") else {
            panic!()
        };
        assert_eq!(
            args,
            ListArgs {
                options: "l".into(),
                path: Some("-weird".into())
            }
        );
    }

    #[test]
    fn list_path_only_kept_exactly() {
        let Command::List(args) = ok("LIST *.txt") else {
            panic!()
        };
        assert_eq!(args.path.as_deref(), Some("*.txt"));
        assert!(args.options.is_empty());
    }

    #[test]
    fn optional_argument_commands() {
        assert_eq!(ok("MLSD"), Command::Mlsd(None));
        assert_eq!(ok("MLST a b"), Command::Mlst(Some("a b".into())));
        assert_eq!(ok("STAT"), Command::Stat(None));
        assert_eq!(ok("STAT /x"), Command::Stat(Some("/x".into())));
        assert_eq!(ok("HELP"), Command::Help(None));
        assert_eq!(ok("HELP site"), Command::Help(Some("site".into())));
        assert_eq!(ok("LANG EN"), Command::Lang(Some("EN".into())));
        assert_eq!(ok("AVBL"), Command::Avbl(None));
        assert_eq!(ok("DSIZ d"), Command::Dsiz(Some("d".into())));
        assert_eq!(ok("STOU"), Command::Stou(None));
        assert_eq!(ok("STOU base"), Command::Stou(Some("base".into())));
    }

    #[test]
    fn mfmt_sets_time_and_path() {
        let time = UNIX_EPOCH + Duration::from_secs(1_704_110_400);
        assert_eq!(
            ok("MFMT 20240101120000 a file.txt"),
            Command::Mfmt {
                time,
                path: "a file.txt".into()
            }
        );
        assert_eq!(
            ok("MFCT 20240101120000.250 x"),
            Command::Mfct {
                time: time + Duration::from_millis(250),
                path: "x".into()
            }
        );
    }

    #[test]
    fn mfmt_bad_time_or_missing_path_is_501() {
        for line in [
            "MFMT",
            "MFMT 20240101120000",
            "MFMT 20240101120000 ",
            "MFMT 20241301120000 x",
            "MFMT 2024 x",
            "MFCT yesterday x",
        ] {
            assert_eq!(code(line.as_bytes()), 501, "{line}");
        }
    }

    #[test]
    fn mff_facts_lower_cased() {
        assert_eq!(
            ok("MFF Modify=20240101120000;UNIX.mode=0644; my file"),
            Command::Mff {
                facts: vec![
                    ("modify".into(), "20240101120000".into()),
                    ("unix.mode".into(), "0644".into()),
                ],
                path: "my file".into(),
            }
        );
    }

    #[test]
    fn mff_malformed_is_501() {
        for line in [
            "MFF",
            "MFF modify=20240101120000;",
            "MFF modify; x",
            "MFF =1; x",
            "MFF a=1;;b=2; x",
        ] {
            assert_eq!(code(line.as_bytes()), 501, "{line}");
        }
    }

    #[test]
    fn opts_option_and_value() {
        assert_eq!(
            ok("OPTS utf8 ON"),
            Command::Opts {
                option: "UTF8".into(),
                value: Some("ON".into())
            }
        );
        assert_eq!(
            ok("OPTS MLST type;size; "),
            Command::Opts {
                option: "MLST".into(),
                value: Some("type;size;".into())
            }
        );
        assert_eq!(
            ok("OPTS MLST"),
            Command::Opts {
                option: "MLST".into(),
                value: None
            }
        );
    }

    #[test]
    fn site_sub_command_and_args() {
        assert_eq!(
            ok("SITE help"),
            Command::Site {
                command: "HELP".into(),
                args: None
            }
        );
        assert_eq!(
            ok("SITE CHMOD 644 x y "),
            Command::Site {
                command: "CHMOD".into(),
                args: Some("644 x y ".into())
            }
        );
        assert_eq!(code(b"SITE"), 501);
    }

    #[test]
    fn argument_commands_keep_text() {
        assert_eq!(ok("AUTH TLS"), Command::Auth("TLS".into()));
        assert_eq!(ok("PBSZ 0"), Command::Pbsz("0".into()));
        assert_eq!(ok("PROT P"), Command::Prot("P".into()));
        assert_eq!(
            ok("HOST ftp.example.com"),
            Command::Host("ftp.example.com".into())
        );
        assert_eq!(ok("CLNT curl 8.0"), Command::Clnt("curl 8.0".into()));
        assert_eq!(ok("CSID Name=x;"), Command::Csid("Name=x;".into()));
        assert_eq!(ok("ACCT a"), Command::Acct("a".into()));
        assert_eq!(ok("ADAT x"), Command::Adat("x".into()));
        assert_eq!(ok("CONF x"), Command::Conf("x".into()));
        assert_eq!(ok("ENC x"), Command::Enc("x".into()));
        assert_eq!(ok("MIC x"), Command::Mic("x".into()));
    }

    #[test]
    fn error_reply_codes() {
        let syntax = ParseError::Syntax {
            verb: "REST".into(),
            reason: "bad".into(),
        };
        assert_eq!(syntax.reply().code.as_u16(), 501);
        let pni = ParseError::ParameterNotImplemented {
            verb: "TYPE".into(),
            reason: "E".into(),
        };
        assert_eq!(pni.reply().code.as_u16(), 504);
        assert_eq!(
            ParseError::Encoding {
                verb: "STOR".into()
            }
            .reply()
            .code
            .as_u16(),
            553
        );
        assert_eq!(
            ParseError::NetworkProtocol {
                verb: "EPSV".into()
            }
            .reply()
            .text(),
            "Network protocol not supported, use (1,2)"
        );
    }
}
