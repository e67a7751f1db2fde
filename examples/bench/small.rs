//! W3: many small files over one control connection.

use super::*;

/// W3: `rounds` rounds, each putting `files` small objects on the direct path
/// and then storing as many through FTP into another directory, after one
/// unmeasured direct pass: a fresh Garage is slow at its first thousands of
/// writes (it makes its data directories), which would favour whichever path
/// runs second.
pub(crate) async fn w3(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Pattern,
    files: usize,
    rounds: usize,
) -> Result<()> {
    let direct_pass = |dir: String| async move {
        for i in 0..files {
            let body = pattern
                .chunks(i as u64, 4096, 4096)
                .next()
                .unwrap_or_default();
            direct.put(&format!("{dir}/f{i:05}.bin"), body).await?;
        }
        Ok(())
    };
    direct_pass("warm-up".into()).await?;
    let mut ftp = Ftp::login(server.addr).await?;
    let (mut ftp_runs, mut direct_runs, mut usages) = (Vec::new(), Vec::new(), Vec::new());
    let (puts_before, lists_before) = (
        server.backend_time("PutObject"),
        server.backend_time("ListObjectsV2"),
    );
    for round in 0..rounds {
        let ((), direct_took, _) =
            measured(server, direct_pass(format!("direct-small{round}"))).await?;
        direct_runs.push(direct_took);
        // Into a directory that already exists, as an inbox does: the
        // bridge learns it from the store, not from its own MKD.
        let dir = format!("small{round}");
        direct.put(&format!("{dir}/"), Bytes::new()).await?;
        let upload = async {
            for i in 0..files {
                ftp.stor(
                    &format!("{dir}/f{i:05}.bin"),
                    pattern.chunks(i as u64, 4096, 4096),
                )
                .await?;
            }
            Ok(())
        };
        let ((), took, usage) = measured(server, upload).await?;
        ftp_runs.push(took);
        usages.push(usage);
        // The listing holds the directory's own marker too.
        let listed = direct.list(&format!("{dir}/")).await? - 1;
        if listed != files as u64 {
            return Err(format!("W3: {listed} objects stored of {files}").into());
        }
    }
    let (puts_after, lists_after) = (
        server.backend_time("PutObject"),
        server.backend_time("ListObjectsV2"),
    );
    let all = (files * rounds) as f64;
    let per_file = |before: (f64, f64), after: (f64, f64)| {
        (
            (after.0 - before.0) / all,
            (after.1 - before.1) * 1000.0 / all,
        )
    };
    let (puts, put_ms) = per_file(puts_before, puts_after);
    let (lists, list_ms) = per_file(lists_before, lists_after);
    let usage = combined(&usages);
    let (took, direct_took) = (median(ftp_runs), median(direct_runs));
    let rate = files as f64 / took.as_secs_f64();
    let direct_rate = files as f64 / direct_took.as_secs_f64();
    let cpu_ms = usage.cpu * 1000.0 / files as f64;
    r.row(
        &format!("W3 {files} x 4 KiB, one session"),
        format!("{rate:.0} files/s FTP, {direct_rate:.0} direct PUT/s"),
        format!(
            "ratio {:.2}; server {cpu_ms:.2} ms CPU per file",
            rate / direct_rate,
        ),
    );
    let file_ms = took.as_secs_f64() * 1000.0 / files as f64;
    r.row(
        "W3 where the time goes",
        format!("{file_ms:.2} ms per file"),
        format!(
            "{puts:.2} PutObject {put_ms:.2} ms; {lists:.3} ListObjectsV2 {list_ms:.3} ms; \
             the FTP exchange (EPSV, connect, STOR, 150, data, 226) the rest; \
             a direct PUT {:.2} ms",
            1000.0 / direct_rate
        ),
    );
    r.value("w3_ms_per_file", file_ms);
    r.value("w3_put_ms_per_file", put_ms);
    r.value("w3_lists_per_file", lists);
    r.value("w3_list_ms_per_file", list_ms);
    r.value("w3_files_per_s", rate);
    r.value("w3_direct_puts_per_s", direct_rate);
    r.value("w3_ratio", rate / direct_rate);
    r.value("w3_server_cpu_ms_per_file", cpu_ms);
    if r.prefix.is_empty() {
        // On loopback the store answers in about a millisecond, and the
        // client's three round trips per file are most of the time.
        r.target(
            "w3_files_per_s",
            rate >= 900.0,
            format!("W3 {rate:.0} files/s < 900"),
        );
    } else {
        // Where the store's latency dominates (W7), the protocol's own
        // round trips must not add to it: 0.9 of sequential direct PUTs.
        r.target(
            "w3_ratio",
            rate / direct_rate >= 0.9,
            format!("W3 {:.2} of direct PUTs < 0.9", rate / direct_rate),
        );
    }
    ftp.cmd("QUIT", 221).await?;
    Ok(())
}
