//! Telnet control sequences on the control connection (IAC IP, IAC DM as sent
//! with ABOR, option negotiation) are removed before a line is parsed.
