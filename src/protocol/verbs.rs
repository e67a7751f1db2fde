//! What the session needs to know of each verb, in one table: whether it may
//! run before login, whether it leaves a staged upload waiting for its
//! rename, its HELP syntax and its FEAT line. These were five hand-kept lists
//! that had to agree.

/// How a verb shows in FEAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feat {
    No,
    /// This line, always.
    Line(&'static str),
    /// This line, when FTPS is configured.
    WithTls(&'static str),
}

/// The facts of one verb as clients send it (aliases have rows of their own).
#[derive(Clone, Copy, Debug)]
pub struct VerbFacts {
    pub verb: &'static str,
    /// May run before USER/PASS succeeded.
    pub before_login: bool,
    /// Touches no path and moves no data, so a staged upload
    /// (upload-then-rename) keeps waiting for its rename.
    pub keeps_staged: bool,
    /// HELP <verb> syntax; None: not listed by HELP.
    pub help: Option<&'static str>,
    pub feat: Feat,
}

const fn row(
    verb: &'static str,
    before_login: bool,
    keeps_staged: bool,
    help: Option<&'static str>,
    feat: Feat,
) -> VerbFacts {
    VerbFacts {
        verb,
        before_login,
        keeps_staged,
        help,
        feat,
    }
}

/// FEAT lines that belong to no verb.
pub const FEAT_EXTRAS: [&str; 2] = ["TVFS", "UTF8"];

/// The MLST row's FEAT line is replaced by the session's facts line.
pub const MLST_FEAT: &str = "MLST";

/// The HASH row's FEAT line is replaced by the algorithms, the session's
/// choice starred.
pub const HASH_FEAT: &str = "HASH";

use Feat::{Line, No, WithTls};

/// Every verb, sorted.
#[rustfmt::skip]
pub const VERBS: &[VerbFacts] = &[
    //   verb    before  keeps   HELP syntax                                           FEAT
    //           login   staged
    row("ABOR", true, false, Some("ABOR (abort the running transfer)"), No),
    row("ACCT", true, false, Some("ACCT <account> (not needed)"), No),
    row("ADAT", true, false, None, No),
    row("ALLO", false, true, Some("ALLO <bytes> (not needed)"), No),
    row("APPE", false, false, Some("APPE <path> (append to a file)"), No),
    row("AUTH", true, false, None, WithTls("AUTH TLS")),
    row("AVBL", false, false, Some("AVBL [<path>] (space available)"), Line("AVBL")),
    row("CCC", true, false, None, No),
    row("CDUP", false, false, Some("CDUP (go to the parent directory)"), No),
    row("CLNT", true, true, Some("CLNT <client name>"), No),
    row("CONF", true, false, None, No),
    row("CSID", true, false, Some("CSID <client info> (server identification)"), Line("CSID")),
    row("CWD", false, false, Some("CWD <path>"), No),
    row("DELE", false, false, Some("DELE <path>"), No),
    row("DSIZ", false, false, Some("DSIZ [<path>] (size of a directory tree)"), Line("DSIZ")),
    row("ENC", true, false, None, No),
    row("EPRT", false, true, Some("EPRT |<af>|<address>|<port>|"), Line("EPRT")),
    row("EPSV", false, true, Some("EPSV [1|2|ALL]"), Line("EPSV")),
    row("FEAT", true, true, Some("FEAT (list extensions)"), No),
    row("HASH", false, false, Some("HASH <path> (checksum; OPTS HASH <algorithm>)"), Line(HASH_FEAT)),
    row("HELP", true, true, Some("HELP [<command>]"), No),
    row("HOST", true, false, Some("HOST <hostname>"), Line("HOST")),
    row("LANG", true, false, Some("LANG [<language>]"), Line("LANG EN*")),
    row("LIST", false, false, Some("LIST [-options] [<path>]"), No),
    row("LPRT", false, false, Some("LPRT <af>,<hal>,<h1>,...,<pal>,<p1>,<p2>"), No),
    row("LPSV", false, false, Some("LPSV"), No),
    row("MDTM", false, false, Some("MDTM <path>"), Line("MDTM")),
    row("MFCT", false, false, Some("MFCT <YYYYMMDDHHMMSS> <path>"), Line("MFCT")),
    row("MFF", false, false, Some("MFF <fact>=<value>;... <path>"), Line("MFF modify;create;")),
    row("MFMT", false, false, Some("MFMT <YYYYMMDDHHMMSS> <path>"), Line("MFMT")),
    row("MIC", true, false, None, No),
    row("MKD", false, false, Some("MKD <path>"), No),
    row("MLSD", false, false, Some("MLSD [<path>]"), No),
    row("MLST", false, false, Some("MLST [<path>]"), Line(MLST_FEAT)),
    row("MODE", false, true, Some("MODE S"), No),
    row("NLST", false, false, Some("NLST [<path or glob>]"), No),
    row("NOOP", true, true, Some("NOOP"), No),
    row("OPTS", true, true, Some("OPTS UTF8 ON | OPTS MLST <facts>"), No),
    row("PASS", true, false, Some("PASS <password>"), No),
    row("PASV", false, true, Some("PASV"), No),
    row("PBSZ", true, false, None, WithTls("PBSZ")),
    row("PORT", false, true, Some("PORT <h1>,<h2>,<h3>,<h4>,<p1>,<p2>"), No),
    row("PROT", true, false, None, WithTls("PROT")),
    row("PWD", false, true, Some("PWD"), No),
    row("QUIT", true, false, Some("QUIT"), No),
    row("RANG", false, true, Some("RANG <start> <end> (byte range of the next HASH)"), Line("RANG STREAM")),
    row("REIN", true, false, Some("REIN (log out, keep the connection)"), No),
    row("REST", false, false, Some("REST <offset>"), Line("REST STREAM")),
    row("RETR", false, false, Some("RETR <path>"), No),
    row("RMD", false, false, Some("RMD <path>"), No),
    row("RMDA", false, false, Some("RMDA <path> (remove a directory tree)"), Line("RMDA")),
    row("RNFR", false, false, Some("RNFR <path>"), No),
    row("RNTO", false, false, Some("RNTO <path>"), No),
    row("SITE", false, false, Some("SITE HELP"), No),
    row("SIZE", false, false, Some("SIZE <path>"), Line("SIZE")),
    // Deliberately not implemented (502): they may be sent before login.
    row("SMNT", true, false, None, No),
    row("SPSV", false, false, Some("SPSV"), Line("SPSV")),
    // STAT with a path needs login and ends the wait: see `Command::facts`.
    row("STAT", true, true, Some("STAT [<path>]"), No),
    row("STOR", false, false, Some("STOR <path>"), No),
    row("STOU", false, false, Some("STOU [<name>]"), No),
    row("STRU", false, true, Some("STRU F"), No),
    row("SYST", true, true, Some("SYST"), No),
    row("THMB", true, false, None, No),
    row("TYPE", false, true, Some("TYPE A | I | L 8"), No),
    row("USER", true, false, Some("USER <name>"), No),
    row("XCRC", false, false, Some("XCRC <path> [<start> [<end>]] (CRC-32)"), Line("XCRC")),
    row("XCUP", false, false, Some("XCUP (same as CDUP)"), No),
    row("XCWD", false, false, Some("XCWD <path> (same as CWD)"), No),
    row("XMD5", false, false, Some("XMD5 <path> [<start> [<end>]] (MD5)"), Line("XMD5")),
    row("XMKD", false, false, Some("XMKD <path> (same as MKD)"), No),
    row("XPWD", false, true, Some("XPWD (same as PWD)"), No),
    row("XRCP", true, false, None, No),
    row("XRMD", false, false, Some("XRMD <path> (same as RMD)"), No),
    row("XRSQ", true, false, None, No),
    row("XSEM", true, false, None, No),
    row("XSEN", true, false, None, No),
    row("XSHA1", false, false, Some("XSHA1 <path> [<start> [<end>]] (SHA-1)"), Line("XSHA1")),
    row("XSHA256", false, false, Some("XSHA256 <path> [<start> [<end>]] (SHA-256)"), Line("XSHA256")),
    row("XSHA512", false, false, Some("XSHA512 <path> [<start> [<end>]] (SHA-512)"), Line("XSHA512")),
];

impl crate::protocol::Command {
    /// Whether the command needs a logged-in user (STAT with a path does,
    /// STAT alone does not).
    pub fn needs_login(&self) -> bool {
        match self {
            Self::Stat(Some(_)) => true,
            _ => !facts(self.verb()).is_some_and(|f| f.before_login),
        }
    }

    /// Whether a staged upload keeps waiting for its rename across this
    /// command (STAT with a path lists, so it does not).
    pub fn keeps_staged(&self) -> bool {
        match self {
            Self::Stat(Some(_)) => false,
            _ => facts(self.verb()).is_some_and(|f| f.keeps_staged),
        }
    }
}

/// The facts of `verb` (upper case), if it is one.
pub fn facts(verb: &str) -> Option<&'static VerbFacts> {
    VERBS
        .binary_search_by(|row| row.verb.cmp(verb))
        .ok()
        .map(|i| &VERBS[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{parse, ParseError};

    #[test]
    fn rows_are_sorted_and_unique() {
        for pair in VERBS.windows(2) {
            assert!(
                pair[0].verb < pair[1].verb,
                "{} before {}",
                pair[0].verb,
                pair[1].verb
            );
        }
    }

    #[test]
    fn every_row_is_a_verb_the_parser_knows_and_back() {
        for row in VERBS {
            let parsed = parse(format!("{} x", row.verb).as_bytes());
            assert!(
                !matches!(parsed, Err(ParseError::Unknown(_))),
                "{} is in the table but not parsed",
                row.verb
            );
            if let Ok(cmd) = parsed {
                assert!(facts(cmd.verb()).is_some(), "{} has no facts", cmd.verb());
            }
        }
    }
}
