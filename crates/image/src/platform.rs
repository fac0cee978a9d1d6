//! Platforms (`os/arch[/variant]`) and choosing one manifest from an index.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::Descriptor;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this gorae binary runs on, in Go's (and so OCI's) names.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.into(),
            os: "linux".into(),
            os_version: None,
            os_features: None,
            variant: variant.map(String::from),
        }
    }

    /// Whether an index entry for `candidate` can run where `self` is wanted. A missing
    /// variant matches the architecture's default (arm64 is v8; amd64 has none).
    pub fn matches(&self, candidate: &Platform) -> bool {
        fn variant(p: &Platform) -> Option<&str> {
            match (p.architecture.as_str(), p.variant.as_deref()) {
                ("arm64", None) => Some("v8"),
                ("amd64", Some("v1")) => None,
                (_, v) => v,
            }
        }
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none() || variant(self) == variant(candidate))
    }

    /// Picks the manifest for this platform from an index's entries. Entries without a
    /// platform (attestations, artifacts) never match.
    pub fn select<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        manifests
            .iter()
            .filter(|d| crate::media::is_image_manifest(&d.media_type))
            .find(|d| d.platform.as_ref().is_some_and(|p| self.matches(p)))
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(value: &str) -> Result<Platform> {
        let bad = |reason| Error::InvalidPlatform {
            value: value.to_string(),
            reason,
        };
        let parts: Vec<&str> = value.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad("expected os/arch[/variant]"));
        }
        let ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !parts.iter().all(|p| ok(p)) {
            return Err(bad("only lowercase letters, digits and _ are allowed"));
        }
        let architecture = match parts[1] {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Ok(Platform {
            os: parts[0].into(),
            architecture: architecture.into(),
            os_version: None,
            os_features: None,
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn entry(p: &str) -> Descriptor {
        let mut d = Descriptor::new(
            crate::media::OCI_MANIFEST,
            Digest::sha256_of(p.as_bytes()),
            1,
        );
        d.platform = Some(p.parse().unwrap());
        d
    }

    #[test]
    fn selects_the_wanted_platform() {
        let list = [
            entry("linux/arm64/v8"),
            entry("linux/amd64"),
            entry("linux/arm/v7"),
        ];
        let want: Platform = "linux/amd64".parse().unwrap();
        assert_eq!(want.select(&list).unwrap(), &list[1]);
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(arm64.select(&list).unwrap(), &list[0]);
        let arm6: Platform = "linux/arm/v6".parse().unwrap();
        assert!(arm6.select(&list).is_none());
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/AMD64".parse::<Platform>().is_err());
    }
}
