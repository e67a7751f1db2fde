//! Login and logout: USER, PASS, ACCT, REIN, QUIT.

use std::sync::Arc;
use std::time::Instant;

use super::{reply, Handled};
use crate::auth::{Attempt, Proof, User, Verdict};
use crate::protocol::{Reply, ReplyCode};
use crate::session::{Account, Login, Outcome, Session};
use crate::vfs::{Permissions, Vfs};

/// Longest delay before answering a failed login.
const MAX_FAIL_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) async fn user(s: &mut Session, name: String) -> Handled {
    if s.logged_in() {
        // RFC 959 allows changing user: the old login ends here.
        s.reset();
    }
    // A verified client certificate naming the user is the proof (RFC 4217).
    if s.client_identities.contains(&name) {
        let names = s.client_identities.clone();
        if let Verdict::Accepted(user) = ask(s, &name, Proof::Certificate(&names)).await {
            tracing::info!(user = %name, "logged in by client certificate");
            return log_in(
                s,
                user,
                ReplyCode::LoggedInBySecurityData,
                "User logged in, authorized by the client certificate.",
            )
            .await;
        }
    }
    let text = format!("Password required for {name}.");
    s.login = Login::Named(name);
    reply(ReplyCode::NeedPassword, text)
}

pub(super) async fn pass(s: &mut Session, password: String) -> Handled {
    let name = match std::mem::replace(&mut s.login, Login::Nobody) {
        Login::Named(name) => name,
        other => {
            let logged_in = matches!(other, Login::In(_));
            s.login = other;
            return if logged_in {
                reply(ReplyCode::CommandSuperfluous, "Already logged in.")
            } else {
                reply(ReplyCode::BadSequence, "Login with USER first.")
            };
        }
    };
    if let Some(home) = anonymous_home(s, &name) {
        return log_in(
            s,
            Arc::new(User::anonymous(&home)),
            ReplyCode::UserLoggedIn,
            "User logged in, proceed.",
        )
        .await;
    }
    match ask(s, &name, Proof::Password(&password)).await {
        Verdict::Accepted(user) => {
            log_in(s, user, ReplyCode::UserLoggedIn, "User logged in, proceed.").await
        }
        Verdict::Refused => refuse(s, &name).await,
        Verdict::Unavailable => unavailable(s, "The login service is not available"),
    }
}

/// What the users' sources say of `name` and `proof` (failures are logged
/// where they happen).
async fn ask(s: &Session, name: &str, proof: Proof<'_>) -> Verdict {
    let attempt = Attempt {
        name,
        proof,
        client: s.peer,
        tls: s.tls,
    };
    let started = Instant::now();
    let (verdict, via) = s.shared.auth.check(&attempt).await;
    s.shared.metrics.login_check(via.label(), started.elapsed());
    verdict
}

/// The anonymous home, when `name` is an anonymous login and those are on.
fn anonymous_home(s: &Session, name: &str) -> Option<String> {
    match &s.shared.config.anonymous_home {
        Some(home) if matches!(name.to_ascii_lowercase().as_str(), "anonymous" | "ftp") => {
            Some(home.clone())
        }
        _ => None,
    }
}

/// Opens the account of `user`: its tree, file view and home, then `code`.
async fn log_in(s: &mut Session, user: Arc<User>, code: ReplyCode, text: &'static str) -> Handled {
    let perms = Permissions {
        read_only: user.rights.read_only,
        drop_box: user.rights.drop_box,
        no_delete: user.rights.no_delete,
        no_overwrite: user.rights.no_overwrite,
        rename_overwrite: s.shared.config.rename_overwrite,
    };
    let tree = if user.mounts.is_empty() {
        s.shared.mounts.clone()
    } else {
        match s.shared.user_trees.get(&user.mounts).await {
            Ok(tree) => tree,
            Err(why) => {
                tracing::warn!(user = %user.name, "the user's own storage cannot be used: {why}");
                return unavailable(s, "Your storage is not available");
            }
        }
    };
    // Homes are checked at start (local users) or by the hook's answer;
    // should one slip through, refuse the login rather than fall back to
    // `/`, the whole tree.
    let vfs = Vfs::new(tree, &user.home, perms).map_err(|e| {
        tracing::error!(user = %user.name, home = %user.home, error = %e, "unusable home");
        Reply::new(ReplyCode::NotLoggedIn, "Home directory not usable.")
    })?;
    if !perms.read_only {
        if let Err(e) = vfs.ensure_home().await {
            tracing::warn!(user = %user.name, error = %e, "cannot create home directory");
        }
    }
    tracing::Span::current().record("user", tracing::field::display(&user.name));
    tracing::info!(user = %user.name, "login");
    s.shared.metrics.login("ok");
    s.login = Login::In(Account {
        user,
        vfs,
        cwd: "/".into(),
    });
    reply(code, text)
}

/// The hook, the directory or the user's own store did not answer: 421
/// and the connection closed. Not a failed login: no delay, no ban.
fn unavailable(s: &Session, what: &str) -> Handled {
    s.shared.metrics.login("unavailable");
    Ok(Outcome::Close(Reply::new(
        ReplyCode::ServiceNotAvailable,
        format!("{what}; try again later."),
    )))
}

/// A failed login: slower with each failure on the connection, and the
/// connection closed once the address is banned.
async fn refuse(s: &mut Session, name: &str) -> Handled {
    tracing::warn!(user = %name, "login failed");
    s.shared.metrics.login("failed");
    s.failed_logins += 1;
    let banned = s.shared.guard.login_failed(s.peer.ip());
    let delay = (s.shared.config.login_fail_delay * s.failed_logins).min(MAX_FAIL_DELAY);
    tokio::time::sleep(delay).await;
    if banned {
        return Ok(Outcome::Close(Reply::new(
            ReplyCode::ServiceNotAvailable,
            "Too many failed logins from your address; try again later.",
        )));
    }
    reply(ReplyCode::NotLoggedIn, "Login incorrect.")
}

pub(super) fn acct(s: &Session) -> Handled {
    if s.logged_in() {
        reply(
            ReplyCode::CommandSuperfluous,
            "ACCT not needed: already logged in.",
        )
    } else {
        reply(
            ReplyCode::CommandSuperfluous,
            "ACCT not needed on this server.",
        )
    }
}

pub(super) fn rein(s: &mut Session) -> Handled {
    s.reset();
    reply(ReplyCode::ServiceReady, "Service ready for new user.")
}

pub(super) fn quit() -> Handled {
    Ok(Outcome::Close(Reply::new(
        ReplyCode::ClosingControlConnection,
        "Goodbye.",
    )))
}
