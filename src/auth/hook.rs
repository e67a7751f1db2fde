//! The HTTP auth hook (S3FTP_AUTH_URL): each login the cache cannot answer
//! is POSTed as a small JSON document; `200` with a JSON user lets it in,
//! `401`, `403` or `404` refuse it, and anything else (another status, a
//! malformed answer, a timeout, no connection) refuses it as "unavailable",
//! with a log line: the hook never fails open. Schema: README, auth hook.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::Uri;
use serde::{Deserialize, Serialize};

use super::{Answer, Attempt, Proof, Rights, User};
use crate::httpclient::HttpClient;
use crate::vfs::mount::{add_mount, MountSpec};

/// The version of the request document; the answer has none of its own.
pub const VERSION: u32 = 1;

#[derive(Clone, Debug)]
pub struct HookSettings {
    pub url: Uri,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<crate::secrets::Secret>,
    pub timeout: Duration,
    /// Identifies this server to the hook (S3FTP_SERVER_ID).
    pub server_id: String,
}

pub struct Hook {
    settings: HookSettings,
    client: HttpClient,
    /// `Bearer <token>`, built once.
    authorization: Option<String>,
}

#[derive(Serialize)]
struct Request<'a> {
    version: u32,
    user: &'a str,
    /// Absent for a certificate login.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    /// The names a verified client certificate vouches for, one of them
    /// the user's; absent for a password login.
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_names: Option<&'a [String]>,
    client_ip: String,
    client_port: u16,
    tls: bool,
    server_id: &'a str,
}

/// The user in a `200` answer. Unknown fields are refused, so that a
/// misspelt `read_only` cannot silently grant writing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Granted {
    #[serde(default = "root")]
    home: String,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    drop_box: bool,
    #[serde(default)]
    no_delete: bool,
    #[serde(default)]
    no_overwrite: bool,
    /// Mount point -> mount URI, as in S3FTP_MOUNTS.
    #[serde(default)]
    mounts: BTreeMap<String, String>,
}

fn root() -> String {
    "/".into()
}

impl Hook {
    pub fn new(settings: HookSettings, tls: Arc<rustls::ClientConfig>) -> Self {
        Hook {
            client: HttpClient::new(tls, settings.timeout),
            authorization: settings.token.as_ref().map(|t| format!("Bearer {}", t.0)),
            settings,
        }
    }

    pub(super) async fn ask(&self, attempt: &Attempt<'_>) -> Answer {
        let (password, certificate_names) = match attempt.proof {
            Proof::Password(p) => (Some(p), None),
            Proof::Certificate(names) => (None, Some(names)),
        };
        let request = Request {
            version: VERSION,
            user: attempt.name,
            password,
            certificate_names,
            client_ip: attempt.client.ip().to_string(),
            client_port: attempt.client.port(),
            tls: attempt.tls,
            server_id: &self.settings.server_id,
        };
        let Ok(body) = serde_json::to_vec(&request) else {
            return Answer::Unavailable;
        };
        let headers: Vec<(&str, &str)> = self
            .authorization
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let url = &self.settings.url;
        let answer = match self.client.post_json(url, &headers, body).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(user = %attempt.name, url = %url, "auth hook unavailable: {e}; login refused");
                return Answer::Unavailable;
            }
        };
        match answer.status {
            200 => match granted(attempt.name, &answer.body) {
                Ok(user) => Answer::User(user),
                Err(why) => {
                    tracing::warn!(user = %attempt.name, url = %url, "auth hook answered 200 with an unusable user: {why}; login refused");
                    Answer::Unavailable
                }
            },
            401 | 403 | 404 => Answer::Refused,
            status => {
                tracing::warn!(user = %attempt.name, url = %url, status, "auth hook answered {status} (expected 200, 401, 403 or 404); login refused");
                Answer::Unavailable
            }
        }
    }
}

/// The user a `200` answer's body describes, checked as the configuration
/// checks local users.
fn granted(name: &str, body: &[u8]) -> Result<User, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    // serde would also read a struct from an array: `[]` must not be a user.
    if !value.is_object() {
        return Err("the answer is not a JSON object".into());
    }
    let granted: Granted = serde_json::from_value(value).map_err(|e| e.to_string())?;
    crate::vfs::path::check_home(&granted.home)
        .map_err(|e| format!("home {:?}: {e}", granted.home))?;
    let mut mounts: Vec<MountSpec> = Vec::new();
    for (point, uri) in &granted.mounts {
        add_mount(&mut mounts, point, uri)?;
    }
    Ok(User {
        name: name.to_string(),
        home: granted.home,
        rights: Rights {
            read_only: granted.read_only,
            drop_box: granted.drop_box,
            no_delete: granted.no_delete,
            no_overwrite: granted.no_overwrite,
        },
        mounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let user = granted(
            "p",
            br#"{"home":"/p","read_only":true,"mounts":{"/":"memory://"}}"#,
        )
        .unwrap();
        assert_eq!(user.home, "/p");
        assert!(user.rights.read_only && !user.rights.no_delete);
        assert_eq!(user.mounts.len(), 1);
        assert_eq!(granted("p", b"{}").unwrap().home, "/");
        for bad in [
            &br#"{"readonly":true}"#[..],
            br#"{"home":"p"}"#,
            br#"{"home":"/p/.."}"#,
            br#"{"mounts":{"x":"memory://"}}"#,
            br#"{"mounts":{"/a/":"memory://","/a":"memory://"}}"#,
            b"[]",
            b"[\"/x\"]",
            b"null",
            b"",
        ] {
            assert!(
                granted("p", bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
