//! Events (S3FTP_EVENTS_*): the sinks, what is sent, the spool.

use std::path::PathBuf;
use std::time::Duration;

use super::listeners::non_empty;
use super::sessions::{at_least_one, timeout};
use super::vars::names::*;
use super::vars::Raw;
use super::{invalid, ConfigError};
use crate::events::{EventSettings, Filter, Kind};
use crate::secrets::Secret;

pub(super) fn events(raw: &Raw) -> Result<EventSettings, ConfigError> {
    let webhook = match non_empty(&raw.events_webhook_url) {
        None => None,
        Some(url) => {
            let uri: hyper::Uri = url.parse().map_err(|e| {
                invalid(
                    S3FTP_EVENTS_WEBHOOK_URL,
                    format!("{url:?} is not a URL: {e}"),
                )
            })?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(invalid(
                    S3FTP_EVENTS_WEBHOOK_URL,
                    format!("{url:?} must be an http:// or https:// URL with a host"),
                ));
            }
            let secret = non_empty(&raw.events_webhook_secret).ok_or_else(|| {
                invalid(
                    S3FTP_EVENTS_WEBHOOK_SECRET,
                    "needed with S3FTP_EVENTS_WEBHOOK_URL: receivers check the signature with it",
                )
            })?;
            Some((uri, Secret(secret)))
        }
    };
    Ok(EventSettings {
        webhook,
        sqs_queue_url: non_empty(&raw.events_sqs_queue_url),
        sns_topic_arn: non_empty(&raw.events_sns_topic_arn),
        filter: Filter {
            kinds: kinds(&raw.events_types)?,
            prefixes: prefixes(&raw.events_paths)?,
        },
        spool: PathBuf::from(raw.events_spool.trim()),
        max_pending: at_least_one(S3FTP_EVENTS_MAX_PENDING, raw.events_max_pending)?,
        retry_max: Duration::from_secs(raw.events_retry_max_secs.max(1)),
        timeout: timeout(S3FTP_EVENTS_TIMEOUT, raw.events_timeout)?,
    })
}

fn kinds(value: &str) -> Result<Vec<Kind>, ConfigError> {
    let mut kinds = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let matching: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| match item.strip_suffix('*') {
                Some(prefix) => k.name().starts_with(prefix),
                None => k.name() == item,
            })
            .collect();
        if matching.is_empty() {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            return Err(invalid(
                S3FTP_EVENTS_TYPES,
                format!("{item:?} names no event type (types: {})", names.join(", ")),
            ));
        }
        kinds.extend(matching);
    }
    kinds.sort_by_key(|k| k.name());
    kinds.dedup();
    Ok(kinds)
}

fn prefixes(value: &str) -> Result<Vec<String>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|p| {
            crate::vfs::path::check_home(p).map_err(|e| {
                invalid(
                    S3FTP_EVENTS_PATHS,
                    format!("{p:?} is not a normal absolute path: {e}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_prefixes() {
        assert_eq!(kinds("*").unwrap().len(), Kind::ALL.len());
        assert_eq!(
            kinds("upload.*, file.deleted").unwrap(),
            [
                Kind::Deleted,
                Kind::UploadAborted,
                Kind::Uploaded,
                Kind::UploadFailed
            ]
        );
        assert!(kinds("upload").is_err());
        assert_eq!(prefixes(" /in, /out/x ").unwrap(), ["/in", "/out/x"]);
        assert!(prefixes("in").is_err());
    }
}
