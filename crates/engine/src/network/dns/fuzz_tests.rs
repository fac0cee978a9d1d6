//! Hostile-input tests of the wire format and the table's answers: random bytes, every
//! truncation and every single-byte corruption of real queries, pointer loops, lying counts.
//! The property is "never panics, never answers what it cannot read".

use std::net::Ipv4Addr;

use super::records::{Records, ScopeOptions};
use super::wire::{self, RData, Response, WireError};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Everything a server does with a message, which must not panic.
fn exercise(msg: &[u8]) {
    let mut records = Records::new();
    let net = Ipv4Addr::new(10, 0, 0, 1);
    records.add_network(net, ScopeOptions::default());
    records.set_endpoint(net, Ipv4Addr::new(10, 0, 0, 2), &["web"]);
    if let Ok(q) = wire::parse_query(msg) {
        let key = q.question.key();
        let _ = records.lookup(net, &key);
        let _ = super::records::parse_reverse(&key);
        let out = Response {
            query: &q,
            rcode: wire::RCODE_NOERROR,
            authoritative: true,
            answers: &[RData::A(Ipv4Addr::LOCALHOST), RData::Ptr(key)],
            ttl: 600,
            limit: q.udp_limit(),
        }
        .to_bytes();
        // What we write, we can read back.
        assert!(wire::parse_response(&out).is_some(), "{msg:?}");
    }
    let _ = wire::parse_response(msg);
    let _ = wire::truncate(msg);
    let _ = wire::is_truncated(msg);
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = (rng.next() % 300) as usize;
        let mut msg = rng.bytes(len);
        // Make a good share look like queries, so parsing goes past the header.
        if msg.len() >= 12 && rng.next() & 1 == 0 {
            msg[2] &= 0x07; // QR=0, opcode 0
            msg[4] = 0;
            msg[5] = 1;
        }
        exercise(&msg);
    }
}

#[test]
fn truncations_and_corruptions_of_real_queries() {
    let mut rng = Rng(42);
    for q in [
        wire::build_query(1, "web", wire::TYPE_A, None),
        wire::build_query(2, "a.b.example.com", wire::TYPE_AAAA, Some(4096)),
        wire::build_query(3, "2.0.0.10.in-addr.arpa", wire::TYPE_PTR, Some(1232)),
    ] {
        for n in 0..=q.len() {
            exercise(&q[..n]);
        }
        for i in 0..q.len() {
            for _ in 0..32 {
                let mut m = q.clone();
                m[i] = rng.next() as u8;
                exercise(&m);
            }
        }
    }
}

#[test]
fn compression_pointer_loops_and_forward_pointers() {
    let header = [0u8, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let cases: [&[u8]; 5] = [
        &[0xC0, 12, 0, 1, 0, 1],           // points at itself
        &[0xC0, 14, 0xC0, 12, 0, 1, 0, 1], // forward, then back: refused at the first
        &[1, b'a', 0xC0, 12, 0, 1, 0, 1],  // a label, then back to the start: a loop
        &[0x40, 0, 0, 1, 0, 1],            // reserved label type
        &[0xC0],                           // half a pointer
    ];
    for case in cases {
        let msg = [&header[..], case].concat();
        assert_eq!(
            wire::parse_query(&msg),
            Err(WireError::Answerable {
                id: 1,
                flags: 0x0100,
                rcode: wire::RCODE_FORMERR
            }),
            "{case:?}"
        );
    }
    // A backward pointer is fine: the question's name is read through it.
    let mut msg = header.to_vec();
    msg[4..6].copy_from_slice(&[0, 2]);
    msg.extend_from_slice(&[3, b'w', b'e', b'b', 0, 0, 1, 0, 1, 0xC0, 12, 0, 1, 0, 1]);
    assert_eq!(wire::read_name(&msg, 21).map(|x| x.1), Some(23));
}

#[test]
fn overlong_names_and_lying_counts() {
    // 130 labels of one byte: 260 bytes on the wire, past the 255 limit.
    let mut msg = vec![0u8, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for _ in 0..130 {
        msg.extend_from_slice(&[1, b'a']);
    }
    msg.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert!(matches!(
        wire::parse_query(&msg),
        Err(WireError::Answerable { rcode: 1, .. })
    ));
    // ARCOUNT says 65535 with no records: the question is still answered, without EDNS.
    let mut q = wire::build_query(9, "web", wire::TYPE_A, None);
    q[10] = 0xFF;
    q[11] = 0xFF;
    let parsed = wire::parse_query(&q).unwrap();
    assert_eq!(parsed.edns_size, None);
    assert_eq!(parsed.question.key(), "web");
    // QDCOUNT 0 or 2: FORMERR. A response: dropped. Another opcode: NOTIMP.
    let mut q0 = q.clone();
    q0[5] = 0;
    assert!(matches!(
        wire::parse_query(&q0),
        Err(WireError::Answerable { rcode: 1, .. })
    ));
    let mut resp = q.clone();
    resp[2] |= 0x80;
    assert_eq!(wire::parse_query(&resp), Err(WireError::Junk));
    let mut notify = q.clone();
    notify[2] |= 4 << 3;
    assert!(matches!(
        wire::parse_query(&notify),
        Err(WireError::Answerable { rcode: 4, .. })
    ));
}

#[test]
fn answers_echo_the_question_and_respect_the_limit() {
    let q = wire::parse_query(&wire::build_query(77, "WeB.", wire::TYPE_A, None)).unwrap();
    assert_eq!(q.question.key(), "web");
    let many: Vec<RData> = (0..100)
        .map(|i| RData::A(Ipv4Addr::new(10, 0, 0, i)))
        .collect();
    let out = Response {
        query: &q,
        rcode: wire::RCODE_NOERROR,
        authoritative: true,
        answers: &many,
        ttl: 600,
        limit: q.udp_limit(),
    }
    .to_bytes();
    assert!(out.len() <= 512);
    let p = wire::parse_response(&out).unwrap();
    assert_eq!(p.id, 77);
    assert!(p.truncated() && p.authoritative());
    assert!(!p.answers.is_empty() && p.answers.len() < 100);
    // The question goes back with its case as asked.
    assert_eq!(&out[12..17], &[3, b'W', b'e', b'B', 0]);

    let qe = wire::parse_query(&wire::build_query(78, "web", wire::TYPE_A, Some(4096))).unwrap();
    assert_eq!(qe.edns_size, Some(4096));
    let out = Response {
        query: &qe,
        rcode: wire::RCODE_NOERROR,
        authoritative: true,
        answers: &many[..3],
        ttl: 600,
        limit: qe.udp_limit(),
    }
    .to_bytes();
    let p = wire::parse_response(&out).unwrap();
    assert_eq!(p.answers.len(), 3);
    assert!(!p.truncated());
    assert_eq!(&out[10..12], &[0, 1], "our OPT record is counted");
}

#[test]
fn odd_label_bytes_never_match_plain_names() {
    let mut records = Records::new();
    let net = Ipv4Addr::new(10, 0, 0, 1);
    records.set_endpoint(net, Ipv4Addr::new(10, 0, 0, 2), &["web.1"]);
    // One label "web.1" (a dot inside the label) is not the two labels web and 1.
    let mut msg = vec![0u8, 1, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5];
    msg.extend_from_slice(b"web.1");
    msg.extend_from_slice(&[0, 0, 1, 0, 1]);
    let q = wire::parse_query(&msg).unwrap();
    assert_eq!(q.question.key(), "web\\0461");
    assert_ne!(
        records.lookup(net, &q.question.key()),
        records.lookup(net, "web.1")
    );
}

#[test]
fn relayed_answers_must_match_the_question() {
    let q = wire::build_query(1, "www.Example.test", wire::TYPE_A, None);
    let reply = |name: &str, qtype: u16| {
        let rq = wire::parse_query(&wire::build_query(1, name, qtype, None)).unwrap();
        Response {
            query: &rq,
            rcode: 0,
            authoritative: false,
            answers: &[],
            ttl: 1,
            limit: 512,
        }
        .to_bytes()
    };
    assert!(wire::same_question(
        &q,
        &reply("WWW.example.TEST", wire::TYPE_A)
    ));
    assert!(!wire::same_question(
        &q,
        &reply("www.example.test", wire::TYPE_AAAA)
    ));
    assert!(!wire::same_question(&q, &reply("other.test", wire::TYPE_A)));
    assert!(!wire::same_question(&q, &q[..14]));
}
