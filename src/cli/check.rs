//! `supportd check`: what ops run before a restart — config, templates, database, IMAP login and
//! folder per mailbox, SMTP EHLO (and AUTH when a user is set), the HTTP listener address: an
//! `OK`/`FAIL` line each with the exact failure, exit 1 on any.

use crate::config::Settings;
use crate::outbound::templates::Templates;
use crate::store::Store;
use std::path::Path;
use std::process::ExitCode;

pub(super) async fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut report = |ok: bool, what: String| {
        println!("{} {what}", if ok { "OK  " } else { "FAIL" });
        failed |= !ok;
    };
    let settings = match Settings::load(config) {
        Ok(s) => {
            report(true, format!("config {}", config.display()));
            s
        }
        Err(e) => {
            report(false, e.to_string());
            return Ok(ExitCode::FAILURE);
        }
    };
    if settings.agent_mail.require_auth == "none" && !settings.agents.is_empty() {
        println!(
            "WARN agent_mail.require_auth = \"none\": an agent's authority rests on the From header of a mail to a card's address, and anyone who sees a card can forge one. Set \"dkim\" or \"dkim_or_spf\" (your MX stamps Authentication-Results and strips foreign ones; set authserv_id) or \"submission\" (agents send through your own MTA; set trusted_hosts)."
        );
    }
    match Templates::load(&settings.service.templates_dir) {
        Ok(t) => report(
            true,
            format!("templates: {} approved, all render", t.approvals().len()),
        ),
        Err(e) => report(false, e.to_string()),
    }
    match Store::connect(&settings.database_url(), 1).await {
        Ok(s) => {
            report(
                true,
                format!(
                    "database {}",
                    crate::store::redact_url(&settings.database_url())
                ),
            );
            s.close().await;
        }
        Err(e) => report(false, e.to_string()),
    }
    for (name, src) in &settings.oauth_sources {
        let g = src.grant();
        match src.access_token().await {
            Ok(_) => report(
                true,
                format!(
                    "oauth.{name}: refresh token in {} gives an access token ({})",
                    g.refresh_token_file.display(),
                    g.token_url
                ),
            ),
            Err(e) => report(false, format!("oauth.{name}: {e}")),
        }
    }
    for (name, mb) in &settings.mailboxes {
        match crate::inbound::fetch::connect(mb).await {
            Ok(mut conn) => match conn.select(&mb.folder).await {
                Ok(sel) => {
                    let how = match &mb.oauth {
                        Some(g) => format!(
                            " with {} (oauth.{g})",
                            mb.auth.unwrap_or_default().mechanism()
                        ),
                        None => String::new(),
                    };
                    report(true, format!("mailboxes.{name}: IMAP {}:{} login as {}{how}, folder {:?} (UIDVALIDITY {})", mb.host, mb.port, mb.user, mb.folder, sel.uidvalidity));
                    conn.logout().await;
                }
                Err(e) => report(false, format!("mailboxes.{name}: {e}")),
            },
            Err(e) => report(false, format!("mailboxes.{name}: {e}")),
        }
    }
    match crate::outbound::outbox::mailer(&settings.smtp) {
        Ok(m) => match crate::outbound::outbox::check(&m).await {
            Ok(()) => report(
                true,
                format!(
                    "smtp: {}:{} answers EHLO{}",
                    settings.smtp.host,
                    settings.smtp.port,
                    match (&settings.smtp.oauth, &settings.smtp.user) {
                        (Some(g), Some(u)) => format!(" and takes XOAUTH2 as {u} (oauth.{g})"),
                        (None, Some(u)) => format!(" and takes the password of {u}"),
                        _ => String::new(),
                    }
                ),
            ),
            Err(e) => report(
                false,
                format!("smtp: {}:{}: {e}", settings.smtp.host, settings.smtp.port),
            ),
        },
        Err(e) => report(false, format!("smtp: {e}")),
    }
    if settings.report.mail {
        let to = settings.report_recipients();
        if to.is_empty() {
            println!("WARN report: the monthly report is not mailed: no [report] to and no agent with role = \"supervisor\"");
        } else {
            match crate::report::charts::load_font(settings.report.font.as_deref()) {
                Ok(font) => report(
                    true,
                    format!(
                        "report: mailed on day {} at {:02}:00 to {} (charts drawn with {})",
                        settings.report.day,
                        settings.report.hour,
                        to.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "),
                        font.display()
                    ),
                ),
                Err(e) => println!("WARN report: {e}; the report goes without charts"),
            }
        }
    }
    match settings.http.address() {
        Some(a) => report(
            true,
            format!("http: /metrics, /healthz, /readyz on {a} (http.listen)"),
        ),
        None => report(true, "http: no listener (http.listen is empty)".into()),
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
