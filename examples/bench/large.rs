//! W1 and W2: one large file up and down.

use super::*;

/// W1 (and W2 when `download`): `rounds` rounds, each timing the direct path
/// and then FTP on the same data, so that both see the same noise; the
/// medians are compared. Every FTP upload and download is verified.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn w1_w2(
    r: &mut Report,
    server: &ServerProcess,
    direct: &Direct,
    pattern: &Pattern,
    size_mib: u64,
    name: &str,
    (upload, download): (bool, bool),
    rounds: usize,
) -> Result<()> {
    let len = size_mib * MIB;
    let gib = len as f64 / (1024.0 * MIB as f64);
    let key = format!("{name}-{size_mib}m.bin");
    let want = pattern.sha256(1, len);
    let mut ftp = Ftp::login(server.addr).await?;
    let (mut direct_ups, mut ftp_ups, mut up_usage) = (Vec::new(), Vec::new(), Vec::new());
    let (mut direct_downs, mut ftp_downs, mut down_usage) = (Vec::new(), Vec::new(), Vec::new());
    let mut single_downs = Vec::new();
    for round in 0..rounds {
        if upload {
            let ((), direct_up, _) = measured(
                server,
                direct.multipart(&format!("direct-{key}"), pattern, len),
            )
            .await?;
            direct_ups.push(direct_up);
        }
        // W2 alone uploads its file once, unmeasured and not reported.
        if upload || round == 0 {
            let (sent, ftp_up, usage) =
                measured(server, ftp.stor(&key, pattern.chunks(1, len, 256 * 1024))).await?;
            if sent != len {
                return Err(format!("{name}: sent {sent} of {len} bytes").into());
            }
            let (size, sha) = direct.digest(&key).await?;
            if size != len || sha != want {
                return Err(
                    format!("{name}: stored {size} bytes, sha256 {sha}, expected {want}").into(),
                );
            }
            ftp_ups.push(ftp_up);
            up_usage.push(usage);
        }
        if download {
            // The direct path as the server reads (parts, concurrently),
            // and as one GetObject.
            let (got, direct_down, _) = measured(server, direct.get_parts(&key, len)).await?;
            let (single, single_down, _) = measured(server, direct.get(&key)).await?;
            if got != len || single != len {
                return Err(format!("W2 direct: {got} and {single} bytes of {len}").into());
            }
            single_downs.push(single_down);
            let ((got, _), ftp_down, usage) =
                measured(server, ftp.fetch(&format!("RETR {key}"))).await?;
            if got != len {
                return Err(format!("W2: RETR gave {got} bytes of {len}").into());
            }
            direct_downs.push(direct_down);
            ftp_downs.push(ftp_down);
            down_usage.push(usage);
        }
    }
    if upload {
        let (ftp_up, direct_up, usage) = (median(ftp_ups), median(direct_ups), combined(&up_usage));
        let ratio = mib_s(len, ftp_up) / mib_s(len, direct_up);
        let cpu = usage.cpu / gib;
        r.row(
            &format!("{name} upload {size_mib} MiB"),
            format!(
                "{:.0} MiB/s FTP, {:.0} MiB/s direct",
                mib_s(len, ftp_up),
                mib_s(len, direct_up)
            ),
            format!(
                "ratio {ratio:.2}; server {:.0} MiB peak, {cpu:.2} CPU-s/GiB",
                usage.peak
            ),
        );
        let n = name.to_lowercase();
        r.value(&format!("{n}_upload_mib_s"), mib_s(len, ftp_up));
        r.value(&format!("{n}_direct_upload_mib_s"), mib_s(len, direct_up));
        r.value(&format!("{n}_upload_ratio"), ratio);
        r.value(&format!("{n}_upload_peak_rss_mib"), usage.peak);
        r.value(&format!("{n}_upload_cpu_s_per_gib"), cpu);
        r.target(
            &format!("{n}_upload_ratio"),
            ratio >= 0.9,
            format!("{name} upload ratio {ratio:.2} < 0.9"),
        );
        r.target(
            &format!("{n}_upload_peak_rss"),
            usage.peak <= 64.0,
            format!("{name} upload peak RSS {:.0} MiB > 64", usage.peak),
        );
        r.target(
            &format!("{n}_upload_cpu"),
            cpu <= 1.0,
            format!("{name} upload {cpu:.2} CPU-s/GiB > 1"),
        );
    }
    if download {
        let (ftp_down, direct_down, usage) = (
            median(ftp_downs),
            median(direct_downs),
            combined(&down_usage),
        );
        let single_down = median(single_downs);
        let ratio = mib_s(len, ftp_down) / mib_s(len, direct_down);
        let cpu = usage.cpu / gib;
        r.row(
            &format!("W2 download {size_mib} MiB"),
            format!(
                "{:.0} MiB/s FTP, {:.0} MiB/s direct",
                mib_s(len, ftp_down),
                mib_s(len, direct_down)
            ),
            format!(
                "ratio {ratio:.2}; server {:.0} MiB peak, {cpu:.2} CPU-s/GiB; \
                 one GetObject {:.0} MiB/s",
                usage.peak,
                mib_s(len, single_down)
            ),
        );
        r.value("w2_direct_single_get_mib_s", mib_s(len, single_down));
        r.value("w2_download_mib_s", mib_s(len, ftp_down));
        r.value("w2_direct_download_mib_s", mib_s(len, direct_down));
        r.value("w2_download_ratio", ratio);
        r.value("w2_download_peak_rss_mib", usage.peak);
        r.value("w2_download_cpu_s_per_gib", cpu);
        r.target(
            "w2_download_ratio",
            ratio >= 0.9,
            format!("W2 ratio {ratio:.2} < 0.9"),
        );
        r.target(
            "w2_download_cpu",
            cpu <= 1.0,
            format!("W2 {cpu:.2} CPU-s/GiB > 1"),
        );
    }
    ftp.cmd("QUIT", 221).await?;
    Ok(())
}
