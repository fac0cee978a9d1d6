//! The detach sequence (ctrl-p ctrl-q unless `--detach-keys` says otherwise), watched in
//! what the terminal types during a tty session, as docker's CLI does: the sequence is not
//! sent to the container, it ends the session and leaves the container running. A partial
//! sequence followed by another key is sent on as typed.

/// Docker's default: ctrl-p, ctrl-q.
const DEFAULT: [u8; 2] = [16, 17];

/// `ctrl-p,ctrl-q`, `a,ctrl-[`: comma-separated single characters or ctrl-<key>.
pub fn parse_keys(text: &str) -> Option<Vec<u8>> {
    text.split(',')
        .map(|key| {
            let key = key.trim();
            match key.strip_prefix("ctrl-") {
                Some(rest) if rest.len() == 1 => {
                    let c = rest.as_bytes()[0].to_ascii_lowercase();
                    match c {
                        b'a'..=b'z' => Some(c - b'a' + 1),
                        b'@' => Some(0),
                        b'[' => Some(27),
                        b'\\' => Some(28),
                        b']' => Some(29),
                        b'^' => Some(30),
                        b'_' => Some(31),
                        _ => None,
                    }
                }
                _ if key.len() == 1 => Some(key.as_bytes()[0]),
                _ => None,
            }
        })
        .collect()
}

/// A stream filter that holds back a prefix of the sequence until it knows.
#[derive(Debug)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeProxy {
    /// The keys of `--detach-keys`, docker's default when absent or invalid.
    pub fn new(detach_keys: Option<&str>) -> EscapeProxy {
        let keys = detach_keys
            .and_then(parse_keys)
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| DEFAULT.to_vec());
        EscapeProxy { keys, matched: 0 }
    }

    /// The bytes to send on for `input`, and whether the sequence is complete (then the
    /// bytes before it are still to be sent, and the rest of `input` is dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_key_specs() {
        assert_eq!(parse_keys("ctrl-p,ctrl-q"), Some(vec![16, 17]));
        assert_eq!(parse_keys("ctrl-a,x,ctrl-["), Some(vec![1, b'x', 27]));
        assert_eq!(parse_keys("ctrl-1"), None);
        assert_eq!(parse_keys("abc"), None);
    }

    #[test]
    fn detects_the_sequence_across_reads() {
        let mut p = EscapeProxy::new(None);
        assert_eq!(p.feed(b"ls\x10"), (b"ls".to_vec(), false));
        assert_eq!(p.feed(b"\x11more"), (Vec::new(), true));
    }

    #[test]
    fn a_broken_sequence_is_sent_as_typed() {
        let mut p = EscapeProxy::new(None);
        assert_eq!(p.feed(b"\x10x"), (b"\x10x".to_vec(), false));
        assert_eq!(p.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut custom = EscapeProxy::new(Some("ctrl-x"));
        assert_eq!(custom.feed(b"ab\x18c"), (b"ab".to_vec(), true));
        let mut fallback = EscapeProxy::new(Some("nonsense"));
        assert_eq!(fallback.feed(b"\x10\x11"), (Vec::new(), true));
    }
}
