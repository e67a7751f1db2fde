//! Login and logout: USER, PASS, ACCT, REIN, QUIT.

use std::sync::Arc;

use super::{reply, Handled};
use crate::auth::UserSpec;
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
        if let Some(user) = s.shared.users.get(&name) {
            tracing::info!(user = %name, "logged in by client certificate");
            return log_in(
                s,
                user,
                name,
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
    let Some(user) = verify(s, &name, &password).await else {
        return refuse(s, &name).await;
    };
    if user.cert_required {
        tracing::warn!(user = %name, "password login refused: the account needs a client certificate");
        return refuse(s, &name).await;
    }
    log_in(
        s,
        user,
        name,
        ReplyCode::UserLoggedIn,
        "User logged in, proceed.",
    )
    .await
}

/// Opens the account of `user`: its file view and home, then `code`.
async fn log_in(
    s: &mut Session,
    user: Arc<UserSpec>,
    name: String,
    code: ReplyCode,
    text: &'static str,
) -> Handled {
    let perms = Permissions {
        read_only: user.read_only,
        drop_box: user.drop_box,
        no_delete: user.no_delete,
        no_overwrite: user.no_overwrite,
        rename_overwrite: s.shared.config.rename_overwrite,
    };
    // Homes are checked at start; should one slip through, refuse the login
    // rather than fall back to `/`, the whole tree.
    let vfs = Vfs::new(s.shared.mounts.clone(), &user.home, perms).map_err(|e| {
        tracing::error!(user = %name, home = %user.home, error = %e, "unusable home");
        Reply::new(ReplyCode::NotLoggedIn, "Home directory not usable.")
    })?;
    if !perms.read_only {
        if let Err(e) = vfs.ensure_home().await {
            tracing::warn!(user = %name, error = %e, "cannot create home directory");
        }
    }
    tracing::Span::current().record("user", tracing::field::display(&name));
    tracing::info!(user = %name, "login");
    s.shared.metrics.login(true);
    s.login = Login::In(Account {
        user,
        vfs,
        cwd: "/".into(),
    });
    reply(code, text)
}

/// The user `name` is, if `password` proves it (anonymous logins need none).
async fn verify(s: &Session, name: &str, password: &str) -> Option<Arc<UserSpec>> {
    match &s.shared.config.anonymous_home {
        Some(home) if matches!(name.to_ascii_lowercase().as_str(), "anonymous" | "ftp") => {
            Some(Arc::new(UserSpec::anonymous(home)))
        }
        _ => s.shared.users.verify(name, password).await,
    }
}

/// A failed login: slower with each failure on the connection, and the
/// connection closed once the address is banned.
async fn refuse(s: &mut Session, name: &str) -> Handled {
    tracing::warn!(user = %name, "login failed");
    s.shared.metrics.login(false);
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
