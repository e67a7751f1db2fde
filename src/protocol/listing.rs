//! Listing lines: `ls -l` style for LIST, names for NLST, facts for MLSD/MLST
//! (RFC 3659), and the YYYYMMDDHHMMSS time format of MDTM/MFMT.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

/// What a listing line says about one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts<'a> {
    pub name: &'a str,
    pub is_dir: bool,
    pub size: u64,
    pub modified: Option<SystemTime>,
    pub created: Option<SystemTime>,
    pub writable: bool,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// How far back `ls` shows the time of day instead of the year.
const RECENT_DAYS: i64 = 180;

/// A `SystemTime` in UTC; a time chrono cannot represent becomes the epoch
/// rather than a panic (times may come from object metadata).
fn to_utc(t: SystemTime) -> DateTime<Utc> {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).ok(), d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).ok().map(|s| -s);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs.and_then(|s| s.checked_sub(1)), 1_000_000_000 - n),
            }
        }
    };
    secs.and_then(|s| DateTime::from_timestamp(s, nanos))
        .unwrap_or_default()
}

/// One `ls -l` line, no CRLF, e.g.
/// `drwxr-xr-x    1 ftp      ftp             0 Jan 02 15:04 name`.
/// The time of day is shown for entries modified in the last 180 days (and at
/// most a day ahead of `now`, for clock skew), the year otherwise.
pub fn list_line(f: &FileFacts, now: SystemTime) -> String {
    let perms = match (f.is_dir, f.writable) {
        (true, true) => "drwxr-xr-x",
        (true, false) => "dr-xr-xr-x",
        (false, true) => "-rw-r--r--",
        (false, false) => "-r--r--r--",
    };
    let t = to_utc(f.modified.unwrap_or(UNIX_EPOCH));
    let now = to_utc(now);
    let month = MONTHS[t.month0() as usize];
    let day = t.day();
    let recent = t > now - TimeDelta::days(RECENT_DAYS) && t <= now + TimeDelta::days(1);
    let mut line = format!("{perms} {:>4} {:<8} {:<8} {:>8} ", 1, "ftp", "ftp", f.size);
    if recent {
        let _ = write!(line, "{month} {day:02} {:02}:{:02}", t.hour(), t.minute());
    } else {
        let _ = write!(line, "{month} {day:02}  {:04}", t.year());
    }
    line.push(' ');
    line.push_str(f.name);
    line
}

/// `YYYYMMDDHHMMSS` in UTC (RFC 3659 time-val without a fraction), as MDTM
/// answers and MLSx facts carry. Years beyond 9999 are clamped.
pub fn format_time(t: SystemTime) -> String {
    let t = to_utc(t);
    if t.year() > 9999 {
        return "99991231235959".to_string();
    }
    if t.year() < 0 {
        return "00000101000000".to_string();
    }
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses the arguments of `SITE UTIME`, in either form clients send:
/// `YYYYMMDDhhmm[ss] PATH` (ProFTPD's) or `PATH ATIME MTIME CTIME UTC`
/// (Pure-FTPd's, times as `YYYYMMDDhhmmss`). Returns the modification time
/// and the path, which may contain spaces.
pub fn parse_utime(args: &str) -> Option<(SystemTime, String)> {
    let args = args.trim();
    // PATH ATIME MTIME CTIME UTC: peel the words off the end; the path is
    // what is left, spaces kept.
    let pure_ftpd = || {
        let (rest, utc) = args.rsplit_once(' ')?;
        if !utc.eq_ignore_ascii_case("UTC") {
            return None;
        }
        let (rest, ctime) = rest.trim_end().rsplit_once(' ')?;
        let (rest, mtime) = rest.trim_end().rsplit_once(' ')?;
        let (path, atime) = rest.trim_end().rsplit_once(' ')?;
        let path = path.trim_end();
        let valid = [atime, ctime].iter().all(|t| parse_time(t).is_some());
        (valid && !path.is_empty()).then_some((parse_time(mtime)?, path.to_string()))
    };
    if let Some(found) = pure_ftpd() {
        return Some(found);
    }
    let (time, path) = args.split_once(' ')?;
    let path = path.trim_start();
    let time = match time.len() {
        12 => parse_time(&format!("{time}00"))?,
        14 => parse_time(time)?,
        _ => return None,
    };
    (!path.is_empty()).then(|| (time, path.to_string()))
}

/// Parses `YYYYMMDDHHMMSS` or `YYYYMMDDHHMMSS.fff...` (UTC) as sent with
/// MFMT/MFCT/MFF. The fraction is kept to the millisecond. A seconds value of
/// 60 (a leap second, allowed by RFC 3659) is read as the next second.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let (main, frac) = match s.split_once('.') {
        Some((main, frac)) => (main, Some(frac)),
        None => (s, None),
    };
    let all_digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if main.len() != 14 || !all_digits(main) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| main[range].parse::<u32>().ok();
    let year = i32::try_from(num(0..4)?).ok()?;
    let (month, day) = (num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(8..10)?, num(10..12)?, num(12..14)?);
    let millis = match frac {
        None => 0,
        Some(f) if all_digits(f) => f
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |acc, b| acc * 10 + u32::from(b - b'0')),
        Some(_) => return None,
    };
    if second > 60 {
        return None;
    }
    let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_milli_opt(
        hour,
        minute,
        second.min(59),
        millis,
    )?;
    let mut t = naive.and_utc();
    if second == 60 {
        t += TimeDelta::seconds(1);
    }
    Some(SystemTime::from(t))
}

/// Which facts MLSD/MLST lines carry (RFC 3659 7.8, set with `OPTS MLST`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlstFacts {
    pub kind: bool,
    pub size: bool,
    pub modify: bool,
    pub create: bool,
    pub perm: bool,
}

impl Default for MlstFacts {
    fn default() -> Self {
        MlstFacts {
            kind: true,
            size: true,
            modify: true,
            create: true,
            perm: true,
        }
    }
}

impl MlstFacts {
    const NONE: MlstFacts = MlstFacts {
        kind: false,
        size: false,
        modify: false,
        create: false,
        perm: false,
    };

    fn each(&self) -> [(&'static str, bool); 5] {
        [
            ("type", self.kind),
            ("size", self.size),
            ("modify", self.modify),
            ("create", self.create),
            ("perm", self.perm),
        ]
    }

    /// The FEAT line: every supported fact, a `*` after the enabled ones,
    /// e.g. `MLST type*;size*;modify*;create*;perm*;`.
    pub fn feat_line(&self) -> String {
        let mut line = String::from("MLST ");
        for (name, on) in self.each() {
            line.push_str(name);
            if on {
                line.push('*');
            }
            line.push(';');
        }
        line
    }

    /// The facts asked for by `OPTS MLST type;size;`: case-insensitive,
    /// unknown names ignored, an empty value turns every fact off.
    pub fn from_opts(value: &str) -> MlstFacts {
        let mut facts = MlstFacts::NONE;
        for name in value.split(';').map(str::trim) {
            match name.to_ascii_lowercase().as_str() {
                "type" => facts.kind = true,
                "size" => facts.size = true,
                "modify" => facts.modify = true,
                "create" => facts.create = true,
                "perm" => facts.perm = true,
                _ => {}
            }
        }
        facts
    }

    /// The text of the 200 reply to `OPTS MLST`: `MLST OPTS type;size;`, or
    /// `MLST OPTS` when no fact is enabled.
    pub fn opts_reply_text(&self) -> String {
        let mut text = String::from("MLST OPTS");
        let mut first = true;
        for (name, on) in self.each() {
            if on {
                if first {
                    text.push(' ');
                    first = false;
                }
                text.push_str(name);
                text.push(';');
            }
        }
        text
    }
}

/// One MLSD line or the entry line of MLST (without its leading space), e.g.
/// `type=file;size=12;modify=20240101120000;perm=adfrw; name`. `name` is
/// separate from `f.name` because MLST gives the full path, MLSD the bare name.
pub fn mlsx_line(f: &FileFacts, facts: &MlstFacts, name: &str) -> String {
    let mut line = String::new();
    if facts.kind {
        line.push_str(if f.is_dir { "type=dir;" } else { "type=file;" });
    }
    if facts.size && !f.is_dir {
        let _ = write!(line, "size={};", f.size);
    }
    // A directory whose time the store does not keep (an S3 prefix with
    // no marker, or one listed among its siblings, where a HEAD per
    // directory would cost a request each) gets the stand-in LIST shows
    // too: the Unix epoch, the same at every listing, so clients that sync
    // by it see no change.
    let modified = f.modified.or(f.is_dir.then_some(UNIX_EPOCH));
    if let (true, Some(t)) = (facts.modify, modified) {
        let _ = write!(line, "modify={};", format_time(t));
    }
    if let (true, Some(t)) = (facts.create, f.created) {
        let _ = write!(line, "create={};", format_time(t));
    }
    if facts.perm {
        let perm = match (f.is_dir, f.writable) {
            (true, true) => "cdeflmp",
            (true, false) => "el",
            (false, true) => "adfrw",
            (false, false) => "r",
        };
        let _ = write!(line, "perm={perm};");
    }
    line.push(' ');
    line.push_str(name);
    line
}

/// True if `s` contains a glob metacharacter (`*`, `?` or `[`).
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Shell-style match of a bare name; an invalid pattern (such as an
/// unclosed `[`) matches only itself, literally.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    match glob::Pattern::new(pattern) {
        Ok(p) => p.matches(name),
        Err(_) => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: &str) -> SystemTime {
        parse_time(s).unwrap()
    }

    fn file(name: &str, modified: Option<SystemTime>) -> FileFacts<'_> {
        FileFacts {
            name,
            is_dir: false,
            size: 12,
            modified,
            created: None,
            writable: true,
        }
    }

    #[test]
    fn list_line_recent_directory() {
        let now = at("20240110000000");
        let f = FileFacts {
            name: "name",
            is_dir: true,
            size: 0,
            modified: Some(at("20240102150405")),
            created: None,
            writable: true,
        };
        assert_eq!(
            list_line(&f, now),
            "drwxr-xr-x    1 ftp      ftp             0 Jan 02 15:04 name"
        );
    }

    #[test]
    fn list_line_old_file_shows_year() {
        let now = at("20240110000000");
        let f = file("a.txt", Some(at("20200315120000")));
        assert_eq!(
            list_line(&f, now),
            "-rw-r--r--    1 ftp      ftp            12 Mar 15  2020 a.txt"
        );
    }

    #[test]
    fn list_line_far_future_shows_year() {
        let now = at("20240110000000");
        let f = file("x", Some(at("20240112000000")));
        assert!(list_line(&f, now).ends_with(" Jan 12  2024 x"));
        let f = file("x", Some(at("20240110230000")));
        assert!(list_line(&f, now).ends_with(" Jan 10 23:00 x"));
    }

    #[test]
    fn list_line_180_day_boundary() {
        let now = at("20240701000000");
        let day = Duration::from_secs(86_400);
        let inside = file("x", Some(now - day * 179));
        let outside = file("x", Some(now - day * 181));
        assert!(list_line(&inside, now).ends_with(" 00:00 x"));
        assert!(list_line(&outside, now).ends_with("  2024 x"));
    }

    #[test]
    fn list_line_read_only_has_no_w_bits() {
        let now = at("20240110000000");
        let mut f = file("r", None);
        f.writable = false;
        assert!(list_line(&f, now).starts_with("-r--r--r-- "));
        f.is_dir = true;
        assert!(list_line(&f, now).starts_with("dr-xr-xr-x "));
    }

    #[test]
    fn list_line_missing_time_is_epoch() {
        let now = at("20240110000000");
        assert!(list_line(&file("n", None), now).ends_with(" Jan 01  1970 n"));
    }

    #[test]
    fn list_line_keeps_spaces_in_names_and_large_sizes() {
        let now = at("20240110000000");
        let mut f = file(" two  spaces ", Some(at("20240105083000")));
        f.size = 5_000_000_000_000;
        assert_eq!(
            list_line(&f, now),
            "-rw-r--r--    1 ftp      ftp      5000000000000 Jan 05 08:30  two  spaces "
        );
    }

    #[test]
    fn format_time_is_utc_without_fraction() {
        let t = UNIX_EPOCH + Duration::from_millis(1_704_110_400_123);
        assert_eq!(format_time(t), "20240101120000");
    }

    #[test]
    fn format_time_before_epoch() {
        let t = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(format_time(t), "19691231235959");
    }

    #[test]
    fn parse_time_round_trips() {
        let t = at("20240229235958");
        assert_eq!(format_time(t), "20240229235958");
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_709_251_198));
    }

    #[test]
    fn parse_time_fraction_to_milliseconds() {
        let base = at("20240101000000");
        assert_eq!(at("20240101000000.5"), base + Duration::from_millis(500));
        assert_eq!(at("20240101000000.123"), base + Duration::from_millis(123));
        assert_eq!(
            at("20240101000000.123456"),
            base + Duration::from_millis(123)
        );
    }

    #[test]
    fn parse_time_rejects_invalid_dates() {
        assert_eq!(parse_time("20241301000000"), None);
        assert_eq!(parse_time("20240230000000"), None);
        assert_eq!(parse_time("20230229000000"), None);
        assert_eq!(parse_time("20240101240000"), None);
        assert_eq!(parse_time("20240101006000"), None);
        assert_eq!(parse_time("20240101000061"), None);
        assert_eq!(parse_time("20240001000000"), None);
    }

    #[test]
    fn parse_time_rejects_bad_syntax() {
        assert_eq!(parse_time("2024010100000"), None);
        assert_eq!(parse_time("202401010000000"), None);
        assert_eq!(parse_time("2024010100000a"), None);
        assert_eq!(parse_time("+2024010100000"), None);
        assert_eq!(parse_time("20240101000000."), None);
        assert_eq!(parse_time("20240101000000.1a"), None);
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("2024-01-01 00:00"), None);
    }

    #[test]
    fn parse_time_leap_second() {
        assert_eq!(at("20161231235960"), at("20170101000000"));
    }

    #[test]
    fn mlst_feat_line_marks_enabled_facts() {
        assert_eq!(
            MlstFacts::default().feat_line(),
            "MLST type*;size*;modify*;create*;perm*;"
        );
        let some = MlstFacts::from_opts("type;perm;");
        assert_eq!(some.feat_line(), "MLST type*;size;modify;create;perm*;");
    }

    #[test]
    fn mlst_opts_is_case_insensitive_and_ignores_unknown() {
        let f = MlstFacts::from_opts("Type;SIZE;unix.mode;");
        assert_eq!(
            f,
            MlstFacts {
                kind: true,
                size: true,
                modify: false,
                create: false,
                perm: false
            }
        );
        assert_eq!(f.opts_reply_text(), "MLST OPTS type;size;");
    }

    #[test]
    fn mlst_opts_empty_disables_all() {
        let f = MlstFacts::from_opts("");
        assert_eq!(f, MlstFacts::NONE);
        assert_eq!(f.opts_reply_text(), "MLST OPTS");
    }

    #[test]
    fn mlsx_file_line() {
        let f = file("ignored", Some(at("20240101120000")));
        assert_eq!(
            mlsx_line(&f, &MlstFacts::default(), "a b.txt"),
            "type=file;size=12;modify=20240101120000;perm=adfrw; a b.txt"
        );
    }

    #[test]
    fn mlsx_dir_line_has_no_size() {
        let f = FileFacts {
            name: "d",
            is_dir: true,
            size: 0,
            modified: Some(at("20240101120000")),
            created: Some(at("20230101000000")),
            writable: true,
        };
        assert_eq!(
            mlsx_line(&f, &MlstFacts::default(), "/full/d"),
            "type=dir;modify=20240101120000;create=20230101000000;perm=cdeflmp; /full/d"
        );
    }

    #[test]
    fn mlsx_read_only_perms() {
        let mut f = file("r", None);
        f.writable = false;
        assert_eq!(
            mlsx_line(&f, &MlstFacts::default(), "r"),
            "type=file;size=12;perm=r; r"
        );
        // A directory with no time of its own gets the stand-in; a file
        // with none gets no modify fact.
        f.is_dir = true;
        assert_eq!(
            mlsx_line(&f, &MlstFacts::default(), "r"),
            "type=dir;modify=19700101000000;perm=el; r"
        );
    }

    #[test]
    fn mlsx_respects_selected_facts() {
        let f = file("x", Some(at("20240101120000")));
        assert_eq!(
            mlsx_line(&f, &MlstFacts::from_opts("size;"), "x"),
            "size=12; x"
        );
        assert_eq!(mlsx_line(&f, &MlstFacts::NONE, "x"), " x");
    }

    #[test]
    fn glob_detection() {
        assert!(is_glob("*.txt"));
        assert!(is_glob("a?c"));
        assert!(is_glob("[ab]"));
        assert!(!is_glob("plain name.txt"));
    }

    #[test]
    fn glob_matching() {
        assert!(glob_matches("*.txt", "a.txt"));
        assert!(!glob_matches("*.txt", "a.txt.bak"));
        assert!(glob_matches("a?c", "abc"));
        assert!(glob_matches("[ab]1", "b1"));
        assert!(!glob_matches("[ab]1", "c1"));
    }

    #[test]
    fn invalid_glob_matches_literally() {
        assert!(glob_matches("[oops", "[oops"));
        assert!(!glob_matches("[oops", "o"));
    }

    #[test]
    fn site_utime_takes_both_client_forms() {
        let t = |s: &str| parse_time(s).unwrap();
        assert_eq!(
            parse_utime("20200102030405 a file.txt"),
            Some((t("20200102030405"), "a file.txt".into()))
        );
        assert_eq!(
            parse_utime("202001020304 f"),
            Some((t("20200102030400"), "f".into()))
        );
        assert_eq!(
            parse_utime("my file 20210101000000 20200102030405 20210101000000 UTC"),
            Some((t("20200102030405"), "my file".into()))
        );
        for bad in [
            "",
            "20200102030405",
            "2020 f",
            "20201302030405 f",
            "f 20200102030405",
            "f 2020 2020 2020 UTC",
        ] {
            assert_eq!(parse_utime(bad), None, "{bad:?}");
        }
    }
}
