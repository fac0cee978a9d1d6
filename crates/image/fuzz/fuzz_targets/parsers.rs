//! Manifest, config, reference, digest and platform parsers on arbitrary input: they must
//! return an error, never panic, and what parses must print back to something that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

use gorae_image::{media, Digest, ImageConfig, Manifest, Platform, Reference};

fuzz_target!(|data: &[u8]| {
    for content_type in [None, Some(media::OCI_MANIFEST), Some(media::DOCKER_MANIFEST_LIST)] {
        let _ = Manifest::parse(data, content_type);
    }
    let _ = ImageConfig::parse(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = text.parse::<Reference>() {
        let again: Reference = reference
            .to_string()
            .parse()
            .expect("a reference prints as something that parses");
        assert_eq!(again.to_string(), reference.to_string());
    }
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string().parse::<Digest>().ok(), Some(digest));
    }
    if let Ok(platform) = text.parse::<Platform>() {
        let _ = platform.to_string();
    }
});
