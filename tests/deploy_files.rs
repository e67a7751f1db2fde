//! docker-compose.yml, Dockerfile and .env.example cannot run here (no Docker
//! engine), so their consistency with the binary is checked instead: every
//! S3FTP_* variable they set exists, the demo user parses and its documented
//! password verifies, and the compose mount URI is one the server accepts.

use s3ftp::auth::{parse_users, UserStore};
use s3ftp::config::VARIABLES;
use s3ftp::storage::s3::S3Uri;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{}/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every `S3FTP_NAME` written in `text`.
fn variables_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("S3FTP_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        // `S3FTP_*` in prose is the family, not a variable.
        if name.len() > "S3FTP_".len() {
            found.push(name);
        }
        rest = &rest[i + 6..];
    }
    found
}

#[test]
fn deployment_files_only_use_known_variables() {
    for file in ["docker-compose.yml", "Dockerfile", ".env.example"] {
        let names = variables_in(&read(file));
        assert!(!names.is_empty(), "{file} sets no S3FTP_ variable");
        for name in names {
            assert!(
                VARIABLES.iter().any(|v| v.name == name),
                "{file} uses {name}, which s3ftp does not know"
            );
        }
    }
}

#[tokio::test]
async fn demo_user_in_env_example_logs_in_with_its_documented_password() {
    let env = read(".env.example");
    let line = env
        .lines()
        .find(|l| l.starts_with("S3FTP_USERS="))
        .expect("S3FTP_USERS line");
    let json = line["S3FTP_USERS=".len()..].trim_matches('\'');
    let users = parse_users(json).expect("valid users");
    let store = UserStore::new(users);
    assert!(store.verify("demo", "change-me").await.is_some());
    assert!(env.contains("\"change-me\""), "the password is documented");
}

#[test]
fn compose_mount_uri_is_accepted() {
    let compose = read("docker-compose.yml");
    let line = compose
        .lines()
        .find(|l| l.trim_start().starts_with("S3FTP_MOUNTS:"))
        .expect("S3FTP_MOUNTS in compose");
    let value = line.split_once(':').map(|(_, v)| v.trim()).expect("value");
    let uri = value.strip_prefix("/=").expect("mounted at /");
    let parsed = S3Uri::parse(uri).expect("S3 URI");
    assert_eq!(parsed.bucket, "ftp");
    assert!(parsed.path_style, "MinIO needs path-style addressing");
    assert!(
        compose.contains("mc mb --ignore-existing local/ftp"),
        "the bucket is created"
    );
}

#[test]
fn env_example_documents_every_variable_with_its_default() {
    let env = read(".env.example");
    for v in VARIABLES {
        let commented = format!("# {}={}", v.name, v.default);
        let set = format!("{}=", v.name);
        assert!(
            env.lines().any(|l| l == commented || l.starts_with(&set)),
            ".env.example lacks {:?} (or {set}...)",
            commented
        );
    }
}

/// The value a file gives `name` (`NAME: value` in compose, `NAME=value` in
/// the Dockerfile's ENV).
fn value_of(text: &str, name: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.trim().trim_end_matches('\\').trim();
            l.strip_prefix("ENV ").unwrap_or(l)
        })
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix([':', '='])
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{name} is not set"))
}

fn port_of(addr: &str) -> &str {
    addr.rsplit_once(':').map(|(_, p)| p).expect("address:port")
}

#[test]
fn published_ports_are_the_configured_ones() {
    let compose = read("docker-compose.yml");
    let control = port_of(&value_of(&compose, "S3FTP_LISTEN")).to_string();
    let metrics = port_of(&value_of(&compose, "S3FTP_METRICS_LISTEN")).to_string();
    let passive = value_of(&compose, "S3FTP_PASV_PORTS");
    for port in [&control, &metrics, &passive] {
        assert!(
            compose.contains(&format!(":{port}:{port}\"")),
            "docker-compose.yml does not publish {port}"
        );
    }

    let docker = read("Dockerfile");
    let expose = docker
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    let exposed: Vec<&str> = expose.split_whitespace().collect();
    let control = port_of(&value_of(&docker, "S3FTP_LISTEN")).to_string();
    let metrics = port_of(&value_of(&docker, "S3FTP_METRICS_LISTEN")).to_string();
    let passive = value_of(&docker, "S3FTP_PASV_PORTS");
    for port in [&control, &metrics, &passive] {
        assert!(exposed.contains(&port.as_str()), "EXPOSE lacks {port}");
    }
    let health = docker
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .nth(1)
        .expect("HEALTHCHECK command");
    assert!(
        health.contains(&format!("/dev/tcp/127.0.0.1/{metrics}")) && health.contains("/healthz"),
        "the health check probes /healthz on the metrics port: {health}"
    );
    assert!(docker.contains("USER s3ftp"), "the image runs as non-root");
}

/// Every image is pinned to a version: `latest` (or no tag) changes under a
/// user's feet, and MinIO's `latest` stopped moving in October 2025.
#[test]
fn every_image_is_pinned_to_a_version() {
    let compose = read("docker-compose.yml");
    let docker = read("Dockerfile");
    let images: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image:"))
        .chain(
            docker
                .lines()
                .filter_map(|l| l.strip_prefix("FROM "))
                .map(|l| l.split_whitespace().next().unwrap_or_default()),
        )
        .map(str::trim)
        .collect();
    assert!(images.len() >= 4, "{images:?}");
    for image in images {
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
            "{image} is not pinned to a version"
        );
    }
}

/// The alert rules parse and pass their unit tests, and the dashboard is a
/// Grafana dashboard (promtool from Debian's prometheus package, which
/// scripts/test.sh installs; the metric names are checked against the
/// server's own in `metrics::tests`).
#[test]
fn alert_rules_pass_promtool_and_the_dashboard_parses() {
    let root = env!("CARGO_MANIFEST_DIR");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"][..],
    ] {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(format!("{root}/deploy/prometheus"))
            .output()
            .unwrap_or_else(|e| {
                panic!("promtool: {e}; run the tests through scripts/test.sh, which installs it")
            });
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/s3ftp-dashboard.json"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() > 10, "{} panels", panels.len());
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(
            targets
                .iter()
                .all(|t| t["expr"].as_str().is_some_and(|e| e.contains("s3ftp_"))),
            "panel {} queries nothing of s3ftp",
            panel["title"]
        );
    }
}
