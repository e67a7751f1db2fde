//! Sessions: timeouts, the command rate, the session limit and the grace
//! period after a shutdown signal.

use std::time::Duration;

use super::vars::names::{
    S3FTP_DATA_TIMEOUT, S3FTP_IDLE_TIMEOUT, S3FTP_LOGIN_TIMEOUT, S3FTP_MAX_SESSIONS,
};
use super::vars::Raw;
use super::{invalid, ConfigError};

/// The checked session settings.
pub(super) struct Sessions {
    pub idle_timeout: Duration,
    pub login_timeout: Duration,
    pub data_timeout: Duration,
    pub commit_wait: Duration,
    pub max_commands_per_second: u32,
    pub max_sessions: usize,
    pub shutdown_grace: Duration,
}

pub(super) fn check(raw: &Raw) -> Result<Sessions, ConfigError> {
    // A zero timeout would cut every connection off at once.
    let secs = |var: &str, value: u64| match value {
        0 => Err(invalid(var, "must be at least 1 second")),
        n => Ok(Duration::from_secs(n)),
    };
    let idle_timeout = secs(S3FTP_IDLE_TIMEOUT, raw.idle_timeout)?;
    let login_timeout = secs(S3FTP_LOGIN_TIMEOUT, raw.login_timeout)?;
    let data_timeout = secs(S3FTP_DATA_TIMEOUT, raw.data_timeout)?;
    if raw.max_sessions == 0 {
        return Err(invalid(S3FTP_MAX_SESSIONS, "must be at least 1"));
    }
    Ok(Sessions {
        idle_timeout,
        login_timeout,
        data_timeout,
        // Capped at 10 s: every upload waits this long before its commit.
        commit_wait: Duration::from_micros(raw.commit_wait_us.min(10_000_000)),
        max_commands_per_second: raw.max_commands_per_second,
        max_sessions: raw.max_sessions,
        shutdown_grace: Duration::from_secs(raw.shutdown_grace),
    })
}
