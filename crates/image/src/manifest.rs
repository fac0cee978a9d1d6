//! Manifests, indexes and image configs: parsed defensively from untrusted JSON.
//!
//! Our own serde types rather than a generic library's: they accept both the OCI and the
//! Docker schema 2 spellings, keep only what gorae uses, and refuse documents that are too
//! large or that lie about their kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media;
use crate::platform::Platform;

/// Manifests and configs larger than this are refused (the distribution spec suggests 4 MiB).
pub const MAX_DOCUMENT_SIZE: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            artifact_type: None,
        }
    }
}

/// An OCI image manifest or a Docker schema 2 manifest (same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image index or a Docker manifest list (same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

// One is parsed per pull or push and consumed at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

impl Manifest {
    /// Parses a manifest or index. `content_type` is what the registry (or the enclosing
    /// descriptor) said it is; the document's own `mediaType` must agree with it.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<(Manifest, String)> {
        let invalid = |reason: String| Error::InvalidDocument {
            what: "manifest".into(),
            reason,
        };
        if bytes.len() > MAX_DOCUMENT_SIZE {
            return Err(invalid(format!("larger than {MAX_DOCUMENT_SIZE} bytes")));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            schema_version: Option<u32>,
            media_type: Option<String>,
            manifests: Option<serde::de::IgnoredAny>,
            layers: Option<serde::de::IgnoredAny>,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let declared = probe.media_type.as_deref();
        let content_type = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim())
            .filter(|c| !c.is_empty() && *c != "application/json" && *c != "text/plain");
        if let (Some(d), Some(c)) = (declared, content_type) {
            if d != c {
                return Err(invalid(format!("mediaType {d:?} does not match {c:?}")));
            }
        }
        let media_type = match declared.or(content_type) {
            Some(m) => m.to_string(),
            None if probe.manifests.is_some() => media::OCI_INDEX.to_string(),
            None if probe.layers.is_some() => media::OCI_MANIFEST.to_string(),
            None => return Err(invalid("neither layers nor manifests".into())),
        };
        if media_type == media::DOCKER_MANIFEST_V1_SIGNED || probe.schema_version == Some(1) {
            return Err(Error::UnsupportedMediaType {
                what: "manifest (Docker schema 1 is deprecated)".into(),
                media_type,
            });
        }
        if probe.schema_version != Some(2) {
            return Err(invalid("schemaVersion must be 2".into()));
        }
        let parsed = if media::is_index(&media_type) {
            Manifest::Index(serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?)
        } else if media::is_image_manifest(&media_type) {
            Manifest::Image(serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?)
        } else {
            return Err(Error::UnsupportedMediaType {
                what: "manifest".into(),
                media_type,
            });
        };
        Ok((parsed, media_type))
    }
}

/// The parts of an image config that gorae reads. The raw JSON stays in the content store,
/// so `image inspect` and push show every field, known or not.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig> {
        let invalid = |reason: String| Error::InvalidDocument {
            what: "image config".into(),
            reason,
        };
        if bytes.len() > MAX_DOCUMENT_SIZE {
            return Err(invalid(format!("larger than {MAX_DOCUMENT_SIZE} bytes")));
        }
        let config: ImageConfig =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if config.rootfs.kind != "layers" {
            return Err(invalid(format!(
                "rootfs.type is {:?}, not \"layers\"",
                config.rootfs.kind
            )));
        }
        Ok(config)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The run-time defaults an image gives its containers (Docker's field names, which OCI
/// kept).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
}

/// Durations are nanoseconds, as Docker stores them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_docker_and_oci_manifests() {
        for mt in [media::DOCKER_MANIFEST, media::OCI_MANIFEST] {
            let doc = format!(
                r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"x","digest":"{EMPTY}","size":0}},"layers":[]}}"#
            );
            let (m, t) = Manifest::parse(doc.as_bytes(), Some(mt)).unwrap();
            assert!(matches!(m, Manifest::Image(_)));
            assert_eq!(t, mt);
        }
    }

    #[test]
    fn refuses_lies_and_junk() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
            media::OCI_INDEX
        );
        assert!(Manifest::parse(doc.as_bytes(), Some(media::OCI_MANIFEST)).is_err());
        assert!(Manifest::parse(b"[]", None).is_err());
        assert!(Manifest::parse(b"{\"schemaVersion\":1,\"fsLayers\":[]}", None).is_err());
        assert!(Manifest::parse(&vec![b' '; MAX_DOCUMENT_SIZE + 1], None).is_err());
        let bad_digest = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../x","size":0},"layers":[]}"#;
        assert!(Manifest::parse(bad_digest.as_bytes(), None).is_err());
    }

    #[test]
    fn config_keeps_run_defaults() {
        let doc = r#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["sh"],
          "Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},"StopSignal":"SIGTERM"},
          "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = ImageConfig::parse(doc.as_bytes()).unwrap();
        let cc = c.config.unwrap();
        assert_eq!(cc.cmd.unwrap(), ["sh"]);
        assert_eq!(cc.healthcheck.unwrap().interval, Some(1_000_000_000));
    }
}
