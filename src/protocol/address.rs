//! Data-channel address syntax: PORT, EPRT (RFC 2428), LPRT (RFC 1639) and the
//! replies of PASV, EPSV, LPSV and SPSV.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::reply::{Reply, ReplyCode};

/// Why an EPRT argument was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EprtError {
    /// 501: malformed, address not of the stated protocol, or a bad port.
    Syntax,
    /// 522: a network protocol other than 1 (IPv4) or 2 (IPv6).
    Protocol,
}

/// One decimal number of 1 to 3 digits (no sign) between 0 and 255.
fn byte(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A port from its high and low bytes; port 0 cannot be connected to.
fn port_from(hi: u8, lo: u8) -> Option<u16> {
    let port = u16::from_be_bytes([hi, lo]);
    (port != 0).then_some(port)
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959 PORT).
pub fn parse_port(arg: &str) -> Option<SocketAddr> {
    let nums = arg
        .trim()
        .split(',')
        .map(byte)
        .collect::<Option<Vec<u8>>>()?;
    let [h1, h2, h3, h4, p1, p2] = nums[..] else {
        return None;
    };
    let ip = Ipv4Addr::new(h1, h2, h3, h4);
    Some(SocketAddr::V4(SocketAddrV4::new(ip, port_from(p1, p2)?)))
}

/// `<d><proto><d><address><d><port><d>` (RFC 2428 EPRT), where `<d>` is any
/// printable ASCII character other than space, the same all four times.
pub fn parse_eprt(arg: &str) -> Result<SocketAddr, EprtError> {
    let arg = arg.trim();
    let delim = match arg.chars().next() {
        Some(c @ '!'..='~') => c,
        _ => return Err(EprtError::Syntax),
    };
    let fields: Vec<&str> = arg.split(delim).collect();
    let ["", proto, addr, port, ""] = fields[..] else {
        return Err(EprtError::Syntax);
    };
    if proto.is_empty() || !proto.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EprtError::Syntax);
    }
    let ip = match proto {
        "1" => addr.parse::<Ipv4Addr>().map(IpAddr::V4),
        "2" => addr.parse::<Ipv6Addr>().map(IpAddr::V6),
        _ => return Err(EprtError::Protocol),
    }
    .map_err(|_| EprtError::Syntax)?;
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EprtError::Syntax);
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(SocketAddr::new(ip, p)),
        _ => Err(EprtError::Syntax),
    }
}

/// `4,4,h1,h2,h3,h4,2,p1,p2` or `6,16,b1,...,b16,2,p1,p2` (RFC 1639 LPRT).
pub fn parse_lprt(arg: &str) -> Option<SocketAddr> {
    let nums = arg
        .trim()
        .split(',')
        .map(byte)
        .collect::<Option<Vec<u8>>>()?;
    match nums[..] {
        [4, 4, h1, h2, h3, h4, 2, p1, p2] => {
            let ip = Ipv4Addr::new(h1, h2, h3, h4);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port_from(p1, p2)?)))
        }
        [6, 16, ref rest @ ..] if rest.len() == 16 + 3 => {
            let (host, port) = rest.split_at(16);
            let octets: [u8; 16] = host.try_into().ok()?;
            let [2, p1, p2] = *port else {
                return None;
            };
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port_from(p1, p2)?,
                0,
                0,
            )))
        }
        _ => None,
    }
}

/// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).`
pub fn pasv_reply(ip: Ipv4Addr, port: u16) -> Reply {
    let [h1, h2, h3, h4] = ip.octets();
    let [p1, p2] = port.to_be_bytes();
    Reply::new(
        ReplyCode::EnteringPassiveMode,
        format!("Entering Passive Mode ({h1},{h2},{h3},{h4},{p1},{p2})."),
    )
}

/// `229 Entering Extended Passive Mode (|||port|)`
pub fn epsv_reply(port: u16) -> Reply {
    Reply::new(
        ReplyCode::EnteringExtendedPassiveMode,
        format!("Entering Extended Passive Mode (|||{port}|)"),
    )
}

/// `228 Entering Long Passive Mode (4,4,h1,h2,h3,h4,2,p1,p2)` or the
/// `6,16,...` form for IPv6. An IPv4-mapped IPv6 address (a dual-stack socket
/// accepting an IPv4 client) is given in the IPv4 form.
pub fn lpsv_reply(addr: SocketAddr) -> Reply {
    let [p1, p2] = addr.port().to_be_bytes();
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let host: Vec<String> = match ip {
        IpAddr::V4(v4) => std::iter::once(4)
            .chain(std::iter::once(4))
            .chain(v4.octets())
            .map(|b| b.to_string())
            .collect(),
        IpAddr::V6(v6) => std::iter::once(6)
            .chain(std::iter::once(16))
            .chain(v6.octets())
            .map(|b| b.to_string())
            .collect(),
    };
    Reply::new(
        ReplyCode::EnteringLongPassiveMode,
        format!(
            "Entering Long Passive Mode ({},2,{p1},{p2})",
            host.join(",")
        ),
    )
}

/// SPSV: `227 <port>`, as pure-ftpd answers it.
pub fn spsv_reply(port: u16) -> Reply {
    Reply::new(ReplyCode::EnteringPassiveMode, port.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn port_basic() {
        assert_eq!(parse_port("192,168,1,2,4,1"), Some(v4("192.168.1.2:1025")));
    }

    #[test]
    fn port_tolerates_surrounding_spaces() {
        assert_eq!(parse_port(" 10,0,0,1,0,21 "), Some(v4("10.0.0.1:21")));
    }

    #[test]
    fn port_number_above_255_is_refused() {
        assert_eq!(parse_port("192,168,1,256,4,1"), None);
        assert_eq!(parse_port("192,168,1,2,4,1000"), None);
    }

    #[test]
    fn port_needs_exactly_six_numbers() {
        assert_eq!(parse_port("192,168,1,2,4"), None);
        assert_eq!(parse_port("192,168,1,2,4,1,7"), None);
        assert_eq!(parse_port(""), None);
    }

    #[test]
    fn port_refuses_signs_empty_fields_and_garbage() {
        assert_eq!(parse_port("+1,2,3,4,5,6"), None);
        assert_eq!(parse_port("1,2,,4,5,6"), None);
        assert_eq!(parse_port("1,2,3,4,5,x"), None);
        assert_eq!(parse_port("1, 2,3,4,5,6"), None);
    }

    #[test]
    fn port_zero_is_refused() {
        assert_eq!(parse_port("127,0,0,1,0,0"), None);
    }

    #[test]
    fn eprt_ipv4() {
        assert_eq!(
            parse_eprt("|1|132.235.1.2|6275|"),
            Ok(v4("132.235.1.2:6275"))
        );
    }

    #[test]
    fn eprt_ipv6() {
        assert_eq!(
            parse_eprt("|2|1080::8:800:200C:417A|5282|"),
            Ok("[1080::8:800:200c:417a]:5282".parse().unwrap())
        );
    }

    #[test]
    fn eprt_any_printable_delimiter() {
        assert_eq!(parse_eprt("!1!10.0.0.1!21!"), Ok(v4("10.0.0.1:21")));
        assert_eq!(parse_eprt("~2~::1~21~"), Ok("[::1]:21".parse().unwrap()));
    }

    #[test]
    fn eprt_inconsistent_delimiter_is_syntax() {
        assert_eq!(parse_eprt("|1!10.0.0.1|21|"), Err(EprtError::Syntax));
    }

    #[test]
    fn eprt_space_or_control_delimiter_is_syntax() {
        assert_eq!(
            parse_eprt("\x011\x0110.0.0.1\x0121\x01"),
            Err(EprtError::Syntax)
        );
    }

    #[test]
    fn eprt_unknown_protocol_is_522() {
        assert_eq!(parse_eprt("|3|10.0.0.1|21|"), Err(EprtError::Protocol));
        assert_eq!(parse_eprt("|12|10.0.0.1|21|"), Err(EprtError::Protocol));
    }

    #[test]
    fn eprt_non_numeric_protocol_is_syntax() {
        assert_eq!(parse_eprt("|x|10.0.0.1|21|"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt("||10.0.0.1|21|"), Err(EprtError::Syntax));
    }

    #[test]
    fn eprt_address_must_match_protocol() {
        assert_eq!(parse_eprt("|1|::1|21|"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt("|2|10.0.0.1|21|"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt("|1|host.example|21|"), Err(EprtError::Syntax));
    }

    #[test]
    fn eprt_port_range() {
        assert_eq!(parse_eprt("|1|10.0.0.1|0|"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt("|1|10.0.0.1|65536|"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt("|1|10.0.0.1|-1|"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt("|1|10.0.0.1|65535|"), Ok(v4("10.0.0.1:65535")));
    }

    #[test]
    fn eprt_missing_fields_or_trailing_delimiter() {
        assert_eq!(parse_eprt("|1|10.0.0.1|21"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt("|1|10.0.0.1|"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt("|1|10.0.0.1|21|x"), Err(EprtError::Syntax));
        assert_eq!(parse_eprt(""), Err(EprtError::Syntax));
    }

    #[test]
    fn lprt_ipv4() {
        assert_eq!(
            parse_lprt("4,4,132,235,1,2,2,24,131"),
            Some(v4("132.235.1.2:6275"))
        );
    }

    #[test]
    fn lprt_ipv6() {
        let arg = "6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,0,21";
        assert_eq!(parse_lprt(arg), Some("[::1]:21".parse().unwrap()));
    }

    #[test]
    fn lprt_wrong_lengths_or_family() {
        assert_eq!(parse_lprt("4,4,132,235,1,2,2,24"), None);
        assert_eq!(parse_lprt("4,16,132,235,1,2,2,24,131"), None);
        assert_eq!(parse_lprt("4,4,132,235,1,2,3,0,24,131"), None);
        assert_eq!(parse_lprt("5,4,132,235,1,2,2,24,131"), None);
        assert_eq!(parse_lprt("6,4,132,235,1,2,2,24,131"), None);
        assert_eq!(parse_lprt("6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,0"), None);
    }

    #[test]
    fn lprt_value_above_255() {
        assert_eq!(parse_lprt("4,4,132,235,1,256,2,24,131"), None);
    }

    #[test]
    fn pasv_reply_format() {
        let r = pasv_reply(Ipv4Addr::new(192, 168, 1, 2), 1025);
        assert_eq!(
            r.to_wire(),
            b"227 Entering Passive Mode (192,168,1,2,4,1).\r\n"
        );
    }

    #[test]
    fn epsv_reply_format() {
        assert_eq!(
            epsv_reply(6446).to_wire(),
            b"229 Entering Extended Passive Mode (|||6446|)\r\n"
        );
    }

    #[test]
    fn lpsv_reply_ipv4() {
        let r = lpsv_reply(v4("132.235.1.2:6275"));
        assert_eq!(r.code, ReplyCode::EnteringLongPassiveMode);
        assert_eq!(
            r.text(),
            "Entering Long Passive Mode (4,4,132,235,1,2,2,24,131)"
        );
    }

    #[test]
    fn lpsv_reply_ipv6_round_trips_through_lprt() {
        let addr: SocketAddr = "[2001:db8::1]:50000".parse().unwrap();
        let r = lpsv_reply(addr);
        assert_eq!(
            r.text(),
            "Entering Long Passive Mode (6,16,32,1,13,184,0,0,0,0,0,0,0,0,0,0,0,1,2,195,80)"
        );
        let inner = r.text().split(['(', ')']).nth(1).unwrap();
        assert_eq!(parse_lprt(inner), Some(addr));
    }

    #[test]
    fn lpsv_reply_ipv4_mapped_uses_ipv4_form() {
        let r = lpsv_reply("[::ffff:10.0.0.1]:21".parse().unwrap());
        assert_eq!(r.text(), "Entering Long Passive Mode (4,4,10,0,0,1,2,0,21)");
    }

    #[test]
    fn spsv_reply_is_just_the_port() {
        assert_eq!(spsv_reply(40001).to_wire(), b"227 40001\r\n");
    }
}
