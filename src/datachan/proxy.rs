//! The HAProxy PROXY protocol, versions 1 (text) and 2 (binary): a load
//! balancer in front of the server (HAProxy, AWS NLB, nginx stream) writes one
//! header at the start of each connection naming the client's real address.
//! [`ProxyPolicy::accept`] reads it, byte-exact so nothing after it is lost,
//! and only from the proxies it trusts.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12 bytes that start every version 2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest version 1 header, CRLF included (the specification's limit).
const V1_MAX: usize = 107;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyError {
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    #[error("PROXY header from {0}, which is not a trusted proxy (S3FTP_PROXY_TRUSTED)")]
    Untrusted(IpAddr),
    #[error("no PROXY header within {0:?}")]
    Timeout(Duration),
    #[error("reading the PROXY header: {0}")]
    Io(String),
}

/// Which connections carry a header (S3FTP_PROXY_PROTOCOL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyMode {
    #[default]
    Off,
    /// Control connections only (passive data connections come straight
    /// from the client, or through a proxy that preserves its address).
    Control,
    /// Control and passive data connections.
    All,
}

/// One address range, `10.0.0.0/8` or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an address or network such as 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Network {
            addr: addr.to_canonical(),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            let keep = u32::from(prefix.min(width));
            if keep == 0 {
                0
            } else {
                bits >> (u32::from(width) - keep)
            }
        }
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), self.prefix, 32)
                    == masked(u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Whether and from whom PROXY headers are expected.
#[derive(Clone, Debug, Default)]
pub struct ProxyPolicy {
    pub mode: ProxyMode,
    /// Proxies allowed to send a header; empty: any peer.
    pub trusted: Vec<Network>,
    /// How long a proxy may take to send the header.
    pub timeout: Duration,
}

impl ProxyPolicy {
    pub fn control(&self) -> bool {
        self.mode != ProxyMode::Off
    }

    pub fn data(&self) -> bool {
        self.mode == ProxyMode::All
    }

    /// Reads the header at the start of `stream`, which came from `peer`.
    /// Returns the client's address: the header's source, or `peer` for a
    /// LOCAL (health check) or UNKNOWN header.
    pub async fn accept<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
    ) -> Result<SocketAddr, ProxyError> {
        if !self.trusted.is_empty() && !self.trusted.iter().any(|n| n.contains(peer.ip())) {
            return Err(ProxyError::Untrusted(peer.ip()));
        }
        let header = tokio::time::timeout(self.timeout, read_header(stream))
            .await
            .map_err(|_| ProxyError::Timeout(self.timeout))??;
        Ok(header.unwrap_or(peer))
    }
}

/// Reads exactly one header (v1 or v2) and nothing more; `None` when the
/// proxy sent no client address (LOCAL, UNKNOWN, or a non-IP family).
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, ProxyError> {
    let io = |e: io::Error| ProxyError::Io(e.to_string());
    // 8 bytes is less than the shortest v1 header ("PROXY UNKNOWN\r\n").
    let mut head = [0u8; 16];
    stream.read_exact(&mut head[..8]).await.map_err(io)?;
    if &head[..6] == b"PROXY " {
        let mut line = head[..8].to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(ProxyError::Malformed("v1 header longer than 107 bytes"));
            }
            line.push(stream.read_u8().await.map_err(io)?);
        }
        return parse_v1(&line);
    }
    if head[..8] != V2_SIGNATURE[..8] {
        return Err(ProxyError::Missing);
    }
    stream.read_exact(&mut head[8..]).await.map_err(io)?;
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    let mut rest = vec![0u8; len];
    stream.read_exact(&mut rest).await.map_err(io)?;
    parse_v2(&head, &rest)
}

/// Parses a whole v1 line, CRLF included.
pub fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    let text = std::str::from_utf8(line)
        .ok()
        .and_then(|t| t.strip_suffix("\r\n"))
        .ok_or(ProxyError::Malformed(
            "v1 header is not ASCII ending in CRLF",
        ))?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src
                .parse()
                .map_err(|_| ProxyError::Malformed("bad v1 source address"))?;
            if ip.is_ipv4() != (*family == "TCP4") {
                return Err(ProxyError::Malformed(
                    "v1 address does not match its family",
                ));
            }
            let port: u16 = sport
                .parse()
                .map_err(|_| ProxyError::Malformed("bad v1 source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyError::Malformed(
            "v1 header is not PROXY TCP4|TCP6|UNKNOWN",
        )),
    }
}

/// Parses a v2 header: its fixed 16 bytes and the `len` bytes after them.
pub fn parse_v2(head: &[u8; 16], rest: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    if head[..12] != V2_SIGNATURE {
        return Err(ProxyError::Missing);
    }
    let (version, command) = (head[12] >> 4, head[12] & 0x0f);
    if version != 2 {
        return Err(ProxyError::Malformed("unsupported v2 version"));
    }
    match command {
        0 => return Ok(None), // LOCAL: the proxy's own connection (health check)
        1 => {}
        _ => return Err(ProxyError::Malformed("unknown v2 command")),
    }
    // Only the address family matters: TCP and UDP carry the same addresses.
    match head[13] >> 4 {
        1 => {
            let a = rest
                .get(..12)
                .ok_or(ProxyError::Malformed("v2 IPv4 addresses cut short"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let port = u16::from_be_bytes([a[8], a[9]]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        2 => {
            let a = rest
                .get(..36)
                .ok_or(ProxyError::Malformed("v2 IPv6 addresses cut short"))?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let port = u16::from_be_bytes([a[32], a[33]]);
            Ok(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port,
            )))
        }
        // AF_UNSPEC, AF_UNIX: no IP address to use.
        _ => Ok(None),
    }
}

/// A v2 PROXY header for `source` connecting to `destination` (tests, tools).
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
        }
        (s, d) => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(ip) => ip.to_ipv6_mapped(),
                IpAddr::V6(ip) => ip,
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    async fn read(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyError>, Vec<u8>) {
        let mut input = bytes;
        let result = read_header(&mut input).await;
        (result, input.to_vec())
    }

    #[tokio::test]
    async fn v1_headers_give_the_client_and_leave_the_rest_unread() {
        let (r, rest) = read(b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 21\r\nUSER x\r\n").await;
        assert_eq!(r, Ok(Some(addr("192.0.2.7:5555"))));
        assert_eq!(rest, b"USER x\r\n");
        let (r, _) = read(b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 21\r\n").await;
        assert_eq!(r, Ok(Some(addr("[2001:db8::1]:40000"))));
        let (r, rest) = read(b"PROXY UNKNOWN\r\nX").await;
        assert_eq!((r, rest), (Ok(None), b"X".to_vec()));
    }

    #[tokio::test]
    async fn v2_headers_give_the_client_and_leave_the_rest_unread() {
        let mut bytes = encode_v2(addr("198.51.100.9:6000"), addr("10.0.0.1:21"));
        bytes.extend_from_slice(b"data");
        let (r, rest) = read(&bytes).await;
        assert_eq!(r, Ok(Some(addr("198.51.100.9:6000"))));
        assert_eq!(rest, b"data");
        let bytes = encode_v2(addr("[2001:db8::5]:7000"), addr("[2001:db8::1]:21"));
        assert_eq!(read(&bytes).await.0, Ok(Some(addr("[2001:db8::5]:7000"))));
        // TLVs after the addresses (AWS adds the VPC endpoint id) are skipped.
        let mut with_tlv = encode_v2(addr("192.0.2.1:1"), addr("10.0.0.1:21"));
        with_tlv[15] += 5;
        with_tlv.extend_from_slice(&[0xEA, 0, 2, b'v', b'p', b'Z']);
        let (r, rest) = read(&with_tlv).await;
        assert_eq!((r, rest), (Ok(Some(addr("192.0.2.1:1"))), b"Z".to_vec()));
        // LOCAL (a load balancer's health check): no client address.
        let mut local = encode_v2(addr("192.0.2.1:1"), addr("10.0.0.1:21"));
        local[12] = 0x20;
        assert_eq!(read(&local).await.0, Ok(None));
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        assert_eq!(read(b"USER alice\r\n").await.0, Err(ProxyError::Missing));
        for bad in [
            &b"PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n"[..],
            b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 10.0.0.1 99999 2\r\n",
            b"PROXY SCTP 192.0.2.1 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.1\r\n",
        ] {
            assert!(
                matches!(read(bad).await.0, Err(ProxyError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let endless = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(
            read(&endless).await.0,
            Err(ProxyError::Malformed(_))
        ));
        let mut v3 = encode_v2(addr("192.0.2.1:1"), addr("10.0.0.1:21"));
        v3[12] = 0x31;
        assert!(matches!(read(&v3).await.0, Err(ProxyError::Malformed(_))));
        let cut = encode_v2(addr("192.0.2.1:1"), addr("10.0.0.1:21"));
        assert!(matches!(read(&cut[..20]).await.0, Err(ProxyError::Io(_))));
    }

    #[test]
    fn networks_match_by_prefix() {
        let ten = Network::parse("10.0.0.0/8").unwrap();
        assert!(ten.contains("10.200.3.4".parse().unwrap()));
        assert!(ten.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!ten.contains("11.0.0.1".parse().unwrap()));
        let one = Network::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let any = Network::parse("0.0.0.0/0").unwrap();
        assert!(any.contains("203.0.113.1".parse().unwrap()));
        assert!(!any.contains("2001:db8::1".parse().unwrap()));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn untrusted_peers_are_refused_before_reading() {
        let policy = ProxyPolicy {
            mode: ProxyMode::Control,
            trusted: vec![Network::parse("10.0.0.0/8").unwrap()],
            timeout: Duration::from_secs(1),
        };
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 21\r\n";
        assert_eq!(
            policy.accept(&mut input, addr("127.0.0.1:9")).await,
            Err(ProxyError::Untrusted("127.0.0.1".parse().unwrap()))
        );
        let mut input: &[u8] = b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 21\r\n";
        assert_eq!(
            policy.accept(&mut input, addr("10.1.2.3:9")).await,
            Ok(addr("192.0.2.7:5555"))
        );
    }
}
