//! A minimal FTP client, plain or explicit FTPS (AUTH TLS, PROT P, TLS 1.3,
//! data connections resuming the control connection's session).

use super::*;

/// A control or data connection, plain or TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
pub(crate) type BoxStream = Box<dyn Stream>;

/// A minimal FTP client: the bench measures the server, so the client does
/// nothing but move bytes (no parsing beyond reply codes).
pub(crate) struct Ftp {
    pub(crate) reader: BufReader<ReadHalf<BoxStream>>,
    pub(crate) writer: WriteHalf<BoxStream>,
    peer: SocketAddr,
    /// The client's own address (W9 spreads sessions over 127.0.0.0/8);
    /// data connections leave from it too.
    local: Option<std::net::IpAddr>,
    /// FTPS: how data connections are made TLS too.
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Ftp {
    pub(crate) async fn login(addr: SocketAddr) -> Result<Ftp> {
        Ftp::login_with(addr, false).await
    }

    /// Explicit FTPS: AUTH TLS, PBSZ 0, PROT P, then the login.
    pub(crate) async fn login_tls(addr: SocketAddr) -> Result<Ftp> {
        Ftp::login_with(addr, true).await
    }

    /// A plain session from the local address `from`.
    pub(crate) async fn login_from(addr: SocketAddr, from: std::net::IpAddr) -> Result<Ftp> {
        let stream = connect_from(addr, Some(from)).await?;
        Ftp::start(stream, addr, Some(from), false).await
    }

    async fn login_with(addr: SocketAddr, tls: bool) -> Result<Ftp> {
        let stream = TcpStream::connect(addr).await?;
        Ftp::start(stream, addr, None, tls).await
    }

    async fn start(
        mut stream: TcpStream,
        addr: SocketAddr,
        local: Option<std::net::IpAddr>,
        tls: bool,
    ) -> Result<Ftp> {
        stream.set_nodelay(true)?;
        let (control, connector): (BoxStream, _) = if tls {
            raw_reply(&mut stream, 220).await?;
            stream.write_all(b"AUTH TLS\r\n").await?;
            raw_reply(&mut stream, 234).await?;
            let connector = tls_connector();
            let tls = connector.connect(server_name(), stream).await?;
            (Box::new(tls), Some(connector))
        } else {
            (Box::new(stream), None)
        };
        let (r, w) = tokio::io::split(control);
        let mut ftp = Ftp {
            reader: BufReader::new(r),
            writer: w,
            peer: addr,
            local,
            tls: connector,
        };
        if ftp.tls.is_some() {
            ftp.cmd("PBSZ 0", 200).await?;
            ftp.cmd("PROT P", 200).await?;
        } else {
            ftp.expect_reply(220).await?;
        }
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
        let stream = connect_from(SocketAddr::new(self.peer.ip(), port), self.local).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// A data connection after the 150: under PROT P, its TLS handshake
    /// (resuming the control connection's session).
    fn secure(&self, stream: TcpStream) -> impl std::future::Future<Output = Result<BoxStream>> {
        let tls = self.tls.clone();
        async move {
            Ok(match tls {
                Some(connector) => {
                    Box::new(connector.connect(server_name(), stream).await?) as BoxStream
                }
                None => Box::new(stream) as BoxStream,
            })
        }
    }

    /// STOR of `chunks`; returns the bytes sent.
    pub(crate) async fn stor(
        &mut self,
        path: &str,
        chunks: impl Iterator<Item = Bytes>,
    ) -> Result<u64> {
        let data = self.data().await?;
        self.cmd(&format!("STOR {path}"), 150).await?;
        let mut data = self.secure(data).await?;
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
        self.fetch_timed(line)
            .await
            .map(|(total, lines, _)| (total, lines))
    }

    /// Like [`Ftp::fetch`], with the time from sending the command to the
    /// first byte of data.
    pub(crate) async fn fetch_timed(&mut self, line: &str) -> Result<(u64, u64, Duration)> {
        let count_lines = !line.starts_with("RETR");
        let data = self.data().await?;
        let sent = Instant::now();
        self.cmd(line, 150).await?;
        let mut data = self.secure(data).await?;
        let mut buf = vec![0u8; 256 * 1024];
        let (mut total, mut lines) = (0u64, 0u64);
        let mut first = None;
        loop {
            let n = data.read(&mut buf).await?;
            first.get_or_insert_with(|| sent.elapsed());
            if n == 0 {
                break;
            }
            total += n as u64;
            if count_lines {
                lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            }
        }
        self.expect_reply(226).await?;
        Ok((total, lines, first.unwrap_or_default()))
    }
}

/// A connection to `addr`, from the local address `from` when given.
async fn connect_from(addr: SocketAddr, from: Option<std::net::IpAddr>) -> Result<TcpStream> {
    let Some(from) = from else {
        return Ok(TcpStream::connect(addr).await?);
    };
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    Ok(socket.connect(addr).await?)
}

/// One reply read from a connection not yet split (before AUTH TLS).
async fn raw_reply(stream: &mut TcpStream, code: u16) -> Result<()> {
    let mut line = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err("connection closed".into());
        }
        line.push(byte[0]);
        if byte[0] == b'\n' {
            let text = String::from_utf8_lossy(&line).to_string();
            if text.len() >= 4 && text.as_bytes()[3] == b' ' {
                if text.starts_with(&code.to_string()) {
                    return Ok(());
                }
                return Err(format!("expected {code}, got {}", text.trim_end()).into());
            }
            line.clear();
        }
    }
}

fn server_name() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
}

/// TLS 1.3 to the server's self-signed certificate (loopback only), with
/// the session cache shared by every connection, so data connections resume.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// Accepts the server's certificate unseen (the bench's own server on
/// loopback), still checking the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
