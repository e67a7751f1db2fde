//! The FTP protocol, pure and without I/O: commands and their parser, replies and
//! their wire format, data-channel address syntax, listing lines, Telnet framing.

pub mod address;
pub mod command;
pub mod listing;
pub mod names;
pub mod parser;
pub mod reply;
pub mod telnet;
pub mod verbs;

pub use command::Command;
pub use parser::{parse, ParseError};
pub use reply::{Reply, ReplyCode};
