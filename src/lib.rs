//! s3ftp: an FTP and FTPS server whose files live in S3-compatible object
//! stores or a local folder. The layers, top to bottom (dependencies point down):
//! `server` -> `session` -> `protocol` / `datachan` -> `vfs` -> `storage`.

pub mod protocol;
pub mod storage;
