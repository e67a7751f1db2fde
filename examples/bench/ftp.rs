//! A minimal FTP client.

use super::*;

/// A minimal FTP client: the bench measures the server, so the client does
/// nothing but move bytes (no parsing beyond reply codes).
pub(crate) struct Ftp {
    pub(crate) reader: BufReader<OwnedReadHalf>,
    pub(crate) writer: OwnedWriteHalf,
}

impl Ftp {
    pub(crate) async fn login(addr: SocketAddr) -> Result<Ftp> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut ftp = Ftp {
            reader: BufReader::new(r),
            writer: w,
        };
        ftp.expect_reply(220).await?;
        ftp.cmd(&format!("USER {USER}"), 331).await?;
        ftp.cmd(&format!("PASS {PASSWORD}"), 230).await?;
        ftp.cmd("TYPE I", 200).await?;
        Ok(ftp)
    }

    pub(crate) async fn reply(&mut self) -> Result<(u16, String)> {
        let read = async {
            let mut text = String::new();
            loop {
                let mut line = String::new();
                if self.reader.read_line(&mut line).await? == 0 {
                    return Err::<_, Error>("connection closed".into());
                }
                text.push_str(&line);
                let b = line.as_bytes();
                if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                    let code = line[..3].parse()?;
                    return Ok((code, text));
                }
            }
        };
        tokio::time::timeout(REPLY_WAIT, read)
            .await
            .map_err(|_| "no reply in time")?
    }

    pub(crate) async fn expect_reply(&mut self, code: u16) -> Result<String> {
        let (got, text) = self.reply().await?;
        if got != code {
            return Err(format!("expected {code}, got {}", text.trim_end()).into());
        }
        Ok(text)
    }

    pub(crate) async fn send(&mut self, line: &str) -> Result<()> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        Ok(())
    }

    pub(crate) async fn cmd(&mut self, line: &str, code: u16) -> Result<String> {
        self.send(line).await?;
        self.expect_reply(code)
            .await
            .map_err(|e| format!("{line}: {e}").into())
    }

    pub(crate) async fn data(&mut self) -> Result<TcpStream> {
        let text = self.cmd("EPSV", 229).await?;
        let port: u16 = text
            .split('|')
            .nth(3)
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("bad EPSV reply {text:?}"))?;
        let peer = self.writer.peer_addr()?;
        let stream = TcpStream::connect(SocketAddr::new(peer.ip(), port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// STOR of `chunks`; returns the bytes sent.
    pub(crate) async fn stor(
        &mut self,
        path: &str,
        chunks: impl Iterator<Item = Bytes>,
    ) -> Result<u64> {
        let mut data = self.data().await?;
        self.cmd(&format!("STOR {path}"), 150).await?;
        let mut sent = 0;
        for chunk in chunks {
            data.write_all(&chunk).await?;
            sent += chunk.len() as u64;
        }
        data.shutdown().await?;
        drop(data);
        self.expect_reply(226).await?;
        Ok(sent)
    }

    /// A download-type command (RETR, LIST, MLSD); returns the bytes read and
    /// the number of lines (counted only for listings: a RETR's client reads
    /// and drops, as the direct path does).
    pub(crate) async fn fetch(&mut self, line: &str) -> Result<(u64, u64)> {
        let count_lines = !line.starts_with("RETR");
        let mut data = self.data().await?;
        self.cmd(line, 150).await?;
        let mut buf = vec![0u8; 256 * 1024];
        let (mut total, mut lines) = (0u64, 0u64);
        loop {
            let n = data.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if count_lines {
                lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            }
        }
        self.expect_reply(226).await?;
        Ok((total, lines))
    }
}
