//! ipchains 1.3.9's option tables (command and option bits, the legality table, inversion
//! rules, long options) and a getopt_long emulation over them. Owns the tables; must not
//! parse option values (`args`) or build an invocation.

use crate::chains::model::{
    IP_FW_INV_DSTIP, IP_FW_INV_DSTPT, IP_FW_INV_FRAG, IP_FW_INV_PROTO, IP_FW_INV_SRCIP,
    IP_FW_INV_SRCPT, IP_FW_INV_SYN, IP_FW_INV_VIA,
};

use super::*;

// Command bits, in ipchains' order (cmdflags "IDDRALFZNXPMSC").
pub(super) const CMD_INSERT: u32 = 0x0001;
pub(super) const CMD_DELETE: u32 = 0x0002;
pub(super) const CMD_DELETE_NUM: u32 = 0x0004;
pub(super) const CMD_REPLACE: u32 = 0x0008;
pub(super) const CMD_APPEND: u32 = 0x0010;
pub(super) const CMD_LIST: u32 = 0x0020;
pub(super) const CMD_FLUSH: u32 = 0x0040;
pub(super) const CMD_ZERO: u32 = 0x0080;
pub(super) const CMD_NEW_CHAIN: u32 = 0x0100;
pub(super) const CMD_DELETE_CHAIN: u32 = 0x0200;
pub(super) const CMD_SET_POLICY: u32 = 0x0400;
pub(super) const CMD_MASQUERADE: u32 = 0x0800;
pub(super) const CMD_SET_MASQUERADE: u32 = 0x1000;
pub(super) const CMD_CHECK: u32 = 0x2000;
pub(super) const CMDFLAGS: &[u8; 14] = b"IDDRALFZNXPMSC";

// Option bits (optflags "nsdpjybvlxtifmsdo3").
pub(super) const OPT_NUMERIC: u32 = 0x00001;
pub(super) const OPT_SOURCE: u32 = 0x00002;
pub(super) const OPT_DESTINATION: u32 = 0x00004;
pub(super) const OPT_PROTOCOL: u32 = 0x00008;
pub(super) const OPT_JUMP: u32 = 0x00010;
pub(super) const OPT_TCPSYN: u32 = 0x00020;
pub(super) const OPT_BIDIR: u32 = 0x00040;
pub(super) const OPT_VERBOSE: u32 = 0x00080;
pub(super) const OPT_PRINTK: u32 = 0x00100;
pub(super) const OPT_EXPANDED: u32 = 0x00200;
pub(super) const OPT_TOS: u32 = 0x00400;
pub(super) const OPT_VIANAME: u32 = 0x00800;
pub(super) const OPT_FRAGMENT: u32 = 0x01000;
pub(super) const OPT_MARK: u32 = 0x02000;
pub(super) const OPT_SRCPT: u32 = 0x04000;
pub(super) const OPT_DSTPT: u32 = 0x08000;
pub(super) const OPT_NETLINK: u32 = 0x10000;
pub(super) const OPT_LINENUMBERS: u32 = 0x20000;
pub(super) const NUMBER_OF_OPT: usize = 18;
pub(super) const OPTFLAGS: &[u8; 18] = b"nsdpjybvlxtifmsdo3";

/// ipchains' `commands_v_options`: `+` compulsory, `x` illegal, space optional.
pub(super) const COMMANDS_V_OPTIONS: [&[u8; 18]; 14] = [
    /*INSERT*/ b"x        x       x",
    /*DELETE*/ b"x        x       x",
    /*DELETE_NUM*/ b"xxxxxxx xxxxxxxxxx",
    /*REPLACE*/ b"x     x  x       x",
    /*APPEND*/ b"x        x       x",
    /*LIST*/ b" xxxxxx x xxxxxxx ",
    /*FLUSH*/ b"xxxxxxx xxxxxxxxxx",
    /*ZERO*/ b"xxxxxxx xxxxxxxxxx",
    /*NEW_CHAIN*/ b"xxxxxxx xxxxxxxxxx",
    /*DEL_CHAIN*/ b"xxxxxxx xxxxxxxxxx",
    /*SET_POLICY*/ b"xxxxxxx xxxxxxxxxx",
    /*MASQUERADE*/ b"xxxxxxxxxxxxxxxxxx",
    /*SET_MASQ*/ b"xxxxxxx xxxxxxxxxx",
    /*CHECK*/ b"x+++x   xxx+ x  xx",
];

/// `inverse_for_options`.
pub(super) const INVERSE_FOR_OPTIONS: [u8; NUMBER_OF_OPT] = [
    0,
    IP_FW_INV_SRCIP,
    IP_FW_INV_DSTIP,
    IP_FW_INV_PROTO,
    0,
    IP_FW_INV_SYN,
    0,
    0,
    0,
    0,
    0,
    IP_FW_INV_VIA,
    IP_FW_INV_FRAG,
    0,
    IP_FW_INV_SRCPT,
    IP_FW_INV_DSTPT,
    0,
    0,
];

pub(super) fn bit_index(v: u32) -> usize {
    // ipchains' opt2char/cmd2char: shift until the value is 1 (index of the highest bit).
    (31 - v.max(1).leading_zeros()) as usize
}

pub(super) fn opt2char(o: u32) -> char {
    OPTFLAGS
        .get(bit_index(o))
        .map(|&b| b as char)
        .unwrap_or('?')
}

pub(super) fn cmd2char(c: u32) -> char {
    CMDFLAGS
        .get(bit_index(c))
        .map(|&b| b as char)
        .unwrap_or('?')
}

/// getopt_long's long option table: (name, has_arg 0/1/2, code).
pub(super) const LONG_OPTS: &[(&str, u8, char)] = &[
    ("append", 1, 'A'),
    ("delete", 1, 'D'),
    ("insert", 1, 'I'),
    ("replace", 1, 'R'),
    ("list", 2, 'L'),
    ("flush", 2, 'F'),
    ("zero", 2, 'Z'),
    ("check", 1, 'C'),
    ("new-chain", 1, 'N'),
    ("delete-chain", 1, 'X'),
    ("policy", 1, 'P'),
    ("masquerading", 0, 'M'),
    ("set", 1, 'S'),
    ("bidirectional", 0, 'b'),
    ("source", 1, 's'),
    ("destination", 1, 'd'),
    ("src", 1, 's'),
    ("dst", 1, 'd'),
    ("source-port", 1, '1'),
    ("destination-port", 1, '2'),
    ("icmp-type", 1, '1'),
    ("sport", 1, '1'),
    ("dport", 1, '2'),
    ("protocol", 1, 'p'),
    ("interface", 1, 'i'),
    ("jump", 1, 'j'),
    ("TOS", 1, 't'),
    ("mark", 1, 'm'),
    ("numeric", 0, 'n'),
    ("log", 0, 'l'),
    ("output", 2, 'o'),
    ("verbose", 0, 'v'),
    ("exact", 0, 'x'),
    ("fragments", 0, 'f'),
    ("syn", 0, 'y'),
    ("version", 0, 'V'),
    ("help", 0, 'h'),
    ("line-numbers", 0, '3'),
    ("no-warnings", 0, 'W'),
];

/// Short options: char → has_arg (0 none, 1 required, 2 optional), from
/// "-A:C:D:R:I:L::F::Z::N:X::P:MS:Vh::o::p:s:d:j:i:fbvm:nlt:xy".
pub(super) fn short_opt(c: char) -> Option<u8> {
    Some(match c {
        'A' | 'C' | 'D' | 'R' | 'I' | 'N' | 'P' | 'S' | 'p' | 's' | 'd' | 'j' | 'i' | 'm' | 't' => {
            1
        }
        'L' | 'F' | 'Z' | 'X' | 'h' | 'o' => 2,
        'M' | 'V' | 'f' | 'b' | 'v' | 'n' | 'l' | 'x' | 'y' => 0,
        _ => return None,
    })
}

/// The code getopt returns for a non-option argument in "-" (RETURN_IN_ORDER) mode.
pub(super) const NONOPT: char = '\u{1}';

/// A minimal glibc getopt_long in RETURN_IN_ORDER mode, with `optind` visible to the caller.
pub(super) struct Getopt<'a> {
    pub(super) args: &'a [&'a str],
    pub(super) optind: usize,
    /// Byte position inside `args[optind]` while walking a cluster of short options.
    pub(super) nextchar: usize,
    pub(super) done: bool,
}

impl<'a> Getopt<'a> {
    pub(super) fn new(args: &'a [&'a str]) -> Self {
        Getopt {
            args,
            optind: 0,
            nextchar: 0,
            done: false,
        }
    }

    pub(super) fn arg(&self, i: usize) -> Option<&'a str> {
        self.args.get(i).copied()
    }

    pub(super) fn next(&mut self) -> Result<Option<(char, Option<&'a str>)>, ParseError> {
        if self.done {
            return Ok(None);
        }
        if self.nextchar == 0 {
            let Some(a) = self.arg(self.optind) else {
                self.done = true;
                return Ok(None);
            };
            if a == "--" {
                self.optind += 1;
                self.done = true;
                return Ok(None);
            }
            if let Some(long) = a.strip_prefix("--") {
                self.optind += 1;
                return self.long(long).map(Some);
            }
            if a.len() > 1 && a.starts_with('-') {
                self.nextchar = 1;
            } else {
                self.optind += 1;
                return Ok(Some((NONOPT, Some(a))));
            }
        }
        let a = self.args[self.optind];
        let c = a[self.nextchar..].chars().next().unwrap_or('?');
        self.nextchar += c.len_utf8();
        let rest = &a[self.nextchar..];
        let Some(has_arg) = short_opt(c) else {
            if rest.is_empty() {
                self.optind += 1;
                self.nextchar = 0;
            }
            return err(format!("invalid option -- '{c}'"));
        };
        match has_arg {
            0 => {
                if rest.is_empty() {
                    self.optind += 1;
                    self.nextchar = 0;
                }
                Ok(Some((c, None)))
            }
            1 => {
                self.nextchar = 0;
                if !rest.is_empty() {
                    self.optind += 1;
                    Ok(Some((c, Some(rest))))
                } else if let Some(v) = self.arg(self.optind + 1) {
                    self.optind += 2;
                    Ok(Some((c, Some(v))))
                } else {
                    self.optind += 1;
                    err(format!("option requires an argument -- '{c}'"))
                }
            }
            _ => {
                self.nextchar = 0;
                self.optind += 1;
                Ok(Some((c, if rest.is_empty() { None } else { Some(rest) })))
            }
        }
    }

    pub(super) fn long(&mut self, body: &'a str) -> Result<(char, Option<&'a str>), ParseError> {
        let (name, value) = match body.find('=') {
            Some(i) => (&body[..i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let opt = match LONG_OPTS.iter().find(|o| o.0 == name) {
            Some(o) => *o,
            None => {
                let cands: Vec<_> = LONG_OPTS.iter().filter(|o| o.0.starts_with(name)).collect();
                match cands.first() {
                    None => return err(format!("unrecognized option '--{name}'")),
                    Some(first) => {
                        if cands.iter().any(|o| o.1 != first.1 || o.2 != first.2) {
                            return err(format!("option '--{name}' is ambiguous"));
                        }
                        **first
                    }
                }
            }
        };
        match (opt.1, value) {
            (0, Some(_)) => err(format!("option '--{}' doesn't allow an argument", opt.0)),
            (0, None) | (2, _) => Ok((opt.2, value)),
            (_, Some(v)) => Ok((opt.2, Some(v))),
            (_, None) => match self.arg(self.optind) {
                Some(v) => {
                    self.optind += 1;
                    Ok((opt.2, Some(v)))
                }
                None => err(format!("option '--{}' requires an argument", opt.0)),
            },
        }
    }
}
