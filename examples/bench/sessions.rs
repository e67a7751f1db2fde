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
        for i in 0..sessions {
            let (size, sha) = direct.digest(&name(i)).await?;
            if size != len || sha != pattern.sha256(100 + i as u64, len) {
                return Err(
                    format!("W5: object {}: {size} bytes, sha256 {sha} differs", name(i)).into(),
                );
            }
        }
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
             (rounds {:.2}-{:.2}); before: {sessions} logins at once {:.2} s, {:.2} CPU-s",
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
