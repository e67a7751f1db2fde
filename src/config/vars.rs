//! The one list of `S3FTP_*` variables. Each row declares a variable once:
//! its name, the field and type it is read into (the type chooses the
//! parser), its default and its help. The macro turns the rows into
//! [`VARIABLES`] (defaults, `--help`, README and .env.example checks) and into
//! [`Raw`], the typed values that the section checks turn into a `Config`.

use std::collections::HashMap;

use super::{invalid, ConfigError};

/// One configuration variable.
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Reads one variable's text as a typed value. Errors name the variable and
/// quote the value, so nothing has to guess afterwards which one failed.
pub(super) trait FromVar: Sized {
    fn from_var(var: &str, value: &str) -> Result<Self, ConfigError>;
}

impl FromVar for String {
    fn from_var(_: &str, value: &str) -> Result<Self, ConfigError> {
        Ok(value.to_string())
    }
}

/// Exactly `true` or `false`, as before (no trimming, no other spellings).
impl FromVar for bool {
    fn from_var(var: &str, value: &str) -> Result<Self, ConfigError> {
        value
            .parse()
            .map_err(|_| invalid(var, format!("invalid value {value:?}: use true or false")))
    }
}

/// Unsigned numbers parse as `str::parse` does, as the `envy` crate did
/// before, so no value accepted then is refused now.
macro_rules! from_var_unsigned {
    ($($ty:ty),*) => {$(
        impl FromVar for $ty {
            fn from_var(var: &str, value: &str) -> Result<Self, ConfigError> {
                value.parse().map_err(|e| {
                    invalid(var, format!("invalid value {value:?}: expected a whole number ({e})"))
                })
            }
        }
    )*};
}
from_var_unsigned!(u32, u64, usize);

/// Declares the variables: `NAME => field: Type = "default", "help";`.
macro_rules! variables {
    ($($name:ident => $field:ident: $ty:ty = $default:literal, $help:literal;)*) => {
        /// Each variable's name as a constant, so a misspelt name in a check
        /// fails to compile instead of blaming a variable that does not exist.
        #[allow(dead_code)] // not every variable has a check of its own
        pub(super) mod names {
            $(pub const $name: &str = stringify!($name);)*
        }

        pub const VARIABLES: &[Variable] = &[
            $(Variable { name: stringify!($name), default: $default, help: $help },)*
        ];

        /// Every variable's value, parsed by its type; not yet cross-checked.
        pub(super) struct Raw {
            $(pub $field: $ty,)*
        }

        impl Raw {
            /// `values` holds every variable (defaults filled in by the caller).
            pub(super) fn read(values: &HashMap<String, String>) -> Result<Raw, ConfigError> {
                Ok(Raw {
                    $($field: {
                        let text = values.get(stringify!($name)).map_or($default, String::as_str);
                        <$ty as FromVar>::from_var(stringify!($name), text)?
                    },)*
                })
            }
        }
    };
}

variables! {
    S3FTP_LISTEN => listen: String = "127.0.0.1:2121",
        "Address and port of the FTP control listener.";
    S3FTP_PASV_PORTS => pasv_ports: String = "",
        "Passive data port range, e.g. 50000-50100 (empty: any free port). Sessions of different client addresses share ports, so a range serves as many waiting sessions per port as there are client addresses; sessions from one address need one port each.";
    S3FTP_PASV_ADDRESS => pasv_address: String = "",
        "Address advertised in PASV replies, IP or DNS name, for NAT and containers (empty: the control connection's local address).";
    S3FTP_MOUNTS => mounts: String = "/=fs://./data",
        "Comma-separated PATH=URI mounts forming the virtual tree; URIs: fs://FOLDER, memory://, s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true.";
    S3FTP_USERS => users: String = "",
        "JSON array of users: [{\"name\":\"alice\",\"password\":\"$argon2id$...\",\"home\":\"/alice\",\"read_only\":false}].";
    S3FTP_USERS_FILE => users_file: String = "",
        "Path of a users file: the same JSON array as S3FTP_USERS, or TOML [[users]] tables when the name ends in .toml (both variables may be used).";
    S3FTP_PART_SIZE_MIB => part_size_mib: usize = "8",
        "S3 multipart part size in MiB (at least 5); doubles every 900 parts so uploads can reach 5 TiB.";
    S3FTP_UPLOAD_CONCURRENCY => upload_concurrency: usize = "4",
        "Parts of one S3 upload sent at once while the client is still sending.";
    S3FTP_UPLOAD_MEMORY_MIB => upload_memory_mib: usize = "160",
        "Global budget of S3 part buffers (being filled or sent) across all sessions, in MiB; uploads wait, slowing their clients, when it is spent. Downloads' parts come from it too.";
    S3FTP_DOWNLOAD_CONCURRENCY => download_concurrency: usize = "4",
        "Parts (of S3FTP_PART_SIZE_MIB) of one S3 download asked for at once, as ranged GetObjects sent in order; they take their memory from S3FTP_UPLOAD_MEMORY_MIB while more than half of it would stay free for uploads; otherwise the download streams from one GetObject. 1: always one GetObject.";
    S3FTP_DIR_CACHE_SECS => dir_cache_secs: u64 = "10",
        "Seconds an S3 mount trusts what it recently saw of its directories (that a directory exists; all of its subdirectories, from a listing, MKD or one listing page), so uploads into a known directory send only their PutObject. Changes by other writers show after this long; 0: check the store on every upload.";
    S3FTP_UPLOAD_SWEEP_AGE => upload_sweep_age: u64 = "3600",
        "Seconds after which a multipart upload under an S3 mount's prefix that this process is not sending counts as abandoned (a crashed server's, an abort that kept failing) and is aborted: it must have been started that long ago and its newest part be that old too, so another replica's slow upload survives. Swept at start and every min(age, 3600)/2 seconds. It also aborts other tools' uploads under the prefix that are that stale. 0: no sweeping.";
    S3FTP_STORE_WAIT => store_wait: u64 = "60",
        "Seconds start-up keeps retrying, with backoff, a mount whose store does not answer or whose bucket is not there yet (so container start order does not matter); /readyz says 503 naming the mount meanwhile. Lasting problems (no or wrong credentials, access denied, wrong region) stop the server at once. 0: no retry.";
    S3FTP_UPLOAD_DIGESTS => upload_digests: String = "crc32",
        "Checksums computed while an upload streams (comma-separated: crc32, md5, sha1, sha256, sha512; empty: none) and kept with the object, so HASH and the X-commands answer them without reading it back. CRC-32 costs about 0.1 CPU-s per GiB uploaded; SHA-256 about 0.8 and MD5 about 1.8, which also slow each upload (measured by scripts/bench.sh).";
    S3FTP_HASH_MAX_MIB => hash_max_mib: u64 = "4096",
        "Largest read, in MiB, that HASH, XSHA256, XMD5, XCRC and the like make to compute a checksum no one has computed yet (the result is then remembered while the file is unchanged); larger files get 550. 0: no limit.";
    S3FTP_LOGIN_CACHE_SECS => login_cache_secs: u64 = "60",
        "Seconds a successful login is remembered, so the same name with the same password (or certificate) logs in again without another argon2 check, hook call or LDAP bind; keyed by a per-process secret hash of both, so another password is always checked. 0: every login is checked.";
    S3FTP_AUTH_URL => auth_url: String = "",
        "URL of an HTTP auth hook: names that are not local users are POSTed there as JSON (user, password or certificate names, client address, TLS, server id) and a 200 answer with a JSON user (home, rights, own mounts) lets them in; 401, 403 or 404 refuse; anything else, or no answer, refuses with 421 (see README). Plain http:// only to loopback unless S3FTP_AUTH_ALLOW_PLAINTEXT.";
    S3FTP_AUTH_TOKEN => auth_token: String = "",
        "Bearer token sent to the auth hook (Authorization: Bearer ...), so it can tell this server from others.";
    S3FTP_AUTH_TIMEOUT => auth_timeout: u64 = "5",
        "Seconds the auth hook or the LDAP directory has to answer (each LDAP operation; the hook's whole exchange); then the login is refused with 421.";
    S3FTP_AUTH_CA_FILE => auth_ca_file: String = "",
        "PEM file of CA certificates trusted, besides the system's, for the auth hook's https:// and the LDAP server's TLS.";
    S3FTP_AUTH_ALLOW_PLAINTEXT => auth_allow_plaintext: bool = "false",
        "Allow sending passwords without TLS to a hook (http://) or LDAP server (ldap:// without StartTLS) that is not on loopback; only on a private network.";
    S3FTP_SERVER_ID => server_id: String = "",
        "This server's name, sent to the auth hook (empty: the host name).";
    S3FTP_LDAP_URL => ldap_url: String = "",
        "LDAP or Active Directory server: ldap://HOST[:PORT] (StartTLS) or ldaps://HOST[:PORT]; names that are not local users log in by binding as themselves. Empty: off.";
    S3FTP_LDAP_STARTTLS => ldap_starttls: bool = "true",
        "Upgrade ldap:// connections with StartTLS before any bind.";
    S3FTP_LDAP_BIND_DN_TEMPLATE => ldap_bind_dn_template: String = "",
        "DN to bind as, {user} being the (escaped) login name, e.g. uid={user},ou=people,dc=example,dc=org or {user}@corp.example.org for Active Directory. Or use S3FTP_LDAP_BIND_DN to search.";
    S3FTP_LDAP_BIND_DN => ldap_bind_dn: String = "",
        "Service account that searches for the user's entry (search, then bind as the entry found).";
    S3FTP_LDAP_BIND_PASSWORD => ldap_bind_password: String = "",
        "Password of S3FTP_LDAP_BIND_DN.";
    S3FTP_LDAP_BASE_DN => ldap_base_dn: String = "",
        "Where users are searched (subtree), with S3FTP_LDAP_BIND_DN.";
    S3FTP_LDAP_FILTER => ldap_filter: String = "(uid={user})",
        "Filter the user's entry must match, {user} being the escaped name; e.g. (&(sAMAccountName={user})(!(userAccountControl:1.2.840.113556.1.4.803:=2))) for enabled Active Directory accounts.";
    S3FTP_LDAP_HOME_ATTRIBUTE => ldap_home_attribute: String = "",
        "Attribute of the user's entry holding the home (a path in the virtual tree); empty, or absent from the entry: S3FTP_LDAP_HOME_TEMPLATE.";
    S3FTP_LDAP_HOME_TEMPLATE => ldap_home_template: String = "/{user}",
        "Home of directory users, {user} being the lower-cased login name.";
    S3FTP_LDAP_GROUP_BASE_DN => ldap_group_base_dn: String = "",
        "Where the user's groups are searched (subtree) with S3FTP_LDAP_GROUP_FILTER; empty: the entry's memberOf values.";
    S3FTP_LDAP_GROUP_FILTER => ldap_group_filter: String = "(|(member={dn})(uniqueMember={dn}))",
        "Filter of the user's groups, {dn} being the user's DN and {user} the name (escaped).";
    S3FTP_LDAP_REQUIRED_GROUP => ldap_required_group: String = "",
        "DN of the group a user must be in to log in (empty: any user the filter matches).";
    S3FTP_LDAP_READ_ONLY_GROUP => ldap_read_only_group: String = "",
        "DN of the group whose members are read-only.";
    S3FTP_LDAP_DROP_BOX_GROUP => ldap_drop_box_group: String = "",
        "DN of the group whose members may only upload new files (drop box).";
    S3FTP_LDAP_NO_DELETE_GROUP => ldap_no_delete_group: String = "",
        "DN of the group whose members may not delete.";
    S3FTP_LDAP_NO_OVERWRITE_GROUP => ldap_no_overwrite_group: String = "",
        "DN of the group whose members may not replace existing files.";
    S3FTP_LDAP_POOL => ldap_pool: usize = "4",
        "Idle LDAP connections kept for the next logins.";
    S3FTP_ANONYMOUS_HOME => anonymous_home: String = "",
        "Home of read-only anonymous logins (USER anonymous or ftp, any password); empty: anonymous login is off.";
    S3FTP_EVENTS_WEBHOOK_URL => events_webhook_url: String = "",
        "URL that receives each event as a JSON POST, signed with S3FTP_EVENTS_WEBHOOK_SECRET (header X-S3ftp-Signature: t=UNIX,v1=HEX of HMAC-SHA256 over \"t.body\"); 2xx takes it, 408, 429, 5xx and no answer are retried, other statuses set it aside. Empty: off.";
    S3FTP_EVENTS_WEBHOOK_SECRET => events_webhook_secret: String = "",
        "Shared secret of the webhook's HMAC-SHA256 signature (required with S3FTP_EVENTS_WEBHOOK_URL).";
    S3FTP_EVENTS_SQS_QUEUE_URL => events_sqs_queue_url: String = "",
        "SQS queue URL that receives each event as a message (FIFO queues: grouped by path, deduplicated by event id); credentials and region from the standard AWS chain. Empty: off.";
    S3FTP_EVENTS_SNS_TOPIC_ARN => events_sns_topic_arn: String = "",
        "SNS topic ARN that receives each event as a message, like the SQS sink. Empty: off.";
    S3FTP_EVENTS_TYPES => events_types: String = "*",
        "Comma-separated event types sent: upload.completed, upload.failed, upload.aborted, download.completed, file.deleted, file.renamed, dir.created, dir.removed; a prefix such as upload.* ; * for all.";
    S3FTP_EVENTS_PATHS => events_paths: String = "",
        "Comma-separated path prefixes (in the whole tree, whole segments) whose events are sent; empty: all.";
    S3FTP_EVENTS_SPOOL => events_spool: String = "./events-spool",
        "Folder where events wait until their sink takes them (one file each, one subfolder per sink), so none is lost when a sink is down or the server restarts; one per process (locked).";
    S3FTP_EVENTS_MAX_PENDING => events_max_pending: usize = "100000",
        "Most events waiting per sink; past that new events are dropped, logged and counted (s3ftp_events_dropped_total).";
    S3FTP_EVENTS_RETRY_MAX_SECS => events_retry_max_secs: u64 = "60",
        "Longest wait between two attempts to deliver an event (the wait doubles from 0.25 s, with jitter).";
    S3FTP_EVENTS_TIMEOUT => events_timeout: u64 = "10",
        "Seconds one delivery attempt may take.";
    S3FTP_RENAME_OVERWRITE => rename_overwrite: bool = "true",
        "RNTO onto an existing file replaces it, as FTP servers do; false answers 550 and keeps both.";
    S3FTP_TEMP_SUFFIXES => temp_suffixes: String = ".filepart",
        "Comma-separated suffixes of upload-then-rename temporary names (WinSCP's .filepart): a STOR to NAME+suffix is written straight to NAME and made visible when the client renames it to NAME, so the rename copies nothing. Empty: off.";
    S3FTP_LEGACY_ENCODING => legacy_encoding: String = "",
        "Encoding of clients that send file names as raw legacy bytes (latin1, gbk, shift_jis, windows-1251...): such names are stored as UTF-8 keys, and names go out in it until a client sends OPTS UTF8 ON. Empty: UTF-8 only.";
    S3FTP_TLS_CERT => tls_cert: String = "",
        "PEM file with the TLS certificate chain (leaf first); enables FTPS (AUTH TLS).";
    S3FTP_TLS_KEY => tls_key: String = "",
        "PEM file with the private key of S3FTP_TLS_CERT.";
    S3FTP_TLS_SELF_SIGNED => tls_self_signed: bool = "false",
        "Generate a self-signed certificate at start when no S3FTP_TLS_CERT is given (development only).";
    S3FTP_TLS_CLIENT_CA => tls_client_ca: String = "",
        "PEM file of the CA certificates that sign client certificates: FTPS clients may then present one, and a certificate whose subject common name or alternative name (DNS or e-mail) is a user's name logs that user in at USER (232), without a password. Users with cert_required must log in so. Empty: no client certificates.";
    S3FTP_TLS_IMPLICIT_LISTEN => tls_implicit_listen: String = "",
        "Address and port of an implicit FTPS listener (TLS from the first byte, conventionally port 990).";
    S3FTP_METRICS_LISTEN => metrics_listen: String = "",
        "Address and port of the monitoring HTTP listener: /metrics (Prometheus), /healthz, /readyz (empty: off).";
    S3FTP_PROXY_PROTOCOL => proxy_protocol: String = "off",
        "HAProxy PROXY protocol (v1 or v2) header expected from a load balancer: off, control (control connections) or all (control and passive data connections).";
    S3FTP_PROXY_TRUSTED => proxy_trusted: String = "",
        "Comma-separated addresses or networks (10.0.0.0/8) allowed to send PROXY headers (empty: any peer; then the FTP ports must be reachable only through the proxy).";
    S3FTP_TLS_REQUIRE_REUSE => tls_require_reuse: bool = "false",
        "PROT P data connections must resume the control connection's TLS session (like vsftpd's require_ssl_reuse; breaks clients that do not reuse, such as Python's ftplib).";
    S3FTP_REQUIRE_TLS => require_tls: bool = "false",
        "Refuse USER/PASS before AUTH TLS (530) and transfers without PROT P (521).";
    S3FTP_IDLE_TIMEOUT => idle_timeout: u64 = "300",
        "Seconds a control connection may stay idle before 421 and disconnect.";
    S3FTP_LOGIN_TIMEOUT => login_timeout: u64 = "60",
        "Seconds a connection may take to log in before 421 and disconnect.";
    S3FTP_MAX_COMMANDS_PER_SECOND => max_commands_per_second: u32 = "5000",
        "Commands one session may send per second; faster clients are slowed down, not cut off (0: no limit).";
    S3FTP_DATA_TIMEOUT => data_timeout: u64 = "30",
        "Seconds to wait for a data connection to open, and for any data to move on it.";
    S3FTP_COMMIT_WAIT_US => commit_wait_us: u64 = "1000",
        "Microseconds an upload whose data ended waits, before it is committed, for its control connection to close or say ABOR: a killed client's kernel can close the data connection a little before the control connection. Live clients send nothing then (they wait for 226), so each upload takes this much longer. 0: look only at what has already arrived.";
    S3FTP_MAX_SESSIONS => max_sessions: usize = "512",
        "Most control connections served at once; more are answered 421.";
    S3FTP_MAX_SESSIONS_PER_IP => max_sessions_per_ip: usize = "32",
        "Most control connections from one client address; more are answered 421.";
    S3FTP_LOGIN_FAILURES_BEFORE_BAN => login_failures_before_ban: u32 = "5",
        "Failed logins from one address (within S3FTP_BAN_SECONDS) that ban it for S3FTP_BAN_SECONDS; 0 never bans.";
    S3FTP_BAN_SECONDS => ban_seconds: u64 = "300",
        "How long a banned address is answered 421 at connect.";
    S3FTP_LOGIN_FAIL_DELAY_MS => login_fail_delay_ms: u64 = "1000",
        "Delay before answering a failed login, times the failures so far on the connection (at most 10 s).";
    S3FTP_SHUTDOWN_GRACE => shutdown_grace: u64 = "30",
        "Seconds transfers in flight may go on after SIGTERM/SIGINT; then they are aborted (uploads discarded).";
    S3FTP_BANNER => banner: String = "s3ftp ready",
        "Text of the 220 greeting.";
    S3FTP_LOG => log: String = "info",
        "Log filter (tracing EnvFilter syntax), e.g. info or s3ftp=debug. Libraries whose messages a user cannot act on (rustls, hyper, h2, the AWS SDK's credential probes) stay at warnings or errors unless the filter names them.";
    S3FTP_LOG_FORMAT => log_format: String = "text",
        "Log format on stderr: text (human-readable) or json (one object per line).";
}
