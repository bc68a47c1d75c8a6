//! OAuth 2.0 against the rig: Dovecot's oauth2 passdb and Postfix submission (SASL through
//! Dovecot) check every access token with the test's token server (`oauth_server.rs`), so the
//! XOAUTH2 / OAUTHBEARER logins, the refreshes, the rotation and the revocation are all real.

use crate::helpers::*;
use crate::oauth_server::{oauth_server, Client};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

/// A client registration on the token server: its secret, access-token lifetime (s), whether
/// refresh tokens rotate, and the user its authorize endpoint signs in.
fn client_of(
    secret: Option<String>,
    access_ttl: u64,
    rotate: bool,
    browser_user: Option<String>,
) -> Client {
    Client {
        secret,
        access_ttl,
        rotate,
        browser_user,
    }
}

/// The config lines of grant `name` on the test's token server.
fn grant_config(name: &str, client: &str, secret: Option<&str>, file: &std::path::Path) -> String {
    let base = &oauth_server().base;
    let secret = secret.map_or(String::new(), |s| format!("client_secret = \"{s}\"\n"));
    format!(
        "\n[oauth.{name}]\nclient_id = \"{client}\"\n{secret}token_url = \"{base}/token\"\ndevice_authorization_url = \"{base}/devicecode\"\nauthorization_url = \"{base}/authorize\"\nscopes = [\"mail\", \"offline_access\"]\nrefresh_token_file = \"{}\"\n",
        file.display()
    )
}

/// `[smtp]` through the rig's submission port (SASL through Dovecot) with grant `grant`.
fn oauth_smtp(user: &str, grant: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {SUBMISSION_PORT}\ntls = \"none\"\nuser = \"{user}\"\noauth = \"{grant}\""
    )
}

/// Ends every IMAP session of `user`, as a server restart or an idle timeout would: the daemon
/// must log in again.
fn kick(user: &str) {
    let rig_dir = std::env::var("SUPPORTD_RIG_DIR").unwrap_or_else(|_| "/tmp/supportd-rig".into());
    let out = std::process::Command::new("doveadm")
        .args([
            "-c",
            &format!("{rig_dir}/dovecot/dovecot.conf"),
            "kick",
            user,
        ])
        .output()
        .expect("doveadm kick");
    assert!(
        out.status.success() || String::from_utf8_lossy(&out.stderr).contains("no users"),
        "doveadm kick: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn tickets(app: &TestApp) -> usize {
    app.store.tickets(1000).await.expect("tickets").len()
}

async fn ready(app: &TestApp) -> serde_json::Value {
    let (_, body) = http_get(app.http.expect("http"), "/readyz").await;
    serde_json::from_str(&body).expect("readyz is JSON")
}

/// Waits until `user` has `n` mails in INBOX.
async fn inbox(user: &str, n: usize) -> Vec<Vec<u8>> {
    wait_for_mail(user, n, 30).await
}

fn refresh_file(file: &std::path::Path) -> String {
    std::fs::read_to_string(file)
        .expect("refresh token file")
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_mailbox_and_smtp_on_oauth_work_through_expiry_rotation_and_revocation() {
    rig();
    let server = oauth_server();
    let client = unique("client");
    // Short-lived access tokens and rotated refresh tokens: Microsoft's behaviour, faster.
    server.register(&client, client_of(Some("s3cret".into()), 6, true, None));
    let keys = tempfile::tempdir().expect("tempdir");
    let file = keys.path().join("desk.refresh-token");
    let support = address(&unique("support"));
    let first = server.grant(&client, &support);
    std::fs::write(&file, format!("{first}\n")).expect("write token");
    // A second mailbox on a password: a revoked grant must not stop it.
    let other = address(&unique("sales"));
    let mut extra = grant_config("desk", &client, Some("s3cret"), &file);
    extra.push_str(&format!(
        "\n[mailboxes.sales]\nhost = \"127.0.0.1\"\nport = {IMAP_PORT}\ntls = \"none\"\nuser = \"{other}\"\npassword = \"test\"\npoll_interval_secs = 5\n"
    ));
    let app = spawn_app(AppOptions {
        support: Some(support.clone()),
        mailbox_auth: Some("oauth = \"desk\"".into()),
        smtp: Some(oauth_smtp(&support, "desk")),
        extra,
        ..Default::default()
    })
    .await;

    // 1. Login over XOAUTH2 (IMAP) and an acknowledgement sent over XOAUTH2 (SMTP).
    let (customer, _) = app
        .mail_from_new_customer("订单 A-1 什么时候发货", "您好，请问订单什么时候发货？")
        .await;
    inbox(&customer, 1).await;
    assert_eq!(tickets(&app).await, 1);
    assert!(
        server.introspections(&support) >= 2,
        "Dovecot checked the token for the IMAP login and the SMTP AUTH"
    );
    // The provider rotated the refresh token: the new one is saved, the old one is dead. (A
    // refresh may be in flight: read until the file holds a live token.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut second = refresh_file(&file);
    while !server.refresh_token_valid(&second) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        second = refresh_file(&file);
    }
    assert_ne!(second, first, "the rotated refresh token is saved");
    assert!(server.refresh_token_valid(&second) && !server.refresh_token_valid(&first));
    let r = ready(&app).await;
    assert_eq!(r["oauth"]["desk"]["state"], "ok", "{r}");

    // 2. The access token expires mid-run; the next logins (IMAP after a kick, SMTP for the
    // next acknowledgement) use a refreshed one.
    let refreshed = server.refreshes(&support);
    tokio::time::sleep(Duration::from_secs(7)).await;
    server.expire_access(&support);
    kick(&support);
    let (customer2, _) = app
        .mail_from_new_customer("Invoice copy", "Could you send me a copy of invoice 7781?")
        .await;
    inbox(&customer2, 1).await;
    assert_eq!(tickets(&app).await, 2);
    assert!(
        server.refreshes(&support) > refreshed,
        "the access token was refreshed"
    );
    assert_ne!(refresh_file(&file), second, "rotated again and saved");

    // 3. The user revokes the grant: a clear error in /readyz, the password mailbox unaffected.
    server.revoke(&support);
    kick(&support);
    let (customer3, _) = app
        .mail_from_new_customer("还在吗", "第三封邮件：请问退款进度？")
        .await;
    let before = tickets(&app).await;
    let (sales_customer, sales_msgid) = {
        let c = address(&unique("cust"));
        let id = format!("{}@customer.example", unique("m"));
        let raw = customer_mail(
            &c,
            &other,
            "Quote for 40 units",
            "Hello, a quote please.",
            &id,
            "",
        );
        send_raw(&c, &other, &raw).await;
        (c, id)
    };
    let says_what_to_do = |r: &serde_json::Value| {
        r["mailboxes"]
            .as_array()
            .and_then(|a| a.iter().find(|m| m["mailbox"] == "support"))
            .map(|m| m["last_error"].to_string())
            .unwrap_or_default()
            .contains("supportd oauth authorize")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut r = ready(&app).await;
    while (r["oauth"]["desk"]["state"] != "revoked" || !says_what_to_do(&r))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(300)).await;
        r = ready(&app).await;
    }
    assert_eq!(r["oauth"]["desk"]["state"], "revoked", "{r}");
    assert_eq!(r["status"], "not ready", "{r}");
    let (_, metrics) = http_get(app.http.expect("http"), "/metrics").await;
    assert!(
        metrics.contains("supportd_oauth_grant_ok{grant=\"desk\"} 0"),
        "{metrics}"
    );
    assert!(
        says_what_to_do(&r),
        "the mailbox's error says what to do: {r}"
    );
    app.wait_until(
        30,
        "the password mailbox's mail becomes a ticket",
        |s| async move { s.tickets(1000).await.expect("tickets").len() > before },
    )
    .await;
    let _ = (sales_customer, sales_msgid);
    assert_eq!(
        tickets(&app).await,
        before + 1,
        "only the password mailbox's mail was taken in while the grant is revoked"
    );

    // 4. An operator signs in again (as `supportd oauth authorize` does): no restart needed; the
    // waiting mail is taken in and every acknowledgement goes out.
    let again = server.grant(&client, &support);
    std::fs::write(&file, format!("{again}\n")).expect("write token");
    app.wait_until(40, "the waiting mail is taken in", |s| async move {
        s.tickets(1000).await.expect("tickets").len() > before + 1
    })
    .await;
    inbox(&customer3, 1).await;
    let r = ready(&app).await;
    assert_eq!(r["oauth"]["desk"]["state"], "ok", "{r}");
}

/// Runs `supportd oauth authorize ARGS` and returns the child with its stdout lines.
fn authorize(
    config: &std::path::Path,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_supportd"))
        .args(["oauth", "authorize"])
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run supportd oauth authorize");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Reads lines until one matches; returns (that line, everything read).
fn line_with(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> (String, String) {
    let mut all = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            all.push_str(&l);
            all.push('\n');
            if l.contains(what) {
                return (l, all);
            }
        }
    }
    panic!("no line with {what:?} in:\n{all}");
}

fn rest(rx: &std::sync::mpsc::Receiver<String>) -> String {
    let mut all = String::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(2)) {
        all.push_str(&l);
        all.push('\n');
    }
    all
}

fn wait_exit(child: &mut std::process::Child) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status.success(), err);
        }
        assert!(Instant::now() < deadline, "oauth authorize did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn oauth_authorize_device_flow_saves_the_grant_and_logs_in_with_oauthbearer() {
    rig();
    let server = oauth_server();
    // A public client (Microsoft's usual registration for a daemon: no secret).
    let client = unique("public");
    server.register(&client, client_of(None, 3600, false, None));
    let keys = tempfile::tempdir().expect("tempdir");
    let file = keys.path().join("oauth/desk.refresh-token");
    let support = address(&unique("support"));
    let cfg = write_config(&AppOptions {
        support: Some(support.clone()),
        mailbox_auth: Some("oauth = \"desk\"\nauth = \"oauthbearer\"".into()),
        smtp: Some(oauth_smtp(&support, "desk")),
        extra: grant_config("desk", &client, None, &file),
        ..Default::default()
    })
    .await;

    // Before the first sign-in, `check` names the missing grant and the command to run.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_supportd"))
        .args(["check", "--config"])
        .arg(&cfg.path)
        .output()
        .expect("check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("FAIL oauth.desk") && text.contains("supportd oauth authorize desk"),
        "{text}"
    );

    let (mut child, rx) = authorize(&cfg.path, &["--mailbox", "support"]);
    let (code_line, _) = line_with(&rx, "code   ");
    let code = code_line
        .split_whitespace()
        .last()
        .expect("code")
        .to_string();
    // A wrong code changes nothing; the operator then signs in and enters the right one.
    assert!(!server.approve_device("NOPE0000", &support));
    assert!(server.approve_device(&code, &support));
    let (ok, err) = wait_exit(&mut child);
    let text = rest(&rx);
    assert!(ok, "authorize failed: {err}\n{text}");
    assert!(
        text.contains("OK   oauth.desk: refresh token saved to"),
        "{text}"
    );
    assert!(
        text.contains("OK   mailboxes.support: IMAP 127.0.0.1 as") && text.contains("OAUTHBEARER"),
        "{text}"
    );
    assert!(server.refresh_token_valid(&refresh_file(&file)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the refresh token is private");
    }

    // Now `check` passes: the grant, IMAP with OAUTHBEARER, SMTP with XOAUTH2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_supportd"))
        .args(["check", "--config"])
        .arg(&cfg.path)
        .output()
        .expect("check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK   oauth.desk"), "{text}");
    assert!(text.contains("with OAUTHBEARER (oauth.desk)"), "{text}");
    assert!(text.contains("takes XOAUTH2 as"), "{text}");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_supportd"))
        .args(["oauth", "status", "--json", "--config"])
        .arg(&cfg.path)
        .output()
        .expect("status");
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(v[0]["grant"], "desk");
    assert_eq!(v[0]["status"]["state"], "ok", "{v}");
    assert_eq!(
        v[0]["used_by"],
        serde_json::json!(["mailboxes.support", "smtp"])
    );
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("rt."),
        "no token is ever printed"
    );

    // A declined sign-in is a clear failure and leaves the saved grant alone.
    let saved = refresh_file(&file);
    let (mut child, rx) = authorize(&cfg.path, &["desk", "--flow", "device"]);
    let (code_line, _) = line_with(&rx, "code   ");
    server.deny_device(code_line.split_whitespace().last().expect("code"));
    let (ok, err) = wait_exit(&mut child);
    assert!(!ok);
    assert!(err.contains("access_denied"), "{err}");
    assert_eq!(refresh_file(&file), saved);
}

#[tokio::test]
async fn oauth_authorize_browser_flow_uses_pkce_and_a_loopback_redirect() {
    rig();
    let server = oauth_server();
    let client = unique("desktop");
    let support = address(&unique("support"));
    server.register(
        &client,
        client_of(
            Some("not-so-secret".into()),
            3600,
            false,
            Some(support.clone()),
        ),
    );
    let keys = tempfile::tempdir().expect("tempdir");
    let file = keys.path().join("g.refresh-token");
    let cfg = write_config(&AppOptions {
        support: Some(support.clone()),
        mailbox_auth: Some("oauth = \"g\"".into()),
        extra: grant_config("g", &client, Some("not-so-secret"), &file),
        ..Default::default()
    })
    .await;
    let (mut child, rx) = authorize(&cfg.path, &["g", "--flow", "browser"]);
    let (url_line, _) = line_with(&rx, "/authorize?");
    let url = url_line.trim().to_string();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    // The browser: the provider signs the user in and redirects to the command's listener.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = http.get(&url).send().await.expect("authorize");
    assert_eq!(r.status(), 303, "redirected");
    let to = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(to.starts_with("http://127.0.0.1:"), "{to}");
    let page = http.get(&to).send().await.expect("redirect target");
    assert!(page
        .text()
        .await
        .expect("page")
        .contains("sign-in received"));
    let (ok, err) = wait_exit(&mut child);
    let text = rest(&rx);
    assert!(ok, "{err}\n{text}");
    assert!(text.contains("OK   mailboxes.support: IMAP"), "{text}");
    assert!(server.refresh_token_valid(&refresh_file(&file)));
}

#[tokio::test]
async fn a_provider_that_is_down_is_retried_with_backoff_and_the_held_token_kept() {
    rig();
    let server = oauth_server();
    let client = unique("flaky");
    server.register(&client, client_of(None, 3600, false, None));
    let keys = tempfile::tempdir().expect("tempdir");
    let file = keys.path().join("f.refresh-token");
    let user = address(&unique("support"));
    std::fs::write(&file, server.grant(&client, &user)).expect("write");
    let settings = supportd::config::Settings::from_toml(
        &format!(
            "[service]\nsupport_address = \"{user}\"\n[mailboxes.m]\nuser = \"{user}\"\nhost = \"127.0.0.1\"\nport = {IMAP_PORT}\ntls = \"none\"\noauth = \"f\"\n[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n[threading]\nreply_secret = \"integration-test-secret-0123456789\"\n{}",
            grant_config("f", &client, None, &file)
        ),
        "flaky.toml",
    )
    .expect("config");
    let src = settings.oauth_sources["f"].clone();
    server.set_down(&client, true);
    let e = src.access_token().await.expect_err("the provider is down");
    assert!(
        matches!(e, supportd::oauth::OAuthError::Unavailable { retry_in, .. } if retry_in >= Duration::from_secs(4)),
        "{e}"
    );
    assert!(matches!(
        src.status(),
        supportd::oauth::GrantStatus::Failing { .. }
    ));
    // Within the back-off the endpoint is not asked again.
    let asked = server.refreshes(&user);
    assert!(src.access_token().await.is_err());
    assert_eq!(server.refreshes(&user), asked);
    server.set_down(&client, false);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let token = src.access_token().await.expect("back");
    assert!(src.status().is_ok());
    // The login works with it, and a second mailbox on the same grant shares the token.
    let conn = supportd::inbound::fetch::connect(&settings.mailboxes["m"])
        .await
        .expect("XOAUTH2 login");
    conn.logout().await;
    assert_eq!(
        src.access_token().await.expect("held").expose(),
        token.expose()
    );
    assert_eq!(server.refreshes(&user), 1, "one refresh served both");
}
