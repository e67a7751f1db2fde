//! W6: W1 and W2 over explicit FTPS (AUTH TLS, PROT P, TLS 1.3), against
//! plain FTP and the direct path in the same rounds.

use super::*;

/// Timings of one direction: direct, plain FTP, FTPS, and the server's
/// usage during each FTP kind.
#[derive(Default)]
struct Direction {
    direct: Vec<Duration>,
    plain: Vec<Duration>,
    tls: Vec<Duration>,
    plain_usage: Vec<Usage>,
    tls_usage: Vec<Usage>,
}

pub(crate) async fn w6(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Pattern,
    size_mib: u64,
    rounds: usize,
) -> Result<()> {
    let len = size_mib * MIB;
    let key = format!("w6-{size_mib}m.bin");
    let want = pattern.sha256(1, len);
    let mut plain = Ftp::login(server.addr).await?;
    let mut tls = Ftp::login_tls(server.addr).await?;
    let (mut up, mut down) = (Direction::default(), Direction::default());
    for _ in 0..rounds {
        let ((), d, _) = measured(
            server,
            direct.multipart(&format!("direct-{key}"), pattern, len),
        )
        .await?;
        up.direct.push(d);
        for (ftp, times, usages) in [
            (&mut plain, &mut up.plain, &mut up.plain_usage),
            (&mut tls, &mut up.tls, &mut up.tls_usage),
        ] {
            let (sent, t, usage) =
                measured(server, ftp.stor(&key, pattern.chunks(1, len, 256 * 1024))).await?;
            let (size, sha) = direct.digest(&key).await?;
            if sent != len || size != len || sha != want {
                return Err(format!("W6: stored {size} bytes, sha256 {sha}").into());
            }
            times.push(t);
            usages.push(usage);
        }
        let (got, d, _) = measured(server, direct.get(&key)).await?;
        if got != len {
            return Err(format!("W6 direct: {got} bytes of {len}").into());
        }
        down.direct.push(d);
        for (ftp, times, usages) in [
            (&mut plain, &mut down.plain, &mut down.plain_usage),
            (&mut tls, &mut down.tls, &mut down.tls_usage),
        ] {
            let ((got, _), t, usage) = measured(server, ftp.fetch(&format!("RETR {key}"))).await?;
            if got != len {
                return Err(format!("W6: RETR gave {got} bytes of {len}").into());
            }
            times.push(t);
            usages.push(usage);
        }
    }
    report(r, "upload", size_mib, up);
    report(r, "download", size_mib, down);
    plain.cmd("QUIT", 221).await?;
    tls.cmd("QUIT", 221).await?;
    Ok(())
}

fn report(r: &mut Report, what: &str, size_mib: u64, d: Direction) {
    let len = size_mib * MIB;
    let gib = len as f64 / (1024.0 * MIB as f64);
    let (direct, plain, tls) = (
        mib_s(len, median(d.direct)),
        mib_s(len, median(d.plain)),
        mib_s(len, median(d.tls)),
    );
    let (plain_cpu, tls_cpu) = (
        combined(&d.plain_usage).cpu / gib,
        combined(&d.tls_usage).cpu / gib,
    );
    let to_plain = tls / plain;
    r.row(
        &format!("W6 FTPS {what} {size_mib} MiB"),
        format!("{tls:.0} MiB/s FTPS, {plain:.0} FTP, {direct:.0} direct"),
        format!(
            "FTPS/FTP {to_plain:.2}, FTPS/direct {:.2}; server {tls_cpu:.2} CPU-s/GiB (FTP {plain_cpu:.2})",
            tls / direct
        ),
    );
    r.value(&format!("w6_{what}_mib_s"), tls);
    r.value(&format!("w6_{what}_plain_mib_s"), plain);
    r.value(&format!("w6_{what}_direct_mib_s"), direct);
    r.value(&format!("w6_{what}_ratio_to_plain"), to_plain);
    r.value(&format!("w6_{what}_cpu_s_per_gib"), tls_cpu);
    r.target(
        &format!("w6_{what}_ratio"),
        to_plain >= 0.85,
        format!("W6 {what}: FTPS at {to_plain:.2} of plain FTP < 0.85"),
    );
    r.target(
        &format!("w6_{what}_cpu"),
        tls_cpu <= 1.5,
        format!("W6 {what}: {tls_cpu:.2} CPU-s/GiB > 1.5"),
    );
}
