//! The real-client compatibility matrix (issue 6): every client program an
//! FTP bridge meets in practice, driven against the built `s3ftp` binary on
//! both back ends (a local folder and a fresh bucket on the shared loopback
//! Garage), through the same named steps: login, nested MKD, upload, listing,
//! download checked byte for byte, rename, resumed download and upload,
//! delete, RMD, and the habits `LIST -la`, `NLST *.csv` and uploading under a
//! temporary name then renaming.
//!
//! Each step also checks what the store holds, read from the folder or the
//! bucket directly (never through the server under test), and every test ends
//! by checking the whole store: exactly the expected files and folders, no
//! staged upload, no multipart upload in progress. [`ROWS`] is the matrix
//! itself: each test asserts it ran exactly the operations its row marks ✓,
//! and `readme_shows_the_matrix_as_tested` checks README.md shows the same
//! table.
//!
//! The clients must be installed (scripts/test.sh installs them); a missing
//! one fails its tests. Every client run is killed after a time limit.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::clients::{
    assert_data_command, assert_ran, assert_same, block_on, lists, path_str, require,
    require_on_path, run, run_with_input, text, tls_env, Backend, Run, Server, Work,
};
use common::{content, PASSWORD, USER};

/// How long one client program may run.
const CLIENT_LIMIT: Duration = Duration::from_secs(40);
/// Size of the main test file: big enough to interrupt and resume.
const DATA_LEN: usize = 640_000;
/// Where a resumed download starts (the partial local file's length).
const CUT: usize = 200_000;

// ---------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------

/// One column of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Login,
    Mkdir,
    Upload,
    List,
    Download,
    Rename,
    ResumeDownload,
    ResumeUpload,
    Delete,
    Rmdir,
    ListLa,
    NlstGlob,
    TempUpload,
}

const OPS: [Op; 13] = [
    Op::Login,
    Op::Mkdir,
    Op::Upload,
    Op::List,
    Op::Download,
    Op::Rename,
    Op::ResumeDownload,
    Op::ResumeUpload,
    Op::Delete,
    Op::Rmdir,
    Op::ListLa,
    Op::NlstGlob,
    Op::TempUpload,
];

impl Op {
    fn column(self) -> &'static str {
        match self {
            Op::Login => "Login",
            Op::Mkdir => "MKD (nested)",
            Op::Upload => "Upload",
            Op::List => "List",
            Op::Download => "Download (checksum)",
            Op::Rename => "Rename",
            Op::ResumeDownload => "Resume download",
            Op::ResumeUpload => "Resume upload",
            Op::Delete => "Delete",
            Op::Rmdir => "RMD",
            Op::ListLa => "`LIST -la`",
            Op::NlstGlob => "`NLST *.csv`",
            Op::TempUpload => "Upload as temp name, rename",
        }
    }
}

/// One row: a client in one mode, and what it cannot do (with why).
struct Row {
    label: &'static str,
    na: &'static [(Op, &'static str)],
}

impl Row {
    fn expected(&self) -> BTreeSet<Op> {
        OPS.into_iter()
            .filter(|op| !self.na.iter().any(|(na, _)| na == op))
            .collect()
    }
}

const CURL_NO_TEMP: &str = "curl has no option to upload under a temporary name and rename.";
const BUSYBOX_ONLY: &str = "busybox `ftpput` and `ftpget` move one file per run and have no \
    other command: no folders, listings, renames or deletes, no upload resume, no temporary name.";
const NCFTP_LA: &str = "`ncftpls` drops `l` from its `ls` flags (its LIST is long already): \
    `ncftpls -la` sends `LIST -a`, which the List step runs.";
const NCFTP_REPUT: &str = "`ncftpput -z` (ncftp 3.2.6) sends `REST n` and then the whole \
    file from its first byte, so the stored file is the old n bytes plus the whole file: a \
    client bug, whatever the server.";
const FTP_EXE_NO_TEMP: &str = "ftp.exe and tnftp have no option to upload under a temporary name.";

const CURL_EPSV: Row = Row {
    label: "curl, passive (EPSV)",
    na: &[(Op::TempUpload, CURL_NO_TEMP)],
};
const CURL_PASV: Row = Row {
    label: "curl, passive (PASV, `--disable-epsv`)",
    na: &[(Op::TempUpload, CURL_NO_TEMP)],
};
const CURL_ACTIVE: Row = Row {
    label: "curl, active (EPRT, `--ftp-port -`)",
    na: &[(Op::TempUpload, CURL_NO_TEMP)],
};
const CURL_FTPS: Row = Row {
    label: "curl, explicit FTPS (`--ssl-reqd`)",
    na: &[(Op::TempUpload, CURL_NO_TEMP)],
};
const LFTP: Row = Row {
    label: "lftp, passive",
    na: &[],
};
const LFTP_FTPS: Row = Row {
    label: "lftp, explicit FTPS (`ftp:ssl-force`)",
    na: &[],
};
const NCFTP: Row = Row {
    label: "ncftp (`ncftpput`, `ncftpls`, `ncftpget`), passive",
    na: &[(Op::ListLa, NCFTP_LA), (Op::ResumeUpload, NCFTP_REPUT)],
};
const BUSYBOX: Row = Row {
    label: "busybox `ftpput` / `ftpget`, passive (EPSV)",
    na: &[
        (Op::Mkdir, BUSYBOX_ONLY),
        (Op::List, BUSYBOX_ONLY),
        (Op::Rename, BUSYBOX_ONLY),
        (Op::ResumeUpload, BUSYBOX_ONLY),
        (Op::Delete, BUSYBOX_ONLY),
        (Op::Rmdir, BUSYBOX_ONLY),
        (Op::ListLa, BUSYBOX_ONLY),
        (Op::NlstGlob, BUSYBOX_ONLY),
        (Op::TempUpload, BUSYBOX_ONLY),
    ],
};
const TNFTP: Row = Row {
    label: "tnftp, active only (PORT), as Windows `ftp.exe`",
    na: &[(Op::TempUpload, FTP_EXE_NO_TEMP)],
};
const FTPLIB: Row = Row {
    label: "Python ftplib, passive",
    na: &[],
};
const FTPLIB_TLS: Row = Row {
    label: "Python ftplib `FTP_TLS`, `prot_p()`",
    na: &[],
};
const SUPPAFTP: Row = Row {
    label: "suppaftp (Rust, tokio), passive",
    na: &[],
};

/// The matrix, in README order.
const ROWS: [&Row; 12] = [
    &CURL_EPSV,
    &CURL_PASV,
    &CURL_ACTIVE,
    &CURL_FTPS,
    &LFTP,
    &LFTP_FTPS,
    &NCFTP,
    &BUSYBOX,
    &TNFTP,
    &FTPLIB,
    &FTPLIB_TLS,
    &SUPPAFTP,
];

/// The matrix as a Markdown table with its footnotes, as README.md shows it.
fn markdown() -> String {
    const MARKS: [&str; 9] = ["¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"];
    let mut notes: Vec<&str> = Vec::new();
    let mut out = String::from("| Client, mode |");
    for op in OPS {
        let _ = write!(out, " {} |", op.column());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(OPS.len()));
    out.push('\n');
    for row in ROWS {
        let _ = write!(out, "| {} |", row.label);
        for op in OPS {
            match row.na.iter().find(|(na, _)| *na == op) {
                None => out.push_str(" ✓ |"),
                Some((_, why)) => {
                    let n = notes.iter().position(|w| w == why).unwrap_or_else(|| {
                        notes.push(why);
                        notes.len() - 1
                    });
                    let _ = write!(out, " n/a{} |", MARKS[n]);
                }
            }
        }
        out.push('\n');
    }
    out.push('\n');
    for (n, why) in notes.iter().enumerate() {
        let _ = writeln!(out, "- {} {why}", MARKS[n]);
    }
    out
}

#[test]
fn readme_shows_the_matrix_as_tested() {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let table = markdown();
    assert!(
        readme.contains(&table),
        "README.md's client compatibility table differs from the matrix the tests run \
         (tests/client_matrix.rs, ROWS); it should read:\n\n{table}"
    );
}

// ---------------------------------------------------------------------------
// The step recorder
// ---------------------------------------------------------------------------

/// Runs the steps of one row on one back end; a failure names the client,
/// the step, the back end, and carries the client's output (in the step's
/// own assertion) and the end of the server's log.
struct Matrix<'a> {
    row: &'static Row,
    backend: Backend,
    server: &'a Server,
    done: BTreeSet<Op>,
}

impl<'a> Matrix<'a> {
    fn new(row: &'static Row, backend: Backend, server: &'a Server) -> Matrix<'a> {
        Matrix {
            row,
            backend,
            server,
            done: BTreeSet::new(),
        }
    }

    /// Runs one step that exercises `ops`; `what` says how (the command).
    /// After the step's own checks, nothing half-written may be left.
    fn step<T>(&mut self, ops: &[Op], what: &str, f: impl FnOnce() -> T) -> T {
        let server = self.server;
        let checked = move || {
            let value = f();
            server.assert_no_partials();
            value
        };
        match catch_unwind(AssertUnwindSafe(checked)) {
            Ok(value) => {
                self.done.extend(ops);
                value
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(no message)".into());
                let log = self.server.stderr();
                // The start-up self-check is long and the same every time.
                let tail: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.contains(" config variable="))
                    .rev()
                    .take(40)
                    .collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "{} on {}: step {ops:?} ({what}) failed:\n{message}\n\
                     --- end of the s3ftp log ---\n{}",
                    self.row.label,
                    self.backend.name(),
                    tail.join("\n")
                );
            }
        }
    }

    /// The store holds exactly `tree` and nothing partial, and the steps run
    /// are exactly the row's ✓ cells.
    fn finish(mut self, tree: &[&str]) {
        let server = self.server;
        self.step(&[], "final state of the store", || server.assert_tree(tree));
        assert_eq!(
            self.done,
            self.row.expected(),
            "{} on {}: the operations run differ from the row's ✓ cells",
            self.row.label,
            self.backend.name()
        );
        eprintln!(
            "{} on {}: {}",
            self.row.label,
            self.backend.name(),
            self.done
                .iter()
                .map(|op| format!("✓ {}", op.column()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// A server for one row on one back end, logging each transfer (with its
/// reply) so a failure shows what the server did.
fn server(backend: Backend, tls: bool) -> Server {
    let mut extra = vec![("S3FTP_LOG", "info".to_string())];
    if tls {
        extra = tls_env(&extra);
    }
    Server::alice_on(backend, &extra)
}

/// The main test file of a row.
fn payload(seed: u64) -> Vec<u8> {
    content(DATA_LEN + seed as usize, seed)
}

const X_CSV: &[u8] = b"id,name\n1,alpha\n2,beta\n";
const Y_CSV: &[u8] = b"id,value\n1,3.5\n";

/// The names a listing shows, one per line, sorted.
fn names(listing: &str) -> Vec<String> {
    let mut v: Vec<String> = listing
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// True if an `ls -l` line names `name` as a file (`-...`) of `size` bytes.
fn long_line(listing: &str, name: &str, size: usize) -> bool {
    listing.lines().any(|l| {
        let l = l.trim_end();
        l.starts_with('-')
            && l.ends_with(&format!(" {name}"))
            && l.split_whitespace().any(|w| w == size.to_string())
    })
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

/// How curl opens data connections, and what it must send for that.
struct CurlMode {
    row: &'static Row,
    args: &'static [&'static str],
    used: &'static str,
    not: &'static [&'static str],
    tls: bool,
}

const EPSV: CurlMode = CurlMode {
    row: &CURL_EPSV,
    args: &[],
    used: "EPSV",
    not: &["PASV", "EPRT", "PORT"],
    tls: false,
};
const PASV: CurlMode = CurlMode {
    row: &CURL_PASV,
    args: &["--disable-epsv"],
    used: "PASV",
    not: &["EPSV", "EPRT", "PORT"],
    tls: false,
};
const ACTIVE: CurlMode = CurlMode {
    row: &CURL_ACTIVE,
    args: &["--ftp-port", "-"],
    used: "EPRT",
    not: &["EPSV", "PASV", "PORT"],
    tls: false,
};
const FTPS: CurlMode = CurlMode {
    row: &CURL_FTPS,
    args: &["--ssl-reqd", "--insecure"],
    used: "EPSV",
    not: &["PASV", "EPRT", "PORT"],
    tls: true,
};

fn curl_matrix(mode: &CurlMode, backend: Backend) {
    require("curl");
    let server = server(backend, mode.tls);
    let work = Work::new();
    let mut m = Matrix::new(mode.row, backend, &server);
    let data = payload(1);
    let local = work.write("data.bin", &data);
    let x = work.write("x.csv", X_CSV);
    let y = work.write("y.csv", Y_CSV);
    let curl = |args: &[&str]| -> Run {
        let all: Vec<&str> = mode.args.iter().chain(args).copied().collect();
        let r = server.curl_run(USER, PASSWORD, &all);
        assert_data_command(&r, mode.used, mode.not);
        if mode.tls {
            assert!(
                (r.stderr.contains("> AUTH TLS") || r.stderr.contains("> AUTH SSL"))
                    && r.stderr.contains("> PROT P"),
                "curl did not protect control and data with TLS:\n{}",
                r.stderr
            );
        }
        r
    };
    let dir = server.url("curl/a/b/");

    m.step(&[Op::Login], "curl LIST of /", || {
        let r = curl(&[&server.url("")]);
        assert!(
            r.stderr.contains("< 230"),
            "no 230 after PASS:\n{}",
            r.stderr
        );
    });
    m.step(
        &[Op::Mkdir],
        "curl -Q 'MKD curl' -Q 'MKD curl/made'",
        || {
            curl(&["-Q", "MKD curl", "-Q", "MKD curl/made", &server.url("")]);
            server.assert_dir("curl");
            server.assert_dir("curl/made");
        },
    );
    m.step(
        &[Op::Mkdir, Op::Upload],
        "curl -T --ftp-create-dirs into curl/a/b/",
        || {
            curl(&[
                "-T",
                &local,
                "--ftp-create-dirs",
                &server.url("curl/a/b/data.bin"),
            ]);
            server.assert_dir("curl/a/b");
            server.assert_file("curl/a/b/data.bin", &data);
            curl(&["-T", &x, &server.url("curl/a/b/x.csv")]);
            curl(&["-T", &y, &server.url("curl/a/b/y.csv")]);
            server.assert_file("curl/a/b/x.csv", X_CSV);
            server.assert_file("curl/a/b/y.csv", Y_CSV);
        },
    );
    m.step(&[Op::List], "curl LIST and --list-only (NLST)", || {
        let listing = text(&curl(&[&dir]).stdout);
        assert!(
            long_line(&listing, "data.bin", data.len()),
            "LIST lacks data.bin:\n{listing}"
        );
        let nlst = text(&curl(&["--list-only", &dir]).stdout);
        assert_eq!(names(&nlst), ["data.bin", "x.csv", "y.csv"], "NLST");
    });
    m.step(&[Op::ListLa], "curl -X 'LIST -la'", || {
        let r = curl(&["-X", "LIST -la", &dir]);
        assert!(r.stderr.contains("> LIST -la"), "{}", r.stderr);
        let listing = text(&r.stdout);
        assert!(
            long_line(&listing, "data.bin", data.len())
                && long_line(&listing, "x.csv", X_CSV.len())
                && long_line(&listing, "y.csv", Y_CSV.len()),
            "LIST -la:\n{listing}"
        );
    });
    m.step(&[Op::NlstGlob], "curl -X 'NLST *.csv'", || {
        let r = curl(&["-X", "NLST *.csv", &dir]);
        assert_eq!(names(&text(&r.stdout)), ["x.csv", "y.csv"], "NLST *.csv");
    });
    m.step(&[Op::Download], "curl -o", || {
        let down = path_str(&work.path("down.bin"));
        curl(&["-o", &down, &server.url("curl/a/b/data.bin")]);
        assert_same("download", &work.read("down.bin"), &data);
    });
    m.step(&[Op::ResumeDownload], "curl -C - of a partial file", || {
        let partial = work.write("partial.bin", &data[..CUT]);
        let r = curl(&["-C", "-", "-o", &partial, &server.url("curl/a/b/data.bin")]);
        assert!(r.stderr.contains(&format!("> REST {CUT}")), "{}", r.stderr);
        assert_same("resumed download", &work.read("partial.bin"), &data);
    });
    m.step(&[Op::ResumeUpload], "curl -C - -T (SIZE, APPE)", || {
        let half = work.write("half.bin", &data[..data.len() / 2]);
        let url = server.url("curl/a/b/resumed.bin");
        curl(&["-T", &half, &url]);
        server.assert_file("curl/a/b/resumed.bin", &data[..data.len() / 2]);
        let r = curl(&["-C", "-", "-T", &local, &url]);
        assert!(r.stderr.contains("> APPE"), "{}", r.stderr);
        server.assert_file("curl/a/b/resumed.bin", &data);
    });
    m.step(&[Op::Rename], "curl -Q RNFR -Q RNTO", || {
        let r = curl(&[
            "-Q",
            "RNFR curl/a/b/data.bin",
            "-Q",
            "RNTO curl/a/b/renamed.bin",
            &dir,
        ]);
        let listing = text(&r.stdout);
        assert!(
            lists(&listing, "renamed.bin") && !lists(&listing, "data.bin"),
            "{listing}"
        );
        server.assert_absent("curl/a/b/data.bin");
        server.assert_file("curl/a/b/renamed.bin", &data);
    });
    m.step(&[Op::Delete], "curl -Q DELE", || {
        let mut args = Vec::new();
        for name in ["renamed.bin", "resumed.bin", "x.csv", "y.csv"] {
            args.push("-Q".to_string());
            args.push(format!("DELE curl/a/b/{name}"));
        }
        args.push(dir.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let listing = text(&curl(&args).stdout);
        assert!(listing.trim().is_empty(), "left after DELE:\n{listing}");
        for name in ["renamed.bin", "resumed.bin", "x.csv", "y.csv"] {
            server.assert_absent(&format!("curl/a/b/{name}"));
        }
        server.assert_dir("curl/a/b");
    });
    m.step(&[Op::Rmdir], "curl -Q RMD", || {
        let r = curl(&[
            "-Q",
            "RMD curl/a/b",
            "-Q",
            "RMD curl/a",
            "-Q",
            "RMD curl/made",
            "-Q",
            "RMD curl",
            &server.url(""),
        ]);
        assert!(!lists(&text(&r.stdout), "curl"), "{}", text(&r.stdout));
        server.assert_absent("curl");
    });
    m.finish(&[]);
}

// ---------------------------------------------------------------------------
// lftp
// ---------------------------------------------------------------------------

/// An lftp run: its output and its debug log (the FTP exchange).
struct Lftp {
    run: Run,
    log: String,
}

/// A home folder of its own, so no rc file or history of the user's counts.
fn home(work: &Work) -> String {
    let home = work.path("home");
    fs::create_dir_all(&home).expect("create home");
    path_str(&home)
}

fn lftp(server: &Server, work: &Work, tls: bool, commands: &str) -> Lftp {
    let log_path = work.path("lftp.log");
    let _ = fs::remove_file(&log_path);
    let security = if tls {
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no"
    } else {
        "set ftp:ssl-allow no"
    };
    let script = format!(
        "{security}; set net:max-retries 1; set net:timeout 10; set cmd:fail-exit true; \
         debug -o {log} 9; open -u {USER},{PASSWORD} ftp://127.0.0.1:{port}; {commands}; bye",
        log = path_str(&log_path),
        port = server.port
    );
    let mut cmd = Command::new("lftp");
    cmd.env("HOME", home(work))
        .env_remove("LFTP_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .arg("-c")
        .arg(&script);
    let run = run(cmd, CLIENT_LIMIT);
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        run.status.success(),
        "lftp -c {commands:?} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n\
         --- lftp debug log ---\n{log}",
        run.status,
        run.stdout_text(),
        run.stderr
    );
    if tls {
        assert!(
            log.contains("---> AUTH TLS") && log.contains("---> PROT P"),
            "lftp did not protect control and data with TLS:\n{log}"
        );
    }
    Lftp { run, log }
}

/// The files of the local tree lftp mirrors: 3 levels of folders.
const TREE: [(&str, usize); 5] = [
    ("top.txt", 12),
    ("a/one.bin", 3_000),
    ("a/b/two.bin", DATA_LEN),
    ("a/b/c/three.csv", 40),
    ("a/b/c/four.csv", 50),
];

fn lftp_matrix(row: &'static Row, tls: bool, backend: Backend) {
    require("lftp");
    let server = server(backend, tls);
    let work = Work::new();
    let mut m = Matrix::new(row, backend, &server);
    let files: Vec<(&str, Vec<u8>)> = TREE
        .iter()
        .enumerate()
        .map(|(i, (name, len))| (*name, content(*len, 20 + i as u64)))
        .collect();
    for (name, data) in &files {
        work.write(&format!("tree/{name}"), data);
    }
    let tree = path_str(&work.path("tree"));
    let two = &files[2].1;
    let lftp = |commands: &str| lftp(&server, &work, tls, commands);

    m.step(&[Op::Login], "lftp open, ls /", || {
        let r = lftp("ls /");
        assert!(r.log.contains("<--- 230"), "{}", r.log);
    });
    m.step(&[Op::Mkdir], "lftp mkdir -p lftp/made/deeper", || {
        lftp("mkdir -p lftp/made/deeper");
        server.assert_dir("lftp/made/deeper");
    });
    m.step(&[Op::Mkdir, Op::Upload], "lftp mirror -R", || {
        lftp(&format!("mirror -R {tree} /lftp/tree"));
        for (name, data) in &files {
            server.assert_file(&format!("lftp/tree/{name}"), data);
        }
        server.assert_dir("lftp/tree/a/b/c");
    });
    m.step(&[Op::List], "lftp ls", || {
        let r = lftp("ls /lftp/tree/a/b");
        let listing = r.run.stdout_text();
        assert!(
            long_line(&listing, "two.bin", two.len()) && lists(&listing, "c"),
            "{listing}"
        );
    });
    m.step(&[Op::ListLa], "lftp ls -la", || {
        let r = lftp("cd /lftp/tree/a/b; ls -la");
        assert!(r.log.contains("---> LIST -la"), "{}", r.log);
        let listing = r.run.stdout_text();
        assert!(
            long_line(&listing, "two.bin", two.len())
                && listing
                    .lines()
                    .any(|l| l.starts_with('d') && l.ends_with(" c")),
            "{listing}"
        );
    });
    m.step(&[Op::NlstGlob], "lftp nlist *.csv", || {
        let r = lftp("cd /lftp/tree/a/b/c; nlist *.csv");
        assert!(r.log.contains("---> NLST *.csv"), "{}", r.log);
        assert_eq!(
            names(&r.run.stdout_text()),
            ["four.csv", "three.csv"],
            "NLST *.csv"
        );
    });
    m.step(
        &[Op::Download],
        "lftp mirror (back into a new folder)",
        || {
            let back = work.path("back");
            lftp(&format!("mirror /lftp/tree {}", path_str(&back)));
            let mut got = BTreeSet::new();
            local_files(&back, "", &mut got);
            let want: BTreeSet<String> = files.iter().map(|(n, _)| n.to_string()).collect();
            assert_eq!(got, want, "files mirrored back");
            for (name, data) in &files {
                assert_same(name, &fs::read(back.join(name)).expect("mirrored"), data);
            }
        },
    );
    m.step(
        &[Op::ResumeDownload],
        "lftp get -c of a partial file",
        || {
            let partial = work.write("partial.bin", &two[..CUT]);
            let r = lftp(&format!("get -c /lftp/tree/a/b/two.bin -o {partial}"));
            assert!(r.log.contains(&format!("---> REST {CUT}")), "{}", r.log);
            assert_same("resumed download", &work.read("partial.bin"), two);
        },
    );
    m.step(&[Op::ResumeUpload], "lftp put -c (REST + STOR)", || {
        let half = two.len() / 2;
        let first = work.write("half.bin", &two[..half]);
        let full = path_str(&work.path("tree/a/b/two.bin"));
        lftp(&format!("put {first} -o /lftp/resumed.bin"));
        server.assert_file("lftp/resumed.bin", &two[..half]);
        let r = lftp(&format!("put -c {full} -o /lftp/resumed.bin"));
        assert!(r.log.contains(&format!("---> REST {half}")), "{}", r.log);
        server.assert_file("lftp/resumed.bin", two);
    });
    m.step(&[Op::TempUpload], "lftp xfer:use-temp-file", || {
        let full = path_str(&work.path("tree/a/b/two.bin"));
        let r = lftp(&format!(
            "set xfer:use-temp-file yes; put {full} -o /lftp/temp.bin"
        ));
        assert!(
            r.log
                .lines()
                .any(|l| l.starts_with("---> STOR ") && l.ends_with(".in.temp.bin"))
                && r.log.contains("---> RNTO"),
            "{}",
            r.log
        );
        server.assert_file("lftp/temp.bin", two);
        server.assert_absent("lftp/.in.temp.bin");
    });
    m.step(&[Op::Rename], "lftp mv", || {
        lftp("mv /lftp/tree/top.txt /lftp/tree/renamed.txt");
        server.assert_absent("lftp/tree/top.txt");
        server.assert_file("lftp/tree/renamed.txt", &files[0].1);
    });
    m.step(&[Op::Delete], "lftp rm", || {
        lftp("rm /lftp/resumed.bin /lftp/temp.bin");
        server.assert_absent("lftp/resumed.bin");
        server.assert_absent("lftp/temp.bin");
    });
    m.step(&[Op::Rmdir], "lftp rmdir", || {
        lftp("rmdir /lftp/made/deeper /lftp/made");
        server.assert_absent("lftp/made");
    });
    m.step(&[Op::Delete, Op::Rmdir], "lftp rm -r, rmdir", || {
        lftp("rm -r /lftp/tree; rmdir /lftp");
        server.assert_absent("lftp");
    });
    m.finish(&[]);
}

/// The files (not folders) under `dir`, as paths relative to it.
fn local_files(dir: &Path, rel: &str, out: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let entry = entry.expect("dir entry");
        let name = format!("{rel}{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("file type").is_dir() {
            local_files(&entry.path(), &format!("{name}/"), out);
        } else {
            out.insert(name);
        }
    }
}

// ---------------------------------------------------------------------------
// ncftp
// ---------------------------------------------------------------------------

/// Runs one of ncftpput, ncftpls, ncftpget as alice; returns the run and the
/// program's debug log (the FTP exchange).
fn ncftp(server: &Server, work: &Work, program: &str, args: &[&str]) -> (Run, String) {
    require_on_path(program);
    let log_path = work.path("ncftp.log");
    let _ = fs::remove_file(&log_path);
    let port = server.port.to_string();
    let mut cmd = Command::new(program);
    cmd.env("HOME", home(work))
        .args(["-u", USER, "-p", PASSWORD, "-P", &port, "-t", "20", "-d"])
        .arg(&log_path)
        .args(args);
    let r = run(cmd, CLIENT_LIMIT);
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        r.status.success(),
        "{program} {args:?} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n\
         --- debug log ---\n{log}",
        r.status,
        r.stdout_text(),
        r.stderr
    );
    (r, log)
}

fn ncftp_matrix(backend: Backend) {
    for program in ["ncftpput", "ncftpls", "ncftpget"] {
        require_on_path(program);
    }
    let server = server(backend, false);
    let work = Work::new();
    let mut m = Matrix::new(&NCFTP, backend, &server);
    let data = payload(3);
    let local = work.write("data.bin", &data);
    let x = work.write("x.csv", X_CSV);
    let y = work.write("y.csv", Y_CSV);
    let url = |path: &str| format!("ftp://127.0.0.1/{path}");
    let ncftp = |program: &str, args: &[&str]| ncftp(&server, &work, program, args);

    m.step(&[Op::Login], "ncftpls -1 /", || {
        let (_, log) = ncftp("ncftpls", &["-1", &url("")]);
        assert!(log.contains("230: User logged in"), "{log}");
    });
    m.step(
        &[Op::Mkdir, Op::Upload],
        "ncftpput -m into /ncftp/a/b",
        || {
            let (_, log) = ncftp(
                "ncftpput",
                &["-V", "-m", "127.0.0.1", "/ncftp/a/b", &local, &x, &y],
            );
            assert!(log.contains("Cmd: MKD"), "{log}");
            server.assert_dir("ncftp/a/b");
            server.assert_file("ncftp/a/b/data.bin", &data);
            server.assert_file("ncftp/a/b/x.csv", X_CSV);
            server.assert_file("ncftp/a/b/y.csv", Y_CSV);
        },
    );
    m.step(&[Op::List], "ncftpls -l and -la (LIST -a)", || {
        let (r, _) = ncftp("ncftpls", &["-l", &url("ncftp/a/b/")]);
        let listing = r.stdout_text();
        assert!(long_line(&listing, "data.bin", data.len()), "{listing}");
        let (r, log) = ncftp("ncftpls", &["-la", &url("ncftp/a/b/")]);
        assert!(log.contains("Cmd: LIST -a"), "{log}");
        let listing = r.stdout_text();
        assert!(
            long_line(&listing, "x.csv", X_CSV.len()) && long_line(&listing, "y.csv", Y_CSV.len()),
            "{listing}"
        );
    });
    m.step(&[Op::NlstGlob], "ncftpls -1 -i '*.csv'", || {
        let (r, log) = ncftp("ncftpls", &["-1", "-i", "*.csv", &url("ncftp/a/b/")]);
        assert!(log.contains("Cmd: NLST -1 *.csv"), "{log}");
        assert_eq!(names(&r.stdout_text()), ["x.csv", "y.csv"], "NLST *.csv");
    });
    m.step(&[Op::Download], "ncftpget", || {
        let into = work.path("down");
        fs::create_dir(&into).expect("mkdir");
        ncftp(
            "ncftpget",
            &["-V", "127.0.0.1", &path_str(&into), "/ncftp/a/b/data.bin"],
        );
        assert_same("download", &work.read("down/data.bin"), &data);
    });
    m.step(
        &[Op::ResumeDownload],
        "ncftpget onto a partial file (resumes by default)",
        || {
            work.write("resume/data.bin", &data[..CUT]);
            let into = path_str(&work.path("resume"));
            let (_, log) = ncftp(
                "ncftpget",
                &["-V", "127.0.0.1", &into, "/ncftp/a/b/data.bin"],
            );
            assert!(log.contains(&format!("Cmd: REST {CUT}")), "{log}");
            assert_same("resumed download", &work.read("resume/data.bin"), &data);
        },
    );
    m.step(&[Op::TempUpload], "ncftpput -S .part", || {
        let temp = work.write("temp.bin", &data);
        let (_, log) = ncftp(
            "ncftpput",
            &["-V", "-S", ".part", "127.0.0.1", "/ncftp/a/b", &temp],
        );
        assert!(
            log.contains("Cmd: STOR temp.bin.part") && log.contains("Cmd: RNTO temp.bin"),
            "{log}"
        );
        server.assert_file("ncftp/a/b/temp.bin", &data);
        server.assert_absent("ncftp/a/b/temp.bin.part");
    });
    m.step(&[Op::Rename], "ncftpls -W RNFR -W RNTO", || {
        let (r, log) = ncftp(
            "ncftpls",
            &[
                "-1",
                "-W",
                "RNFR /ncftp/a/b/data.bin",
                "-W",
                "RNTO /ncftp/a/b/renamed.bin",
                &url("ncftp/a/b/"),
            ],
        );
        assert!(log.contains("250: Rename successful"), "{log}");
        let listing = r.stdout_text();
        assert!(
            lists(&listing, "renamed.bin") && !lists(&listing, "data.bin"),
            "{listing}"
        );
        server.assert_absent("ncftp/a/b/data.bin");
        server.assert_file("ncftp/a/b/renamed.bin", &data);
    });
    m.step(&[Op::Delete], "ncftpget -DD, ncftpls -W DELE", || {
        let into = work.path("dd");
        fs::create_dir(&into).expect("mkdir");
        ncftp(
            "ncftpget",
            &[
                "-V",
                "-DD",
                "127.0.0.1",
                &path_str(&into),
                "/ncftp/a/b/renamed.bin",
            ],
        );
        assert_same(
            "downloaded before delete",
            &work.read("dd/renamed.bin"),
            &data,
        );
        server.assert_absent("ncftp/a/b/renamed.bin");
        let (r, _) = ncftp(
            "ncftpls",
            &[
                "-1",
                "-W",
                "DELE /ncftp/a/b/x.csv",
                "-W",
                "DELE /ncftp/a/b/y.csv",
                "-W",
                "DELE /ncftp/a/b/temp.bin",
                &url("ncftp/a/b/"),
            ],
        );
        assert!(r.stdout_text().trim().is_empty(), "{}", r.stdout_text());
        for name in ["x.csv", "y.csv", "temp.bin"] {
            server.assert_absent(&format!("ncftp/a/b/{name}"));
        }
    });
    m.step(&[Op::Rmdir], "ncftpls -W RMD", || {
        let (r, _) = ncftp(
            "ncftpls",
            &[
                "-1",
                "-W",
                "RMD /ncftp/a/b",
                "-W",
                "RMD /ncftp/a",
                "-W",
                "RMD /ncftp",
                &url(""),
            ],
        );
        assert!(!lists(&r.stdout_text(), "ncftp"), "{}", r.stdout_text());
        server.assert_absent("ncftp");
    });
    m.finish(&[]);
}

// ---------------------------------------------------------------------------
// busybox
// ---------------------------------------------------------------------------

fn busybox_matrix(backend: Backend) {
    require_on_path("busybox");
    let server = server(backend, false);
    let work = Work::new();
    let mut m = Matrix::new(&BUSYBOX, backend, &server);
    let data = payload(4);
    let local = work.write("scan.pdf", &data);
    let port = server.port.to_string();
    let busybox = |applet: &str, args: &[&str]| -> Run {
        let mut cmd = Command::new("busybox");
        cmd.arg(applet)
            .args(["-v", "-u", USER, "-p", PASSWORD, "-P", &port, "127.0.0.1"])
            .args(args);
        let r = run(cmd, CLIENT_LIMIT);
        assert_ran(&format!("busybox {applet} {args:?}"), &r, &server);
        assert!(r.stderr.contains("cmd EPSV"), "{}", r.stderr);
        r
    };

    m.step(&[Op::Login, Op::Upload], "busybox ftpput", || {
        busybox("ftpput", &["scan.pdf", &local]);
        server.assert_file("scan.pdf", &data);
    });
    m.step(&[Op::Download], "busybox ftpget", || {
        let down = path_str(&work.path("down.pdf"));
        busybox("ftpget", &[&down, "scan.pdf"]);
        assert_same("download", &work.read("down.pdf"), &data);
    });
    m.step(&[Op::ResumeDownload], "busybox ftpget -c", || {
        let partial = work.write("partial.pdf", &data[..CUT]);
        let r = busybox("ftpget", &["-c", &partial, "scan.pdf"]);
        assert!(
            r.stderr.contains(&format!("cmd REST {CUT}")),
            "{}",
            r.stderr
        );
        assert_same("resumed download", &work.read("partial.pdf"), &data);
    });
    m.finish(&["scan.pdf"]);
}

// ---------------------------------------------------------------------------
// An active-mode-only client driven like Windows ftp.exe: tnftp with passive
// off and EPRT off (ftp.exe sends PORT), fed a script as a batch file would.
// ---------------------------------------------------------------------------

fn tnftp(server: &Server, work: &Work, body: &str) -> String {
    require_on_path("tnftp");
    let script = format!(
        "open 127.0.0.1 {port}\nuser {USER} {PASSWORD}\nbinary\nepsv4 off\nprompt off\n\
         {body}quit\n",
        port = server.port
    );
    let mut cmd = Command::new("tnftp");
    cmd.env("HOME", home(work)).args(["-A", "-n", "-v", "-d"]);
    let r = run_with_input(cmd, &script, CLIENT_LIMIT);
    assert_ran("tnftp -A", &r, server);
    let out = format!("{}{}", r.stdout_text(), r.stderr);
    // tnftp goes on after a failed command: any 4xx/5xx reply fails the step.
    let refused: Vec<&str> = out
        .lines()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() > 3
                && matches!(b[0], b'4' | b'5')
                && b[1..3].iter().all(u8::is_ascii_digit)
                && matches!(b[3], b' ' | b'-')
        })
        .collect();
    assert!(
        refused.is_empty(),
        "the server refused {refused:?}; script:\n{body}\n--- tnftp ---\n{out}"
    );
    for passive in ["---> EPSV", "---> PASV", "---> EPRT"] {
        assert!(!out.contains(passive), "tnftp sent {passive}:\n{out}");
    }
    out
}

fn tnftp_matrix(backend: Backend) {
    require_on_path("tnftp");
    let server = server(backend, false);
    let work = Work::new();
    let mut m = Matrix::new(&TNFTP, backend, &server);
    let data = payload(5);
    let local = work.write("data.bin", &data);
    let x = work.write("x.csv", X_CSV);
    let y = work.write("y.csv", Y_CSV);
    let tnftp = |body: &str| tnftp(&server, &work, body);
    let cd = "cd tnftp/sub\n";

    m.step(&[Op::Login], "tnftp open, user, pwd", || {
        let out = tnftp("pwd\n");
        assert!(out.contains("230 ") && out.contains("257 \"/\""), "{out}");
    });
    m.step(&[Op::Mkdir], "tnftp mkdir", || {
        tnftp("mkdir tnftp\nmkdir tnftp/sub\n");
        server.assert_dir("tnftp/sub");
    });
    m.step(&[Op::Upload], "tnftp put", || {
        let out = tnftp(&format!(
            "{cd}put {local} data.bin\nput {x} x.csv\nput {y} y.csv\n"
        ));
        assert!(out.contains("---> PORT "), "{out}");
        server.assert_file("tnftp/sub/data.bin", &data);
        server.assert_file("tnftp/sub/x.csv", X_CSV);
        server.assert_file("tnftp/sub/y.csv", Y_CSV);
    });
    m.step(&[Op::List], "tnftp dir, nlist", || {
        let (long, short) = (work.path("dir.txt"), work.path("nlist.txt"));
        let out = tnftp(&format!(
            "{cd}dir . {}\nnlist . {}\n",
            path_str(&long),
            path_str(&short)
        ));
        assert!(
            out.contains("---> LIST") && out.contains("---> NLST"),
            "{out}"
        );
        let long = text(&fs::read(long).expect("dir output"));
        assert!(long_line(&long, "data.bin", data.len()), "{long}");
        let short = text(&fs::read(short).expect("nlist output"));
        assert_eq!(names(&short), ["data.bin", "x.csv", "y.csv"], "NLST");
    });
    m.step(&[Op::ListLa], "tnftp ls -la", || {
        let file = work.path("la.txt");
        let out = tnftp(&format!("{cd}ls -la {}\n", path_str(&file)));
        assert!(out.contains("---> LIST -la"), "{out}");
        let listing = text(&fs::read(file).expect("ls output"));
        assert!(
            long_line(&listing, "data.bin", data.len())
                && long_line(&listing, "x.csv", X_CSV.len()),
            "{listing}"
        );
    });
    m.step(&[Op::NlstGlob], "tnftp nlist *.csv, mget *.csv", || {
        let file = work.path("glob.txt");
        let into = work.path("mget");
        fs::create_dir(&into).expect("mkdir");
        let out = tnftp(&format!(
            "{cd}nlist *.csv {}\nlcd {}\nmget *.csv\n",
            path_str(&file),
            path_str(&into)
        ));
        assert!(out.contains("---> NLST *.csv"), "{out}");
        let listing = text(&fs::read(file).expect("nlist output"));
        assert_eq!(names(&listing), ["x.csv", "y.csv"], "NLST *.csv");
        let mut got = BTreeSet::new();
        local_files(&into, "", &mut got);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            ["x.csv", "y.csv"],
            "mget *.csv"
        );
        assert_same("mget x.csv", &work.read("mget/x.csv"), X_CSV);
    });
    m.step(&[Op::Download], "tnftp get", || {
        let down = path_str(&work.path("down.bin"));
        tnftp(&format!("{cd}get data.bin {down}\n"));
        assert_same("download", &work.read("down.bin"), &data);
    });
    m.step(&[Op::ResumeDownload], "tnftp reget", || {
        let partial = work.write("partial.bin", &data[..CUT]);
        let out = tnftp(&format!("{cd}reget data.bin {partial}\n"));
        assert!(out.contains(&format!("---> REST {CUT}")), "{out}");
        assert_same("resumed download", &work.read("partial.bin"), &data);
    });
    m.step(&[Op::ResumeUpload], "tnftp restart n, put", || {
        let half = data.len() / 2;
        let first = work.write("half.bin", &data[..half]);
        tnftp(&format!("{cd}put {first} resumed.bin\n"));
        server.assert_file("tnftp/sub/resumed.bin", &data[..half]);
        let out = tnftp(&format!("{cd}restart {half}\nput {local} resumed.bin\n"));
        assert!(out.contains(&format!("---> REST {half}")), "{out}");
        server.assert_file("tnftp/sub/resumed.bin", &data);
    });
    m.step(&[Op::Rename], "tnftp rename", || {
        tnftp(&format!("{cd}rename data.bin renamed.bin\n"));
        server.assert_absent("tnftp/sub/data.bin");
        server.assert_file("tnftp/sub/renamed.bin", &data);
    });
    m.step(&[Op::Delete], "tnftp delete", || {
        tnftp(&format!(
            "{cd}delete renamed.bin\ndelete resumed.bin\ndelete x.csv\ndelete y.csv\n"
        ));
        for name in ["renamed.bin", "resumed.bin", "x.csv", "y.csv"] {
            server.assert_absent(&format!("tnftp/sub/{name}"));
        }
    });
    m.step(&[Op::Rmdir], "tnftp rmdir", || {
        tnftp("rmdir tnftp/sub\nrmdir tnftp\n");
        server.assert_absent("tnftp");
    });
    m.finish(&[]);
}

// ---------------------------------------------------------------------------
// Python ftplib
// ---------------------------------------------------------------------------

/// argv: port, 1 for FTP_TLS with prot_p(), the step, the local folder. Each
/// step is one session; the local folder holds data.bin, x.csv, y.csv,
/// half.bin (data.bin's first half) and partial.bin (its first CUT bytes).
const FTPLIB_STEPS: &str = r#"
import ftplib, os, ssl, sys

port, tls, step, work = int(sys.argv[1]), sys.argv[2] == '1', sys.argv[3], sys.argv[4]
D = '/py/a/b'

def local(name):
    return os.path.join(work, name)

def check(cond, what):
    if not cond:
        raise AssertionError(what)

if tls:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=ctx)
else:
    ftp = ftplib.FTP()
ftp.connect('127.0.0.1', port, timeout=20)
welcome = ftp.login(sys.argv[5], sys.argv[6])
if tls:
    ftp.prot_p()
    check(isinstance(ftp.sock, ssl.SSLSocket), 'control connection not TLS')

def login():
    check(welcome.startswith('230'), welcome)
    check(ftp.pwd() == '/', ftp.pwd())

def mkdir():
    for d in ['py', 'py/a', 'py/a/b']:
        ftp.mkd(d)

def upload():
    for name in ['data.bin', 'x.csv', 'y.csv']:
        with open(local(name), 'rb') as f:
            ftp.storbinary('STOR %s/%s' % (D, name), f)

def listing():
    ftp.cwd(D)
    facts = dict(ftp.mlsd())
    size = os.path.getsize(local('data.bin'))
    check(facts['data.bin']['type'] == 'file' and int(facts['data.bin']['size']) == size, facts)
    check(sorted(facts) == ['data.bin', 'x.csv', 'y.csv'], facts)
    check(sorted(ftp.nlst()) == ['data.bin', 'x.csv', 'y.csv'], ftp.nlst())
    lines = []
    ftp.retrlines('LIST', lines.append)
    check(any(l.startswith('-') and l.endswith(' data.bin') and str(size) in l.split() for l in lines), lines)

def list_la():
    ftp.cwd(D)
    lines = []
    ftp.retrlines('LIST -la', lines.append)
    for name in ['data.bin', 'x.csv', 'y.csv']:
        check(any(l.startswith('-') and l.endswith(' ' + name) for l in lines), lines)

def nlst_glob():
    ftp.cwd(D)
    check(sorted(ftp.nlst('*.csv')) == ['x.csv', 'y.csv'], ftp.nlst('*.csv'))

def download():
    with open(local('down.bin'), 'wb') as f:
        ftp.retrbinary('RETR %s/data.bin' % D, f.write)

def resume_download():
    offset = os.path.getsize(local('partial.bin'))
    with open(local('partial.bin'), 'ab') as f:
        ftp.retrbinary('RETR %s/data.bin' % D, f.write, rest=offset)

def upload_halves():
    for name in ['resumed.bin', 'appended.bin']:
        with open(local('half.bin'), 'rb') as f:
            ftp.storbinary('STOR %s/%s' % (D, name), f)

def resume_upload():
    half = os.path.getsize(local('half.bin'))
    with open(local('data.bin'), 'rb') as f:
        f.seek(half)
        ftp.storbinary('STOR %s/resumed.bin' % D, f, rest=half)
    with open(local('data.bin'), 'rb') as f:
        f.seek(half)
        ftp.storbinary('APPE %s/appended.bin' % D, f)

def temp_upload():
    with open(local('data.bin'), 'rb') as f:
        ftp.storbinary('STOR %s/temp.bin.filepart' % D, f)
    ftp.rename('%s/temp.bin.filepart' % D, '%s/temp.bin' % D)

def rename():
    ftp.rename('%s/data.bin' % D, '%s/renamed.bin' % D)

def delete():
    for name in ['renamed.bin', 'resumed.bin', 'appended.bin', 'temp.bin', 'x.csv', 'y.csv']:
        ftp.delete('%s/%s' % (D, name))
    check(ftp.nlst(D) == [], ftp.nlst(D))

def rmdir():
    for d in ['py/a/b', 'py/a', 'py']:
        ftp.rmd(d)
    check('py' not in ftp.nlst(), ftp.nlst())

globals()[step]()
ftp.quit()
print('OK')
"#;

fn ftplib_matrix(row: &'static Row, tls: bool, backend: Backend) {
    require("python3");
    let server = server(backend, tls);
    let work = Work::new();
    let mut m = Matrix::new(row, backend, &server);
    let data = payload(6);
    let half = data.len() / 2;
    work.write("data.bin", &data);
    work.write("x.csv", X_CSV);
    work.write("y.csv", Y_CSV);
    work.write("half.bin", &data[..half]);
    work.write("partial.bin", &data[..CUT]);
    let script = work.write("steps.py", FTPLIB_STEPS.as_bytes());
    let folder = path_str(&work.path(""));
    let py = |step: &str| {
        let mut cmd = Command::new("python3");
        cmd.env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(&script)
            .arg(server.port.to_string())
            .arg(if tls { "1" } else { "0" })
            .arg(step)
            .arg(&folder)
            .args([USER, PASSWORD]);
        let r = run(cmd, CLIENT_LIMIT);
        assert!(
            r.status.success() && r.stdout_text().contains("OK"),
            "ftplib step {step} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            r.status,
            r.stdout_text(),
            r.stderr
        );
    };
    let dir = "py/a/b";

    m.step(&[Op::Login], "ftplib login, pwd", || py("login"));
    m.step(&[Op::Mkdir], "ftplib mkd py, py/a, py/a/b", || {
        py("mkdir");
        server.assert_dir(dir);
    });
    m.step(&[Op::Upload], "ftplib storbinary", || {
        py("upload");
        server.assert_file("py/a/b/data.bin", &data);
        server.assert_file("py/a/b/x.csv", X_CSV);
        server.assert_file("py/a/b/y.csv", Y_CSV);
    });
    m.step(&[Op::List], "ftplib mlsd, nlst, LIST", || py("listing"));
    m.step(&[Op::ListLa], "ftplib retrlines('LIST -la')", || {
        py("list_la")
    });
    m.step(&[Op::NlstGlob], "ftplib nlst('*.csv')", || py("nlst_glob"));
    m.step(&[Op::Download], "ftplib retrbinary", || {
        py("download");
        assert_same("download", &work.read("down.bin"), &data);
    });
    m.step(&[Op::ResumeDownload], "ftplib retrbinary(rest=)", || {
        py("resume_download");
        assert_same("resumed download", &work.read("partial.bin"), &data);
    });
    m.step(
        &[Op::ResumeUpload],
        "ftplib storbinary of a half, then REST + STOR and APPE of the rest",
        || {
            py("upload_halves");
            server.assert_file("py/a/b/resumed.bin", &data[..half]);
            server.assert_file("py/a/b/appended.bin", &data[..half]);
            py("resume_upload");
            server.assert_file("py/a/b/resumed.bin", &data);
            server.assert_file("py/a/b/appended.bin", &data);
        },
    );
    m.step(
        &[Op::TempUpload],
        "ftplib STOR temp.bin.filepart, then rename",
        || {
            py("temp_upload");
            server.assert_file("py/a/b/temp.bin", &data);
            server.assert_absent("py/a/b/temp.bin.filepart");
        },
    );
    m.step(&[Op::Rename], "ftplib rename", || {
        py("rename");
        server.assert_absent("py/a/b/data.bin");
        server.assert_file("py/a/b/renamed.bin", &data);
    });
    m.step(&[Op::Delete], "ftplib delete", || {
        py("delete");
        for name in [
            "renamed.bin",
            "resumed.bin",
            "appended.bin",
            "temp.bin",
            "x.csv",
        ] {
            server.assert_absent(&format!("py/a/b/{name}"));
        }
    });
    m.step(&[Op::Rmdir], "ftplib rmd", || {
        py("rmdir");
        server.assert_absent("py");
    });
    m.finish(&[]);
}

// ---------------------------------------------------------------------------
// suppaftp, the Rust client the integration tests use
// ---------------------------------------------------------------------------

/// Runs one client call with a time limit; a refusal panics with the reply.
fn call<T, E: std::fmt::Display>(what: &str, future: impl Future<Output = Result<T, E>>) -> T {
    block_on(async {
        match tokio::time::timeout(Duration::from_secs(30), future).await {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => panic!("{what}: {e}"),
            Err(_) => panic!("{what}: no answer within 30 s"),
        }
    })
}

fn suppaftp_matrix(backend: Backend) {
    use tokio::io::AsyncReadExt;

    let server = server(backend, false);
    let mut m = Matrix::new(&SUPPAFTP, backend, &server);
    let data = payload(7);
    let half = data.len() / 2;
    let dir = "/rs/a/b";
    let addr = server.addr();
    let mut ftp = m.step(&[Op::Login], "connect, USER, PASS, TYPE I", || {
        block_on(common::client(addr))
    });

    let get = |ftp: &mut suppaftp::tokio::AsyncFtpStream, path: &str| -> Vec<u8> {
        block_on(async {
            let mut stream = ftp
                .retr_as_stream(path)
                .await
                .unwrap_or_else(|e| panic!("RETR {path}: {e}"));
            let mut got = Vec::new();
            tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got))
                .await
                .expect("download in time")
                .expect("read data");
            stream
                .finish()
                .await
                .unwrap_or_else(|e| panic!("RETR {path} end: {e}"));
            got
        })
    };

    m.step(&[Op::Mkdir], "mkdir rs, rs/a, rs/a/b", || {
        for d in ["rs", "rs/a", "rs/a/b"] {
            call(&format!("MKD {d}"), ftp.mkdir(d));
        }
        server.assert_dir("rs/a/b");
    });
    m.step(&[Op::Upload], "put_file", || {
        for (name, body) in [("data.bin", &data[..]), ("x.csv", X_CSV), ("y.csv", Y_CSV)] {
            let path = format!("{dir}/{name}");
            call(&format!("STOR {path}"), ftp.put_file(&path, &mut &body[..]));
            server.assert_file(&path, body);
        }
    });
    m.step(&[Op::List], "list, nlst, mlsd", || {
        let listing = call("LIST", ftp.list(Some(dir))).join("\n");
        assert!(long_line(&listing, "data.bin", data.len()), "{listing}");
        let nlst = call("NLST", ftp.nlst(Some(dir))).join("\n");
        // NLST of a directory answers with the directory, as the client wrote it.
        let expected: Vec<String> = ["data.bin", "x.csv", "y.csv"]
            .iter()
            .map(|n| format!("{dir}/{n}"))
            .collect();
        assert_eq!(names(&nlst), expected, "NLST");
        let mlsd = call("MLSD", ftp.mlsd(Some(dir)));
        assert!(
            mlsd.iter().any(|l| l.contains("type=file;")
                && l.contains(&format!("size={};", data.len()))
                && l.ends_with(" data.bin")),
            "{mlsd:?}"
        );
    });
    m.step(&[Op::ListLa], "cwd, list(Some(\"-la\"))", || {
        call("CWD", ftp.cwd(dir));
        let listing = call("LIST -la", ftp.list(Some("-la"))).join("\n");
        assert!(
            long_line(&listing, "data.bin", data.len())
                && long_line(&listing, "x.csv", X_CSV.len()),
            "{listing}"
        );
    });
    m.step(&[Op::NlstGlob], "nlst(Some(\"*.csv\"))", || {
        let nlst = call("NLST *.csv", ftp.nlst(Some("*.csv"))).join("\n");
        assert_eq!(names(&nlst), ["x.csv", "y.csv"], "NLST *.csv");
        call("CWD /", ftp.cwd("/"));
    });
    m.step(&[Op::Download], "retr_as_stream", || {
        assert_same(
            "download",
            &get(&mut ftp, &format!("{dir}/data.bin")),
            &data,
        );
    });
    m.step(
        &[Op::ResumeDownload],
        "resume_transfer (REST), RETR",
        || {
            let mut partial = data[..CUT].to_vec();
            call("REST", ftp.resume_transfer(CUT));
            partial.extend(get(&mut ftp, &format!("{dir}/data.bin")));
            assert_same("resumed download", &partial, &data);
        },
    );
    m.step(
        &[Op::ResumeUpload],
        "put_file of a half, then resume_transfer + put_file (REST + STOR) and append_file (APPE)",
        || {
            let resumed = format!("{dir}/resumed.bin");
            let appended = format!("{dir}/appended.bin");
            for path in [&resumed, &appended] {
                call("STOR", ftp.put_file(path, &mut &data[..half]));
                server.assert_file(path, &data[..half]);
            }
            call("REST", ftp.resume_transfer(half));
            call("REST + STOR", ftp.put_file(&resumed, &mut &data[half..]));
            server.assert_file(&resumed, &data);
            call("APPE", ftp.append_file(&appended, &mut &data[half..]));
            server.assert_file(&appended, &data);
        },
    );
    m.step(&[Op::TempUpload], "put_file .filepart, rename", || {
        let temp = format!("{dir}/temp.bin.filepart");
        call("STOR", ftp.put_file(&temp, &mut &data[..]));
        call("RNFR/RNTO", ftp.rename(&temp, &format!("{dir}/temp.bin")));
        server.assert_absent(&temp);
        server.assert_file(&format!("{dir}/temp.bin"), &data);
    });
    m.step(&[Op::Rename], "rename", || {
        call(
            "RNFR/RNTO",
            ftp.rename(&format!("{dir}/data.bin"), &format!("{dir}/renamed.bin")),
        );
        server.assert_absent(&format!("{dir}/data.bin"));
        server.assert_file(&format!("{dir}/renamed.bin"), &data);
    });
    m.step(&[Op::Delete], "rm", || {
        for name in [
            "renamed.bin",
            "resumed.bin",
            "appended.bin",
            "temp.bin",
            "x.csv",
            "y.csv",
        ] {
            let path = format!("{dir}/{name}");
            call(&format!("DELE {path}"), ftp.rm(&path));
            server.assert_absent(&path);
        }
    });
    m.step(&[Op::Rmdir], "rmdir", || {
        for d in ["rs/a/b", "rs/a", "rs"] {
            call(&format!("RMD {d}"), ftp.rmdir(d));
            server.assert_absent(d);
        }
        call("QUIT", ftp.quit());
    });
    m.finish(&[]);
}

// Every row above, on the local folder and on S3.
on_folder_and_s3! {
    curl_epsv: curl_matrix(&EPSV),
    curl_pasv: curl_matrix(&PASV),
    curl_active: curl_matrix(&ACTIVE),
    curl_ftps: curl_matrix(&FTPS),
    lftp: lftp_matrix(&LFTP, false),
    lftp_ftps: lftp_matrix(&LFTP_FTPS, true),
    ncftp: ncftp_matrix(),
    busybox: busybox_matrix(),
    tnftp_active: tnftp_matrix(),
    ftplib: ftplib_matrix(&FTPLIB, false),
    ftplib_tls: ftplib_matrix(&FTPLIB_TLS, true),
    suppaftp: suppaftp_matrix(),
}
