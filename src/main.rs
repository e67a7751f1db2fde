//! The binary's edge: argument handling, logging, the start-up user, signals.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context};
use s3ftp::auth::{hash_password, random_password, UserSpec};
use s3ftp::config::{help_text, is_loopback, Config};
use s3ftp::secrets::redact;
use s3ftp::server::Server;
use s3ftp::storage::s3::upload::UploadSettings;
use s3ftp::storage::selfcheck::{self, StepResult};
use s3ftp::storage::StorageSettings;
use s3ftp::vfs::mount::MountTable;
use tokio_util::sync::CancellationToken;

/// Name of the user created when none is configured.
const DEFAULT_USER: &str = "s3ftp";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("hash-password") => hash_from_stdin(),
        Some("check") => check_mounts(),
        Some("config") => {
            let config = Config::from_env()?;
            for s in &config.effective {
                let origin = if s.is_default { "  (default)" } else { "" };
                println!("{}={}{origin}", s.name, s.value);
            }
            for warning in config.warnings() {
                println!("warning: {warning}");
            }
            Ok(())
        }
        Some("-h") | Some("--help") | Some("help") => {
            print!("{}", help_text());
            Ok(())
        }
        Some("-V") | Some("--version") => {
            println!("s3ftp {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(other) => bail!("unknown argument {other:?} (see s3ftp --help)"),
    }
}

/// `s3ftp check`: every mount tried as the server will use it, a line per
/// step; exits non-zero unless every step passed.
fn check_mounts() -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    if config
        .effective
        .iter()
        .any(|s| s.name == "S3FTP_LOG" && s.is_default)
    {
        config.log = "warn".into();
    }
    init_logging(&config)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (passed, total) = runtime.block_on(async {
        let settings = StorageSettings::new(
            UploadSettings::new(
                config.part_size_mib << 20,
                config.upload_concurrency,
                config.upload_memory_mib,
            )
            .with_download_concurrency(config.download_concurrency),
        );
        let mounts = MountTable::open(&config.mounts, &settings)
            .await
            .map_err(|e| anyhow::anyhow!("S3FTP_MOUNTS: {e}"))?;
        let (mut passed, mut total) = (0, 0);
        for mount in mounts.mounts() {
            println!("{} = {}", mount.point, redact(&mount.uri));
            for step in selfcheck::run(mount.backend.as_ref()).await {
                total += 1;
                match &step.result {
                    StepResult::Passed => {
                        passed += 1;
                        println!("  ok       {}", step.name);
                    }
                    StepResult::Failed(why) => println!("  FAILED   {}: {why}", step.name),
                    StepResult::Skipped => println!("  skipped  {}", step.name),
                }
            }
        }
        anyhow::Ok((passed, total))
    })?;
    if passed < total {
        bail!("{} of {total} checks did not pass", total - passed);
    }
    println!("all {total} checks passed");
    Ok(())
}

fn hash_from_stdin() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the password from stdin")?;
    let password = input.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password on stdin (try: echo -n 'secret' | s3ftp hash-password)");
    }
    let hash = hash_password(password).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    println!("{hash}");
    Ok(())
}

/// glibc's malloc raises its mmap threshold after the first large free, and
/// from then on keeps freed blocks of that size in per-thread arenas: each
/// argon2 verification (19 MiB) stayed resident in whichever blocking thread
/// ran it (133 MiB after ten logins), and part buffers freed on one worker
/// thread were not reused by another (a 40 MiB upload peaked at 100 MiB).
/// A fixed 4 MiB threshold maps such blocks and returns them when freed, so
/// resident memory follows the upload budget; the price is page faults on
/// each new part buffer (about 0.4 CPU-s per GiB uploaded, measured).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // the runtime starts any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Raises the soft limit on open files to the hard limit, as Go's runtime
/// and nginx do: each session holds a descriptor (two while it transfers,
/// more on S3), and a soft limit of 1,024 (many shells and init systems)
/// would refuse connections long before S3FTP_MAX_SESSIONS. Returns the
/// limit now in force.
fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a valid rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Some(limit.rlim_cur as u64)
}

fn serve() -> anyhow::Result<()> {
    tune_allocator();
    let open_files = raise_open_files_limit();
    let mut config = Config::from_env()?;
    init_logging(&config)?;
    tracing::debug!(?open_files, "open files limit");
    add_default_user(&mut config)?;
    // The start-up self-check: what differs from the defaults, and what
    // will hurt. `s3ftp config` prints every variable.
    let (set, defaults): (Vec<_>, Vec<_>) = config.effective.iter().partition(|s| !s.is_default);
    for s in set {
        tracing::info!(variable = s.name, value = %s.value, "config");
    }
    tracing::info!(
        "{} other variables at their defaults (s3ftp config lists them all)",
        defaults.len()
    );
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, "listening");
        println!("s3ftp listening on ftp://{addr}");
        let shutdown = CancellationToken::new();
        #[cfg(unix)]
        reload_on_sighup(server.reload_handle());
        let signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            signal.cancel();
        });
        server.run(shutdown).await;
        Ok(())
    })
}

/// Libraries whose messages a user cannot act on (rustls on an SNI by IP
/// address, hyper's connection chatter, the AWS SDK's provider probes, whose
/// failures the server reports in one line of its own): kept to their
/// warnings or errors unless S3FTP_LOG names them.
const QUIET: &[(&str, &str)] = &[
    ("rustls", "error"),
    ("hyper", "warn"),
    ("hyper_util", "warn"),
    ("h2", "warn"),
    ("aws_config", "error"),
    ("aws_smithy_runtime", "warn"),
    ("aws_sdk_s3", "warn"),
];

/// S3FTP_LOG with [`QUIET`] added for the libraries it does not name.
fn log_filter(log: &str) -> String {
    let mut filter = log.to_string();
    for (target, level) in QUIET {
        if !log.contains(target) {
            filter.push_str(&format!(",{target}={level}"));
        }
    }
    filter
}

/// Logs to standard error, as JSON or as text whose fields are escaped.
fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(&config.log))
        .with_context(|| format!("S3FTP_LOG: invalid filter {:?}", config.log))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        logs.json().flatten_event(true).init();
    } else {
        // Client strings reach field values: escape their control characters.
        logs.with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(s3ftp::logfmt::EscapedFields)
            .init();
    }
    Ok(())
}

/// With no users configured, one user with a generated password, shown
/// once, and only on loopback.
fn add_default_user(config: &mut Config) -> anyhow::Result<()> {
    let external = config.auth.hook.is_some() || config.auth.ldap.is_some();
    if !config.users.is_empty() || external {
        return Ok(());
    }
    if !is_loopback(config.listen.ip()) {
        bail!(
            "S3FTP_USERS: no users configured; refusing to listen on {} with a generated \
             password (set S3FTP_USERS or S3FTP_USERS_FILE, or listen on 127.0.0.1)",
            config.listen
        );
    }
    let password = random_password();
    let hash = hash_password(&password).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    config.users.push(UserSpec {
        name: DEFAULT_USER.into(),
        password: hash,
        home: "/".into(),
        read_only: false,
        drop_box: false,
        no_delete: false,
        no_overwrite: false,
        cert_required: false,
    });
    println!(
        "No users configured: log in as user {DEFAULT_USER:?} with password {password:?} \
         (shown once; set S3FTP_USERS for real use)"
    );
    Ok(())
}

/// SIGHUP reloads the TLS certificate; sessions stay connected.
#[cfg(unix)]
fn reload_on_sighup(handle: s3ftp::server::ReloadHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: certificate reload is off");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match handle.reload_tls() {
                Ok(true) => tracing::info!("TLS certificate reloaded"),
                Ok(false) => tracing::info!("SIGHUP: no TLS configured, nothing to reload"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; the old certificate stays")
                }
            }
        }
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A soft limit below the hard one (a shell's 1,024) is raised to it.
    #[test]
    fn the_open_files_soft_limit_is_raised_to_the_hard_one() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit with a valid rlimit we own.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
            let lowered = libc::rlimit {
                rlim_cur: limit.rlim_max.min(256),
                rlim_max: limit.rlim_max,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lowered), 0);
        }
        #[allow(clippy::unnecessary_cast)]
        let hard = limit.rlim_max as u64;
        assert_eq!(raise_open_files_limit(), Some(hard));
    }
}
