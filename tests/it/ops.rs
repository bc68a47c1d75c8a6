//! What ops see, over real HTTP: `/metrics` counts the work done, `/healthz` says no loop is
//! stuck, `/readyz` checks the database, every mailbox and the outbox — and fails, naming the
//! mailbox, when one cannot be read.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints_report_the_daemon_s_work_and_state() {
    let mut app = spawn_app(AppOptions::default()).await;
    let addr = app.http.expect("listener");
    let (customer, _) = app
        .mail_from_new_customer("Invoice", "How do I download my invoice?")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    app.wait_until(30, "ack recorded as sent", |s| async move {
        s.count("sent").await.unwrap_or(0) == 1
    })
    .await;

    let (status, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for want in [
        "supportd_messages_fetched_total{mailbox=\"support\"} 1",
        "supportd_messages_screened_total{verdict=\"human\"} 1",
        "supportd_tickets_created_total 1",
        "supportd_mail_sent_total{kind=\"ack\"} 1",
        "supportd_outbox_depth 0",
        "supportd_timers_running 1",
        "supportd_mailbox_last_poll_age_seconds{mailbox=\"support\"}",
        "supportd_processing_seconds_count 1",
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
    assert!(!metrics.contains(&customer), "no addresses in metrics");

    let (status, body) = http_get(addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let h: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(h["status"], "ok");
    for task in ["mailbox support", "outbox", "timers"] {
        assert!(h["loops"][task].is_number(), "{task}: {body}");
    }

    let (status, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(r["database"]["ok"], true);
    assert_eq!(r["mailboxes"][0]["ok"], true);
    assert_eq!(r["outbox"]["ok"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_and_names_a_mailbox_that_cannot_be_read() {
    let mut app = spawn_app(AppOptions {
        extra: "[mailboxes.broken]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nuser = \"x\"\npassword = \"y\"\n".into(),
        ..Default::default()
    })
    .await;
    let addr = app.http.expect("listener");
    // The broken mailbox fails at once and retries; the daemon is up, but not ready. (Before
    // its first attempt it is not ready either, without an error yet: wait for the error.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        let (status, body) = http_get(addr, "/readyz").await;
        let failed = body.contains("127.0.0.1:1");
        if (status == 503 && failed) || std::time::Instant::now() > deadline {
            assert_eq!(status, 503, "{body}");
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let r: serde_json::Value = serde_json::from_str(&body).expect("json");
    let broken = r["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .find(|m| m["mailbox"] == "broken")
        .expect("broken mailbox reported")
        .clone();
    assert_eq!(broken["ok"], false);
    assert!(
        broken["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("127.0.0.1:1"),
        "{broken}"
    );
    let (status, _) = http_get(addr, "/healthz").await;
    assert_eq!(status, 200, "retrying is alive, not stuck");
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains("supportd_imap_reconnects_total{mailbox=\"broken\"}"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_listen_address_stops_the_start_naming_the_key() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let cfg = write_config(&AppOptions::default()).await;
    let mut settings = cfg.settings.clone();
    settings.http.listen = format!("127.0.0.1:{port}");
    let err = match supportd::app::Application::build(
        settings,
        std::sync::Arc::new(supportd::clock::SystemClock),
    )
    .await
    {
        Ok(_) => panic!("must not start on a busy address"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("http.listen") && err.contains(&port.to_string()),
        "{err}"
    );
}

/// A command that reads tickets, run from another directory than the daemon's with a relative
/// `state_dir`, says where it looked and why, and leaves no empty database behind; `migrate`
/// is the command that creates one.
#[test]
fn a_cli_command_never_creates_an_empty_database_where_it_is_run() {
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/dev/supportd.dev.toml");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_supportd"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .current_dir(elsewhere.path())
            .output()
            .expect("run supportd")
    };
    for args in [&["tickets", "list"][..], &["ticket", "show", "T-000001"]] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no database at"), "{err}");
        assert!(err.contains("is relative"), "{err}");
        assert!(
            err.contains(&elsewhere.path().display().to_string()),
            "names where it looked: {err}"
        );
    }
    assert!(
        !elsewhere.path().join(".rig").exists(),
        "nothing is created where a read command runs"
    );
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elsewhere.path().join(".rig/state/supportd.db").exists());
    let out = run(&["tickets", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
