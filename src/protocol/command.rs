//! The commands a client can send, as typed values. Parsing lives in `parser`.

use std::net::SocketAddr;
use std::time::SystemTime;

/// TYPE: how file bytes are represented on the data connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TransferType {
    /// `TYPE A` / `TYPE A N`: lines end in CRLF on the wire, LF in storage.
    Ascii,
    /// `TYPE I` and `TYPE L 8`: bytes as they are.
    #[default]
    Image,
}

/// The argument of EPSV (RFC 2428).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpsvArg {
    /// Plain `EPSV`.
    Any,
    /// `EPSV ALL`: from now on only EPSV is accepted for data connections.
    All,
    /// `EPSV 1` (IPv4) or `EPSV 2` (IPv6).
    Protocol(u8),
}

/// LIST and NLST take `ls`-style options before an optional path or glob.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListArgs {
    /// Option letters collected from leading `-xyz` words, e.g. "la" for `-la`.
    pub options: String,
    /// What remains after the options, if anything.
    pub path: Option<String>,
}

impl ListArgs {
    pub fn has_option(&self, letter: char) -> bool {
        self.options.contains(letter)
    }
}

/// One parsed command line. Path arguments are kept exactly as sent (spaces
/// included); the vfs layer normalises them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    // Access control (RFC 959 4.1.1)
    User(String),
    Pass(String),
    Acct(String),
    Rein,
    Quit,
    // Navigation
    Pwd,
    Cwd(String),
    Cdup,
    // Files and directories
    Mkd(String),
    Rmd(String),
    /// RMDA: remove a directory and everything in it.
    Rmda(String),
    Dele(String),
    Rnfr(String),
    Rnto(String),
    Size(String),
    Mdtm(String),
    /// HASH (draft-bryan-ftpext-hash-02): the path.
    Hash(String),
    /// RANG <start> <end>: the byte range (end inclusive) of the next HASH;
    /// `RANG 1 0` clears it.
    Rang {
        start: u64,
        end: u64,
    },
    /// XCRC, XMD5, XSHA1, XSHA256, XSHA512: the argument as sent (a path,
    /// perhaps quoted, perhaps followed by a start and an end offset).
    XHash {
        algorithm: crate::digest::Algorithm,
        arg: String,
    },
    Mfmt {
        time: SystemTime,
        path: String,
    },
    Mfct {
        time: SystemTime,
        path: String,
    },
    /// MFF: facts to set, names lower-cased, e.g. [("modify", "20240101000000")].
    Mff {
        facts: Vec<(String, String)>,
        path: String,
    },
    /// DSIZ: size of a directory tree.
    Dsiz(Option<String>),
    /// AVBL: space available for uploads.
    Avbl(Option<String>),
    // Listings
    List(ListArgs),
    Nlst(ListArgs),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    // Transfers
    Retr(String),
    Stor(String),
    /// STOU: store under a unique name (optional suggested base name).
    Stou(Option<String>),
    Appe(String),
    Rest(u64),
    Abor,
    /// ALLO: accepted and ignored (the argument is validated).
    Allo,
    Type(TransferType),
    /// MODE with its letter upper-cased; only 'S' is supported.
    Mode(char),
    /// STRU with its letter upper-cased; only 'F' is supported.
    Stru(char),
    // Data channel
    Pasv,
    Epsv(EpsvArg),
    Port(SocketAddr),
    Eprt(SocketAddr),
    Lprt(SocketAddr),
    Lpsv,
    /// SPSV: like PASV, but the reply carries only the port.
    Spsv,
    // Information and options
    Noop,
    Syst,
    Feat,
    /// OPTS: the option name upper-cased and the rest of the line.
    Opts {
        option: String,
        value: Option<String>,
    },
    Help(Option<String>),
    Stat(Option<String>),
    /// SITE: the sub-command upper-cased and its arguments.
    Site {
        command: String,
        args: Option<String>,
    },
    Host(String),
    Lang(Option<String>),
    Csid(String),
    Clnt(String),
    // Security extensions (RFC 2228, RFC 4217)
    Auth(String),
    Pbsz(String),
    Prot(String),
    Ccc,
    Adat(String),
    Conf(String),
    Enc(String),
    Mic(String),
    /// A command of the FTP standards this server does not implement
    /// (SMNT, THMB, XRCP, XRSQ, XSEM, XSEN); the verb upper-cased.
    NotImplemented(&'static str),
}

impl Command {
    /// The verb as it appears in logs and metrics (aliases such as XPWD give PWD).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Acct(_) => "ACCT",
            Command::Rein => "REIN",
            Command::Quit => "QUIT",
            Command::Pwd => "PWD",
            Command::Cwd(_) => "CWD",
            Command::Cdup => "CDUP",
            Command::Mkd(_) => "MKD",
            Command::Rmd(_) => "RMD",
            Command::Rmda(_) => "RMDA",
            Command::Dele(_) => "DELE",
            Command::Rnfr(_) => "RNFR",
            Command::Rnto(_) => "RNTO",
            Command::Size(_) => "SIZE",
            Command::Mdtm(_) => "MDTM",
            Command::Hash(_) => "HASH",
            Command::Rang { .. } => "RANG",
            Command::XHash { algorithm, .. } => x_hash_verb(*algorithm),
            Command::Mfmt { .. } => "MFMT",
            Command::Mfct { .. } => "MFCT",
            Command::Mff { .. } => "MFF",
            Command::Dsiz(_) => "DSIZ",
            Command::Avbl(_) => "AVBL",
            Command::List(_) => "LIST",
            Command::Nlst(_) => "NLST",
            Command::Mlsd(_) => "MLSD",
            Command::Mlst(_) => "MLST",
            Command::Retr(_) => "RETR",
            Command::Stor(_) => "STOR",
            Command::Stou(_) => "STOU",
            Command::Appe(_) => "APPE",
            Command::Rest(_) => "REST",
            Command::Abor => "ABOR",
            Command::Allo => "ALLO",
            Command::Type(_) => "TYPE",
            Command::Mode(_) => "MODE",
            Command::Stru(_) => "STRU",
            Command::Pasv => "PASV",
            Command::Epsv(_) => "EPSV",
            Command::Port(_) => "PORT",
            Command::Eprt(_) => "EPRT",
            Command::Lprt(_) => "LPRT",
            Command::Lpsv => "LPSV",
            Command::Spsv => "SPSV",
            Command::Noop => "NOOP",
            Command::Syst => "SYST",
            Command::Feat => "FEAT",
            Command::Opts { .. } => "OPTS",
            Command::Help(_) => "HELP",
            Command::Stat(_) => "STAT",
            Command::Site { .. } => "SITE",
            Command::Host(_) => "HOST",
            Command::Lang(_) => "LANG",
            Command::Csid(_) => "CSID",
            Command::Clnt(_) => "CLNT",
            Command::Auth(_) => "AUTH",
            Command::Pbsz(_) => "PBSZ",
            Command::Prot(_) => "PROT",
            Command::Ccc => "CCC",
            Command::Adat(_) => "ADAT",
            Command::Conf(_) => "CONF",
            Command::Enc(_) => "ENC",
            Command::Mic(_) => "MIC",
            Command::NotImplemented(verb) => verb,
        }
    }
}

/// The verb of the older checksum command of `algorithm`.
pub fn x_hash_verb(algorithm: crate::digest::Algorithm) -> &'static str {
    use crate::digest::Algorithm::*;
    match algorithm {
        Sha1 => "XSHA1",
        Sha256 => "XSHA256",
        Sha512 => "XSHA512",
        Md5 => "XMD5",
        Crc32 => "XCRC",
    }
}
