//! Request paths and queries, references, and config text on arbitrary input: parsing must
//! never panic; a route that parses names a valid repository that is a safe relative path;
//! upload ids and tags are what the spec allows; errors are the spec's; percent-decoding
//! agrees with a plain reading of RFC 3986 (plus `+` as a space).
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;

use gorae_registry::error::ErrorCode;
use gorae_registry::http::{percent_decode, query_pairs};
use gorae_registry::names::{self, Reference, Route};
use gorae_registry::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    check_route(path);
    check_reference(text);
    check_decoding(text);
    let parts = query.split('&').filter(|p| !p.is_empty());
    for ((key, value), part) in query_pairs(query).zip(parts) {
        let (raw_key, raw_value) = part.split_once('=').unwrap_or((part, ""));
        assert_eq!(
            (key, value),
            (percent_decode(raw_key), percent_decode(raw_value))
        );
    }
    let _ = Config::parse(text);
});

fn check_route(path: &str) {
    match names::parse_route(path) {
        Ok(Some(route)) => {
            if let Some(name) = route.repository() {
                assert!(names::validate_name(name).is_ok(), "{name:?}");
                assert!(name.len() <= names::MAX_NAME_LEN);
                let safe = Path::new(name)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)));
                assert!(safe, "{name:?} is not a plain relative path");
            }
            match &route {
                Route::Upload { id, .. } => {
                    assert!(!id.is_empty() && id.len() <= 64);
                    assert!(
                        id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
                        "{id:?}"
                    );
                }
                Route::Manifest { reference, .. } => check_parsed_reference(reference),
                Route::Blob { digest, .. } | Route::Referrers { digest, .. } => {
                    assert_eq!(digest.to_string().parse().ok().as_ref(), Some(digest));
                }
                _ => {}
            }
        }
        Ok(None) => {}
        Err(e) => {
            let expected = [
                ErrorCode::NameInvalid,
                ErrorCode::DigestInvalid,
                ErrorCode::ManifestInvalid,
                ErrorCode::BlobUploadUnknown,
            ];
            assert!(expected.contains(&e.code), "{e}");
            let body: serde_json::Value =
                serde_json::from_slice(&e.body()).expect("an error body is JSON");
            assert_eq!(body["errors"][0]["code"], e.code.as_str());
            assert!(body["errors"][0]["message"].is_string());
        }
    }
}

fn check_reference(text: &str) {
    if let Ok(reference) = names::parse_reference(text) {
        check_parsed_reference(&reference);
        if let Reference::Tag(tag) = &reference {
            assert_eq!(tag, text);
        }
    }
}

/// A tag must be usable as a file name in the tags directory; a digest must print back.
fn check_parsed_reference(reference: &Reference) {
    match reference {
        Reference::Tag(tag) => {
            assert!(!tag.is_empty() && tag.len() <= 128, "{tag:?}");
            assert!(!tag.starts_with('.') && !tag.starts_with('-'), "{tag:?}");
            assert!(tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        }
        Reference::Digest(digest) => {
            let printed = reference.to_string();
            assert_eq!(printed.parse().ok().as_ref(), Some(digest));
            assert!(names::parse_reference(&printed).is_ok());
        }
    }
}

fn check_decoding(text: &str) {
    assert_eq!(percent_decode(text), reference_decode(text), "{text:?}");
    // Whatever is escaped byte by byte comes back exactly.
    assert_eq!(percent_decode(&escape(text)), text);
}

/// `%` and two hex digits is a byte, `+` a space, anything else itself; bytes that are not
/// UTF-8 become U+FFFD.
fn reference_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit();
        if escaped {
            out.push(hex_value(bytes[i + 1]) * 16 + hex_value(bytes[i + 2]));
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

fn escape(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}
