//! The Kubernetes manifests in deploy/k8s, checked offline (no cluster):
//!
//! - the base and every overlay render with `kubectl kustomize`;
//! - checkov's Kubernetes checks find nothing on what they render, and every
//!   suppression is a `checkov.io/skip` annotation in the manifests that gives
//!   its reason;
//! - each replica hangs together: the passive ports of its
//!   `S3FTP_PASV_PORTS` are exactly the ports its Service exposes, each to the
//!   same port on the pod; it advertises its own address; it drains within
//!   its termination grace period; its probes are /readyz and /healthz on the
//!   metrics listener; its memory holds the upload budget; it runs as
//!   non-root on a read-only root file system, with every file the
//!   configuration names on a volume;
//! - every `S3FTP_*` name they set is a variable the server knows, and each
//!   replica's environment is a configuration it accepts.
//!
//! The rendered YAML is turned into JSON by kubectl itself
//! (`kubectl label --local -o json`, which contacts no API server), so no
//! YAML parser is needed and the objects read here are the ones kubectl
//! would send. checkov comes from the venv scripts/check-terraform.sh
//! installs (or `S3FTP_CHECKOV`, or PATH).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use s3ftp::config::{Config, VARIABLES};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Memory a server process needs besides its upload buffers
/// (`S3FTP_UPLOAD_MEMORY_MIB`): the runtime and idle sessions (200 took
/// 16 MiB), one argon2 verification per core (19 MiB each, two under a
/// two-CPU limit), TLS buffers of up to 512 sessions, listings and downloads
/// in flight. The benchmark's 50 concurrent uploads peaked 44 MiB above the
/// budget (README, "Performance"); this leaves room for the session limit.
const OVERHEAD_MIB: u64 = 128;

/// Seconds between the end of the abort wait and the kubelet's SIGKILL:
/// the process exits, flushes its logs, and the kubelet's own timing.
const EXIT_SLACK_SECS: u64 = 5;

// --- Rendering ---------------------------------------------------------------

/// One rendered kustomization.
struct Rendered {
    /// `deploy/k8s/...`, for messages.
    name: String,
    yaml: String,
    objects: Vec<Value>,
}

/// The base and every overlay, rendered once for all tests.
fn rendered() -> &'static [Rendered] {
    static CELL: OnceLock<Vec<Rendered>> = OnceLock::new();
    CELL.get_or_init(|| kustomizations().iter().map(|dir| render(dir)).collect())
}

/// deploy/k8s/base and each directory of deploy/k8s/overlays with a
/// kustomization.yaml.
fn kustomizations() -> Vec<PathBuf> {
    let k8s = Path::new(ROOT).join("deploy/k8s");
    let mut dirs = vec![k8s.join("base")];
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(k8s.join("overlays"))
        .expect("deploy/k8s/overlays")
        .map(|e| e.expect("overlay entry").path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    overlays.sort();
    assert!(!overlays.is_empty(), "no overlay in deploy/k8s/overlays");
    dirs.extend(overlays);
    dirs
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new("kubectl")
        .args(args)
        // Nothing here may reach a cluster, whatever the caller's kubeconfig.
        .env("KUBECONFIG", "/dev/null")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl: {e}. The tests of deploy/k8s need kubectl (its built-in kustomize); \
                 see https://kubernetes.io/docs/tasks/tools/"
            )
        });
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write to kubectl");
    }
    child.wait_with_output().expect("kubectl output")
}

fn render(dir: &Path) -> Rendered {
    let name = dir.strip_prefix(ROOT).unwrap_or(dir).display().to_string();
    let out = kubectl(&["kustomize", &dir.display().to_string()], None);
    assert!(
        out.status.success(),
        "kubectl kustomize {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).expect("UTF-8 YAML");
    // kubectl's own YAML reader, offline: removing a label that is not there
    // changes nothing but prints each object as JSON.
    let out = kubectl(
        &[
            "label",
            "--local",
            "-f",
            "-",
            "-o",
            "json",
            "s3ftp-k8s-test-",
        ],
        Some(&yaml),
    );
    assert!(
        out.status.success(),
        "kubectl could not read what {name} renders:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8(out.stdout).expect("UTF-8 JSON");
    let mut objects = Vec::new();
    for value in serde_json::Deserializer::from_str(&json).into_iter::<Value>() {
        let value = value.expect("kubectl printed JSON");
        match value["kind"].as_str() {
            Some("List") => objects.extend(value["items"].as_array().cloned().unwrap_or_default()),
            _ => objects.push(value),
        }
    }
    let documents = yaml.lines().filter(|l| l.starts_with("kind:")).count();
    assert_eq!(
        objects.len(),
        documents,
        "{name}: kubectl read {} objects from {documents} documents",
        objects.len()
    );
    Rendered {
        name,
        yaml,
        objects,
    }
}

// --- Small readers of the rendered objects --------------------------------------

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'a>(r: &'a Rendered, k: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    r.objects.iter().filter(move |o| kind(o) == k)
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// True when a non-empty `selector` picks a pod with these labels.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn port_of(addr: std::net::SocketAddr) -> u16 {
    addr.port()
}

/// A Kubernetes memory quantity in bytes ("384Mi", "1Gi", "512M", "1e9").
fn bytes(quantity: &str) -> u64 {
    let units: [(&str, f64); 10] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("m", 1e-3),
        ("", 1.0),
    ];
    let (number, factor) = units
        .iter()
        .find_map(|(suffix, factor)| {
            quantity
                .strip_suffix(suffix)
                .filter(|n| n.parse::<f64>().is_ok())
                .map(|n| (n, *factor))
        })
        .unwrap_or_else(|| panic!("memory quantity {quantity:?}"));
    (number.parse::<f64>().expect("number") * factor) as u64
}

/// `const NAME: Duration = Duration::from_secs(N);` in a source file, so
/// the manifests follow the server's own timings.
fn const_secs(file: &str, constant: &str) -> u64 {
    let text = std::fs::read_to_string(Path::new(ROOT).join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let prefix = format!("const {constant}: Duration = Duration::from_secs(");
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&prefix)?
                .strip_suffix(");")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| {
            panic!("{file} no longer declares `{prefix}N);`: update tests/k8s_manifests.rs")
        })
}

/// Every `S3FTP_NAME` written in `text` (as in tests/deploy_files.rs).
fn variables_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("S3FTP_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if name.len() > "S3FTP_".len() {
            found.push(name);
        }
        rest = &rest[i + 6..];
    }
    found
}

// --- One replica as the tests see it ----------------------------------------------

/// A workload running the server, with its environment resolved.
struct Replica<'a> {
    workload: &'a Value,
    pod: &'a Value,
    container: &'a Value,
    labels: BTreeMap<String, String>,
    /// The container's environment: its ConfigMaps (envFrom) then `env`.
    env: BTreeMap<String, String>,
    config: Config,
}

impl Replica<'_> {
    fn name(&self) -> String {
        format!("{} {}", kind(self.workload), name(self.workload))
    }

    /// The container port a Service's targetPort or a probe's port names.
    fn resolve_port(&self, port: &Value) -> Option<u16> {
        match port {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => self.container["ports"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == s.as_str())
                .and_then(|p| p["containerPort"].as_u64())
                .and_then(|n| u16::try_from(n).ok()),
            _ => None,
        }
    }

    fn pasv_ports(&self) -> RangeInclusive<u16> {
        self.config
            .pasv_ports
            .clone()
            .unwrap_or_else(|| panic!("{}: S3FTP_PASV_PORTS is not set", self.name()))
    }

    fn metrics_port(&self) -> u16 {
        port_of(
            self.config
                .metrics_listen
                .unwrap_or_else(|| panic!("{}: S3FTP_METRICS_LISTEN is not set", self.name())),
        )
    }

    /// Every port the server listens on.
    fn listening(&self) -> BTreeSet<u16> {
        let mut ports: BTreeSet<u16> = self.pasv_ports().collect();
        ports.insert(port_of(self.config.listen));
        ports.insert(self.metrics_port());
        if let Some(implicit) = self.config.tls_implicit_listen {
            ports.insert(port_of(implicit));
        }
        ports
    }
}

/// The workloads of `r` that run the server (a container named s3ftp).
fn replicas(r: &Rendered) -> Vec<Replica<'_>> {
    let configmaps: BTreeMap<&str, BTreeMap<String, String>> = of_kind(r, "ConfigMap")
        .map(|c| (name(c), string_map(&c["data"])))
        .collect();
    let mut out = Vec::new();
    for workload in r.objects.iter().filter(|o| {
        matches!(
            kind(o),
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Pod"
        )
    }) {
        let pod = if kind(workload) == "Pod" {
            workload
        } else {
            &workload["spec"]["template"]
        };
        let Some(container) = pod["spec"]["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == "s3ftp"))
        else {
            continue;
        };
        let what = format!("{}: {} {}", r.name, kind(workload), name(workload));
        let mut env = BTreeMap::new();
        for source in container["envFrom"].as_array().into_iter().flatten() {
            let map = source["configMapRef"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: envFrom other than a ConfigMap: {source}"));
            let data = configmaps
                .get(map)
                .unwrap_or_else(|| panic!("{what}: ConfigMap {map} is not in the output"));
            env.extend(data.clone());
        }
        for var in container["env"].as_array().into_iter().flatten() {
            let key = var["name"].as_str().expect("env name").to_string();
            match var["value"].as_str() {
                Some(value) => {
                    env.insert(key, value.to_string());
                }
                None => assert!(
                    !key.starts_with("S3FTP_"),
                    "{what}: {key} comes from {}, which this test cannot check",
                    var["valueFrom"]
                ),
            }
        }
        out.push(Replica {
            workload,
            pod,
            container,
            labels: string_map(&pod["metadata"]["labels"]),
            config: server_config(&what, &env),
            env,
        });
    }
    out
}

/// The configuration the server builds from `env`, which it must accept.
/// The users file is a Secret this repository does not hold, so an empty
/// list stands in for it (the path itself is checked against the volumes).
fn server_config(what: &str, env: &BTreeMap<String, String>) -> Config {
    let users = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temporary users file");
    std::fs::write(users.path(), "[]").expect("write users file");
    let vars = env.iter().map(|(k, v)| {
        let v = if k == "S3FTP_USERS_FILE" {
            users.path().display().to_string()
        } else {
            v.clone()
        };
        (k.clone(), v)
    });
    Config::from_vars(vars)
        .unwrap_or_else(|e| panic!("{what}: the server refuses this environment: {e}"))
}

/// The Services that pick this replica's pods.
fn services_of<'a>(r: &'a Rendered, replica: &Replica<'_>) -> Vec<&'a Value> {
    of_kind(r, "Service")
        .filter(|s| selects(&string_map(&s["spec"]["selector"]), &replica.labels))
        .collect()
}

// --- Tests -----------------------------------------------------------------------------

#[test]
fn every_kustomization_renders_replicas_the_server_accepts() {
    for r in rendered() {
        let replicas = replicas(r);
        assert!(
            !replicas.is_empty(),
            "{} renders no workload with a container named s3ftp",
            r.name
        );
        eprintln!(
            "{}: {} objects, {} replicas",
            r.name,
            r.objects.len(),
            replicas.len()
        );
        // What each pod will log at start: shown, not failed (see the README).
        for replica in &replicas {
            for warning in replica.config.warnings() {
                eprintln!("  {} will warn: {warning}", replica.name());
            }
        }
    }
}

/// checkov, pinned by scripts/check-terraform.sh: `S3FTP_CHECKOV`, else the
/// venv that script installs, else `checkov` on PATH.
fn checkov() -> PathBuf {
    if let Some(path) = std::env::var_os("S3FTP_CHECKOV") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("S3FTP_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/s3ftp-tools")));
    if let Some(venv) = tools.map(|t| t.join("tf-venv/bin/checkov")) {
        if venv.is_file() {
            return venv;
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("checkov"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "checkov is not installed. scripts/test.sh installs it; by hand (the version \
             scripts/check-terraform.sh pins):\n  \
             python3 -m venv ~/.cache/s3ftp-tools/tf-venv && \
             ~/.cache/s3ftp-tools/tf-venv/bin/pip install checkov=={}\n\
             or set S3FTP_CHECKOV to a checkov executable",
            checkov_pin()
        )
    })
}

/// The checkov version scripts/check-terraform.sh pins (`CHECKOV_VERSION=`).
fn checkov_pin() -> String {
    let script = Path::new(ROOT).join("scripts/check-terraform.sh");
    std::fs::read_to_string(&script)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("CHECKOV_VERSION="))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("{} pins no CHECKOV_VERSION", script.display()))
}

#[test]
fn checkov_finds_no_failed_check() {
    let checkov = checkov();
    let version = Command::new(&checkov)
        .arg("--version")
        .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true")
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| panic!("{}: {e}", checkov.display()));
    if version != checkov_pin() {
        eprintln!(
            "note: {} is checkov {version}, scripts/check-terraform.sh pins {}",
            checkov.display(),
            checkov_pin()
        );
    }
    for r in rendered() {
        let file = tempfile::Builder::new()
            .prefix("s3ftp-k8s-")
            .suffix(".yaml")
            .tempfile()
            .expect("temporary file");
        std::fs::write(file.path(), &r.yaml).expect("write rendered YAML");
        let out = Command::new(&checkov)
            .args(["--framework", "kubernetes", "--file"])
            .arg(file.path())
            .args(["--compact", "--skip-download", "--output", "json"])
            .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true")
            .env("BC_SKIP_MAPPING", "TRUE")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", checkov.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "checkov on {} printed no JSON report ({e}); status {}:\n{stdout}\n{}",
                r.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        // One framework: one report (a list when checkov ran several).
        let report = match report {
            Value::Array(reports) => reports
                .into_iter()
                .find(|x| x["check_type"] == "kubernetes")
                .expect("the kubernetes report"),
            report => report,
        };
        let summary = &report["summary"];
        let failed: Vec<String> = report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
            .collect();
        assert!(
            failed.is_empty() && summary["failed"] == 0,
            "checkov on {}: {} failed check(s):\n  {}\nFix the manifests, or suppress a check that \
             cannot apply with a `checkov.io/skipN: CKV_K8S_N=reason` annotation",
            r.name,
            summary["failed"],
            failed.join("\n  ")
        );
        assert_eq!(
            summary["parsing_errors"], 0,
            "checkov could not parse {}",
            r.name
        );
        // Every workload and Service was looked at, not just the file.
        let checked: BTreeSet<String> = ["passed_checks", "skipped_checks"]
            .iter()
            .flat_map(|k| report["results"][k].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["resource"].as_str().map(str::to_string))
            .collect();
        for o in r
            .objects
            .iter()
            .filter(|o| matches!(kind(o), "Deployment" | "StatefulSet" | "Service"))
        {
            let id = format!(
                "{}.{}.{}",
                kind(o),
                o["metadata"]["namespace"].as_str().unwrap_or("default"),
                name(o)
            );
            assert!(
                checked.contains(&id),
                "checkov did not check {id} of {}",
                r.name
            );
        }
        eprintln!(
            "checkov {}: passed {}, failed {}, skipped {} (each with its reason)",
            r.name, summary["passed"], summary["failed"], summary["skipped"]
        );
    }
}

/// A suppression is an annotation `checkov.io/skipN: CHECK_ID=reason`; checkov
/// splits the value on `=` and breaks on a second one.
#[test]
fn checkov_suppressions_give_their_reason() {
    for r in rendered() {
        for o in &r.objects {
            for (key, value) in string_map(&o["metadata"]["annotations"]) {
                if !key.starts_with("checkov.io/skip") {
                    continue;
                }
                let what = format!("{}: {} {} {key}", r.name, kind(o), name(o));
                let (id, reason) = value
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{what}: no `=reason` in {value:?}"));
                assert!(
                    id.starts_with("CKV_K8S_") || id.starts_with("CKV2_K8S_"),
                    "{what}: {id} is not a Kubernetes check"
                );
                assert!(
                    !reason.contains('='),
                    "{what}: checkov cannot read a reason with `=`"
                );
                assert!(
                    reason.split_whitespace().count() >= 5,
                    "{what}: {reason:?} is no reason"
                );
            }
        }
    }
}

#[test]
fn each_replica_advertises_the_passive_ports_its_service_exposes() {
    for r in rendered() {
        let replicas = replicas(r);
        let mut ranges: Vec<(String, RangeInclusive<u16>)> = Vec::new();
        let mut addresses: BTreeMap<String, String> = BTreeMap::new();
        for replica in &replicas {
            let what = format!("{}: {}", r.name, replica.name());
            let scale = replica.workload["spec"]["replicas"].as_u64().unwrap_or(1);
            assert!(
                kind(replica.workload) == "Pod" || scale == 1,
                "{what} runs {scale} pods with one passive range and address: a data \
                 connection could reach another pod than the one that answered PASV"
            );
            let pasv = replica.pasv_ports();
            let address = replica
                .config
                .pasv_address
                .clone()
                .unwrap_or_else(|| panic!("{what}: S3FTP_PASV_ADDRESS is not set"));

            // The replica's own Service: the one picking it that exposes more
            // than the metrics port. It must pick no other replica's pods.
            let metrics = replica.metrics_port();
            let services = services_of(r, replica);
            let own: Vec<&Value> = services
                .iter()
                .copied()
                .filter(|s| {
                    s["spec"]["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|p| replica.resolve_port(&p["targetPort"]) != Some(metrics))
                })
                .collect();
            assert_eq!(
                own.len(),
                1,
                "{what}: {} Services expose its FTP ports ({:?}), expected exactly one",
                own.len(),
                own.iter().map(|s| name(s)).collect::<Vec<_>>()
            );
            let service = own[0];
            let svc = format!("{what}, Service {}", name(service));
            for other in replicas.iter().filter(|o| o.name() != replica.name()) {
                assert!(
                    !selects(&string_map(&service["spec"]["selector"]), &other.labels),
                    "{svc} also picks {}: passive connections could reach the wrong pod",
                    other.name()
                );
            }

            // Its ports: the control port, the implicit FTPS one, and exactly
            // the passive range, each to the same port on the pod.
            let control = port_of(replica.config.listen);
            let implicit = replica.config.tls_implicit_listen.map(port_of);
            let mut exposed_passive = BTreeSet::new();
            let mut has_control = false;
            for p in service["spec"]["ports"].as_array().expect("Service ports") {
                let port = p["port"].as_u64().expect("port") as u16;
                let target = p.get("targetPort").unwrap_or(&p["port"]);
                let target = replica.resolve_port(target).unwrap_or_else(|| {
                    panic!("{svc}: targetPort {target} is no port of the container")
                });
                assert_eq!(
                    p["protocol"].as_str().unwrap_or("TCP"),
                    "TCP",
                    "{svc}: port {port}"
                );
                if target == control {
                    has_control = true;
                } else if Some(target) == implicit || target == metrics {
                } else {
                    assert!(
                        pasv.contains(&target),
                        "{svc}: port {port} leads to {target}, which the server does not \
                         listen on (passive range {pasv:?})"
                    );
                    assert_eq!(
                        port, target,
                        "{svc}: a PASV reply names port {target}, the Service exposes it as {port}"
                    );
                    exposed_passive.insert(port);
                }
            }
            assert!(
                has_control,
                "{svc} does not expose the control port {control}"
            );
            let advertised: BTreeSet<u16> = pasv.clone().collect();
            assert_eq!(
                exposed_passive,
                advertised,
                "{svc}: exposed passive ports differ from S3FTP_PASV_PORTS {pasv:?} \
                 (missing {:?}, extra {:?})",
                advertised.difference(&exposed_passive).collect::<Vec<_>>(),
                exposed_passive.difference(&advertised).collect::<Vec<_>>()
            );

            // Outside the cluster, the client's address must reach the pod:
            // passive connections are accepted only from the control
            // connection's address (unless PROXY headers carry it).
            let kind_of_service = service["spec"]["type"].as_str().unwrap_or("ClusterIP");
            if matches!(kind_of_service, "LoadBalancer" | "NodePort") {
                assert!(
                    service["spec"]["externalTrafficPolicy"] == "Local"
                        || replica.config.proxy.data(),
                    "{svc}: with externalTrafficPolicy Cluster a connection may arrive from \
                     another node's address; use Local or S3FTP_PROXY_PROTOCOL=all"
                );
            }
            // The DNS name published for the Service is the one advertised.
            let dns = string_map(&service["metadata"]["annotations"])
                .remove("external-dns.alpha.kubernetes.io/hostname");
            if let Some(dns) = dns {
                assert!(
                    dns.split(',').any(|h| h.trim() == address),
                    "{svc}: publishes {dns:?} but advertises {address:?} in PASV replies"
                );
            }

            // Every port a Service sends to is one the server listens on.
            let listening = replica.listening();
            for s in &services {
                for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                    let target = p.get("targetPort").unwrap_or(&p["port"]);
                    let port = replica.resolve_port(target);
                    assert!(
                        port.is_some_and(|p| listening.contains(&p)),
                        "{what}: Service {} sends port {} to {target}, where nothing listens",
                        name(s),
                        p["port"]
                    );
                }
            }

            ranges.push((what.clone(), pasv));
            if let Some(previous) = addresses.insert(address.clone(), what.clone()) {
                panic!("{what} and {previous} both advertise {address}");
            }
        }
        // Disjoint ranges: replicas may share one address (one load balancer
        // IP for all, as the Terraform module does), the port then names the pod.
        for (i, (a, ra)) in ranges.iter().enumerate() {
            for (b, rb) in &ranges[i + 1..] {
                assert!(
                    ra.end() < rb.start() || rb.end() < ra.start(),
                    "{a} ({ra:?}) and {b} ({rb:?}) share passive ports"
                );
            }
        }
        eprintln!(
            "{}: {}",
            r.name,
            replicas
                .iter()
                .map(|x| format!(
                    "{} ports {:?} at {}",
                    name(x.workload),
                    x.pasv_ports(),
                    x.config.pasv_address.as_deref().unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

#[test]
fn shutdown_probes_memory_and_security_follow_the_server() {
    let abort_wait = const_secs("src/server.rs", "ABORT_WAIT");
    let check_timeout = const_secs("src/metrics/http.rs", "CHECK_TIMEOUT");
    for r in rendered() {
        for replica in replicas(r) {
            let what = format!("{}: {}", r.name, replica.name());
            let spec = &replica.pod["spec"];
            let c = replica.container;

            // SIGTERM: transfers get S3FTP_SHUTDOWN_GRACE, then the aborts
            // get ABORT_WAIT, then the process exits.
            let grace = replica.config.shutdown_grace.as_secs();
            let needed = grace + abort_wait + EXIT_SLACK_SECS;
            let period = spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
            assert!(
                period >= needed,
                "{what}: terminationGracePeriodSeconds {period} < S3FTP_SHUTDOWN_GRACE {grace} \
                 + the server's abort wait {abort_wait} + {EXIT_SLACK_SECS} s to exit"
            );

            // Probes on the monitoring listener.
            let metrics = replica.metrics_port();
            for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
                let get = &c[probe]["httpGet"];
                assert_eq!(get["path"], path, "{what}: {probe}");
                assert_eq!(
                    replica.resolve_port(&get["port"]),
                    Some(metrics),
                    "{what}: {probe} is not on the metrics port {metrics}"
                );
            }
            let timeout = c["readinessProbe"]["timeoutSeconds"].as_u64().unwrap_or(1);
            assert!(
                timeout > check_timeout,
                "{what}: readinessProbe.timeoutSeconds {timeout} must exceed the {check_timeout} s \
                 /readyz gives a mount's check, or a slow store reads as a dead pod"
            );
            assert!(
                c["startupProbe"].is_null() || c["startupProbe"]["httpGet"]["path"] == "/healthz",
                "{what}: a startupProbe on /readyz would kill pods waiting for their store \
                 (S3FTP_STORE_WAIT)"
            );

            // Memory: the upload budget plus the process.
            let budget = replica.config.upload_memory_mib as u64;
            let needed = (budget + OVERHEAD_MIB) << 20;
            for side in ["requests", "limits"] {
                let quantity = c["resources"][side]["memory"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: no memory {side}"));
                assert!(
                    bytes(quantity) >= needed,
                    "{what}: memory {side} {quantity} < S3FTP_UPLOAD_MEMORY_MIB {budget} MiB \
                     + {OVERHEAD_MIB} MiB for the rest of the process"
                );
            }
            for side in ["requests", "limits"] {
                assert!(
                    !c["resources"][side]["cpu"].is_null(),
                    "{what}: no cpu {side}"
                );
            }

            // Non-root, read-only, nothing more than it needs.
            let pod_sc = &spec["securityContext"];
            let sc = &c["securityContext"];
            let either = |key: &str| {
                if sc[key].is_null() {
                    &pod_sc[key]
                } else {
                    &sc[key]
                }
            };
            assert_eq!(either("runAsNonRoot"), true, "{what}: runAsNonRoot");
            assert!(
                either("runAsUser").as_u64().is_some_and(|u| u >= 10000),
                "{what}: runAsUser is not the image's user 10001"
            );
            assert_eq!(
                sc["readOnlyRootFilesystem"], true,
                "{what}: readOnlyRootFilesystem"
            );
            assert_eq!(
                sc["allowPrivilegeEscalation"], false,
                "{what}: allowPrivilegeEscalation"
            );
            assert!(
                sc["capabilities"]["drop"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|x| x == "ALL")),
                "{what}: capabilities are not all dropped"
            );
            assert!(
                sc["capabilities"]["add"]
                    .as_array()
                    .is_none_or(|a| a.is_empty()),
                "{what}: adds capabilities (listen on ports above 1023 instead)"
            );
            assert_eq!(
                either("seccompProfile")["type"],
                "RuntimeDefault",
                "{what}: seccompProfile"
            );
            assert_eq!(
                spec["automountServiceAccountToken"], false,
                "{what}: the server never calls the Kubernetes API"
            );
            assert_eq!(
                spec["enableServiceLinks"], false,
                "{what}: Kubernetes would set S3FTP_<SERVICE>_PORT and the like for the \
                 Services named s3ftp-*, and the server refuses unknown S3FTP_ variables"
            );

            check_files_and_folders(&what, &replica);
        }
    }
}

/// Every file the configuration names is on a mounted volume (the root file
/// system is read-only and holds none of them), from the Secret key it names
/// when the volume lists its keys; every local-folder mount is on a writable
/// volume.
fn check_files_and_folders(what: &str, replica: &Replica<'_>) {
    let volumes: BTreeMap<&str, &Value> = replica.pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap_or_default(), v))
        .collect();
    let mounts: Vec<(&str, &Value, bool)> = replica.container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let volume = m["name"].as_str().unwrap_or_default();
            let volume = volumes
                .get(volume)
                .unwrap_or_else(|| panic!("{what}: mounts volume {volume}, which is not defined"));
            (
                m["mountPath"].as_str().unwrap_or_default(),
                *volume,
                m["readOnly"] == true,
            )
        })
        .collect();
    let under = |path: &str| {
        mounts
            .iter()
            .filter(|(at, _, _)| Path::new(path).starts_with(at))
            .max_by_key(|(at, _, _)| at.len())
            .copied()
    };

    let files = [
        "S3FTP_USERS_FILE",
        "S3FTP_TLS_CERT",
        "S3FTP_TLS_KEY",
        "S3FTP_TLS_CLIENT_CA",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ];
    for var in files {
        let Some(path) = replica.env.get(var).filter(|p| !p.is_empty()) else {
            continue;
        };
        let (at, volume, _) =
            under(path).unwrap_or_else(|| panic!("{what}: {var}={path} is on no volume"));
        let source = ["secret", "configMap", "projected"]
            .iter()
            .find(|k| !volume[**k].is_null())
            .unwrap_or_else(|| panic!("{what}: {var}={path} is not from a Secret or ConfigMap"));
        let relative = Path::new(path).strip_prefix(at).expect("under the mount");
        if let Some(items) = volume[*source]["items"].as_array() {
            assert!(
                items
                    .iter()
                    .any(|i| i["path"].as_str().map(Path::new) == Some(relative)),
                "{what}: {var}={path}, but volume {} holds only {:?}",
                volume["name"],
                items.iter().map(|i| &i["path"]).collect::<Vec<_>>()
            );
        }
    }

    for mount in &replica.config.mounts {
        let Some(folder) = mount.uri.strip_prefix("fs://") else {
            continue;
        };
        let (_, volume, read_only) = under(folder)
            .unwrap_or_else(|| panic!("{what}: the folder {folder} is on the read-only root"));
        assert!(
            !read_only
                && (!volume["emptyDir"].is_null() || !volume["persistentVolumeClaim"].is_null()),
            "{what}: the folder {folder} must be on a writable emptyDir or volume claim"
        );
    }
}

/// One budget spans all replicas, and the NetworkPolicy lets in every port a
/// Service sends to.
#[test]
fn disruption_budget_and_network_policy_cover_every_replica() {
    for r in rendered() {
        let replicas = replicas(r);
        let budgets: Vec<&Value> = of_kind(r, "PodDisruptionBudget")
            .filter(|b| {
                let selector = string_map(&b["spec"]["selector"]["matchLabels"]);
                replicas.iter().all(|x| selects(&selector, &x.labels))
            })
            .collect();
        assert_eq!(
            budgets.len(),
            1,
            "{}: one PodDisruptionBudget over all replicas",
            r.name
        );
        assert!(
            budgets[0]["spec"]["maxUnavailable"] == 1
                || !budgets[0]["spec"]["minAvailable"].is_null(),
            "{}: the budget lets {} replicas go at once",
            r.name,
            budgets[0]["spec"]["maxUnavailable"]
        );

        for replica in &replicas {
            let policies: Vec<&Value> = of_kind(r, "NetworkPolicy")
                .filter(|p| {
                    let types = &p["spec"]["policyTypes"];
                    selects(
                        &string_map(&p["spec"]["podSelector"]["matchLabels"]),
                        &replica.labels,
                    ) && types
                        .as_array()
                        .is_some_and(|t| t.iter().any(|x| x == "Ingress"))
                })
                .collect();
            if policies.is_empty() {
                continue;
            }
            let allowed = |port: u16| {
                policies.iter().any(|p| {
                    p["spec"]["ingress"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|rule| {
                            let Some(ports) = rule["ports"].as_array() else {
                                return true;
                            };
                            ports.iter().any(|x| {
                                let Some(first) = replica.resolve_port(&x["port"]) else {
                                    return x["port"].is_null();
                                };
                                let last = x["endPort"].as_u64().map_or(first, |e| e as u16);
                                (first..=last).contains(&port)
                            })
                        })
                })
            };
            for s in services_of(r, replica) {
                for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                    let target = p.get("targetPort").unwrap_or(&p["port"]);
                    let port = replica.resolve_port(target).expect("resolved above");
                    assert!(
                        allowed(port),
                        "{}: {}: no NetworkPolicy ingress rule admits port {port} (Service {})",
                        r.name,
                        replica.name(),
                        name(s)
                    );
                }
            }
        }
    }
}

#[test]
fn manifests_only_use_known_variables_and_pinned_images() {
    for r in rendered() {
        let names = variables_in(&r.yaml);
        assert!(!names.is_empty(), "{} sets no S3FTP_ variable", r.name);
        for name in names {
            assert!(
                VARIABLES.iter().any(|v| v.name == name),
                "{} uses {name}, which s3ftp does not know",
                r.name
            );
        }
        for replica in replicas(r) {
            let image = replica.container["image"].as_str().unwrap_or_default();
            let tag = image
                .rsplit_once('/')
                .map_or(image, |(_, last)| last)
                .split_once(':')
                .map(|(_, tag)| tag)
                .unwrap_or_default();
            assert!(
                image.contains("@sha256:")
                    || (tag != "latest" && tag.chars().any(|c| c.is_ascii_digit())),
                "{}: {} runs {image}, which is not pinned",
                r.name,
                replica.name()
            );
            assert!(
                replica.env.keys().all(|k| !k.starts_with("AWS_SECRET")),
                "{}: S3 secrets belong in a mounted Secret file, not the environment",
                r.name
            );
        }
    }
}
