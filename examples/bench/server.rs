//! The server under test as a child process, and what /proc says about it.

use super::*;

/// The server process, and what /proc says about it.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// The server's monitoring listener (/metrics).
    pub(crate) metrics: SocketAddr,
    pub(crate) ticks_per_second: f64,
}

impl ServerProcess {
    pub(crate) fn start(mount: &str, extra: &[(String, String)]) -> Result<ServerProcess> {
        let bin = std::env::var_os("S3FTP_BENCH_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                // target/release/examples/bench -> target/release/s3ftp
                let exe = std::env::current_exe().unwrap_or_default();
                exe.parent()
                    .and_then(|p| p.parent())
                    .map(|p| p.join("s3ftp"))
                    .unwrap_or_else(|| PathBuf::from("target/release/s3ftp"))
            });
        let hash = s3ftp::auth::hash_password(PASSWORD).map_err(|e| e.to_string())?;
        let users = format!(r#"[{{"name":"{USER}","password":"{hash}"}}]"#);
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut child = Launch::new(format!("/={mount}"))
            .users(Some(&users))
            .var("S3FTP_MAX_SESSIONS", "1024")
            .var("S3FTP_MAX_SESSIONS_PER_IP", "1024")
            .var("S3FTP_MAX_COMMANDS_PER_SECOND", "0")
            .var("S3FTP_DATA_TIMEOUT", "120")
            .var("S3FTP_METRICS_LISTEN", metrics.to_string())
            // For W6 (FTPS); plain FTP is unaffected.
            .var("S3FTP_TLS_SELF_SIGNED", "true")
            .vars(extra)
            .command(&bin)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!(
                    "starting {}: {e} (build it: scripts/bench.sh)",
                    bin.display()
                )
            })?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let addr = listening_address(&line)
            .ok_or_else(|| format!("unexpected first line from the server: {line:?}"))?;
        let ticks = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0);
        Ok(ServerProcess {
            child,
            addr,
            metrics,
            ticks_per_second: ticks,
        })
    }

    /// Requests of one S3 operation the server sent so far, and the seconds
    /// they took in all (from its /metrics).
    pub(crate) fn backend_time(&self, operation: &str) -> (f64, f64) {
        use std::io::{Read, Write};
        let mut text = String::new();
        if let Ok(mut conn) = std::net::TcpStream::connect(self.metrics) {
            let _ = conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n");
            let _ = conn.read_to_string(&mut text);
        }
        let series = format!(r#"{{backend="s3",operation="{operation}"}} "#);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(series.as_str()))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            value("s3ftp_backend_request_duration_seconds_count"),
            value("s3ftp_backend_request_duration_seconds_sum"),
        )
    }

    pub(crate) fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Peak resident memory since the last reset, in MiB.
    pub(crate) fn peak_mib(&self) -> f64 {
        self.status_kib("VmHWM") as f64 / 1024.0
    }

    pub(crate) fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS") as f64 / 1024.0
    }

    /// Starts a new peak: VmHWM becomes the current RSS.
    pub(crate) fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }

    /// User + system CPU seconds used so far.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses).
        let rest = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
        (ticks(11) + ticks(12)) / self.ticks_per_second
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Server-side figures over one workload.
pub(crate) struct Usage {
    pub(crate) cpu: f64,
    pub(crate) peak: f64,
}

pub(crate) async fn measured<T>(
    server: &ServerProcess,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, Duration, Usage)> {
    server.reset_peak();
    let cpu = server.cpu_seconds();
    let started = Instant::now();
    let out = work.await?;
    let elapsed = started.elapsed();
    Ok((
        out,
        elapsed,
        Usage {
            cpu: server.cpu_seconds() - cpu,
            peak: server.peak_mib(),
        },
    ))
}
