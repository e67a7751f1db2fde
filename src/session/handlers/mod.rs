//! Command handlers, grouped by theme. [`handle_line`] parses a line, checks
//! that the session may run the command, and dispatches to a plain async
//! function; handlers return `Result<Outcome, Reply>` so that `?` turns storage
//! and path errors into replies through `session::error`.

mod access;
mod datachan;
mod files;
mod hashes;
mod info;
mod listing;
mod navigation;
mod security;
mod staged;
mod transfer;

pub(crate) use hashes::HashChoice;

use crate::protocol::{parse, Command, ParseError, Reply, ReplyCode};
use crate::storage::Metadata;
use crate::vfs::{path, Vfs};

use super::{Outcome, Session};

type Handled = Result<Outcome, Reply>;

fn reply(code: ReplyCode, text: impl Into<String>) -> Handled {
    Ok(Outcome::Reply(Reply::new(code, text)))
}

/// Handles one command line. Returns the verb (for metrics: "unknown" or
/// "invalid" when the line did not parse) with what to do.
pub(super) async fn handle_line(s: &mut Session, line: &[u8]) -> (&'static str, Outcome) {
    let cmd = match parse(line) {
        Ok(cmd) => cmd,
        Err(ParseError::Empty) => {
            let reply = Reply::new(ReplyCode::SyntaxError, "Empty command.");
            return ("invalid", Outcome::Reply(reply));
        }
        Err(e @ ParseError::Unknown(_)) => return ("unknown", Outcome::Reply(e.reply())),
        Err(e) => return ("invalid", Outcome::Reply(e.reply())),
    };
    let verb = cmd.verb();
    tracing::debug!(command = verb, "command");
    if !s.logged_in() && cmd.needs_login() {
        let reply = Reply::new(
            ReplyCode::NotLoggedIn,
            "Please log in with USER and PASS first.",
        );
        return (verb, Outcome::Reply(reply));
    }
    // RNFR must be immediately followed by RNTO.
    let rename_from = s.rename_from.take();
    if let Some(handled) = staged::intercept(s, &cmd, &rename_from).await {
        return match handled {
            Ok(outcome) => (verb, outcome),
            Err(reply) => (verb, Outcome::Reply(reply)),
        };
    }
    match dispatch(s, cmd, rename_from).await {
        Ok(outcome) => (verb, outcome),
        Err(reply) => (verb, Outcome::Reply(reply)),
    }
}

async fn dispatch(s: &mut Session, cmd: Command, rename_from: Option<String>) -> Handled {
    match cmd {
        Command::User(name) => {
            security::login_allowed(s)?;
            access::user(s, name).await
        }
        Command::Pass(password) => {
            security::login_allowed(s)?;
            access::pass(s, password).await
        }
        Command::Acct(_) => access::acct(s),
        Command::Rein => access::rein(s),
        Command::Quit => access::quit(),
        Command::Pwd => navigation::pwd(s),
        Command::Cwd(arg) => navigation::cwd(s, &arg).await,
        Command::Cdup => navigation::cwd(s, "..").await,
        Command::Mkd(arg) => files::mkd(s, &arg).await,
        Command::Rmd(arg) => files::rmd(s, &arg).await,
        Command::Rmda(arg) => files::rmda(s, &arg).await,
        Command::Dele(arg) => files::dele(s, &arg).await,
        Command::Rnfr(arg) => files::rnfr(s, &arg).await,
        Command::Rnto(arg) => files::rnto(s, &arg, rename_from).await,
        Command::Size(arg) => files::size(s, &arg).await,
        Command::Mdtm(arg) => files::mdtm(s, &arg).await,
        Command::Mfmt { time, path } => files::mfmt(s, time, &path).await,
        Command::Mfct { time, path } => files::mfct(s, time, &path).await,
        Command::Mff { facts, path } => files::mff(s, &facts, &path).await,
        Command::Dsiz(arg) => files::dsiz(s, arg.as_deref()).await,
        Command::Avbl(arg) => files::avbl(s, arg.as_deref()).await,
        Command::List(args) => listing::list(s, args).await,
        Command::Nlst(args) => listing::nlst(s, args).await,
        Command::Mlsd(arg) => listing::mlsd(s, arg.as_deref()).await,
        Command::Mlst(arg) => listing::mlst(s, arg.as_deref()).await,
        Command::Stat(Some(arg)) => listing::stat_path(s, &arg).await,
        Command::Stat(None) => info::stat(s),
        Command::Retr(arg) => transfer::retr(s, &arg).await,
        Command::Stor(arg) => transfer::stor(s, &arg).await,
        Command::Stou(arg) => transfer::stou(s, arg.as_deref()).await,
        Command::Appe(arg) => transfer::appe(s, &arg).await,
        Command::Rest(offset) => transfer::rest(s, offset),
        Command::Abor => transfer::abor_idle(s),
        Command::Allo => reply(ReplyCode::CommandSuperfluous, "ALLO not needed."),
        Command::Type(t) => transfer::type_(s, t),
        Command::Mode(m) => transfer::mode(m),
        Command::Stru(f) => transfer::stru(f),
        Command::Pasv => datachan::pasv(s).await,
        Command::Epsv(arg) => datachan::epsv(s, arg).await,
        Command::Lpsv => datachan::lpsv(s).await,
        Command::Spsv => datachan::spsv(s).await,
        Command::Port(addr) => datachan::active(s, addr, "PORT"),
        Command::Eprt(addr) => datachan::active(s, addr, "EPRT"),
        Command::Lprt(addr) => datachan::active(s, addr, "LPRT"),
        Command::Hash(path) => hashes::hash(s, &path).await,
        Command::Rang { start, end } => hashes::rang(s, start, end),
        Command::XHash { algorithm, arg } => hashes::x_hash(s, algorithm, &arg).await,
        Command::Noop => reply(ReplyCode::CommandOkay, "NOOP ok."),
        Command::Syst => reply(ReplyCode::SystemType, "UNIX Type: L8"),
        Command::Feat => info::feat(s),
        Command::Opts { option, value } => info::opts(s, &option, value.as_deref()),
        Command::Help(arg) => info::help(arg.as_deref()),
        Command::Site { command, args } if command == "UTIME" => {
            files::site_utime(s, args.as_deref()).await
        }
        Command::Site { command, args } if command == "CHMOD" => {
            files::site_chmod(s, args.as_deref()).await
        }
        Command::Site { command, args } => info::site(&command, args.as_deref()),
        Command::Host(host) => info::host(s, &host),
        Command::Lang(lang) => info::lang(lang.as_deref()),
        Command::Csid(_) => info::csid(),
        Command::Clnt(_) => reply(ReplyCode::CommandOkay, "Noted."),
        Command::Auth(mechanism) => security::auth(s, &mechanism),
        Command::Pbsz(size) => security::pbsz(s, &size),
        Command::Prot(level) => security::prot(s, &level),
        Command::Ccc => security::ccc(s),
        Command::Adat(_) => reply(
            ReplyCode::NotImplemented,
            "ADAT is not used: TLS needs no security data exchange.",
        ),
        Command::Conf(_) | Command::Enc(_) | Command::Mic(_) => reply(
            ReplyCode::NotImplemented,
            "No security mechanism with protected commands is available.",
        ),

        Command::NotImplemented(verb) => reply(
            ReplyCode::NotImplemented,
            format!("{verb} not implemented: it has no meaning for object storage."),
        ),
    }
}

impl Session {
    pub(super) fn vfs(&self) -> Result<&Vfs, Reply> {
        self.account().map(|a| &a.vfs)
    }

    /// The virtual path an argument names.
    pub(super) fn resolve(&self, arg: &str) -> Result<String, Reply> {
        Ok(path::resolve(self.cwd(), arg)?)
    }

    /// The virtual path of something to create; see [`path::resolve_new`].
    pub(super) fn resolve_new(&self, arg: &str, dir_ok: bool) -> Result<String, Reply> {
        Ok(path::resolve_new(self.cwd(), arg, dir_ok)?)
    }

    pub(super) async fn stat(&self, path: &str) -> Result<Metadata, Reply> {
        Ok(self.vfs()?.stat(path).await?)
    }

    pub(super) fn writable(&self) -> bool {
        self.account().is_ok_and(|a| !a.vfs.permissions().read_only)
    }
}
