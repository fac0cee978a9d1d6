//! `gorae registry serve` against real clients: its own raw-HTTP spec walk, skopeo, podman,
//! gorae's own push/pull, and docker through dockerd; the crash test (kill -9 during 50
//! pushes); GC under load; bad input. Needs root, skopeo, umoci, podman, dockerd.

mod support;

use support::registry_server::GoraeRegistry;

#[test]
fn base_endpoint_answers_with_the_api_version() {
    let reg = GoraeRegistry::start("");
    let r = reg.request("GET", "/v2/", &[], b"");
    assert_eq!(r.status, 200, "{}", reg.log());
    assert_eq!(
        r.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );
}
