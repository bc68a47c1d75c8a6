//! `supportd oauth authorize|status`: the first sign-in of an OAuth 2.0 grant, and the grants'
//! state.

use super::{Cli, OauthCommand};
use crate::config::Settings;
use crate::oauth::authorize::{self, Flow};
use anyhow::Context;
use std::process::ExitCode;
use std::time::Duration;

/// Who logs in with grant `name`: `mailboxes.X`, `smtp`.
fn users(settings: &Settings, name: &str) -> Vec<String> {
    let mut u: Vec<String> = settings
        .mailboxes
        .iter()
        .filter(|(_, m)| m.oauth.as_deref() == Some(name))
        .map(|(k, _)| format!("mailboxes.{k}"))
        .collect();
    if settings.smtp.oauth.as_deref() == Some(name) {
        u.push("smtp".into());
    }
    u
}

pub(super) async fn run(cli: &Cli, command: &OauthCommand) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&cli.config_path()?)?;
    match command {
        OauthCommand::Authorize {
            grant,
            mailbox,
            smtp,
            flow,
            timeout_secs,
        } => {
            let name = match (grant, mailbox, smtp) {
                (Some(g), _, _) => g.clone(),
                (None, Some(m), _) => {
                    let mb = settings
                        .mailboxes
                        .get(m)
                        .with_context(|| format!("no mailbox [mailboxes.{m}] in the config"))?;
                    mb.oauth.clone().with_context(|| {
                        format!("mailboxes.{m} does not log in with OAuth (no `oauth = \"GRANT\"`)")
                    })?
                }
                (None, None, true) => settings
                    .smtp
                    .oauth
                    .clone()
                    .context("[smtp] does not log in with OAuth (no `oauth = \"GRANT\"`)")?,
                (None, None, false) => {
                    match settings.oauth_sources.keys().collect::<Vec<_>>()[..] {
                        [only] => only.clone(),
                        [] => anyhow::bail!("no [oauth.NAME] grant in the config"),
                        _ => anyhow::bail!(
                            "several grants: name one ({})",
                            settings
                                .oauth_sources
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                }
            };
            let src = settings
                .oauth_sources
                .get(&name)
                .with_context(|| format!("no grant [oauth.{name}] in the config"))?;
            let g = src.grant();
            let flow = flow.unwrap_or_else(|| Flow::default_for(g));
            println!(
                "oauth.{name}: {:?} sign-in for client {} (scopes: {})",
                flow,
                g.client_id,
                g.scopes.join(" ")
            );
            let mut out = std::io::stdout();
            let done = authorize::authorize(g, flow, Duration::from_secs(*timeout_secs), &mut out)
                .await
                .with_context(|| format!("oauth.{name}: the sign-in did not complete"))?;
            println!(
                "OK   oauth.{name}: refresh token saved to {} (access token valid {} min); used by {}",
                done.file.display(),
                done.expires_in.as_secs() / 60,
                users(&settings, &name).join(", ")
            );
            let mut failed = false;
            for (mname, mb) in settings
                .mailboxes
                .iter()
                .filter(|(_, m)| m.oauth.as_deref() == Some(name.as_str()))
            {
                match crate::inbound::fetch::connect(mb).await {
                    Ok(conn) => {
                        println!(
                            "OK   mailboxes.{mname}: IMAP {} as {} with {}",
                            mb.host,
                            mb.user,
                            mb.auth.unwrap_or_default().mechanism()
                        );
                        conn.logout().await;
                    }
                    Err(e) => {
                        failed = true;
                        println!("FAIL mailboxes.{mname}: {e}");
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        OauthCommand::Status { json } => {
            let mut rows = Vec::new();
            let mut failed = false;
            for (name, src) in &settings.oauth_sources {
                let result = src.access_token().await;
                failed |= result.is_err();
                let g = src.grant();
                rows.push(serde_json::json!({
                    "grant": name,
                    "provider": format!("{:?}", g.provider).to_lowercase(),
                    "client_id": g.client_id,
                    "token_url": g.token_url,
                    "refresh_token_file": g.refresh_token_file,
                    "status": src.status(),
                    "error": result.err().map(|e| e.to_string()),
                    "used_by": users(&settings, name),
                }));
            }
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no [oauth.NAME] grants in the config");
            } else {
                for r in &rows {
                    println!(
                        "{} oauth.{}: {} — {} (used by {})",
                        if r["error"].is_null() { "OK  " } else { "FAIL" },
                        r["grant"].as_str().unwrap_or(""),
                        r["refresh_token_file"].as_str().unwrap_or(""),
                        r["error"].as_str().unwrap_or("gives an access token"),
                        r["used_by"]
                            .as_array()
                            .map(|a| a
                                .iter()
                                .filter_map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(", "))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
