//! The working directory: PWD, CWD, CDUP (and their X aliases).

use super::{reply, Handled};
use crate::protocol::reply::quote_path;
use crate::protocol::ReplyCode;
use crate::session::Session;

pub(super) fn pwd(s: &Session) -> Handled {
    reply(
        ReplyCode::PathCreated,
        format!("{} is the current directory.", quote_path(s.cwd())),
    )
}

pub(super) async fn cwd(s: &mut Session, arg: &str) -> Handled {
    let path = s.resolve(arg)?;
    if !s.stat(&path).await?.is_dir() {
        return reply(ReplyCode::FileUnavailable, "Not a directory.");
    }
    let text = format!("Directory changed to {path}.");
    s.account_mut()?.cwd = path;
    reply(ReplyCode::FileActionOkay, text)
}
