//! A real OpenLDAP server for the tests: Debian's `slapd` (installed by
//! scripts/test.sh) in a temporary folder, on loopback ports of its own,
//! with a small directory loaded before start (`slapadd`) and a TLS
//! certificate from a test CA, for StartTLS and ldaps://.
//!
//! The directory, under dc=example,dc=org:
//! - ou=people: ann (home attribute /partners/ann), ben, cat (in the
//!   read-only group), dan (in no group), eve (disabled: employeeType),
//!   each with password `<name>-pw`; max's entry has no password.
//! - ou=groups: cn=ftp-users (ann, ben, cat, eve), cn=ftp-readonly
//!   (cat), groupOfNames.
//! - cn=reader,ou=services: the service account, password `reader-pw`.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::clients::free_port;

pub const BASE: &str = "dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const USERS_GROUP: &str = "cn=ftp-users,ou=groups,dc=example,dc=org";
pub const READ_ONLY_GROUP: &str = "cn=ftp-readonly,ou=groups,dc=example,dc=org";
pub const SERVICE_DN: &str = "cn=reader,ou=services,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "reader-pw";

/// Where slapd lives, when it is not on PATH (Debian puts it in /usr/sbin).
fn slapd_tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is not installed: run the tests through scripts/test.sh, which installs slapd");
}

pub struct Slapd {
    child: Child,
    /// ldap:// (plain, and StartTLS).
    pub port: u16,
    /// ldaps://.
    pub tls_port: u16,
    /// The CA that signed the server's certificate (PEM file).
    pub ca_file: PathBuf,
    dir: tempfile::TempDir,
}

impl Slapd {
    pub fn start() -> Slapd {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        let ca_file = write_certificates(path);
        std::fs::create_dir(path.join("db")).expect("db folder");
        let conf = path.join("slapd.conf");
        std::fs::write(&conf, config(path)).expect("slapd.conf");
        let ldif = path.join("data.ldif");
        std::fs::write(&ldif, DATA).expect("data.ldif");
        let load = Command::new(slapd_tool("slapadd"))
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .expect("run slapadd");
        assert!(
            load.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        let (port, tls_port) = (free_port(), free_port());
        let child = Command::new(slapd_tool("slapd"))
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"
            ))
            // In the foreground, logging nothing, so the test owns it.
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path.join("slapd.log")).expect("log"))
            .spawn()
            .expect("start slapd");
        let mut slapd = Slapd {
            child,
            port,
            tls_port,
            ca_file,
            dir,
        };
        slapd.await_listening();
        slapd
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn tls_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Both ports accept connections; fails with slapd's log if it exits.
    fn await_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("slapd exited with {status}: {}", self.log());
            }
            let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(self.port) && up(self.tls_port) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server: its ports then refuse connections.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it;
/// returns the CA's PEM file.
fn write_certificates(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "s3ftp LDAP test CA");
    let ca = ca_params.self_signed(&ca_key).expect("self-sign");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("params");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("ca");
    ca_file
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {d}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/cert.pem
TLSCertificateKeyFile {d}/key.pem
database mdb
maxsize 10485760
suffix \"{BASE}\"
rootdn \"cn=admin,{BASE}\"
rootpw admin-pw
directory {d}/db
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by * none
"
    )
}

const DATA: &str = "dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=example,dc=org
objectClass: organizationalUnit
ou: services

dn: cn=reader,ou=services,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: reader-pw

dn: uid=ann,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: ann
cn: Ann
sn: A
userPassword: ann-pw
departmentNumber: /partners/ann

dn: uid=ben,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: ben
cn: Ben
sn: B
userPassword: ben-pw

dn: uid=cat,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: cat
cn: Cat
sn: C
userPassword: cat-pw

dn: uid=dan,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dan
cn: Dan
sn: D
userPassword: dan-pw

dn: uid=eve,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: eve
cn: Eve
sn: E
userPassword: eve-pw
employeeType: disabled

dn: uid=max,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: max
cn: Max
sn: M

dn: cn=ftp-users,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: ftp-users
member: uid=ann,ou=people,dc=example,dc=org
member: uid=ben,ou=people,dc=example,dc=org
member: uid=cat,ou=people,dc=example,dc=org
member: uid=eve,ou=people,dc=example,dc=org

dn: cn=ftp-readonly,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: ftp-readonly
member: uid=cat,ou=people,dc=example,dc=org
";
