#!/usr/bin/env python3
# Login latency by source, cold and cached: local argon2, the auth hook (a
# Python hook on loopback) and LDAP with StartTLS (a slapd of its own), each
# with S3FTP_LOGIN_CACHE_SECS 0 and 60. Needs the release binary
# (cargo build --release --bin s3ftp), slapd and openssl. N logins each (40).
import ftplib, json, os, subprocess, sys, time, urllib.request, threading, socket, shutil, tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIN = "/work/main/target/release/s3ftp"
N = int(os.environ.get("N", "40"))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Hook(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if req.get("password") != "hookpw":
            self.send_response(403); self.send_header("Content-Length", "0"); self.end_headers(); return
        body = json.dumps({"home": "/" + req["user"]}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)

def start_hook():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]

def start_slapd(d):
    conf = f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {d}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {d}/cert.pem
TLSCertificateKeyFile {d}/key.pem
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin
directory {d}/db
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by * none
"""
    os.makedirs(f"{d}/db")
    subprocess.run(["openssl","req","-x509","-newkey","ec","-pkeyopt","ec_paramgen_curve:prime256v1","-nodes","-days","2",
        "-subj","/CN=127.0.0.1","-addext","subjectAltName=IP:127.0.0.1","-addext","basicConstraints=critical,CA:FALSE",
        "-keyout",f"{d}/key.pem","-out",f"{d}/cert.pem"],check=True,capture_output=True)
    open(f"{d}/slapd.conf","w").write(conf)
    ldif = """dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: E
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: uid=ldapuser,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: ldapuser
cn: L
sn: L
userPassword: ldappw
"""
    open(f"{d}/data.ldif","w").write(ldif)
    subprocess.run(["/usr/sbin/slapadd","-f",f"{d}/slapd.conf","-l",f"{d}/data.ldif"],check=True,capture_output=True)
    port = free_port()
    p = subprocess.Popen(["/usr/sbin/slapd","-f",f"{d}/slapd.conf","-h",f"ldap://127.0.0.1:{port}/","-d","0"],stderr=subprocess.DEVNULL)
    for _ in range(200):
        try: socket.create_connection(("127.0.0.1", port)).close(); break
        except OSError: time.sleep(0.02)
    return p, port

def run(label, env, user, pw):
    d = tempfile.mkdtemp()
    mport = free_port()
    e = {k: v for k, v in os.environ.items() if not k.startswith("S3FTP_")}
    e.update({"S3FTP_LISTEN": "127.0.0.1:0", "S3FTP_MOUNTS": f"/=fs://{d}", "S3FTP_METRICS_LISTEN": f"127.0.0.1:{mport}", "S3FTP_LOG": "warn"})
    e.update(env)
    srv = subprocess.Popen([BIN], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = srv.stdout.readline()
    addr = line.strip().rsplit("ftp://", 1)[1]
    host, port = addr.rsplit(":", 1)
    times = []
    for i in range(N):
        f = ftplib.FTP(); f.connect(host, int(port))
        t = time.perf_counter(); f.login(user, pw); times.append(time.perf_counter() - t)
        f.quit()
    m = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics").read().decode()
    cpu = open(f"/proc/{srv.pid}/stat").read().split()
    tick = os.sysconf("SC_CLK_TCK"); cpus = (int(cpu[13]) + int(cpu[14])) / tick
    srv.terminate(); srv.wait()
    checks = {}
    for l in m.splitlines():
        if l.startswith("s3ftp_login_check_seconds_sum") or l.startswith("s3ftp_login_check_seconds_count"):
            name, v = l.rsplit(" ", 1); checks[name] = float(v)
    first = times[0] * 1000
    rest = sorted(times[1:]); med = rest[len(rest)//2] * 1000
    print(f"{label}: first login {first:.1f} ms, median of the next {len(rest)} {med:.2f} ms (client-side USER+PASS); server CPU {cpus:.2f} s total; {checks}")

hook = start_hook()
d = tempfile.mkdtemp(); slapd, lport = start_slapd(d)
# local users: the default argon2 hash from s3ftp hash-password
h = subprocess.run([BIN, "hash-password"], input="localpw", capture_output=True, text=True).stdout.strip()
users = json.dumps([{"name": "localuser", "password": h}])
for cache in ["0", "60"]:
    run(f"local argon2, cache {cache}", {"S3FTP_USERS": users, "S3FTP_LOGIN_CACHE_SECS": cache}, "localuser", "localpw")
    run(f"hook, cache {cache}", {"S3FTP_AUTH_URL": f"http://127.0.0.1:{hook}/", "S3FTP_LOGIN_CACHE_SECS": cache}, "partner", "hookpw")
    run(f"ldap StartTLS, cache {cache}", {"S3FTP_LDAP_URL": f"ldap://127.0.0.1:{lport}", "S3FTP_AUTH_CA_FILE": f"{d}/cert.pem",
        "S3FTP_LDAP_BIND_DN_TEMPLATE": "uid={user},ou=people,dc=example,dc=org", "S3FTP_LOGIN_CACHE_SECS": cache}, "ldapuser", "ldappw")
slapd.kill()
