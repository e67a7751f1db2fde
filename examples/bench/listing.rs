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
    let mut direct_times = Vec::new();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); verbs.len()];
    let mut usages: Vec<Vec<Usage>> = verbs.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds.max(1) * 3 {
        let (n, direct_took, _) = measured(server, direct.list("many/")).await?;
        if n != entries as u64 {
            return Err(format!("W4: direct listing found {n} of {entries}").into());
        }
        direct_times.push(direct_took);
        for (v, verb) in verbs.iter().enumerate() {
            let ((_, lines), took, usage) =
                measured(server, ftp.fetch(&format!("{verb} /many"))).await?;
            if lines != entries as u64 {
                return Err(format!("W4: {verb} gave {lines} lines of {entries}").into());
            }
            times[v].push(took);
            usages[v].push(usage);
        }
    }
    let direct_took = median(direct_times);
    for (v, verb) in verbs.iter().enumerate() {
        let took = median(std::mem::take(&mut times[v]));
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
                "speed ratio {ratio:.2}; server {:.0} MiB peak, {:.3} CPU-s",
                usage.peak, usage.cpu
            ),
        );
        let v = verb.to_lowercase();
        r.value(&format!("w4_{v}_ms"), took.as_secs_f64() * 1e3);
        r.value(&format!("w4_{v}_ratio"), ratio);
        r.value(&format!("w4_{v}_cpu_s"), usage.cpu);
    }
    r.value("w4_direct_list_ms", direct_took.as_secs_f64() * 1e3);
    ftp.cmd("QUIT", 221).await?;
    Ok(())
}
