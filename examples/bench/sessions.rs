//! W5 (concurrent sessions uploading) and idle sessions.

use super::*;

pub(crate) async fn w5(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Arc<Pattern>,
    sessions: usize,
    mib: u64,
    rounds: usize,
) -> Result<()> {
    let len = mib * MIB;
    let addr = server.addr;
    // The logins first, all at once: their argon2 verifications are CPU the
    // server spends per session, not per byte moved, so they are reported
    // apart from the uploads' CPU per GiB.
    let logins = async {
        let tasks: Vec<_> = (0..sessions)
            .map(|_| tokio::spawn(Ftp::login(addr)))
            .collect();
        let mut clients = Vec::with_capacity(sessions);
        for t in tasks {
            clients.push(t.await??);
        }
        Ok::<_, Error>(clients)
    };
    let (mut clients, login_took, login_usage) = measured(server, logins).await?;
    // `rounds` rounds on the same sessions; the median is reported (CPU per
    // GiB moves by 20-40% with contention on two shared cores).
    let (mut times, mut cpus, mut peak) = (Vec::new(), Vec::new(), login_usage.peak);
    for round in 0..rounds {
        let name = move |i: usize| format!("w5-{round}-{i:03}.bin");
        let run = async {
            let tasks: Vec<_> = std::mem::take(&mut clients)
                .into_iter()
                .enumerate()
                .map(|(i, mut ftp)| {
                    let pattern = pattern.clone();
                    tokio::spawn(async move {
                        let seed = 100 + i as u64;
                        ftp.stor(&name(i), pattern.chunks(seed, len, 256 * 1024))
                            .await?;
                        Ok::<_, Error>(ftp)
                    })
                })
                .collect();
            let mut back = Vec::with_capacity(sessions);
            for t in tasks {
                back.push(t.await??);
            }
            Ok(back)
        };
        let (back, took, usage) = measured(server, run).await?;
        clients = back;
        times.push(took);
        cpus.push(usage.cpu);
        peak = peak.max(usage.peak);
        verify(direct, pattern, "W5", sessions, len, 100, name).await?;
    }
    for mut ftp in clients {
        ftp.cmd("QUIT", 221).await?;
    }
    cpus.sort_by(f64::total_cmp);
    let usage = Usage {
        cpu: cpus[cpus.len() / 2],
        peak,
    };
    let took = median(times);
    let total = len * sessions as u64;
    let gib = total as f64 / (1024.0 * MIB as f64);
    let cpu = usage.cpu / gib;
    r.row(
        &format!("W5 {sessions} sessions x {mib} MiB"),
        format!(
            "{:.1} s, {:.0} MiB/s total",
            took.as_secs_f64(),
            mib_s(total, took)
        ),
        format!(
            "all {sessions} verified each round; server {:.0} MiB peak, {cpu:.2} CPU-s/GiB \
             (rounds {:.2}-{:.2}); before: {sessions} logins at once {:.2} s, {:.2} CPU-s \
             (one name and password: one verification at most, then the login cache; W5L times logins)",
            usage.peak,
            cpus[0] / gib,
            cpus[cpus.len() - 1] / gib,
            login_took.as_secs_f64(),
            login_usage.cpu
        ),
    );
    r.value("w5_login_seconds", login_took.as_secs_f64());
    r.value("w5_login_cpu_s", login_usage.cpu);
    r.target("w5_cpu", cpu <= 1.0, format!("W5 {cpu:.2} CPU-s/GiB > 1"));
    r.value("w5_seconds", took.as_secs_f64());
    r.value("w5_mib_s", mib_s(total, took));
    r.value("w5_peak_rss_mib", usage.peak);
    r.value("w5_cpu_s_per_gib", cpu);
    r.target(
        "w5_peak_rss",
        usage.peak <= 256.0,
        format!("W5 peak RSS {:.0} MiB > 256", usage.peak),
    );
    Ok(())
}

/// W5 as batch jobs run it: every upload is a new session (login, STOR,
/// QUIT), `sessions` at once, `rounds` times; CPU per GiB includes the
/// logins. The first round's logins start with the login cache cold (the
/// first check is shared by those that arrive meanwhile); later rounds
/// find it warm, as a cron job's next run would.
pub(crate) async fn w5_login_each(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Arc<Pattern>,
    sessions: usize,
    mib: u64,
    rounds: usize,
) -> Result<()> {
    let len = mib * MIB;
    let addr = server.addr;
    let (mut times, mut cpus, mut peak) = (Vec::new(), Vec::new(), 0.0f64);
    for round in 0..rounds {
        let name = move |i: usize| format!("w5l-{round}-{i:03}.bin");
        let run = async {
            let tasks: Vec<_> = (0..sessions)
                .map(|i| {
                    let pattern = pattern.clone();
                    tokio::spawn(async move {
                        let mut ftp = Ftp::login(addr).await?;
                        ftp.stor(&name(i), pattern.chunks(200 + i as u64, len, 256 * 1024))
                            .await?;
                        ftp.cmd("QUIT", 221).await?;
                        Ok::<_, Error>(())
                    })
                })
                .collect();
            for t in tasks {
                t.await??;
            }
            Ok(())
        };
        let ((), took, usage) = measured(server, run).await?;
        times.push(took);
        cpus.push(usage.cpu);
        peak = peak.max(usage.peak);
        verify(direct, pattern, "W5L", sessions, len, 200, name).await?;
    }
    let first_round_cpu = cpus[0];
    let mut sorted = cpus.clone();
    sorted.sort_by(f64::total_cmp);
    let took = median(times);
    let total = len * sessions as u64;
    let gib = total as f64 / (1024.0 * MIB as f64);
    let cpu = sorted[sorted.len() / 2] / gib;
    r.row(
        &format!("W5L {sessions} sessions x {mib} MiB, a login each"),
        format!(
            "{:.1} s, {:.0} MiB/s total",
            took.as_secs_f64(),
            mib_s(total, took)
        ),
        format!(
            "all verified; {cpu:.2} CPU-s/GiB with logins (median round; the first, \
             login cache cold: {:.2}); server {peak:.0} MiB peak",
            first_round_cpu / gib
        ),
    );
    r.value("w5l_mib_s", mib_s(total, took));
    r.value("w5l_cpu_s_per_gib", cpu);
    r.value("w5l_first_round_cpu_s_per_gib", first_round_cpu / gib);
    r.value("w5l_peak_rss_mib", peak);
    r.target(
        "w5l_cpu",
        cpu <= 1.3,
        format!("W5L {cpu:.2} CPU-s/GiB > 1.3"),
    );
    Ok(())
}

/// Checks, on the direct path, that object `name(i)` holds the pattern of
/// seed `first_seed + i` for each of `n` sessions.
async fn verify(
    direct: &Direct,
    pattern: &Pattern,
    workload: &str,
    n: usize,
    len: u64,
    first_seed: u64,
    name: impl Fn(usize) -> String,
) -> Result<()> {
    for i in 0..n {
        let (size, sha) = direct.digest(&name(i)).await?;
        if size != len || sha != pattern.sha256(first_seed + i as u64, len) {
            return Err(format!(
                "{workload}: object {}: {size} bytes, sha256 {sha} differs",
                name(i)
            )
            .into());
        }
    }
    Ok(())
}

pub(crate) async fn idle(r: &mut Report, server: &ServerProcess, sessions: usize) -> Result<()> {
    let before = server.rss_mib();
    server.reset_peak();
    let mut open = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        open.push(Ftp::login(server.addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss, peak) = (server.rss_mib(), server.peak_mib());
    for mut ftp in open {
        ftp.cmd("NOOP", 200).await?;
    }
    r.row(
        &format!("{sessions} idle logged-in sessions"),
        format!("{rss:.1} MiB resident"),
        format!("{before:.1} MiB before, {peak:.1} MiB peak"),
    );
    r.value("idle_sessions_rss_mib", rss);
    r.value("idle_sessions_peak_mib", peak);
    r.target(
        "idle_sessions_rss",
        peak <= 40.0,
        format!("{sessions} idle sessions peak {peak:.1} MiB > 40"),
    );
    Ok(())
}

/// The client address of session `i`: spread over 127.0.0.0/8 (never
/// 127.0.0.1, the other workloads'), so per-address limits and shared
/// passive ports see many clients.
fn client_ip(i: usize) -> std::net::IpAddr {
    std::net::Ipv4Addr::new(127, 1 + (i / 250 % 250) as u8, 0, 1 + (i % 250) as u8).into()
}

/// W9: `sessions` sessions at once (each from its own address), each
/// logging in, uploading `mib` MiB, downloading it back and listing; every
/// object verified. Then `idle` logged-in idle sessions' memory.
pub(crate) async fn w9(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Arc<Pattern>,
    sessions: usize,
    mib: u64,
    idle: usize,
) -> Result<()> {
    let len = mib * MIB;
    let addr = server.addr;
    let mut setup = Ftp::login(addr).await?;
    setup.cmd("MKD w9", 257).await?;
    setup.cmd("QUIT", 221).await?;
    let run = async {
        let tasks: Vec<_> = (0..sessions)
            .map(|i| {
                let pattern = pattern.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let mut ftp = Ftp::login_from(addr, client_ip(i)).await?;
                    let name = format!("w9/s{i:05}.bin");
                    ftp.stor(&name, pattern.chunks(300 + i as u64, len, 256 * 1024))
                        .await?;
                    let (got, _) = ftp.fetch(&format!("RETR {name}")).await?;
                    if got != len {
                        return Err::<_, Error>(format!("W9: {name}: read {got} bytes").into());
                    }
                    ftp.fetch("NLST w9").await?;
                    ftp.cmd("QUIT", 221).await?;
                    Ok(started.elapsed())
                })
            })
            .collect();
        let mut durations = Vec::with_capacity(sessions);
        for t in tasks {
            durations.push(t.await??);
        }
        Ok(durations)
    };
    server.reset_peak();
    let (mut durations, took, usage) = measured(server, run).await?;
    verify(direct, pattern, "W9", sessions, len, 300, |i| {
        format!("w9/s{i:05}.bin")
    })
    .await?;
    durations.sort();
    // Each session moved 2 x `mib` MiB: its own throughput.
    let rate = |d: Duration| 2.0 * mib as f64 / d.as_secs_f64();
    let (median, slowest) = (durations[sessions / 2], durations[sessions - 1]);
    let total = 2 * len * sessions as u64;
    let gib = total as f64 / (1024.0 * MIB as f64);
    r.row(
        &format!("W9 {sessions} sessions x {mib} MiB up+down"),
        format!(
            "{:.1} s, {:.0} MiB/s total",
            took.as_secs_f64(),
            mib_s(total, took)
        ),
        format!(
            "all verified, none refused; per session {:.2} MiB/s median, slowest {:.2} ({:.0}% of \
             median); server {:.0} MiB peak, {:.2} CPU-s/GiB",
            rate(median),
            rate(slowest),
            100.0 * rate(slowest) / rate(median),
            usage.peak,
            usage.cpu / gib
        ),
    );
    r.value("w9_seconds", took.as_secs_f64());
    r.value("w9_session_mib_s_median", rate(median));
    r.value("w9_session_mib_s_slowest", rate(slowest));
    r.value("w9_peak_rss_mib", usage.peak);
    r.value("w9_cpu_s_per_gib", usage.cpu / gib);

    // Idle logged-in sessions, each from its own address.
    let before = server.rss_mib();
    let mut open = Vec::with_capacity(idle);
    // 200 logins at a time: one after the other, the first would reach the
    // idle timeout before the last logged in.
    for start in (0..idle).step_by(200) {
        let batch: Vec<_> = (start..(start + 200).min(idle))
            .map(|i| {
                tokio::spawn(tokio::time::timeout(
                    Duration::from_secs(60),
                    Ftp::login_from(addr, client_ip(100_000 + i)),
                ))
            })
            .collect();
        for login in batch {
            let ftp = login.await?.map_err(|_| {
                format!(
                    "W9: an idle login got no answer in 60 s ({} open)",
                    open.len()
                )
            })??;
            open.push(ftp);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = server.rss_mib();
    for mut ftp in open {
        ftp.cmd("NOOP", 200).await?;
    }
    let per = (rss - before) * 1024.0 / idle as f64;
    r.row(
        &format!("W9 {idle} idle logged-in sessions"),
        format!("{rss:.0} MiB resident"),
        format!("{before:.0} MiB before: {per:.1} KiB per idle session"),
    );
    r.value("w9_idle_sessions_rss_mib", rss);
    r.value("w9_idle_session_kib", per);
    Ok(())
}
