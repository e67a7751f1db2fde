//! The binary's edge: --help, hash-password, and configuration errors that
//! stop the server at start with a message naming the variable.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn s3ftp(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3ftp"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("S3FTP_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run s3ftp");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn help_lists_every_variable_with_its_default() {
    let out = s3ftp(&["--help"], &[], "");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for v in s3ftp::config::VARIABLES {
        assert!(
            text.contains(&format!("{} [{}]", v.name, v.default)),
            "{}",
            v.name
        );
    }
}

#[test]
fn hash_password_prints_a_verifiable_argon2id_hash() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let out = s3ftp(&["hash-password"], &[], "correct horse\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).expect("utf8");
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let parsed = PasswordHash::new(hash).expect("PHC string");
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse", &parsed)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse\n", &parsed)
        .is_err());
    let empty = s3ftp(&["hash-password"], &[], "");
    assert!(!empty.status.success());
}

fn fails_naming(env: &[(&str, &str)], var: &str, also: &str) {
    let out = s3ftp(&[], env, "");
    assert!(!out.status.success(), "started with {env:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(var), "error does not name {var}: {err}");
    assert!(err.contains(also), "error does not say {also:?}: {err}");
}

#[test]
fn bad_configuration_stops_the_server_naming_the_variable() {
    fails_naming(&[("S3FTP_LISTEN", "nowhere")], "S3FTP_LISTEN", "nowhere");
    fails_naming(
        &[("S3FTP_IDLE_TIMEOUT", "soon")],
        "S3FTP_IDLE_TIMEOUT",
        "soon",
    );
    fails_naming(&[("S3FTP_PASV_PORTS", "9-1")], "S3FTP_PASV_PORTS", "9-1");
    fails_naming(
        &[("S3FTP_MOUNTS", "/=ftp://x")],
        "S3FTP_MOUNTS",
        "unknown scheme",
    );
    fails_naming(&[("S3FTP_LISTN", "x")], "S3FTP_LISTN", "unknown variable");
    fails_naming(
        &[("S3FTP_USERS", r#"[{"name":"a","password":"plain"}]"#)],
        "S3FTP_USERS",
        "hash-password",
    );
    fails_naming(
        &[("S3FTP_USERS_FILE", "/nonexistent/users.json")],
        "S3FTP_USERS_FILE",
        "/nonexistent/users.json",
    );
    // No users and a public address: no generated password on the network.
    fails_naming(&[("S3FTP_LISTEN", "0.0.0.0:0")], "S3FTP_USERS", "0.0.0.0");
}

#[test]
fn config_prints_effective_settings_redacted_with_warnings() {
    let out = s3ftp(
        &["config"],
        &[
            ("S3FTP_LISTEN", "0.0.0.0:2121"),
            (
                "S3FTP_MOUNTS",
                "/=s3://bucket?access_key=AKID&secret_key=TOPSECRET",
            ),
            ("S3FTP_MAX_SESSIONS", "64"),
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("TOPSECRET"), "{text}");
    for line in [
        "S3FTP_MOUNTS=/=s3://bucket?access_key=AKID&secret_key=***",
        "S3FTP_MAX_SESSIONS=64",
        "S3FTP_IDLE_TIMEOUT=300  (default)",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    for warning in [
        "warning: S3FTP_PASV_ADDRESS is unset",
        "warning: S3FTP_PASV_PORTS is unset",
        "warning: TLS is off on 0.0.0.0",
    ] {
        assert!(text.contains(warning), "no {warning:?} in\n{text}");
    }
}

/// A home that does not resolve stops the server with one line naming the
/// user, instead of giving that user `/` (the whole tree).
#[test]
fn a_home_that_does_not_resolve_stops_the_server_naming_the_user() {
    let hash = s3ftp::auth::hash_password("x").expect("hash");
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = dir.path().join("users.toml");
    std::fs::write(
        &toml,
        format!("[[users]]\nname = \"dora\"\npassword = '{hash}'\nhome = \"/d//e\"\n"),
    )
    .expect("users file");
    let toml = toml.to_str().expect("utf-8 path").to_string();
    for (var, users, what) in [
        (
            "S3FTP_USERS",
            format!(r#"[{{"name":"mallory","password":"{hash}","home":"/m/../.."}}]"#),
            "\"..\"",
        ),
        (
            "S3FTP_USERS",
            format!(r#"[{{"name":"mallory","password":"{hash}","home":"/m\u0000"}}]"#),
            "NUL",
        ),
        ("S3FTP_USERS_FILE", toml.clone(), "empty"),
    ] {
        // No backtrace (the test runner sets RUST_BACKTRACE): the message alone.
        let env = [
            (var, users.as_str()),
            ("S3FTP_LISTEN", "127.0.0.1:0"),
            ("RUST_BACKTRACE", "0"),
        ];
        let out = s3ftp(&[], &env, "");
        assert!(!out.status.success(), "started with {users}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        let user = if var == "S3FTP_USERS" {
            "mallory"
        } else {
            "dora"
        };
        for part in [var, user, "home", what] {
            assert!(err.contains(part), "{part:?} not in: {err}");
        }
    }
}

/// A home that is a normal path but cannot be a key on its mount (too long,
/// or a name the back end keeps for itself) stops the server too, naming
/// who has it, instead of failing every command of that user.
#[test]
fn a_home_its_mount_cannot_hold_stops_the_server_naming_the_user() {
    let hash = s3ftp::auth::hash_password("x").expect("hash");
    let long = format!("/{}", "h".repeat(1100));
    for (users, anonymous, who, what) in [
        (
            format!(r#"[{{"name":"pat","password":"{hash}","home":"/.s3ftp-partial/pat"}}]"#),
            "",
            "user \"pat\"",
            "reserved name",
        ),
        (
            String::new(),
            long.as_str(),
            "S3FTP_ANONYMOUS_HOME",
            "longer than 1024",
        ),
    ] {
        let env = [
            ("S3FTP_USERS", users.as_str()),
            ("S3FTP_ANONYMOUS_HOME", anonymous),
            ("S3FTP_MOUNTS", "/=memory://"),
            ("S3FTP_LISTEN", "127.0.0.1:0"),
            ("S3FTP_LOG", "warn"),
            ("RUST_BACKTRACE", "0"),
        ];
        let out = s3ftp(&[], &env, "");
        assert!(!out.status.success(), "started with {users} {anonymous}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        for part in [who, "home", what] {
            assert!(err.contains(part), "{part:?} not in: {err}");
        }
    }
}
