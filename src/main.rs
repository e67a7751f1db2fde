//! The binary's edge: argument handling, logging, the start-up user, signals.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Context};
use s3ftp::auth::{hash_password, random_password, UserSpec};
use s3ftp::config::{help_text, is_loopback, Config};
use s3ftp::server::Server;
use tokio_util::sync::CancellationToken;

/// Name of the user created when none is configured.
const DEFAULT_USER: &str = "s3ftp";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("hash-password") => hash_from_stdin(),
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

fn serve() -> anyhow::Result<()> {
    tune_allocator();
    let mut config = Config::from_env()?;
    init_logging(&config)?;
    add_default_user(&mut config)?;
    // The start-up self-check: what is in effect, and what will hurt.
    for s in &config.effective {
        tracing::info!(
            variable = s.name,
            value = %s.value,
            default = s.is_default,
            "config"
        );
    }
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

/// Logs to standard error, as JSON or as text whose fields are escaped.
fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
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
    if !config.users.is_empty() {
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
