//! gorae-image: everything about images that does not run a container.
//!
//! It owns the data root's content store (blobs by digest), the unpacked layers, the image
//! records (names to manifests), container snapshots (overlay upper/work dirs over image
//! layers), the registry client (pull and push over the distribution API) and the tarball
//! formats (`docker save`, OCI layout, rootfs import).
//!
//! It must not start containers or know about the engine: the engine asks it for a
//! snapshot's mount and for an image's config, and nothing else.
//!
//! Why the big dependencies are here:
//! - `tokio` + `reqwest` (hyper, rustls, hickory DNS): a registry client that downloads many
//!   blobs at once; rustls with the system roots, and a pure-Rust resolver because the
//!   binary is static and glibc's NSS cannot be used.
//! - `tar`, `flate2` (zlib-rs backend, the fastest inflate in pure Rust; zlib-rs is also a
//!   direct dependency only to turn on its `std` feature, i.e. run-time AVX2/PCLMULQDQ
//!   detection) and `zstd`: layer formats. `sha2` (uses SHA-NI when the CPU has it): digests.
//! - `rustix`: the *at() syscalls that keep layer extraction inside the layer directory.
//! - `indicatif`: per-layer progress bars like docker's.

pub mod digest;
pub mod error;
pub mod layout;
pub mod manifest;
pub mod media;
pub mod platform;
pub mod reference;

pub use digest::{Algorithm, Digest};
pub use error::{Error, Result};
pub use layout::DataRoot;
pub use manifest::{Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest};
pub use media::Compression;
pub use platform::Platform;
pub use reference::Reference;

pub mod archive;
pub mod gc;
pub mod layer;
pub mod registry;
pub mod store;

pub use store::{ImageRecord, Store};
