//! Arbitrary bytes as a layer blob (gzip or zstd if they start like one, else a plain tar),
//! unpacked into a data root whose sibling is a sentinel directory. Whatever the input,
//! unpacking must not panic, must leave no temp dir, and must change nothing outside the
//! layer directory: the sentinel and the data root's other contents stay as they were.
//!
//! Runs as root (device nodes, ownership, whiteouts), on tmpfs so nothing touches a disk.
//! The seed corpus has symlinks pointing at the sentinel's fixed path.
#![no_main]

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use gorae_image::layer::LayerStore;
use gorae_image::{Compression, DataRoot};

const BASE: &str = "/dev/shm/gorae-fuzz-unpack";

struct Fixture {
    root: DataRoot,
    store: LayerStore,
    sentinel: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let _ = fs::remove_dir_all(BASE);
        let sentinel = Path::new(BASE).join("sentinel");
        fs::create_dir_all(sentinel.join("etc")).unwrap();
        fs::write(sentinel.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let root = DataRoot::new(Path::new(BASE).join("root"));
        fs::create_dir_all(root.layers_dir().join("sha256")).unwrap();
        let store = LayerStore::open(&root).unwrap();
        Fixture {
            root,
            store,
            sentinel,
        }
    })
}

/// Every path under `dir` (not following symlinks), sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            }
            all.push(entry.path());
        }
    }
    all.sort();
    all
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let compression = Compression::sniff(data);
    let result = f
        .store
        .unpack(&mut Cursor::new(data), compression, None, "fuzz");
    if let Ok(unpacked) = result {
        assert!(f.store.has(&unpacked.diff_id));
        f.store.remove(&unpacked.diff_id).unwrap();
    }
    assert_eq!(
        listing(Path::new(BASE)),
        [
            Path::new(BASE).join("root"),
            f.root.layers_dir(),
            f.root.layers_dir().join("sha256"),
            f.root.layers_tmp_dir(),
            f.sentinel.clone(),
            f.sentinel.join("etc"),
            f.sentinel.join("etc/passwd"),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>(),
        "something appeared outside the layer, or a temp dir stayed"
    );
    let passwd = fs::read(f.sentinel.join("etc/passwd")).unwrap();
    assert_eq!(passwd, b"root:x:0:0::/root:/bin/sh\n");
});
