//! W4: listings of many objects.

use super::*;

pub(crate) async fn w4(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    entries: usize,
    rounds: usize,
) -> Result<()> {
    // Fill the directory on the direct path, 64 at a time.
    futures::stream::iter(0..entries)
        .map(|i| async move {
            let key = format!("many/e{i:06}.txt");
            direct.put(&key, Bytes::from_static(b"x")).await
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
    // A listing takes about 0.1 s, so single timings are mostly noise: the
    // direct walk and the three FTP listings take turns, 3 x `rounds` times,
    // and the medians are compared.
    let mut ftp = Ftp::login(server.addr).await?;
    let verbs = ["LIST", "MLSD", "NLST"];
    let (mut direct_times, mut second_pages) = (Vec::new(), Vec::new());
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); verbs.len()];
    let mut firsts: Vec<Vec<Duration>> = vec![Vec::new(); verbs.len()];
    let mut usages: Vec<Vec<Usage>> = verbs.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds.max(1) * 3 {
        let ((n, _, second), direct_took, _) = measured(server, direct.list_timed("many/")).await?;
        if n != entries as u64 {
            return Err(format!("W4: direct listing found {n} of {entries}").into());
        }
        direct_times.push(direct_took);
        second_pages.extend(second);
        for (v, verb) in verbs.iter().enumerate() {
            let ((_, lines, first), took, usage) =
                measured(server, ftp.fetch_timed(&format!("{verb} /many"))).await?;
            if lines != entries as u64 {
                return Err(format!("W4: {verb} gave {lines} lines of {entries}").into());
            }
            times[v].push(took);
            firsts[v].push(first);
            usages[v].push(usage);
        }
    }
    let direct_took = median(direct_times);
    // When the direct walk has its second page: a listing that streams has
    // sent its first line by then (the FTP time includes PASV and 150).
    let second_page = (!second_pages.is_empty()).then(|| median(second_pages));
    for (v, verb) in verbs.iter().enumerate() {
        let took = median(std::mem::take(&mut times[v]));
        let first = median(std::mem::take(&mut firsts[v]));
        let usage = combined(&usages[v]);
        let ratio = direct_took.as_secs_f64() / took.as_secs_f64();
        r.row(
            &format!("W4 {verb} of {entries}"),
            format!(
                "{:.0} ms FTP, {:.0} ms ListObjectsV2",
                took.as_secs_f64() * 1e3,
                direct_took.as_secs_f64() * 1e3
            ),
            format!(
                "speed ratio {ratio:.2}; first byte after {:.0} ms{}; server {:.0} MiB peak, \
                 {:.3} CPU-s",
                first.as_secs_f64() * 1e3,
                second_page.map_or(String::new(), |s| format!(
                    " (direct second page {:.0} ms)",
                    s.as_secs_f64() * 1e3
                )),
                usage.peak,
                usage.cpu
            ),
        );
        let v = verb.to_lowercase();
        r.value(&format!("w4_{v}_ms"), took.as_secs_f64() * 1e3);
        r.value(&format!("w4_{v}_ratio"), ratio);
        r.value(&format!("w4_{v}_first_byte_ms"), first.as_secs_f64() * 1e3);
        r.value(&format!("w4_{v}_cpu_s"), usage.cpu);
        if let Some(second) = second_page {
            r.target(
                &format!("w4_{v}_first_line"),
                first < second,
                format!(
                    "W4 {verb}: first byte after {:.0} ms, not before the second page ({:.0} ms)",
                    first.as_secs_f64() * 1e3,
                    second.as_secs_f64() * 1e3
                ),
            );
        }
    }
    r.value("w4_direct_list_ms", direct_took.as_secs_f64() * 1e3);
    if let Some(second) = second_page {
        r.value("w4_direct_second_page_ms", second.as_secs_f64() * 1e3);
    }
    ftp.cmd("QUIT", 221).await?;
    Ok(())
}

/// Puts `keys` one-byte objects under `dir/`, 256 at a time; every other
/// one ends in `.csv`, the rest in `.txt`.
async fn seed(direct: &Direct, dir: &str, keys: usize) -> Result<()> {
    futures::stream::iter(0..keys)
        .map(|i| async move {
            let ext = if i % 2 == 0 { "csv" } else { "txt" };
            direct
                .put(&format!("{dir}/k{i:07}.{ext}"), Bytes::from_static(b"x"))
                .await
        })
        .buffer_unordered(256)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// W8: one directory of `keys` objects (a million by default): LIST, MLSD,
/// NLST and a glob (`NLST *.csv`) streamed, each against the direct
/// ListObjectsV2 walk, with time to the first byte and the server's peak
/// memory, compared with the same listings of 10,000 keys.
pub(crate) async fn w8(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    keys: usize,
) -> Result<()> {
    let seeding = Instant::now();
    seed(direct, "tenk", 10_000).await?;
    seed(direct, "million", keys).await?;
    println!(
        "W8: {} objects seeded in {:.0} s",
        keys + 10_000,
        seeding.elapsed().as_secs_f64()
    );
    let mut ftp = Ftp::login(server.addr).await?;
    let mut peaks_10k = Vec::new();
    for verb in ["LIST", "MLSD", "NLST"] {
        let (_, _, usage) = measured(server, ftp.fetch(&format!("{verb} /tenk"))).await?;
        peaks_10k.push(usage.peak);
    }
    let peak_10k = peaks_10k.iter().copied().fold(0.0, f64::max);
    let (n, direct_took, _) = measured(server, direct.list("million/")).await?;
    if n != keys as u64 {
        return Err(format!("W8: direct listing found {n} of {keys}").into());
    }
    ftp.cmd("CWD /million", 250).await?;
    for (label, command, expected) in [
        ("LIST", "LIST", keys),
        ("MLSD", "MLSD", keys),
        ("NLST", "NLST", keys),
        ("NLST *.csv", "NLST *.csv", keys.div_ceil(2)),
    ] {
        let ((_, lines, first), took, usage) = measured(server, ftp.fetch_timed(command)).await?;
        if lines != expected as u64 {
            return Err(format!("W8: {command} gave {lines} lines of {expected}").into());
        }
        let ratio = took.as_secs_f64() / direct_took.as_secs_f64();
        r.row(
            &format!("W8 {label} of {keys}"),
            format!(
                "{:.1} s FTP, {:.1} s ListObjectsV2",
                took.as_secs_f64(),
                direct_took.as_secs_f64()
            ),
            format!(
                "{ratio:.2}x the walk; first byte after {:.0} ms; server {:.0} MiB peak \
                 ({peak_10k:.0} for 10,000), {:.2} CPU-s",
                first.as_secs_f64() * 1e3,
                usage.peak,
                usage.cpu
            ),
        );
        let v = label.to_lowercase().replace([' ', '*', '.'], "");
        r.value(&format!("w8_{v}_s"), took.as_secs_f64());
        r.value(&format!("w8_{v}_first_byte_ms"), first.as_secs_f64() * 1e3);
        r.value(&format!("w8_{v}_peak_rss_mib"), usage.peak);
        r.target(
            &format!("w8_{v}_time"),
            ratio <= 1.1,
            format!("W8 {label} {ratio:.2}x the direct walk > 1.1"),
        );
        r.target(
            &format!("w8_{v}_rss"),
            usage.peak <= peak_10k + 4.0,
            format!(
                "W8 {label} peak {:.0} MiB > {peak_10k:.0} for 10,000 keys",
                usage.peak
            ),
        );
    }
    r.value("w8_direct_walk_s", direct_took.as_secs_f64());
    ftp.cmd("QUIT", 221).await?;
    Ok(())
}
