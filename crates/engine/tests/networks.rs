//! The engine's networks through `Engine` (no daemon, no CLI): create/list/inspect/remove/
//! prune with docker's filters and errors, and a container's endpoint on a user network —
//! its address from the pool, its aliases, released at exit and reused. Nothing of the
//! root's networking is left at the end (bridges, table, namespace files).
//!
//! Needs root; skipped without.

mod core_support;

use core_support::*;
use gorae_engine::network::manager::{CreateNetwork, Ipam, IpamConfig};

fn links() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

fn filters(pairs: &[(&str, &str)]) -> gorae_engine::engine::Filters {
    let mut f = gorae_engine::engine::Filters::new();
    for (k, v) in pairs {
        f.entry(k.to_string()).or_default().push(v.to_string());
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_and_an_endpoint_through_the_engine() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let net = |name: &str, subnet: &str| CreateNetwork {
        name: name.into(),
        labels: Some([("team".to_string(), "a".to_string())].into()),
        ipam: (!subnet.is_empty()).then(|| Ipam {
            config: vec![IpamConfig {
                subnet: subnet.into(),
                ..IpamConfig::default()
            }],
            ..Ipam::default()
        }),
        ..CreateNetwork::default()
    };
    let made = engine
        .network_create(net("tnet", ""))
        .await
        .expect("create");
    let id = made["Id"].as_str().expect("Id").to_string();
    let n = engine.network_inspect("tnet").await.expect("inspect");
    assert_eq!(
        (n.id.as_str(), n.driver.as_str(), n.scope.as_str()),
        (id.as_str(), "bridge", "local")
    );
    let subnet = n.ipam.config[0].subnet.clone();
    let bridge = format!("gr-{}", &id[..8]);
    assert!(links().contains(&bridge), "{bridge} missing");

    let err = engine.network_create(net("tnet", "")).await.unwrap_err();
    assert_eq!(
        (err.status(), err.to_string()),
        (409, "network with name tnet already exists".into())
    );
    let err = engine
        .network_create(net("tover", &subnet))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 403, "{err}");
    assert_eq!(
        err.to_string(),
        "Pool overlaps with other one on this address space"
    );
    let mut bad = net("tdrv", "");
    bad.driver = "macvlan".into();
    assert_eq!(engine.network_create(bad).await.unwrap_err().status(), 400);
    let err = engine.network_remove("host").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "host is a pre-defined network and cannot be removed"
    );
    assert_eq!(
        engine.network_inspect("tover").await.unwrap_err().status(),
        404
    );

    let names = |list: Vec<gorae_engine::network::manager::NetworkRecord>| -> Vec<String> {
        list.into_iter().map(|n| n.name).collect()
    };
    let all = names(engine.network_list(filters(&[])).await.expect("list"));
    assert_eq!(all, ["bridge", "host", "none", "tnet"]);
    let custom = engine
        .network_list(filters(&[("type", "custom")]))
        .await
        .expect("list");
    assert_eq!(names(custom), ["tnet"]);
    let labelled = engine
        .network_list(filters(&[("label", "team=a")]))
        .await
        .expect("list");
    assert_eq!(names(labelled), ["tnet"]);
    let none = engine
        .network_list(filters(&[("label", "team=b")]))
        .await
        .expect("list");
    assert!(none.is_empty());

    // A container on it: an address of the pool and its alias, given back at exit.
    let mut req = request(&["sleep", "30"]);
    req.host_config.network_mode = "tnet".into();
    req.networking_config =
        Some(serde_json::json!({"EndpointsConfig": {"tnet": {"Aliases": ["db"]}}}));
    let c = create(&engine, Some("tweb"), req).await;
    engine.start(&c).await.expect("start");
    let info = inspect(&engine, &c).await;
    let ep = &info.network_settings["Networks"]["tnet"];
    let ip = ep["IPAddress"].as_str().expect("IPAddress").to_string();
    assert!(ip.ends_with(".2"), "{ip}");
    assert_eq!(ep["Aliases"], serde_json::json!(["db"]));
    assert_eq!(ep["NetworkID"], id.as_str());
    let n = engine.network_inspect("tnet").await.expect("inspect");
    assert_eq!(
        n.containers[&c].ipv4_address,
        format!("{ip}/{}", subnet.split('/').nth(1).unwrap())
    );
    let dangling = engine
        .network_list(filters(&[("dangling", "true")]))
        .await
        .expect("list");
    assert!(dangling.is_empty());
    assert_eq!(
        engine.network_remove("tnet").await.unwrap_err().status(),
        403
    );

    engine.kill(&c, None).await.expect("kill");
    eventually("the endpoint released", || {
        let engine = engine.clone();
        async move {
            engine
                .network_inspect("tnet")
                .await
                .is_ok_and(|n| n.containers.is_empty())
        }
    })
    .await;
    let netns = root.config.run_dir.join("netns").join(&c[..12]);
    assert!(!netns.exists());
    engine.start(&c).await.expect("start again");
    let info = inspect(&engine, &c).await;
    assert_eq!(
        info.network_settings["Networks"]["tnet"]["IPAddress"],
        ip.as_str()
    );
    engine.remove(&c, true, false).await.expect("remove");

    let pruned = engine.network_prune(filters(&[])).await.expect("prune");
    assert_eq!(pruned["NetworksDeleted"], serde_json::json!(["tnet"]));
    assert!(!links().contains(&bridge), "{bridge} left");
    let table = engine_table(&root);
    root.teardown(engine).await;
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft");
    let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
    assert!(!tables.contains(&format!("table ip {table}\n")), "{tables}");
    let default_bridge = format!("gr0-{}", &table["gorae-".len()..]);
    assert!(!links().contains(&default_bridge));
}

fn engine_table(root: &Root) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(root.path().as_os_str().as_encoded_bytes());
    format!("gorae-{}", hex::encode(&digest[..4]))
}
