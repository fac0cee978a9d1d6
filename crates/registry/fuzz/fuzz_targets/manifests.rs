//! Arbitrary bytes pushed as a manifest through `Storage::put_manifest` (or `cache_manifest`,
//! which does not require the referenced blobs). The first byte picks the Content-Type, the
//! reference (tag or digest) and put or cache; the rest is the manifest.
//!
//! Invariants: no panic; what is accepted hashes to the digest returned, reads back
//! byte-identical by tag and by digest with a media type it parses as, is listed by the
//! referrers API under its subject, and is gone (with its tag and referrer entry) once deleted.
//!
//! The storage lives on tmpfs and persists across inputs; repository `fuzz/app` holds blobs
//! the seed corpus references: `{}` (the empty config), `fuzz layer`, and a manifest of them
//! by digest (for indexes to point at).
//!
//! `GORAE_FUZZ_SHOW=1` prints what each push did (to see what a seed does).
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;

use gorae_image::{Digest, Manifest};
use gorae_registry::storage::StorageOptions;
use gorae_registry::Storage;

const ROOT: &str = "/dev/shm/gorae-fuzz-manifests";
const REPO: &str = "fuzz/app";
const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/json"),
    Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
];

struct Fixture {
    storage: Arc<Storage>,
    /// Pushed once and never deleted: inputs equal to it are left in place.
    seeded: Digest,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let _ = std::fs::remove_dir_all(ROOT);
        let storage = Storage::open(Path::new(ROOT), StorageOptions::default()).expect("storage");
        let push = |data: &[u8]| {
            let digest = Digest::sha256_of(data);
            let session = storage.start_upload(REPO).expect("start upload");
            let mut writer = storage.upload_writer(REPO, &session.id, None).expect("writer");
            writer.write(data).expect("write");
            writer.close().expect("close");
            storage.finish_upload(REPO, &session.id, &digest).expect("finish");
            digest
        };
        let config = push(b"{}");
        let layer = push(b"fuzz layer");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":10}}]}}"#
        );
        let digest = Digest::sha256_of(manifest.as_bytes());
        storage
            .put_manifest(REPO, &digest.to_string(), None, manifest.as_bytes())
            .expect("seed manifest");
        Fixture {
            storage,
            seeded: digest,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let Fixture { storage, seeded } = fixture();
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let by_digest = selector & 0x08 != 0;
    let cached = selector & 0x10 != 0;
    let digest = Digest::sha256_of(bytes);
    let reference = if by_digest {
        digest.to_string()
    } else {
        "latest".to_string()
    };
    let pushed = if cached {
        storage.cache_manifest(REPO, &reference, content_type, bytes)
    } else {
        storage.put_manifest(REPO, &reference, content_type, bytes)
    };
    if std::env::var_os("GORAE_FUZZ_SHOW").is_some() {
        eprintln!(
            "{reference} {content_type:?} cached={cached}: {:?}",
            pushed.as_ref().map(|p| &p.digest)
        );
    }
    let Ok(put) = pushed else {
        return;
    };
    assert_eq!(put.digest, digest);
    let mut media_type = None;
    for reference in [&reference, &digest.to_string()] {
        let stored = storage
            .get_manifest(REPO, reference)
            .expect("an accepted manifest reads back")
            .expect("an accepted manifest is there");
        assert_eq!(stored.digest, digest);
        assert!(
            stored.bytes == bytes,
            "{reference} reads back different bytes"
        );
        assert!(Manifest::parse(bytes, Some(&stored.media_type)).is_ok());
        media_type = Some(stored.media_type);
    }
    if let Some(subject) = &put.subject {
        let listed = storage.referrers(REPO, subject, None).expect("referrers");
        let entry = listed.iter().find(|d| d.digest == digest);
        let entry = entry.expect("an accepted referrer is listed under its subject");
        assert_eq!(entry.size, bytes.len() as u64);
        assert_eq!(Some(&entry.media_type), media_type.as_ref());
    }
    if &digest == seeded {
        return;
    }
    storage
        .delete_manifest(REPO, &digest.to_string())
        .expect("delete an accepted manifest");
    for reference in [&reference, &digest.to_string()] {
        let left = storage
            .get_manifest(REPO, reference)
            .expect("read after delete");
        assert!(left.is_none(), "{reference} still there after its delete");
    }
    if let Some(subject) = &put.subject {
        let listed = storage.referrers(REPO, subject, None).expect("referrers");
        assert!(
            listed.iter().all(|d| d.digest != digest),
            "a deleted referrer is listed"
        );
    }
});
