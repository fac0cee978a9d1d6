//! Layer entry names checked before anything touches the filesystem: a tar entry (or a
//! hardlink target) must name a path inside the layer, so absolute names (other than a bare
//! `/`, the root itself) and `..` components are refused outright rather than "cleaned", and
//! `.` and empty components are dropped (`./usr//bin` is `usr/bin`).

/// A normalised relative path inside a layer: components joined by `/`, none of them empty,
/// `.` or `..`. The empty path is the layer root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryPath {
    path: Vec<u8>,
    /// Where the last component starts in `path`.
    name_start: usize,
}

impl EntryPath {
    /// Checks and normalises an entry name as written in the tar. The error is the reason,
    /// for an `UnsafeLayerEntry`.
    pub(crate) fn parse(raw: &[u8]) -> Result<EntryPath, &'static str> {
        if raw.is_empty() {
            return Err("empty name");
        }
        if raw.contains(&0) {
            return Err("name contains a NUL byte");
        }
        // A bare "/" names the layer root itself (umoci writes one); it cannot reach out.
        if raw.starts_with(b"/") && raw.iter().any(|&b| b != b'/' && b != b'.') {
            return Err("absolute path");
        }
        let mut path = Vec::with_capacity(raw.len());
        let mut name_start = 0;
        for component in raw.split(|&b| b == b'/') {
            match component {
                b"" | b"." => continue,
                b".." => return Err("path has a .. component"),
                _ => {}
            }
            if !path.is_empty() {
                path.push(b'/');
            }
            name_start = path.len();
            path.extend_from_slice(component);
        }
        Ok(EntryPath { path, name_start })
    }

    pub(crate) fn is_root(&self) -> bool {
        self.path.is_empty()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.path
    }

    /// The parent directory, relative to the layer root (empty for top-level entries).
    pub(crate) fn dir(&self) -> &[u8] {
        &self.path[..self.name_start.saturating_sub(1)]
    }

    /// The last component (empty for the root).
    pub(crate) fn name(&self) -> &[u8] {
        &self.path[self.name_start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(raw: &str) -> (String, String) {
        let p = EntryPath::parse(raw.as_bytes()).unwrap();
        (
            String::from_utf8(p.dir().to_vec()).unwrap(),
            String::from_utf8(p.name().to_vec()).unwrap(),
        )
    }

    #[test]
    fn normalises() {
        assert_eq!(split("./usr//bin/sh"), ("usr/bin".into(), "sh".into()));
        assert_eq!(split("etc/"), ("".into(), "etc".into()));
        assert_eq!(split("a/./b/."), ("a".into(), "b".into()));
        assert!(EntryPath::parse(b"./").unwrap().is_root());
        assert!(EntryPath::parse(b".").unwrap().is_root());
        assert!(EntryPath::parse(b"/").unwrap().is_root());
    }

    #[test]
    fn refuses_escapes() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            "..",
            "a\0b",
            "//x",
        ] {
            assert!(EntryPath::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
