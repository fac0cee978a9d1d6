//! The htpasswd file: `user:hash` lines with bcrypt hashes, as `htpasswd -B` writes them.
//!
//! Only bcrypt is accepted. The other schemes htpasswd knows (`{SHA}`, `$apr1$` MD5, crypt and
//! plain text) are cheap to brute-force from a leaked file, so a file holding any of them is
//! refused at load with its line number (and never the hash).
//!
//! bcrypt is slow on purpose (tens of milliseconds at the usual costs) and Docker, Podman and
//! skopeo send Basic credentials with every request, so successful verifications are cached:
//! the key is a SHA-256 of user, password and stored hash (changing the file or the password
//! misses the cache), the cache is bounded and evicts oldest first. Failures are never cached,
//! so guessing stays as slow as bcrypt makes it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, IoContext, Result};

/// How many verified credentials are remembered.
const CACHE_ENTRIES: usize = 1024;

pub(super) struct Htpasswd {
    /// user → bcrypt hash.
    users: HashMap<String, String>,
    /// Verified against for unknown users, so a response's timing does not tell which users
    /// exist.
    dummy_hash: Option<String>,
    cache: Mutex<VerifiedCache>,
    /// bcrypt runs so far (tests check the cache with it).
    bcrypt_runs: AtomicU64,
}

impl Htpasswd {
    pub(super) fn load(path: &Path) -> Result<Htpasswd> {
        let text = std::fs::read_to_string(path).at(path)?;
        Htpasswd::parse(&text, path)
    }

    /// `path` is only for error messages.
    pub(super) fn parse(text: &str, path: &Path) -> Result<Htpasswd> {
        let bad = |line: usize, reason: String| Error::Config {
            path: PathBuf::from(path),
            reason: format!("line {line}: {reason}"),
        };
        let mut users = HashMap::new();
        let mut first_line = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim_end();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(bad(number, "expected user:hash".into()));
            };
            if user.is_empty() {
                return Err(bad(number, "empty user name".into()));
            }
            check_bcrypt(hash).map_err(|why| bad(number, format!("user {user:?}: {why}")))?;
            if let Some(earlier) = first_line.insert(user.to_string(), number) {
                return Err(bad(
                    number,
                    format!("user {user:?} is already defined on line {earlier}"),
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        let dummy_hash = users.values().next().and_then(|hash| dummy_like(hash));
        Ok(Htpasswd {
            users,
            dummy_hash,
            cache: Mutex::new(VerifiedCache::default()),
            bcrypt_runs: AtomicU64::new(0),
        })
    }

    /// Whether `password` is `user`'s.
    pub(super) fn verify(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            if let Some(dummy) = &self.dummy_hash {
                self.bcrypt(password, dummy);
            }
            return false;
        };
        let key = cache_key(user, password, hash);
        if self.cache().contains(&key) {
            return true;
        }
        let ok = self.bcrypt(password, hash);
        if ok {
            self.cache().insert(key);
        }
        ok
    }

    fn bcrypt(&self, password: &str, hash: &str) -> bool {
        self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
        bcrypt::verify(password, hash).unwrap_or(false)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        // The cache is a set of keys, consistent after any panic: a poisoned lock is fine.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(super) fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(Ordering::Relaxed)
    }
}

/// Why a stored hash is not one we accept, naming the scheme but not the hash.
fn check_bcrypt(hash: &str) -> std::result::Result<(), String> {
    let weak = if hash.starts_with("{SHA}") {
        Some("{SHA} (unsalted SHA-1)")
    } else if hash.starts_with("$apr1$") {
        Some("$apr1$ (MD5)")
    } else if !hash.starts_with('$') {
        Some("crypt or plain text")
    } else {
        None
    };
    if let Some(scheme) = weak {
        return Err(format!(
            "{scheme} password hashes are refused; only bcrypt is accepted (htpasswd -B)"
        ));
    }
    let parts = bcrypt::HashParts::from_str(hash)
        .map_err(|_| "not a valid bcrypt hash ($2y$, as htpasswd -B writes)".to_string())?;
    if !(4..=31).contains(&parts.get_cost()) {
        return Err(format!("bcrypt cost {} is out of range", parts.get_cost()));
    }
    Ok(())
}

/// A hash with the same cost as `hash`, of nothing anyone can type.
fn dummy_like(hash: &str) -> Option<String> {
    let cost = bcrypt::HashParts::from_str(hash).ok()?.get_cost();
    let parts = bcrypt::hash_with_salt([0u8; 1], cost, [0x5a; 16]).ok()?;
    Some(parts.format_for_version(bcrypt::Version::TwoY))
}

fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    // Lengths first, so ("ab","c") and ("a","bc") differ.
    for part in [user, password, hash] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// A bounded set that forgets its oldest entries.
#[derive(Default)]
struct VerifiedCache {
    keys: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl VerifiedCache {
    fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.contains(key)
    }

    fn insert(&mut self, key: [u8; 32]) {
        if !self.keys.insert(key) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > CACHE_ENTRIES {
            if let Some(oldest) = self.order.pop_front() {
                self.keys.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An htpasswd line made by the real tool (apache2-utils).
    pub(crate) fn htpasswd_line(user: &str, password: &str) -> String {
        let out = std::process::Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (apache2-utils) runs");
        assert!(out.status.success(), "htpasswd failed");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn tool_line(flag: &str, user: &str) -> String {
        let out = std::process::Command::new("htpasswd")
            .args([flag, "-bn", user, "pw"])
            .output()
            .expect("htpasswd (apache2-utils) runs");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn bcrypt_lines_from_htpasswd_verify() {
        let text = format!(
            "# users\n{}\n\n{}\n",
            htpasswd_line("alice", "wonderland"),
            htpasswd_line("bob", "builder")
        );
        let h = Htpasswd::parse(&text, Path::new("/etc/htpasswd")).unwrap();
        assert!(h.verify("alice", "wonderland"));
        assert!(h.verify("bob", "builder"));
        assert!(!h.verify("alice", "builder"));
        assert!(!h.verify("carol", "wonderland"));
        assert!(!h.verify("", ""));
    }

    #[test]
    fn weak_schemes_are_refused_with_the_line_number() {
        let good = htpasswd_line("alice", "pw");
        for (flag, scheme) in [
            ("-s", "{SHA}"),
            ("-m", "$apr1$"),
            ("-d", "crypt"),
            ("-p", "plain"),
        ] {
            let weak = tool_line(flag, "bob");
            let hash = weak.split_once(':').unwrap().1.to_string();
            let text = format!("{good}\n# comment\n{weak}\n");
            let e = Htpasswd::parse(&text, Path::new("/etc/reg/htpasswd"))
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains("/etc/reg/htpasswd") && e.contains("line 3"),
                "{e}"
            );
            assert!(e.contains("bob") && e.contains("bcrypt"), "{scheme}: {e}");
            assert!(!e.contains(&hash), "the hash leaked: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn malformed_lines_and_duplicates_are_refused() {
        let line = htpasswd_line("alice", "pw");
        for (text, want) in [
            ("no-colon\n".to_string(), "line 1"),
            ("alice:$2y$05$short\n".to_string(), "line 1"),
            (format!("{line}\n{line}\n"), "line 2"),
            (":$2y$\n".to_string(), "empty user"),
        ] {
            let e = Htpasswd::parse(&text, Path::new("h")).err().unwrap();
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn successful_checks_are_cached_and_failures_are_not() {
        let h = Htpasswd::parse(&htpasswd_line("alice", "pw"), Path::new("h")).unwrap();
        assert!(h.verify("alice", "pw"));
        assert_eq!(h.bcrypt_runs(), 1);
        assert!(h.verify("alice", "pw"));
        assert_eq!(h.bcrypt_runs(), 1, "the second check must hit the cache");
        assert!(!h.verify("alice", "wrong"));
        assert!(!h.verify("alice", "wrong"));
        assert_eq!(h.bcrypt_runs(), 3, "failures must not be cached");
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut cache = VerifiedCache::default();
        for i in 0..CACHE_ENTRIES as u32 + 10 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            cache.insert(key);
        }
        assert_eq!(cache.keys.len(), CACHE_ENTRIES);
        assert!(!cache.contains(&[0u8; 32]), "the oldest entry is evicted");
    }
}
