//! s3ftp: an FTP server whose files live in S3-compatible object stores or a
//! local folder. The layers, top to bottom (dependencies point down only):
//! `server` -> `session` -> `protocol` (pure) / `datachan` -> `vfs` -> `storage`.
//! `config` and `auth` are read by the server and the session.

pub mod auth;
pub mod bounded;
pub mod config;
pub mod datachan;
pub mod digest;
pub mod events;
pub mod guard;
pub mod httpclient;
pub mod logfmt;
pub mod metrics;
pub mod protocol;
pub mod secrets;
pub mod server;
pub mod session;
pub mod storage;
pub mod task;
pub mod tls;
pub mod vfs;
