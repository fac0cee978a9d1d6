//! Containers outlive the engine: an engine dropped while its containers run (as a daemon
//! that crashed) and a new one opened on the same root find them running, record the exit of
//! one that ended meanwhile, and can stop and remove them; nothing is left afterwards.

mod core_support;

use core_support::*;
use gorae_engine::engine::WaitCondition;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_containers_survive_the_engine() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let gate = tempfile::tempdir().expect("gate dir");
    let engine = root.open().await;
    let sleeper = create(&engine, Some("sleeper"), request(&["sleep", "1000"])).await;
    let mut req = request(&[
        "sh",
        "-c",
        "echo waiting; while [ ! -e /gate/go ]; do sleep 0.05; done; exit 7",
    ]);
    req.host_config.binds = Some(vec![format!("{}:/gate", gate.path().display())]);
    let gated = create(&engine, Some("gated"), req).await;
    let created = create(&engine, Some("created"), request(&["true"])).await;
    engine.start(&sleeper).await.expect("start");
    engine.start(&gated).await.expect("start");
    let sleeper_pid = inspect(&engine, &sleeper).await.state.pid;
    // The "crash": the engine goes away with its containers running.
    drop(engine);

    // The gated container exits while no engine is there; its monitor records it.
    std::fs::write(gate.path().join("go"), b"").expect("open the gate");
    let exit_file = root.config.monitor_dir(&gated).join("exit.json");
    eventually("the monitor's exit.json", || {
        let exists = exit_file.exists() && std::fs::read(&exit_file).is_ok_and(|d| !d.is_empty());
        async move { exists }
    })
    .await;
    let monitor_pid = root.config.monitor_dir(&gated).join("monitor.pid");
    eventually("the gated monitor to finish", || {
        let gone = !monitor_pid.exists();
        async move { gone }
    })
    .await;

    let engine = root.open().await;
    let c = inspect(&engine, &sleeper).await;
    assert_eq!(c.state.status, "running");
    assert_eq!(c.state.pid, sleeper_pid);
    let c = inspect(&engine, &gated).await;
    assert_eq!(c.state.status, "exited");
    assert_eq!(c.state.exit_code, 7);
    assert!(
        !root.config.monitor_dir(&gated).exists(),
        "monitor dir removed after the exit"
    );
    assert_eq!(inspect(&engine, &created).await.state.status, "created");
    // The reconnected wait sees the sleeper's end.
    let wait = engine
        .wait(&sleeper, WaitCondition::NotRunning)
        .await
        .expect("wait");
    engine
        .stop(&sleeper, None, Some(1))
        .await
        .expect("stop after restore");
    assert_eq!(wait.await.status_code, 137);
    // The restored containers start again.
    engine.start(&gated).await.expect("restart the gated one");
    let wait = engine
        .wait(&gated, WaitCondition::NotRunning)
        .await
        .expect("wait");
    assert_eq!(wait.await.status_code, 7);
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policy_applies_to_exits_while_away() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let gate = tempfile::tempdir().expect("gate dir");
    let engine = root.open().await;
    let mut req = request(&[
        "sh",
        "-c",
        "if [ -e /gate/go ]; then rm /gate/go; exit 3; fi; sleep 1000",
    ]);
    req.host_config.binds = Some(vec![format!("{}:/gate", gate.path().display())]);
    req.host_config.restart_policy.name = "on-failure".into();
    let id = create(&engine, None, req).await;
    std::fs::write(gate.path().join("go"), b"").expect("gate");
    engine.start(&id).await.expect("start");
    // It exits 3 at once; the policy restarts it and the second run sleeps.
    eventually("the policy restart", || {
        let engine = engine.clone();
        let id = id.clone();
        async move {
            let c = inspect(&engine, &id).await;
            c.restart_count == 1 && c.state.status == "running"
        }
    })
    .await;
    drop(engine);
    // While away, the sleeping run is killed from outside: exit 137, a failure.
    let kill = std::process::Command::new(runc_bin())
        .arg("--root")
        .arg(root.config.runtime_root())
        .args(["kill", &id, "KILL"])
        .status()
        .expect("gorae-runc kill");
    assert!(kill.success());
    let monitor_pid = root.config.monitor_dir(&id).join("monitor.pid");
    eventually("the monitor to finish", || {
        let gone = !monitor_pid.exists();
        async move { gone }
    })
    .await;
    let engine = root.open().await;
    eventually("the restart after reopening", || {
        let engine = engine.clone();
        let id = id.clone();
        async move {
            let c = inspect(&engine, &id).await;
            c.restart_count == 2 && c.state.status == "running"
        }
    })
    .await;
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unstarted_monitor_left_by_a_crash_is_reaped() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let id = create(&engine, None, request(&["sleep", "1000"])).await;
    let wait = engine
        .wait(&id, WaitCondition::NextExit)
        .await
        .expect("wait");
    engine.start(&id).await.expect("start");
    engine.kill(&id, None).await.expect("kill");
    wait.await;
    drop(engine);
    // What a crash between "monitor created the container" and "start" leaves behind.
    let dir = root.config.container_dir(&id);
    let store = gorae_image::Store::open(root.path()).expect("store");
    store
        .snapshots
        .mount(&id, &dir.join("bundle/rootfs"))
        .expect("mount");
    let monitor_dir = root.config.monitor_dir(&id);
    std::fs::create_dir_all(&monitor_dir).expect("monitor dir");
    let status = std::process::Command::new(runc_bin())
        .arg("--root")
        .arg(root.config.runtime_root())
        .arg("monitor")
        .arg("--bundle")
        .arg(dir.join("bundle"))
        .arg("--dir")
        .arg(&monitor_dir)
        .arg(&id)
        .status()
        .expect("gorae-runc monitor");
    assert!(status.success());
    assert!(monitor_dir.join("monitor.pid").exists());
    let engine = root.open().await;
    assert!(!monitor_dir.exists(), "the orphan monitor is reaped");
    assert_eq!(inspect(&engine, &id).await.state.status, "exited");
    root.teardown(engine).await;
}

/// An AutoRemove container's record is not synced, so a host crash may take it: what is left
/// (its directory with the mounted root, its snapshot) goes when the engine opens, as does
/// that of a create cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remains_of_a_container_without_a_record_are_removed() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["true"]);
    req.host_config.auto_remove = true;
    let id = create(&engine, None, req).await;
    let kept = create(&engine, Some("kept"), request(&["true"])).await;
    drop(engine);
    let dir = root.config.container_dir(&id);
    let store = gorae_image::Store::open(root.path()).expect("store");
    assert!(store.snapshots.get(&id).expect("snapshot").volatile);
    store
        .snapshots
        .mount(&id, &dir.join("bundle/rootfs"))
        .expect("mount");
    std::fs::remove_file(dir.join("container.json")).expect("lose the record");
    let engine = root.open().await;
    assert!(!dir.exists(), "the container's directory is removed");
    assert!(store.snapshots.get(&id).is_err(), "its snapshot is removed");
    assert!(engine.inspect(&id, false).await.is_err());
    assert_eq!(inspect(&engine, &kept).await.state.status, "created");
    root.teardown(engine).await;
}
