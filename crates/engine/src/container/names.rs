//! Container names: Docker's rule for a valid name and its random `adjective_surname` names
//! for containers created without one.

use crate::error::{Error, Result};

const ADJECTIVES: &[&str] = &[
    "agile", "amazing", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "daring",
    "eager", "elegant", "fervent", "fond", "gallant", "gentle", "happy", "hopeful", "jolly",
    "keen", "kind", "lucid", "merry", "modest", "nifty", "noble", "patient", "quirky", "serene",
    "sharp", "steady", "sunny", "swift", "tender", "upbeat", "vivid", "wise", "witty", "zealous",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "babbage",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "faraday",
    "fermat",
    "gauss",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamarr",
    "lovelace",
    "maxwell",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "pasteur",
    "ramanujan",
    "ritchie",
    "shannon",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wozniak",
    "yalow",
];

/// The name as stored (without "/"), or Docker's 400 for an invalid one.
pub fn validate(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut bytes = bare.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bare.len() >= 2
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok {
        Ok(bare.to_string())
    } else {
        Err(Error::InvalidParameter(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// A random `adjective_surname`; `attempt` > 0 appends a digit, as Docker does after a clash.
pub fn random(seed: &[u8], attempt: usize) -> String {
    let a = usize::from(seed.first().copied().unwrap_or(0))
        | usize::from(seed.get(1).copied().unwrap_or(0)) << 8;
    let s = usize::from(seed.get(2).copied().unwrap_or(0))
        | usize::from(seed.get(3).copied().unwrap_or(0)) << 8;
    let name = format!(
        "{}_{}",
        ADJECTIVES[a % ADJECTIVES.len()],
        SURNAMES[s % SURNAMES.len()]
    );
    if attempt == 0 {
        name
    } else {
        format!(
            "{name}{}",
            usize::from(seed.get(4).copied().unwrap_or(0)) % 10 + attempt
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_docker() {
        assert_eq!(validate("/web").unwrap(), "web");
        assert_eq!(validate("a.b_c-1").unwrap(), "a.b_c-1");
        for bad in ["", "/", "a", "-x", "_x", "a b", "a/b", "x:y", "/.x"] {
            let err = validate(bad).unwrap_err().to_string();
            assert!(
                err.contains("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn random_names_are_valid() {
        for seed in [[0u8; 5], [255; 5], [1, 2, 3, 4, 5]] {
            for attempt in 0..3 {
                let name = random(&seed, attempt);
                assert!(validate(&name).is_ok(), "{name}");
            }
        }
    }
}
