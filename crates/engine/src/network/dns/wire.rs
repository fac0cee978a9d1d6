//! The DNS wire format (RFC 1035, the OPT record of RFC 6891): reading the one question of a
//! query and writing the server's own answers.
//!
//! Every read is bounds-checked and returns `None`/an error on bad input — this parses bytes
//! from any process that can reach a gateway address, so no input may panic it. Compression
//! pointers are followed only backwards, each before the labels it ends (which rules out
//! loops) and a name is cut off at 255 bytes, as RFC 1035 requires.

use std::net::Ipv4Addr;

/// Record types the server knows.
pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

/// Response codes.
pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const HEADER_LEN: usize = 12;
const MAX_NAME: usize = 255;
/// The UDP payload size a client gets without EDNS0 (RFC 1035 4.2.1).
pub const CLASSIC_UDP_SIZE: usize = 512;
/// What the server says it accepts in its own OPT record: the size DNS flag day 2020 settled
/// on, which avoids IP fragmentation on common paths.
pub const OUR_EDNS_SIZE: u16 = 1232;

/// Why a message could not be read as a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Not even a header, or a response (QR set): not worth an answer.
    Junk,
    /// A header we can answer with an error code (FORMERR, NOTIMP), carrying the id and the
    /// request's flags.
    Answerable { id: u16, flags: u16, rcode: u8 },
}

/// One question, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The labels as sent (case kept: an answer echoes them, which clients using 0x20 case
    /// randomisation check).
    pub labels: Vec<Vec<u8>>,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    /// The name for matching: lower-case, dot-separated, without the trailing dot. A byte
    /// that is not a plain hostname character (a dot inside a label, a space, a non-ASCII
    /// byte) is written as `\ddd`, so such a name never matches a table entry by accident.
    pub fn key(&self) -> String {
        let mut out = String::new();
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            for &b in label {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    out.push(b.to_ascii_lowercase() as char);
                } else {
                    out.push_str(&format!("\\{b:03}"));
                }
            }
        }
        out
    }
}

/// A parsed query: its header fields, its one question and its EDNS0 payload size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// The request's flags word (RD is copied into the response).
    pub flags: u16,
    pub question: Question,
    /// The UDP payload size from the query's OPT record, if it had one.
    pub edns_size: Option<u16>,
}

impl Query {
    /// The most bytes a UDP response to this query may have: 512, or the EDNS0 size the
    /// client gave (never less than 512, RFC 6891 6.2.5).
    pub fn udp_limit(&self) -> usize {
        self.edns_size
            .map_or(CLASSIC_UDP_SIZE, |n| (n as usize).max(CLASSIC_UDP_SIZE))
    }
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The id of any message at least two bytes long.
pub fn message_id(buf: &[u8]) -> Option<u16> {
    u16_at(buf, 0)
}

/// The flags word of a message with a full header.
pub fn message_flags(buf: &[u8]) -> Option<u16> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    u16_at(buf, 2)
}

/// Reads the name at `at`; returns its labels and the offset just past it (past the first
/// pointer, if it was compressed).
pub fn read_name(buf: &[u8], at: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut labels = Vec::new();
    let mut pos = at;
    // Where the labels being read began: a pointer must land before it, so every jump goes
    // strictly backwards past all bytes read so far, and the walk ends.
    let mut segment = at;
    let mut end = None;
    let mut total = 0usize;
    loop {
        let len = *buf.get(pos)? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    return Some((labels, end.unwrap_or(pos + 1)));
                }
                total += len + 1;
                if total + 1 > MAX_NAME {
                    return None;
                }
                labels.push(buf.get(pos + 1..pos + 1 + len)?.to_vec());
                pos += 1 + len;
            }
            0xC0 => {
                let target = (u16_at(buf, pos)? & 0x3FFF) as usize;
                if target >= segment {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
                segment = target;
            }
            _ => return None, // 0x40 and 0x80 label types are obsolete/reserved.
        }
    }
}

/// Skips a resource record at `at`, returning its type, class and ttl fields (for OPT: the
/// payload size in class) and the offset past it.
fn read_rr_head(buf: &[u8], at: usize) -> Option<(u16, u16, usize)> {
    let (_, pos) = read_name(buf, at)?;
    let rtype = u16_at(buf, pos)?;
    let class = u16_at(buf, pos + 2)?;
    let rdlen = u16_at(buf, pos + 8)? as usize;
    let next = pos + 10 + rdlen;
    if next > buf.len() {
        return None;
    }
    Some((rtype, class, next))
}

/// Reads a query. Lenient about what follows the question (lying counts in the answer,
/// authority and additional sections only lose the EDNS0 size); strict about the header and
/// the question.
pub fn parse_query(buf: &[u8]) -> Result<Query, WireError> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::Junk);
    }
    let id = u16_at(buf, 0).ok_or(WireError::Junk)?;
    let flags = u16_at(buf, 2).ok_or(WireError::Junk)?;
    if flags & FLAG_QR != 0 {
        return Err(WireError::Junk);
    }
    let formerr = WireError::Answerable {
        id,
        flags,
        rcode: RCODE_FORMERR,
    };
    if (flags >> 11) & 0xF != 0 {
        return Err(WireError::Answerable {
            id,
            flags,
            rcode: RCODE_NOTIMP,
        });
    }
    let counts: Vec<u16> = (0..4)
        .map(|i| u16_at(buf, 4 + 2 * i).unwrap_or(0))
        .collect();
    if counts[0] != 1 {
        return Err(formerr);
    }
    let (labels, pos) = read_name(buf, HEADER_LEN).ok_or(formerr.clone())?;
    let qtype = u16_at(buf, pos).ok_or(formerr.clone())?;
    let qclass = u16_at(buf, pos + 2).ok_or(formerr)?;
    let edns_size = find_opt(
        buf,
        pos + 4,
        counts[1] as usize + counts[2] as usize,
        counts[3],
    );
    Ok(Query {
        id,
        flags,
        question: Question {
            labels,
            qtype,
            qclass,
        },
        edns_size,
    })
}

/// The payload size of the first OPT record in the additional section, skipping `skip`
/// records first; `None` when the records do not parse.
fn find_opt(buf: &[u8], mut pos: usize, skip: usize, additional: u16) -> Option<u16> {
    for _ in 0..skip {
        pos = read_rr_head(buf, pos)?.2;
    }
    for _ in 0..additional {
        let (rtype, class, next) = read_rr_head(buf, pos)?;
        if rtype == TYPE_OPT {
            return Some(class);
        }
        pos = next;
    }
    None
}

/// The data of one answer record the server writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    /// A PTR's target, dot-separated, without the trailing dot.
    Ptr(String),
}

/// A response from the server's own data. Answers that would push the message past `limit`
/// bytes are left out and TC is set (the client retries over TCP).
pub struct Response<'a> {
    pub query: &'a Query,
    pub rcode: u8,
    /// Whether the server is the authority for the name (its own names) or relays.
    pub authoritative: bool,
    pub answers: &'a [RData],
    pub ttl: u32,
    pub limit: usize,
}

impl Response<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        let q = self.query;
        let mut flags = FLAG_QR | FLAG_RA | (q.flags & FLAG_RD) | self.rcode as u16;
        if self.authoritative {
            flags |= FLAG_AA;
        }
        let mut out = Vec::with_capacity(128);
        push_header(&mut out, q.id, flags, [1, 0, 0, 0]);
        for label in &q.question.labels {
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
        out.extend_from_slice(&q.question.qtype.to_be_bytes());
        out.extend_from_slice(&q.question.qclass.to_be_bytes());
        let opt_len = if q.edns_size.is_some() { 11 } else { 0 };
        let mut count = 0u16;
        for rdata in self.answers {
            let rr = answer_rr(rdata, self.ttl);
            if out.len() + rr.len() + opt_len > self.limit {
                set_flag(&mut out, FLAG_TC);
                break;
            }
            out.extend_from_slice(&rr);
            count += 1;
        }
        out[6..8].copy_from_slice(&count.to_be_bytes());
        if q.edns_size.is_some() {
            push_opt(&mut out);
        }
        out
    }
}

/// A header-only error response (FORMERR, NOTIMP) to a message we could not read further.
pub fn error_response(id: u16, req_flags: u16, rcode: u8) -> Vec<u8> {
    let flags = FLAG_QR | FLAG_RA | (req_flags & (FLAG_RD | 0x7800)) | rcode as u16;
    let mut out = Vec::with_capacity(HEADER_LEN);
    push_header(&mut out, id, flags, [0, 0, 0, 0]);
    out
}

/// Cuts a relayed response down to header and question with TC set, for a UDP client that
/// cannot take it whole. `None` if the response's question does not parse.
pub fn truncate(resp: &[u8]) -> Option<Vec<u8>> {
    if resp.len() < HEADER_LEN || u16_at(resp, 4)? != 1 {
        return None;
    }
    let (_, pos) = read_name(resp, HEADER_LEN)?;
    let end = pos + 4;
    let mut out = resp.get(..end)?.to_vec();
    out[6..12].fill(0);
    set_flag(&mut out, FLAG_TC);
    Some(out)
}

/// Whether a reply carries the same question as the query (names compared without case):
/// a relayed answer to some other question is not passed on.
pub fn same_question(query: &[u8], reply: &[u8]) -> bool {
    let question = |m: &[u8]| {
        if u16_at(m, 4)? != 1 {
            return None;
        }
        let (labels, pos) = read_name(m, HEADER_LEN)?;
        let labels: Vec<Vec<u8>> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
        Some((labels, u16_at(m, pos)?, u16_at(m, pos + 2)?))
    };
    matches!((question(query), question(reply)), (Some(a), Some(b)) if a == b)
}

/// A message's response code (0 for anything too short to have one).
pub fn rcode(msg: &[u8]) -> u8 {
    message_flags(msg).map_or(0, |f| (f & 0xF) as u8)
}

/// Whether a message has TC set.
pub fn is_truncated(msg: &[u8]) -> bool {
    message_flags(msg).is_some_and(|f| f & FLAG_TC != 0)
}

/// Whether a message is a response (QR set).
pub fn is_response(msg: &[u8]) -> bool {
    message_flags(msg).is_some_and(|f| f & FLAG_QR != 0)
}

/// Rewrites a message's id in place.
pub fn set_id(msg: &mut [u8], id: u16) {
    if msg.len() >= 2 {
        msg[..2].copy_from_slice(&id.to_be_bytes());
    }
}

fn set_flag(msg: &mut [u8], flag: u16) {
    let f = u16::from_be_bytes([msg[2], msg[3]]) | flag;
    msg[2..4].copy_from_slice(&f.to_be_bytes());
}

fn push_header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

/// An answer record whose owner is the question's name, by a pointer to offset 12.
fn answer_rr(rdata: &RData, ttl: u32) -> Vec<u8> {
    let mut rr = vec![0xC0, 0x0C];
    let (rtype, data) = match rdata {
        RData::A(ip) => (TYPE_A, ip.octets().to_vec()),
        RData::Ptr(name) => (TYPE_PTR, encode_name(name)),
    };
    rr.extend_from_slice(&rtype.to_be_bytes());
    rr.extend_from_slice(&CLASS_IN.to_be_bytes());
    rr.extend_from_slice(&ttl.to_be_bytes());
    rr.extend_from_slice(&(data.len() as u16).to_be_bytes());
    rr.extend_from_slice(&data);
    rr
}

/// A dotted name in wire form; labels past 63 bytes are cut, the name past 255 bytes.
pub fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        if out.len() + bytes.len() + 2 > MAX_NAME {
            break;
        }
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
    out
}

/// Adds the server's OPT record and counts it in ARCOUNT.
fn push_opt(out: &mut Vec<u8>) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&OUR_EDNS_SIZE.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    out[10..12].copy_from_slice(&1u16.to_be_bytes());
}

/// Builds a query (for the forwarder's tests and for clients in tests).
pub fn build_query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    push_header(&mut out, id, FLAG_RD, [1, 0, 0, u16::from(edns.is_some())]);
    out.extend_from_slice(&encode_name(name));
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    if let Some(size) = edns {
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    out
}

/// A response as a test or a client reads it: rcode, flags and the A/PTR answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub id: u16,
    pub flags: u16,
    pub rcode: u8,
    pub answers: Vec<RData>,
}

impl Parsed {
    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TC != 0
    }
    pub fn authoritative(&self) -> bool {
        self.flags & FLAG_AA != 0
    }
}

/// Reads a response's header and its A and PTR answers (other types are skipped).
pub fn parse_response(buf: &[u8]) -> Option<Parsed> {
    let id = u16_at(buf, 0)?;
    let flags = message_flags(buf)?;
    let (qd, an) = (u16_at(buf, 4)?, u16_at(buf, 6)?);
    let mut pos = HEADER_LEN;
    for _ in 0..qd {
        pos = read_name(buf, pos)?.1 + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let (_, p) = read_name(buf, pos)?;
        let rtype = u16_at(buf, p)?;
        let rdlen = u16_at(buf, p + 8)? as usize;
        let data = buf.get(p + 10..p + 10 + rdlen)?;
        match rtype {
            TYPE_A if rdlen == 4 => {
                answers.push(RData::A(Ipv4Addr::new(data[0], data[1], data[2], data[3])))
            }
            TYPE_PTR => {
                let (labels, _) = read_name(buf, p + 10)?;
                let name: Vec<String> = labels
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect();
                answers.push(RData::Ptr(name.join(".")));
            }
            _ => {}
        }
        pos = p + 10 + rdlen;
    }
    Some(Parsed {
        id,
        flags,
        rcode: (flags & 0xF) as u8,
        answers,
    })
}
