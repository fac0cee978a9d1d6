//! Stats and top of a real container (root; gorae-runc runs it): docker's stats JSON from
//! its cgroup, precpu from the previous sample, and ps rows of its processes only.

mod io_support;

use gorae_engine::{stats, top};
use io_support::{can_run, Container};

#[test]
fn stats_json_has_dockers_shape_and_real_values() {
    if !can_run() {
        return;
    }
    let c = Container::start("stats", &["sh", "-c", "while :; do :; done"]);
    let cgroup = stats::cgroup(&c.cgroups_path, &c.id).expect("the container's cgroup");
    let first = stats::sample(&cgroup).expect("a sample");
    let second = stats::sample(&cgroup).expect("a second sample");
    let v = stats::to_json(
        "web",
        &c.id,
        Some(&second),
        Some(&first),
        stats::is_v2(&cgroup),
    );
    assert_eq!(v["name"], "/web");
    assert_eq!(v["id"], c.id.as_str());
    assert!(v["pids_stats"]["current"].as_u64().unwrap() >= 1, "{v}");
    let cpu = &v["cpu_stats"];
    assert!(cpu["cpu_usage"]["total_usage"].as_u64().unwrap() > 0, "{v}");
    assert!(cpu["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(cpu["online_cpus"].as_u64().unwrap() >= 1);
    let pre = &v["precpu_stats"];
    assert!(
        pre["cpu_usage"]["total_usage"].as_u64().unwrap()
            <= cpu["cpu_usage"]["total_usage"].as_u64().unwrap()
    );
    let mem = &v["memory_stats"];
    assert!(mem["usage"].as_u64().unwrap() > 0, "{v}");
    // No limit set: the host's memory, which the CLI shows as the limit.
    assert!(mem["limit"].as_u64().unwrap() > 0);
    assert!(mem["limit"].as_u64().unwrap() < u64::MAX / 2);
    assert!(mem["stats"].is_object());
    assert!(v["read"].as_str().unwrap().ends_with('Z'));
    assert!(v["blkio_stats"].is_object());
}

#[tokio::test]
async fn top_lists_only_the_containers_processes() {
    if !can_run() {
        return;
    }
    let c = Container::start("top", &["sleep", "1001"]);
    let cgroup = stats::cgroup(&c.cgroups_path, &c.id).unwrap();
    let pids = cgroup.pids().unwrap();
    assert!(pids.contains(&c.pid));
    let v = top::top(&pids, "-ef").await.unwrap();
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"PID") && titles.contains(&"CMD"),
        "{titles:?}"
    );
    let rows = v["Processes"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    let cmd = rows[0]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cmd, "sleep 1001");
    let v = top::top(&pids, "-o pid,comm").await.unwrap();
    assert_eq!(v["Titles"], serde_json::json!(["PID", "COMMAND"]));
    assert_eq!(v["Processes"][0][0], c.pid.to_string());
}

// ---- through the engine (root; gorae-runc and its monitor)

#[path = "core_support/mod.rs"]
mod core_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_stats_and_top() {
    if !can_run() {
        return;
    }
    let root = core_support::Root::new();
    let engine = root.open().await;
    let id = core_support::create(
        &engine,
        Some("st"),
        core_support::request(&["sleep", "1002"]),
    )
    .await;
    // Not running: one zeroed sample, and top is a conflict.
    let mut rx = engine.stats("st", false, false).await.unwrap();
    let v = rx.recv().await.unwrap();
    assert_eq!(v["name"], "/st");
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    assert!(rx.recv().await.is_none());
    assert!(matches!(
        engine.top("st", None).await,
        Err(gorae_engine::Error::Conflict(_))
    ));
    engine.start(&id).await.unwrap();
    let mut rx = engine.stats("st", false, false).await.unwrap();
    let v = rx.recv().await.unwrap();
    assert_ne!(
        v["preread"], "0001-01-01T00:00:00Z",
        "stream=false has a precpu sample: {v}"
    );
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert!(rx.recv().await.is_none());
    let mut rx = engine.stats("st", true, false).await.unwrap();
    let first = rx.recv().await.unwrap();
    let second = rx.recv().await.unwrap();
    assert_eq!(second["preread"], first["read"]);
    drop(rx);
    let top = engine.top("st", None).await.unwrap();
    let rows = top["Processes"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{top}");
    assert!(rows[0]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .contains("sleep 1002"));
    root.teardown(engine).await;
}
