//! Sessions: timeouts, the commit wait and the session limits.

use std::time::Duration;

use super::{invalid, ConfigError};

/// A timeout in whole seconds; zero would cut every connection off at once.
pub(super) fn timeout(var: &str, secs: u64) -> Result<Duration, ConfigError> {
    match secs {
        0 => Err(invalid(var, "must be at least 1 second")),
        n => Ok(Duration::from_secs(n)),
    }
}

/// A count that must allow at least one (sessions, parts in flight).
pub(super) fn at_least_one(var: &str, n: usize) -> Result<usize, ConfigError> {
    match n {
        0 => Err(invalid(var, "must be at least 1")),
        n => Ok(n),
    }
}

/// S3FTP_COMMIT_WAIT_US, capped at 10 s: every upload waits this long.
pub(super) fn commit_wait(micros: u64) -> Duration {
    Duration::from_micros(micros.min(10_000_000))
}
