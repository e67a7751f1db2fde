//! Telnet control sequences on the control connection (IAC IP, IAC DM as sent
//! with ABOR, option negotiation) are removed before a line is parsed.

use std::borrow::Cow;

/// Interpret As Command: starts every Telnet sequence.
const IAC: u8 = 0xFF;
/// Subnegotiation begin and end (`IAC SB ... IAC SE`).
const SB: u8 = 250;
const SE: u8 = 240;
/// Option negotiation: WILL, WONT, DO, DONT; each is followed by one option byte.
const WILL: u8 = 251;
const DONT: u8 = 254;

/// Removes Telnet command sequences from one control line.
///
/// - `IAC WILL/WONT/DO/DONT <option>` is removed;
/// - `IAC IAC` is an escaped literal 0xFF byte and becomes one 0xFF;
/// - `IAC SB ... IAC SE` is removed whole;
/// - `IAC <any other byte>` (IP, DM, AO, AYT, NOP, ...) is removed;
/// - an IAC (or a negotiation) cut off at the end of the line is removed.
///
/// Telnet command bytes left at the start of a line whose IAC was lost are
/// removed too (see [`trim_orphaned_commands`]).
///
/// Valid UTF-8 never contains 0xFF, so a line without it is returned borrowed.
pub fn strip_telnet(line: &[u8]) -> Cow<'_, [u8]> {
    if !line.contains(&IAC) {
        return trim_orphaned_commands(Cow::Borrowed(line));
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b != IAC {
            out.push(b);
            i += 1;
            continue;
        }
        match line.get(i + 1) {
            None => i += 1,
            Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            Some(&(WILL..=DONT)) => i += 3,
            Some(&SB) => i = end_of_subnegotiation(line, i + 2),
            Some(_) => i += 2,
        }
    }
    trim_orphaned_commands(Cow::Owned(out))
}

/// Removes Telnet command codes (0xF0 to 0xFE) standing before the verb.
///
/// BSD `ftp` sends its Synch as `IAC` in urgent data followed by `DM`: where
/// the urgent byte is taken out of the stream (a socket without
/// SO_OOBINLINE, such as a load balancer's), a lone `DM` (0xF2) is left
/// before `ABOR`. A verb is ASCII, so such bytes before it are never part of
/// the command; bytes later in the line (a name in a legacy encoding) stay.
fn trim_orphaned_commands(line: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    let skip = line.iter().take_while(|b| (SE..=DONT).contains(*b)).count();
    match line {
        _ if skip == 0 => line,
        Cow::Borrowed(b) => Cow::Borrowed(&b[skip..]),
        Cow::Owned(mut v) => {
            v.drain(..skip);
            Cow::Owned(v)
        }
    }
}

/// The index just past the `IAC SE` that closes a subnegotiation whose data
/// starts at `from`, or the end of the line if it is never closed. `IAC IAC`
/// inside the data is an escaped 0xFF and does not end it.
fn end_of_subnegotiation(line: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < line.len() {
        if line[i] == IAC {
            match line.get(i + 1) {
                Some(&SE) => return i + 2,
                Some(_) => i += 2,
                None => return line.len(),
            }
        } else {
            i += 1;
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abor_with_interrupt_process_and_data_mark() {
        // RFC 959 4.1.3: Telnet IP, then Synch (IAC DM), then ABOR.
        assert_eq!(&*strip_telnet(b"\xff\xf4\xff\xf2ABOR"), b"ABOR");
    }

    #[test]
    fn abor_when_data_mark_went_out_of_band() {
        // The DM byte of the Synch is sent as TCP urgent data and may not be
        // in the stream at all.
        assert_eq!(&*strip_telnet(b"\xff\xf4ABOR"), b"ABOR");
    }

    #[test]
    fn abor_after_a_data_mark_whose_iac_went_out_of_band() {
        // BSD ftp: IAC IP in-band, IAC as urgent data (lost), then DM ABOR.
        assert_eq!(&*strip_telnet(b"\xff\xf4\xf2ABOR"), b"ABOR");
        assert_eq!(&*strip_telnet(b"\xf2ABOR"), b"ABOR");
    }

    #[test]
    fn command_bytes_after_the_verb_are_kept() {
        // 0xF2 is a letter in Latin-1 (ò): only bytes before the verb go.
        assert_eq!(&*strip_telnet(b"STOR \xf2.txt"), b"STOR \xf2.txt");
    }

    #[test]
    fn utf8_filename_without_iac_is_borrowed_untouched() {
        let line = "STOR r\u{e9}sum\u{e9} \u{1f600}.txt".as_bytes();
        let out = strip_telnet(line);
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(&*out, line);
    }

    #[test]
    fn option_negotiation_is_removed_with_its_option_byte() {
        // IAC WILL ECHO, IAC WONT 1, IAC DO SGA, IAC DONT 34
        let line = b"\xff\xfb\x01NO\xff\xfc\x01OP\xff\xfd\x03\xff\xfe\x22";
        assert_eq!(&*strip_telnet(line), b"NOOP");
    }

    #[test]
    fn escaped_iac_becomes_one_literal_ff() {
        assert_eq!(&*strip_telnet(b"STOR a\xff\xffb"), b"STOR a\xffb");
    }

    #[test]
    fn double_escaped_iac_stays_two_bytes() {
        assert_eq!(&*strip_telnet(b"\xff\xff\xff\xff"), b"\xff\xff");
    }

    #[test]
    fn subnegotiation_is_removed_whole() {
        // IAC SB TERMINAL-TYPE IS "VT100" IAC SE
        let line = b"\xff\xfa\x18\x00VT100\xff\xf0PWD";
        assert_eq!(&*strip_telnet(line), b"PWD");
    }

    #[test]
    fn escaped_iac_inside_subnegotiation_does_not_end_it() {
        let line = b"\xff\xfa\x18\xff\xff\xf0x\xff\xf0PWD";
        assert_eq!(&*strip_telnet(line), b"PWD");
    }

    #[test]
    fn unterminated_subnegotiation_swallows_the_rest() {
        assert_eq!(&*strip_telnet(b"NOOP\xff\xfa\x18abc"), b"NOOP");
    }

    #[test]
    fn other_two_byte_commands_are_removed() {
        // NOP (241), AO (245), AYT (246), GA (249)
        let line = b"\xff\xf1S\xff\xf5Y\xff\xf6S\xff\xf9T";
        assert_eq!(&*strip_telnet(line), b"SYST");
    }

    #[test]
    fn trailing_lone_iac_is_removed() {
        assert_eq!(&*strip_telnet(b"QUIT\xff"), b"QUIT");
    }

    #[test]
    fn truncated_negotiation_at_end_is_removed() {
        assert_eq!(&*strip_telnet(b"QUIT\xff\xfd"), b"QUIT");
    }

    #[test]
    fn stripped_line_is_owned() {
        assert!(matches!(strip_telnet(b"\xff\xf1NOOP"), Cow::Owned(_)));
    }
}
