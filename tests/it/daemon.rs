//! The real `supportd` binary as systemd runs it: readiness and watchdog over `NOTIFY_SOCKET`,
//! SIGTERM in the middle of a burst (nothing lost, nothing doubled after the restart), SIGHUP
//! with a broken template (rejected, the old wording stays) and then a fixed one (taken).

use crate::helpers::*;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use supportd::inbound::parse::parse;
use supportd::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_supportd");

/// Starts the daemon on `config`, its stderr into `log`. Through `sh -c '… exec'` so the daemon
/// keeps the shell's pid, which `WATCHDOG_PID` must name.
fn start(config: &Path, log: &Path, env: &[(&str, String)]) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"")
        .arg(BIN)
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start supportd")
}

fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().expect("running").to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

async fn stops_cleanly(mut child: tokio::process::Child, log: &Path) {
    signal(&child, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops within 30 s")
        .expect("wait");
    assert!(status.success(), "exit {status}: {}", read(log));
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

async fn wait_for_log(log: &Path, needle: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !read(log).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log within {secs} s:\n{}",
            read(log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(store: &Store, what: &'static str) -> i64 {
    store.count(what).await.unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_watchdog_pings_and_stopping() {
    let cfg = write_config(&AppOptions::default()).await;
    let sock_path = cfg.dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let log = cfg.dir.path().join("stderr.log");
    let child = start(
        &cfg.path,
        &log,
        &[
            ("NOTIFY_SOCKET", sock_path.display().to_string()),
            ("WATCHDOG_USEC", "1500000".into()),
        ],
    );
    let receive = |until: &'static str, n: usize| {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 512];
        while seen.iter().filter(|m: &&String| m.contains(until)).count() < n {
            assert!(Instant::now() < deadline, "no {until} x{n} in {seen:?}");
            if let Ok(len) = sock.recv(&mut buf) {
                seen.push(String::from_utf8_lossy(&buf[..len]).into_owned());
            }
        }
        seen
    };
    let first = receive("READY=1", 1);
    assert!(
        first.iter().any(|m| m.contains("STATUS=processing mail")),
        "{first:?}"
    );
    receive("WATCHDOG=1", 2);
    signal(&child, "-TERM");
    receive("STOPPING=1", 1);
    let mut child = child;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops")
        .expect("wait");
    assert!(status.success(), "{}", read(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_burst_loses_nothing_and_a_restart_acknowledges_each_mail_once() {
    let cfg = write_config(&AppOptions {
        batch_size: 5,
        ..Default::default()
    })
    .await;
    let customers: Vec<String> = (0..40)
        .map(|i| address(&unique(&format!("sig{i}"))))
        .collect();
    let mails: Vec<Vec<u8>> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            customer_mail(
                c,
                &cfg.support,
                &format!("Order {i}"),
                "Where is my parcel?",
                &format!("{}@example.org", unique("m")),
                "",
            )
        })
        .collect();
    lmtp_deliver(&cfg.support, &mails).await.expect("LMTP");
    let store = Store::connect(&cfg.url, 1).await.expect("store");
    let log = cfg.dir.path().join("first.log");
    let child = start(&cfg.path, &log, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&store, "tickets").await < 1 {
        assert!(Instant::now() < deadline, "no ticket: {}", read(&log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stops_cleanly(child, &log).await;
    let after_stop = count(&store, "tickets").await;
    assert_eq!(
        count(&store, "inbound").await,
        after_stop,
        "every stored mail has its ticket: nothing half-done"
    );

    let log = cfg.dir.path().join("second.log");
    let child = start(&cfg.path, &log, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&store, "tickets").await < 40 || count(&store, "sent").await < 40 {
        assert!(Instant::now() < deadline, "not all 40 done: {}", read(&log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stops_cleanly(child, &log).await;
    assert_eq!(
        count(&store, "tickets").await,
        40,
        "(first run stored {after_stop})"
    );
    assert_eq!(count(&store, "outbox").await, 40);
    for c in &customers {
        assert_eq!(
            read_folder(c, "INBOX").await.len(),
            1,
            "{c}: exactly one acknowledgement"
        );
    }
}

const ACK_EN: &str = "approved_by: Head of Customer Service, Wang Min
approved_at: 2026-11-29
version: 2
subject: [#{{ticket_ref}}] We have your message
---
Dear {{customer_name}},

Thanks for writing to {{support_name}} (request {{ticket_ref}}). A solution follows within {{first_solution_hours}} hours.
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_template_keeps_the_old_wording_and_a_fixed_one_is_taken() {
    let templates = tempfile::tempdir().expect("templates dir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for e in std::fs::read_dir(&repo).expect("templates") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, templates.path().join(p.file_name().expect("name"))).expect("copy");
    }
    let cfg = write_config(&AppOptions {
        templates: Some(templates.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let log = cfg.dir.path().join("stderr.log");
    let child = start(&cfg.path, &log, &[]);
    wait_for_log(&log, "supportd running", 30).await;
    let support = cfg.support.clone();
    let ack_to = |n: usize| {
        let support = support.clone();
        async move {
            let customer = address(&unique(&format!("hup{n}")));
            let raw = customer_mail(
                &customer,
                &support,
                "Question",
                "How do I export my data?",
                &format!("{}@example.org", unique("m")),
                "",
            );
            send_raw(&customer, &support, &raw).await;
            parse(&wait_for_mail(&customer, 1, 60).await[0]).text
        }
    };
    assert!(ack_to(1).await.contains("Thank you for contacting"));

    // A broken template (an unknown variable): the reload is refused, the old wording stays.
    std::fs::write(
        templates.path().join("ack.en.hbs"),
        ACK_EN.replace("{{customer_name}}", "{{custmer_name}}"),
    )
    .expect("write");
    signal(&child, "-HUP");
    wait_for_log(&log, "reload rejected", 10).await;
    assert!(read(&log).contains("custmer_name"), "{}", read(&log));
    assert!(ack_to(2).await.contains("Thank you for contacting"));

    // Fixed: taken on the next SIGHUP.
    std::fs::write(templates.path().join("ack.en.hbs"), ACK_EN).expect("write");
    signal(&child, "-HUP");
    wait_for_log(&log, "configuration and templates reloaded", 10).await;
    assert!(ack_to(3).await.contains("Thanks for writing to"));
    stops_cleanly(child, &log).await;
}
