//! Configuration tests: defaults, errors naming their variable, the README
//! and --help listing every variable, redaction and start-up warnings.

use super::*;

#[test]
fn defaults() {
    let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:2121".parse().unwrap());
    assert_eq!(c.mounts[0].uri, "fs://./data");
    assert_eq!(c.pasv_ports, None);
    assert_eq!(c.idle_timeout, Duration::from_secs(300));
}

#[test]
fn errors_name_the_variable() {
    let e = Config::from_vars([("S3FTP_LISTEN", "nope")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_LISTEN");
    let e = Config::from_vars([("S3FTP_PASV_PORTS", "60000-50000")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_PASV_PORTS");
    let e = Config::from_vars([("S3FTP_IDLE_TIMEOUT", "soon")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_IDLE_TIMEOUT");
    assert!(e.to_string().contains("soon"), "{e}");
    let e = Config::from_vars([("S3FTP_MOUNTS", "data")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_MOUNTS");
    let e = Config::from_vars([("S3FTP_LISTN", "x")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_LISTN");
}

#[test]
fn temp_suffixes() {
    let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
    assert_eq!(c.temp_suffixes, [".filepart"]);
    let c = Config::from_vars([("S3FTP_TEMP_SUFFIXES", " .filepart, .tmp ,,")]).unwrap();
    assert_eq!(c.temp_suffixes, [".filepart", ".tmp"]);
    let c = Config::from_vars([("S3FTP_TEMP_SUFFIXES", "")]).unwrap();
    assert!(c.temp_suffixes.is_empty());
    let e = Config::from_vars([("S3FTP_TEMP_SUFFIXES", ".part/x")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_TEMP_SUFFIXES");
}

#[test]
fn legacy_encoding() {
    let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
    assert!(!c.legacy_encoding.is_legacy());
    let c = Config::from_vars([("S3FTP_LEGACY_ENCODING", "gbk")]).unwrap();
    assert_eq!(c.legacy_encoding.name(), "GBK");
    for bad in ["utf-8", "ebcdic-nope"] {
        let e = Config::from_vars([("S3FTP_LEGACY_ENCODING", bad)]).unwrap_err();
        assert_eq!(e.var, "S3FTP_LEGACY_ENCODING");
    }
}

#[test]
fn tls_settings_are_checked_together() {
    let e = Config::from_vars([("S3FTP_TLS_CERT", "/c.pem")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_TLS_KEY");
    let e = Config::from_vars([("S3FTP_REQUIRE_TLS", "true")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_REQUIRE_TLS");
    let e = Config::from_vars([("S3FTP_TLS_IMPLICIT_LISTEN", "127.0.0.1:990")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_TLS_IMPLICIT_LISTEN");
    let c = Config::from_vars([("S3FTP_TLS_SELF_SIGNED", "true")]).unwrap();
    assert_eq!(c.tls, Some(CertSource::SelfSigned));
    assert_eq!(c.tls_client_ca, None);
    let e = Config::from_vars([("S3FTP_TLS_CLIENT_CA", "/ca.pem")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_TLS_CLIENT_CA");
    let c = Config::from_vars([
        ("S3FTP_TLS_SELF_SIGNED", "true"),
        ("S3FTP_TLS_CLIENT_CA", "/ca.pem"),
    ])
    .unwrap();
    assert_eq!(c.tls_client_ca.as_deref(), Some("/ca.pem"));
}

#[test]
fn port_range() {
    let c = Config::from_vars([("S3FTP_PASV_PORTS", "50000-50100")]).unwrap();
    assert_eq!(c.pasv_ports, Some(50000..=50100));
    assert!(Config::from_vars([("S3FTP_PASV_PORTS", "21-30")]).is_err());
}

#[test]
fn readme_lists_every_variable_with_its_default() {
    let readme = include_str!("../../README.md");
    for v in VARIABLES {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", v.name)))
            .unwrap_or_else(|| panic!("README has no row for {}", v.name));
        if !v.default.is_empty() {
            // A `|` in a table cell is written `\|`, even in code.
            let escaped = v.default.replace('|', "\\|");
            assert!(
                row.contains(&format!("`{}`", v.default)) || row.contains(&format!("`{escaped}`")),
                "README default of {}",
                v.name
            );
        }
    }
}

#[test]
fn help_lists_every_variable() {
    let text = help_text();
    for v in VARIABLES {
        assert!(text.contains(v.name));
    }
}

#[test]
fn effective_settings_hide_secrets_and_mark_defaults() {
    let c = Config::from_vars([
        ("S3FTP_LISTEN", "127.0.0.1:2121"),
        (
            "S3FTP_MOUNTS",
            "/=s3://b?access_key=AK&secret_key=SK,/l=fs://./x",
        ),
        (
            "S3FTP_USERS",
            r#"[{"name":"a","password":"$argon2id$v=19$m=19456,t=2,p=1$sxbcchROu9jpGwz6B4gJCw$esvzLwPKCp0AonM7vy9OyeSbxG/g58kw1tonsLsOzcU"}]"#,
        ),
        ("S3FTP_MAX_SESSIONS", "10"),
    ])
    .unwrap();
    assert_eq!(c.effective.len(), VARIABLES.len());
    let get = |n: &str| c.effective.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!(
        get("S3FTP_MOUNTS").value,
        "/=s3://b?access_key=AK&secret_key=***,/l=fs://./x"
    );
    assert_eq!(get("S3FTP_USERS").value, "(set, not shown)");
    assert!(get("S3FTP_LISTEN").is_default);
    assert!(!get("S3FTP_MAX_SESSIONS").is_default);
    let all = format!("{:?}", c.effective);
    assert!(!all.contains("SK") && !all.contains("argon2id"), "{all}");
}

#[test]
fn risky_settings_are_warned_about() {
    let quiet = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
    assert_eq!(quiet.warnings(), Vec::<String>::new(), "loopback default");
    let public = Config::from_vars([
        ("S3FTP_LISTEN", "0.0.0.0:21"),
        ("S3FTP_PROXY_PROTOCOL", "control"),
        ("S3FTP_METRICS_LISTEN", "0.0.0.0:9090"),
    ])
    .unwrap();
    let w = public.warnings().join("\n");
    for needle in [
        "S3FTP_PASV_ADDRESS is unset",
        "PROXY protocol is on",
        "S3FTP_PASV_PORTS is unset",
        "TLS is off on 0.0.0.0",
        "S3FTP_PROXY_TRUSTED empty",
        "S3FTP_METRICS_LISTEN 0.0.0.0:9090",
    ] {
        assert!(w.contains(needle), "no {needle:?} in\n{w}");
    }
    let narrow = Config::from_vars([
        ("S3FTP_LISTEN", "10.1.2.3:21"),
        ("S3FTP_PASV_ADDRESS", "ftp.example.com"),
        ("S3FTP_PASV_PORTS", "50000-50009"),
        ("S3FTP_MAX_SESSIONS", "100"),
    ])
    .unwrap();
    let w = narrow.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("has 10 ports for up to 32 sessions from one client address"),
        "{w:?}"
    );
    let fine = Config::from_vars([
        ("S3FTP_LISTEN", "10.1.2.3:21"),
        ("S3FTP_PASV_ADDRESS", "ftp.example.com"),
        ("S3FTP_PASV_PORTS", "50000-50009"),
        ("S3FTP_MAX_SESSIONS", "100"),
        ("S3FTP_MAX_SESSIONS_PER_IP", "10"),
    ])
    .unwrap();
    assert_eq!(fine.warnings(), Vec::<String>::new());
}

#[test]
fn typed_parsers_name_the_variable_and_quote_the_value() {
    let e = Config::from_vars([("S3FTP_TLS_SELF_SIGNED", "yes")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_TLS_SELF_SIGNED");
    assert!(e.reason.contains("\"yes\""), "{e}");
    let e = Config::from_vars([("S3FTP_MAX_COMMANDS_PER_SECOND", "-1")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_MAX_COMMANDS_PER_SECOND");
    let e = Config::from_vars([("S3FTP_PART_SIZE_MIB", "")]).unwrap_err();
    assert_eq!(e.var, "S3FTP_PART_SIZE_MIB");
}

#[test]
fn test_variables_are_ignored_and_others_are_untouched() {
    let c = Config::from_vars([("S3FTP_TEST_ANYTHING", "x"), ("HOME", "/root")]).unwrap();
    assert!(c.effective.iter().all(|s| s.is_default));
}

#[test]
fn external_users_are_checked_and_passwords_never_go_out_in_the_clear() {
    let hook = |url: &str| Config::from_vars([("S3FTP_AUTH_URL", url)]);
    assert!(hook("http://127.0.0.1:8080/login")
        .unwrap()
        .auth
        .hook
        .is_some());
    assert!(hook("https://auth.example.org/ftp").is_ok());
    let e = hook("http://auth.example.org/ftp").unwrap_err();
    assert_eq!(e.var, "S3FTP_AUTH_URL");
    assert!(e.to_string().contains("S3FTP_AUTH_ALLOW_PLAINTEXT"), "{e}");
    assert!(Config::from_vars([
        ("S3FTP_AUTH_URL", "http://10.0.0.5/ftp"),
        ("S3FTP_AUTH_ALLOW_PLAINTEXT", "true"),
    ])
    .is_ok());
    for bad in ["ftp://x/", "auth.example.org", "https://"] {
        assert_eq!(hook(bad).unwrap_err().var, "S3FTP_AUTH_URL", "{bad}");
    }

    let template = ("S3FTP_LDAP_BIND_DN_TEMPLATE", "uid={user},dc=x");
    let c = Config::from_vars([("S3FTP_LDAP_URL", "ldap://dc1.example.org"), template]).unwrap();
    assert!(c.auth.ldap.as_ref().is_some_and(|l| l.starttls));
    let e = Config::from_vars([
        ("S3FTP_LDAP_URL", "ldap://dc1.example.org"),
        ("S3FTP_LDAP_STARTTLS", "false"),
        template,
    ])
    .unwrap_err();
    assert_eq!(e.var, "S3FTP_LDAP_STARTTLS");
    assert!(Config::from_vars([
        ("S3FTP_LDAP_URL", "ldap://127.0.0.1:3389"),
        ("S3FTP_LDAP_STARTTLS", "false"),
        template,
    ])
    .is_ok());
    let e = Config::from_vars([("S3FTP_LDAP_URL", "ldaps://dc1")]).unwrap_err();
    assert_eq!(
        e.var, "S3FTP_LDAP_URL",
        "needs a template or a service account"
    );
    let e = Config::from_vars([
        ("S3FTP_LDAP_URL", "ldaps://dc1"),
        ("S3FTP_LDAP_BIND_DN_TEMPLATE", "uid=x,dc=x"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "S3FTP_LDAP_BIND_DN_TEMPLATE");
    let e = Config::from_vars([
        ("S3FTP_LDAP_URL", "ldaps://dc1"),
        ("S3FTP_LDAP_BIND_DN", "cn=svc,dc=x"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "S3FTP_LDAP_BASE_DN");
    let e = Config::from_vars([
        ("S3FTP_LDAP_URL", "ldaps://dc1"),
        template,
        ("S3FTP_LDAP_HOME_TEMPLATE", "/home/../{user}"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "S3FTP_LDAP_HOME_TEMPLATE");
    let e = Config::from_vars([
        ("S3FTP_LDAP_URL", "ldaps://dc1"),
        template,
        ("S3FTP_AUTH_URL", "https://auth.example.org"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "S3FTP_AUTH_URL", "one external source");
}

#[test]
fn hook_and_ldap_secrets_are_not_shown() {
    let c = Config::from_vars([
        ("S3FTP_AUTH_URL", "https://auth.example.org"),
        ("S3FTP_AUTH_TOKEN", "tok-123"),
        ("S3FTP_LDAP_BIND_PASSWORD", "ldap-secret"),
    ])
    .unwrap();
    let shown = format!("{:?} {:?}", c.effective, c.auth);
    assert!(
        !shown.contains("tok-123") && !shown.contains("ldap-secret"),
        "{shown}"
    );
}
