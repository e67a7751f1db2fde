//! How every harness starts s3ftp: the in-process `TestServer`, the child
//! process of the real-client tests (`clients::Server`) and the benchmark
//! (which includes this file) build the server's variables here, and the two
//! that run the binary find its address here, from the line it prints once
//! it listens. So a server under test never races for a port: it binds port
//! 0 and says which one it got.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

/// The S3FTP_* variables of one server under test.
#[derive(Clone, Debug)]
pub struct Launch {
    vars: Vec<(String, String)>,
}

impl Launch {
    /// A server on `mount` (an `S3FTP_MOUNTS` value), listening on an
    /// ephemeral loopback port, logging warnings and errors only.
    pub fn new(mount: impl Into<String>) -> Launch {
        Launch { vars: Vec::new() }
            .var("S3FTP_LISTEN", "127.0.0.1:0")
            .var("S3FTP_MOUNTS", mount)
            .var("S3FTP_LOG", "warn")
    }

    /// Sets `name` to `value`, replacing what was set before.
    pub fn var(mut self, name: impl Into<String>, value: impl Into<String>) -> Launch {
        let (name, value) = (name.into(), value.into());
        self.vars.retain(|(n, _)| *n != name);
        self.vars.push((name, value));
        self
    }

    /// Sets each of `vars`, in order.
    pub fn vars<K: AsRef<str>, V: AsRef<str>>(self, vars: &[(K, V)]) -> Launch {
        vars.iter().fold(self, |launch, (name, value)| {
            launch.var(name.as_ref(), value.as_ref())
        })
    }

    /// S3FTP_USERS, when given.
    pub fn users(self, users: Option<&str>) -> Launch {
        match users {
            Some(users) => self.var("S3FTP_USERS", users),
            None => self,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The variables, for an in-process server (`Config::from_vars`).
    pub fn to_vars(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }

    /// The binary `bin` with these variables and no other S3FTP_* from
    /// this process's environment; standard input closed.
    pub fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("S3FTP_") {
                cmd.env_remove(&name);
            }
        }
        cmd.envs(self.vars.iter().map(|(n, v)| (n, v)))
            .stdin(Stdio::null());
        cmd
    }
}

/// The control address in the line s3ftp prints on standard output once it
/// listens (`s3ftp listening on ftp://127.0.0.1:40123`).
pub fn listening_address(line: &str) -> Option<SocketAddr> {
    line.trim()
        .strip_prefix("s3ftp listening on ftp://")?
        .parse()
        .ok()
}
