//! OCI whiteouts as they appear in a layer tar, and what they become for overlayfs: a
//! `.wh.<name>` file is a 0/0 character device named `<name>`, and `.wh..wh..opq` marks its
//! directory opaque with the `trusted.overlay.opaque` xattr.

/// The xattr overlayfs reads to hide everything below a directory in lower layers.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an entry's last path component means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary entry.
    None,
    /// `.wh..wh..opq`: the directory it is in hides lower layers' contents.
    Opaque,
    /// Some other `.wh..wh.` name (aufs bookkeeping): nothing to extract.
    Skip,
    /// `.wh.<name>`: `<name>` is deleted from lower layers.
    Remove(&'a [u8]),
}

impl<'a> Whiteout<'a> {
    /// Classifies an entry name; the error is the reason an invalid whiteout is refused.
    pub(crate) fn classify(name: &'a [u8]) -> Result<Whiteout<'a>, &'static str> {
        const PREFIX: &[u8] = b".wh.";
        if name == b".wh..wh..opq" {
            return Ok(Whiteout::Opaque);
        }
        if name.starts_with(b".wh..wh.") {
            return Ok(Whiteout::Skip);
        }
        match name.strip_prefix(PREFIX) {
            None => Ok(Whiteout::None),
            Some(b"" | b"." | b"..") => Err("whiteout of an invalid name"),
            Some(hidden) => Ok(Whiteout::Remove(hidden)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(Whiteout::classify(b"bin"), Ok(Whiteout::None));
        assert_eq!(Whiteout::classify(b".whx"), Ok(Whiteout::None));
        assert_eq!(Whiteout::classify(b".wh.bin"), Ok(Whiteout::Remove(b"bin")));
        assert_eq!(Whiteout::classify(b".wh..wh..opq"), Ok(Whiteout::Opaque));
        assert_eq!(Whiteout::classify(b".wh..wh.plnk"), Ok(Whiteout::Skip));
        assert!(Whiteout::classify(b".wh.").is_err());
        assert!(Whiteout::classify(b".wh..").is_err());
    }
}
