//! Real containers through `Engine`: create, start, stop, kill, wait, remove, attach,
//! pause, rename, update, restart policies, events, list filters — with busybox, gorae-runc
//! and its monitor, as root. Each test has its own data root and checks that nothing of it
//! (mounts, cgroups, monitors) is left.

mod core_support;

use core_support::*;
use gorae_engine::engine::{AttachOptions, ListOptions, WaitCondition};
use gorae_engine::Error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_to_exit_and_records_it() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let id = create(
        &engine,
        Some("first"),
        request(&["sh", "-c", "echo hello; echo oops >&2; exit 3"]),
    )
    .await;
    let c = inspect(&engine, &id).await;
    assert_eq!(c.state.status, "created");
    assert_eq!(c.name, "/first");
    assert_eq!(c.path, "sh");
    let wait = engine
        .wait(&id, WaitCondition::NextExit)
        .await
        .expect("wait");
    engine.start(&id).await.expect("start");
    let res = wait.await;
    assert_eq!(res.status_code, 3);
    let c = inspect(&engine, &id).await;
    assert_eq!(c.state.status, "exited");
    assert_eq!(c.state.exit_code, 3);
    assert!(!c.state.running);
    assert_ne!(c.state.finished_at, "0001-01-01T00:00:00Z");
    let log = std::fs::read_to_string(&c.log_path).expect("json log");
    assert!(
        log.contains(r#""log":"hello\n","stream":"stdout""#),
        "{log}"
    );
    assert!(log.contains(r#""log":"oops\n","stream":"stderr""#), "{log}");
    // Not running now: not-running returns at once with the last exit code.
    let res = engine
        .wait(&id, WaitCondition::NotRunning)
        .await
        .expect("wait")
        .await;
    assert_eq!(res.status_code, 3);
    let dir = root.config.container_dir(&id);
    engine.remove(&id, false, false).await.expect("remove");
    assert!(!dir.exists());
    assert!(matches!(
        engine.inspect(&id, false).await,
        Err(Error::NotFound(_))
    ));
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_escalates_and_kill_signals() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    // pid 1 ignores SIGTERM without a handler: stop has to escalate to SIGKILL.
    let stubborn = create(&engine, None, request(&["sleep", "1000"])).await;
    // This one exits cleanly on SIGTERM.
    let polite = create(
        &engine,
        None,
        request(&[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ]),
    )
    .await;
    for id in [&stubborn, &polite] {
        engine.start(id).await.expect("start");
        assert!(matches!(engine.start(id).await, Err(Error::NotModified(_))));
        let c = inspect(&engine, id).await;
        assert_eq!(c.state.status, "running");
        assert!(c.state.pid > 0);
    }
    engine.stop(&stubborn, None, Some(1)).await.expect("stop");
    assert_eq!(inspect(&engine, &stubborn).await.state.exit_code, 137);
    engine.stop(&polite, None, Some(30)).await.expect("stop");
    assert_eq!(inspect(&engine, &polite).await.state.exit_code, 0);
    assert!(matches!(
        engine.stop(&polite, None, None).await,
        Err(Error::NotModified(_))
    ));
    let err = engine
        .kill(&polite, None)
        .await
        .expect_err("kill of a stopped one");
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    // Restart runs it again; kill with a named signal ends it.
    engine
        .restart(&stubborn, None, Some(1))
        .await
        .expect("restart");
    assert_eq!(inspect(&engine, &stubborn).await.state.status, "running");
    let wait = engine
        .wait(&stubborn, WaitCondition::NotRunning)
        .await
        .expect("wait");
    engine
        .kill(&stubborn, Some("KILL".into()))
        .await
        .expect("kill");
    assert_eq!(wait.await.status_code, 137);
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_lookup_rename_and_remove_rules() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let id = create(&engine, Some("web"), request(&["sleep", "1000"])).await;
    let err = engine
        .create(Some("web".into()), request(&["true"]))
        .await
        .expect_err("name clash");
    assert_eq!(
        err.to_string(),
        format!(
            "Conflict. The container name \"/web\" is already in use by container \"{id}\". \
             You have to remove (or rename) that container to be able to reuse that name."
        )
    );
    assert!(matches!(
        engine.create(Some("-bad".into()), request(&["true"])).await,
        Err(Error::InvalidParameter(_))
    ));
    assert_eq!(inspect(&engine, "web").await.id, id);
    assert_eq!(inspect(&engine, "/web").await.id, id);
    assert_eq!(inspect(&engine, &id[..8]).await.id, id);
    let err = engine.inspect("nothing", false).await.expect_err("unknown");
    assert_eq!(err.to_string(), "No such container: nothing");
    let other = create(&engine, None, request(&["true"])).await;
    let random = inspect(&engine, &other).await.name;
    assert!(random.len() > 3 && random.contains('_'), "{random}");
    engine.rename(&id, "db").await.expect("rename");
    assert_eq!(inspect(&engine, "db").await.id, id);
    assert!(engine.inspect("web", false).await.is_err());
    let err = engine.rename(&other, "db").await.expect_err("taken");
    assert!(matches!(err, Error::Conflict(_)));
    engine.start(&id).await.expect("start");
    let err = engine.remove(&id, false, false).await.expect_err("running");
    assert!(err.to_string().contains("container is running"), "{err}");
    let removed = engine
        .wait(&id, WaitCondition::Removed)
        .await
        .expect("wait");
    engine.remove(&id, true, false).await.expect("force remove");
    assert_eq!(removed.await.status_code, 137);
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_what_it_cannot_do_clearly() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    // As docker: an unknown network or container to join fails the start, not the create.
    for (mode, want) in [
        ("no-such-net", "network no-such-net not found"),
        (
            "container:no-such-container",
            "No such container: no-such-container",
        ),
    ] {
        let mut req = request(&["true"]);
        req.host_config.network_mode = mode.into();
        let id = create(&engine, None, req).await;
        let err = engine.start(&id).await.expect_err("no such network");
        assert!(err.to_string().contains(want), "{mode}: {err}");
        engine.remove(&id, true, false).await.expect("remove");
    }
    let mut req = request(&["true"]);
    req.config.image = "no-such-image".into();
    let err = engine.create(None, req).await.expect_err("no image");
    assert_eq!(err.to_string(), "No such image: no-such-image:latest");
    let id = create(&engine, None, request(&["/no/such/binary"])).await;
    let err = engine.start(&id).await.expect_err("no binary");
    let c = inspect(&engine, &id).await;
    assert_eq!(c.state.status, "created", "{err}");
    assert!(!c.state.error.is_empty());
    // A second engine on the same root is refused.
    let err = gorae_engine::Engine::open(root.config.clone())
        .await
        .err()
        .expect("second engine");
    assert!(err.to_string().contains("another gorae daemon"), "{err}");
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_before_start_sees_all_output() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["sh", "-c", "echo out; echo err >&2"]);
    req.config.attach_stdout = true;
    req.config.attach_stderr = true;
    let id = create(&engine, None, req).await;
    let opts = AttachOptions {
        stream: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let hijack = engine.attach_prepare(&id, opts).await.expect("attach");
    assert_eq!(hijack.kind, gorae_engine::engine::StreamKind::Multiplexed);
    let (client, server) = tokio::io::duplex(64 * 1024);
    let pump = tokio::spawn((hijack.run)(Box::new(server)));
    engine.start(&id).await.expect("start");
    let mut got = Vec::new();
    let mut client = client;
    tokio::io::AsyncReadExt::read_to_end(&mut client, &mut got)
        .await
        .expect("read attach");
    pump.await.expect("pump");
    let frames = demux(&got);
    assert!(frames.contains(&(1, b"out\n".to_vec())), "{frames:?}");
    assert!(frames.contains(&(2, b"err\n".to_vec())), "{frames:?}");
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_attach_with_stdin_echoes() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["sh", "-c", "read line; echo got:$line"]);
    req.config.tty = true;
    req.config.open_stdin = true;
    req.config.stdin_once = true;
    let id = create(&engine, None, req).await;
    let opts = AttachOptions {
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let hijack = engine.attach_prepare(&id, opts).await.expect("attach");
    assert_eq!(hijack.kind, gorae_engine::engine::StreamKind::Raw);
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let pump = tokio::spawn((hijack.run)(Box::new(server)));
    engine.start(&id).await.expect("start");
    engine.resize(&id, 30, 100).await.expect("resize");
    tokio::io::AsyncWriteExt::write_all(&mut client, b"hello\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut client, &mut got)
        .await
        .expect("read");
    pump.await.expect("pump");
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("got:hello"), "{text:?}");
    root.teardown(engine).await;
}

/// Docker's multiplexed stream as (stream, payload) frames.
fn demux(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        let end = (8 + len).min(data.len());
        out.push((data[0], data[8..end].to_vec()));
        data = &data[end..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_update_and_list_filters() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["sleep", "1000"]);
    req.config.labels = Some([("tier".to_string(), "web".to_string())].into());
    req.host_config.resources.memory = 64 << 20;
    let web = create(&engine, Some("web"), req).await;
    let done = create(&engine, Some("done"), request(&["sh", "-c", "exit 4"])).await;
    engine.start(&web).await.expect("start");
    let wait = engine
        .wait(&done, WaitCondition::NextExit)
        .await
        .expect("wait");
    engine.start(&done).await.expect("start");
    assert_eq!(wait.await.status_code, 4);

    engine.pause(&web).await.expect("pause");
    let c = inspect(&engine, &web).await;
    assert!(c.state.paused && c.state.running);
    assert_eq!(c.state.status, "paused");
    assert!(matches!(engine.pause(&web).await, Err(Error::Conflict(_))));
    engine.unpause(&web).await.expect("unpause");
    assert!(matches!(
        engine.unpause(&web).await,
        Err(Error::Conflict(_))
    ));

    let memory_limit = |id: &str| {
        let path = format!(
            "/sys/fs/cgroup/memory/{}/{id}/memory.limit_in_bytes",
            root.config.cgroup_parent
        );
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if let Some(limit) = memory_limit(&web) {
        assert_eq!(limit, (64u64 << 20).to_string());
    }
    let mut update = gorae_engine::types::UpdateRequest::default();
    update.resources.memory = 128 << 20;
    update.resources.memory_swap = -1;
    engine.update(&web, update).await.expect("update");
    if let Some(limit) = memory_limit(&web) {
        assert_eq!(limit, (128u64 << 20).to_string());
    }
    let c = inspect(&engine, &web).await;
    assert_eq!(c.host_config.resources.memory, 128 << 20);

    let names = |list: Vec<gorae_engine::types::ContainerSummary>| -> Vec<String> {
        list.into_iter().map(|c| c.names[0].clone()).collect()
    };
    let list = |all: bool, filters: &[(&str, &str)]| {
        let mut f = gorae_engine::engine::Filters::new();
        for (k, v) in filters {
            f.entry(k.to_string()).or_default().push(v.to_string());
        }
        engine.list(ListOptions {
            all,
            filters: f,
            ..Default::default()
        })
    };
    assert_eq!(names(list(false, &[]).await.unwrap()), ["/web"]);
    assert_eq!(names(list(true, &[]).await.unwrap()), ["/done", "/web"]);
    assert_eq!(
        names(list(false, &[("status", "exited")]).await.unwrap()),
        ["/done"]
    );
    assert_eq!(
        names(list(false, &[("exited", "4")]).await.unwrap()),
        ["/done"]
    );
    assert_eq!(
        names(list(true, &[("label", "tier=web")]).await.unwrap()),
        ["/web"]
    );
    assert_eq!(
        names(list(true, &[("name", "^/do")]).await.unwrap()),
        ["/done"]
    );
    assert_eq!(
        names(list(true, &[("since", "web")]).await.unwrap()),
        ["/done"]
    );
    assert_eq!(
        names(list(true, &[("before", "done")]).await.unwrap()),
        ["/web"]
    );
    assert_eq!(
        names(list(true, &[("ancestor", IMAGE)]).await.unwrap()).len(),
        2
    );
    assert!(matches!(
        list(true, &[("status", "sleepy")]).await,
        Err(Error::InvalidParameter(_))
    ));
    assert!(matches!(
        list(true, &[("bogus", "x")]).await,
        Err(Error::InvalidParameter(_))
    ));
    let summary = &list(false, &[]).await.unwrap()[0];
    assert!(summary.status.starts_with("Up "), "{}", summary.status);
    assert_eq!(summary.command, "sleep 1000");
    let exited = &list(false, &[("status", "exited")]).await.unwrap()[0];
    assert!(
        exited.status.starts_with("Exited (4) "),
        "{}",
        exited.status
    );

    let pruned = engine.prune(Default::default()).await.expect("prune");
    assert_eq!(pruned["ContainersDeleted"], serde_json::json!([done]));
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_and_events() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut events = engine
        .events(None, None, Default::default())
        .expect("events");
    let mut req = request(&["sh", "-c", "exit 1"]);
    req.host_config.restart_policy.name = "on-failure".into();
    req.host_config.restart_policy.maximum_retry_count = 2;
    let id = create(&engine, Some("flaky"), req).await;
    engine.start(&id).await.expect("start");
    eventually("two restarts and a final exit", || async {
        let c = inspect(&engine, &id).await;
        c.restart_count == 2 && c.state.status == "exited"
    })
    .await;
    let mut actions = Vec::new();
    while let Ok(e) = events.try_recv() {
        assert_eq!(e.actor.attributes["name"], "flaky");
        if e.action == "die" {
            assert_eq!(e.actor.attributes["exitCode"], "1");
        }
        actions.push(e.action);
    }
    assert_eq!(
        actions,
        ["create", "start", "die", "start", "die", "start", "die"]
    );
    // An always-restarting container is not restarted after an explicit stop.
    let mut req = request(&["sleep", "1000"]);
    req.host_config.restart_policy.name = "always".into();
    let always = create(&engine, None, req).await;
    engine.start(&always).await.expect("start");
    engine.stop(&always, None, Some(0)).await.expect("stop");
    let c = inspect(&engine, &always).await;
    assert_eq!(c.state.status, "exited");
    // Past events replay with since; the filters narrow them.
    let mut f = gorae_engine::engine::Filters::new();
    f.insert("event".into(), vec!["stop".into()]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut past = engine.events(Some(0.0), Some(now), f).expect("events");
    let stop = past.recv().await.expect("a stop event");
    assert_eq!(stop.actor.id, always);
    assert!(past.recv().await.is_none());
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_follow_the_test() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let check = |test: &str| gorae_engine::types::HealthConfig {
        test: Some(vec!["CMD-SHELL".into(), test.into()]),
        interval: 100_000_000,
        retries: 2,
        ..Default::default()
    };
    let mut req = request(&["sh", "-c", "sleep 0.3; touch /tmp/ok; sleep 1000"]);
    req.config.healthcheck = Some(check("test -e /tmp/ok"));
    let good = create(&engine, Some("good"), req).await;
    let mut req = request(&["sleep", "1000"]);
    req.config.healthcheck = Some(check("echo failing; exit 1"));
    let bad = create(&engine, Some("bad"), req).await;
    let mut events = engine
        .events(None, None, Default::default())
        .expect("events");
    engine.start(&good).await.expect("start");
    engine.start(&bad).await.expect("start");
    let status = |id: String| {
        let engine = engine.clone();
        async move {
            let c = inspect(&engine, &id).await;
            c.state.health.map(|h| h.status).unwrap_or_default()
        }
    };
    eventually("healthy", || {
        let s = status(good.clone());
        async move { s.await == "healthy" }
    })
    .await;
    eventually("unhealthy", || {
        let s = status(bad.clone());
        async move { s.await == "unhealthy" }
    })
    .await;
    let health = inspect(&engine, &bad).await.state.health.expect("health");
    assert!(health.failing_streak >= 2);
    assert_eq!(
        health.log.last().map(|l| l.output.as_str()),
        Some("failing\n")
    );
    let list = engine.list(ListOptions::default()).await.expect("list");
    let good_status = &list.iter().find(|c| c.id == good).expect("good").status;
    assert!(good_status.ends_with("(healthy)"), "{good_status}");
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.action.starts_with("health_status") {
            seen.push((e.actor.attributes["name"].clone(), e.action));
        }
    }
    assert!(
        seen.contains(&("good".into(), "health_status: healthy".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("bad".into(), "health_status: unhealthy".into())),
        "{seen:?}"
    );
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_events_and_uses_and_system_info() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut events = engine
        .events(None, None, Default::default())
        .expect("events");
    engine
        .images()
        .tag(IMAGE, "gorae-test/other", Some("v1"))
        .await
        .expect("tag");
    let e = events.recv().await.expect("an image event");
    assert_eq!((e.kind.as_str(), e.action.as_str()), ("image", "tag"));
    let id = create(&engine, None, request(&["true"])).await;
    let uses = engine.image_uses();
    assert_eq!(uses.len(), 1);
    assert_eq!(uses[0].container_id, id);
    assert!(uses[0].image_id.starts_with("sha256:"));
    let info = engine.info().await.expect("info");
    assert_eq!(info["Containers"], 1);
    assert_eq!(info["ContainersStopped"], 1);
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["Images"], 1);
    let version = engine.version();
    assert_eq!(version["ApiVersion"], "1.51");
    let df = engine.system_df().await.expect("df");
    assert_eq!(df["Containers"].as_array().map(Vec::len), Some(1));
    assert!(df["LayersSize"].as_i64().is_some_and(|n| n > 0));
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_auto_remove_paused_stop_and_policy_update() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    // A memory hog under a small limit is OOM-killed, and inspect says so.
    let mut req = request(&[
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    req.host_config.resources.memory = 16 << 20;
    req.host_config.resources.memory_swap = 16 << 20;
    let hog = create(&engine, None, req).await;
    let wait = engine
        .wait(&hog, WaitCondition::NextExit)
        .await
        .expect("wait");
    engine.start(&hog).await.expect("start");
    assert_eq!(wait.await.status_code, 137);
    assert!(inspect(&engine, &hog).await.state.oom_killed);
    // AutoRemove: gone once it exits.
    let mut req = request(&["true"]);
    req.host_config.auto_remove = true;
    let gone = create(&engine, None, req).await;
    let removed = engine
        .wait(&gone, WaitCondition::Removed)
        .await
        .expect("wait");
    engine.start(&gone).await.expect("start");
    assert_eq!(removed.await.status_code, 0);
    assert!(engine.inspect(&gone, false).await.is_err());
    assert!(!root.config.container_dir(&gone).exists());
    // A paused container stops (thawed for its signal).
    let paused = create(&engine, None, request(&["sleep", "1000"])).await;
    engine.start(&paused).await.expect("start");
    engine.pause(&paused).await.expect("pause");
    engine
        .stop(&paused, None, Some(1))
        .await
        .expect("stop paused");
    let c = inspect(&engine, &paused).await;
    assert_eq!(
        (c.state.status.as_str(), c.state.exit_code),
        ("exited", 137)
    );
    // A restart policy set by update applies to the next exit.
    let update = gorae_engine::types::UpdateRequest {
        restart_policy: Some(gorae_engine::types::RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: 1,
        }),
        ..Default::default()
    };
    engine.update(&hog, update).await.expect("update policy");
    engine.start(&hog).await.expect("start again");
    eventually("one policy restart", || {
        let engine = engine.clone();
        let hog = hog.clone();
        async move {
            let c = inspect(&engine, &hog).await;
            c.restart_count == 1 && c.state.status == "exited"
        }
    })
    .await;
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_gets_through_a_waiting_stop() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let id = create(&engine, None, request(&["sleep", "1000"])).await;
    engine.start(&id).await.expect("start");
    let stopping = {
        let engine = engine.clone();
        let id = id.clone();
        // pid 1 ignores SIGTERM: this stop would wait its full ten minutes.
        tokio::spawn(async move { engine.stop(&id, None, Some(600)).await })
    };
    let mut events = engine
        .events(Some(0.0), None, Default::default())
        .expect("events");
    loop {
        let e = events.recv().await.expect("events");
        if e.action == "kill" && e.actor.attributes["signal"] == "15" {
            break;
        }
    }
    engine.kill(&id, None).await.expect("kill during stop");
    stopping.await.expect("join").expect("stop");
    assert_eq!(inspect(&engine, &id).await.state.exit_code, 137);
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_runs_with_every_capability() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["sh", "-c", "grep CapEff /proc/self/status; ls /dev | wc -l"]);
    req.host_config.privileged = true;
    let id = create(&engine, None, req).await;
    let wait = engine
        .wait(&id, WaitCondition::NextExit)
        .await
        .expect("wait");
    engine.start(&id).await.expect("start");
    assert_eq!(wait.await.status_code, 0);
    let log = std::fs::read_to_string(inspect(&engine, &id).await.log_path).expect("log");
    let mask = gorae_engine::spec::held_capabilities().expect("CapBnd") & ((1 << 41) - 1);
    assert!(log.contains(&format!("CapEff:\\t{mask:016x}")), "{log}");
    root.teardown(engine).await;
}

/// A command that is missing is 127, one that exists but cannot be executed 126 (docker's
/// codes, which its CLI derives from the error text: "permission denied", "is a directory").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_tells_missing_from_not_executable() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let cases = [
        (
            "/etc/passwd",
            126,
            "exec: \"/etc/passwd\": permission denied",
        ),
        ("/etc", 126, "exec: \"/etc\": is a directory"),
        ("/no/such", 127, "no such file or directory"),
        ("nosuchcmd", 127, "executable file not found in $PATH"),
    ];
    for (cmd, code, text) in cases {
        let id = create(&engine, None, request(&[cmd])).await;
        let err = engine.start(&id).await.expect_err(cmd);
        assert!(matches!(err, Error::InvalidParameter(_)), "{cmd}: {err}");
        assert!(err.to_string().contains(text), "{cmd}: {err}");
        let c = inspect(&engine, &id).await;
        assert_eq!(c.state.exit_code, code, "{cmd}: {err}");
        assert!(c.state.error.contains(text), "{cmd}: {}", c.state.error);
        engine.remove(&id, false, false).await.expect("remove");
    }
    root.teardown(engine).await;
}

/// The engine's cgroup parent dirs in every hierarchy (v1 controllers, the unified one).
fn parent_dirs(parent: &str) -> Vec<std::path::PathBuf> {
    gorae_engine::cgroup_parent::parent_dirs(std::path::Path::new("/sys/fs/cgroup"), parent)
        .into_iter()
        .filter(|d| d.is_dir())
        .collect()
}

/// A daemon that stops leaves its empty cgroup parent nowhere, but keeps it while one of its
/// containers runs on (they outlive it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cgroup_parent_goes_when_nothing_runs_in_it() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let parent = root.config.cgroup_parent.clone();
    let id = create(&engine, None, request(&["sleep", "1000"])).await;
    engine.start(&id).await.expect("start");
    assert!(!parent_dirs(&parent).is_empty(), "no {parent} dir");
    engine.release_cgroup_parent();
    let kept = parent_dirs(&parent);
    assert!(kept.iter().all(|d| d.join(&id).is_dir()), "{kept:?}");
    engine.remove(&id, true, false).await.expect("remove");
    engine.release_cgroup_parent();
    assert_eq!(parent_dirs(&parent), Vec::<std::path::PathBuf>::new());
    root.teardown(engine).await;
}

/// Before its first check a container's health is "starting" in inspect and ps; once the
/// container has stopped, "unhealthy".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_starting_before_the_first_check() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["sleep", "1000"]);
    req.config.healthcheck = Some(gorae_engine::types::HealthConfig {
        test: Some(vec!["CMD".into(), "true".into()]),
        interval: 3_600_000_000_000,
        ..Default::default()
    });
    let id = create(&engine, None, req).await;
    engine.start(&id).await.expect("start");
    let health = inspect(&engine, &id).await.state.health.expect("health");
    assert_eq!(health.status, "starting");
    let list = engine.list(ListOptions::default()).await.expect("list");
    let status = &list.iter().find(|c| c.id == id).expect("listed").status;
    assert!(status.ends_with("(health: starting)"), "{status}");
    // Stopped, it shows "unhealthy" (as docker), also to the health filter.
    engine.kill(&id, None).await.expect("kill");
    engine
        .wait(&id, WaitCondition::NotRunning)
        .await
        .expect("wait")
        .await;
    let health = inspect(&engine, &id).await.state.health.expect("health");
    assert_eq!(health.status, "unhealthy");
    let mut filters = gorae_engine::engine::Filters::new();
    filters.insert("health".into(), vec!["unhealthy".into()]);
    let list = engine
        .list(ListOptions {
            all: true,
            filters,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(
        list.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()]
    );
    root.teardown(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_remove_happens_when_the_start_fails() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["/no/such/binary"]);
    req.host_config.auto_remove = true;
    let id = create(&engine, None, req).await;
    let removed = engine
        .wait(&id, WaitCondition::Removed)
        .await
        .expect("wait");
    assert!(engine.start(&id).await.is_err());
    removed.await;
    assert!(engine.inspect(&id, false).await.is_err());
    // `docker run --rm nosuchcmd`: the same for a command looked up in PATH.
    let mut req = request(&["nosuchcmd"]);
    req.host_config.auto_remove = true;
    let id = create(&engine, None, req).await;
    let removed = engine
        .wait(&id, WaitCondition::Removed)
        .await
        .expect("wait");
    let err = engine.start(&id).await.expect_err("no such command");
    assert!(
        err.to_string().contains("executable file not found"),
        "{err}"
    );
    removed.await;
    assert!(engine.inspect(&id, false).await.is_err());
    root.teardown(engine).await;
}

/// With `--init` the container's pid 1 is gorae-runc as docker-init, the command its child
/// in its own process group.
const INIT_CHECKS: &str = r#"
echo "pid1=$(cat /proc/1/comm) $(tr '\0' ' ' < /proc/1/cmdline | cut -d' ' -f1,2)"
[ "$(cut -d' ' -f5 /proc/$$/stat)" = "$$" ] && echo own-group
mkfifo /tmp/go
(cat /tmp/go > /dev/null & echo $! > /tmp/orphan)
p=$(cat /tmp/orphan)
echo "orphan-parent=$(cut -d' ' -f4 /proc/$p/stat)"
echo go > /tmp/go
i=0
while [ -e /proc/$p ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
if [ -e /proc/$p ]; then echo "orphan-left=$(cut -d' ' -f3 /proc/$p/stat)"; else echo orphan-reaped; fi
echo "zombies=$(ps -o stat | grep -c Z)"
exit 7
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_reaps_orphans_forwards_signals_and_passes_the_exit_code() {
    if !can_run() {
        return;
    }
    let root = Root::new();
    let engine = root.open().await;
    let mut req = request(&["sh", "-c", INIT_CHECKS]);
    req.host_config.init = Some(true);
    let id = create(&engine, None, req).await;
    let wait = engine
        .wait(&id, WaitCondition::NextExit)
        .await
        .expect("wait");
    engine.start(&id).await.expect("start");
    assert_eq!(wait.await.status_code, 7);
    let log = std::fs::read_to_string(inspect(&engine, &id).await.log_path).expect("log");
    for line in [
        "pid1=docker-init /sbin/docker-init --",
        "own-group",
        // The orphan was reparented to the init, and reaped once it exited.
        "orphan-parent=1",
        "orphan-reaped",
        "zombies=0",
    ] {
        assert!(
            log.contains(&format!(r#""log":"{line}\n""#)),
            "{line}: {log}"
        );
    }
    // The command is not pid 1, so only the init's forwarding gets signals to it.
    let script = "trap 'echo got HUP' HUP; trap 'echo got TERM; exit 0' TERM; \
                  echo ready; while true; do sleep 0.1; done";
    let mut req = request(&["sh", "-c", script]);
    req.host_config.init = Some(true);
    let polite = create(&engine, None, req).await;
    // And a command without a trap dies of the forwarded SIGTERM: 128 + 15.
    let mut req = request(&["sleep", "1000"]);
    req.host_config.init = Some(true);
    let plain = create(&engine, None, req).await;
    for id in [&polite, &plain] {
        engine.start(id).await.expect("start");
    }
    let path = inspect(&engine, &polite).await.log_path;
    let logged = |text: &'static str| {
        let path = path.clone();
        async move { std::fs::read_to_string(&path).is_ok_and(|l| l.contains(text)) }
    };
    eventually("the trap set", || logged("ready")).await;
    engine
        .kill(&polite, Some("HUP".into()))
        .await
        .expect("kill");
    eventually("the HUP trap", || logged("got HUP")).await;
    engine.stop(&polite, None, Some(60)).await.expect("stop");
    assert_eq!(inspect(&engine, &polite).await.state.exit_code, 0);
    assert!(logged("got TERM").await);
    engine.stop(&plain, None, Some(60)).await.expect("stop");
    assert_eq!(inspect(&engine, &plain).await.state.exit_code, 143);
    root.teardown(engine).await;
}
