//! Test and benchmark support: the local mail rig (`deploy/dev/mailrig`) and fixtures for unit
//! tests of the pure stages. Not used by the daemon itself.

use std::io::{Error, ErrorKind, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;

/// A fresh, empty PostgreSQL database for a test (`$SUPPORTD_TEST_PG`, default the tests'
/// server on 127.0.0.1:5432 with trust auth), named `<prefix>_<random>`; returns its URL.
/// Panics when the server does not answer (tests only).
pub async fn fresh_postgres_database(prefix: &str) -> String {
    use sqlx::Connection;
    let admin = std::env::var("SUPPORTD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let n: u64 = rand::random();
    let name = format!("{prefix}_{:010x}", n & 0xff_ffff_ffff);
    let mut conn = sqlx::PgConnection::connect(&format!("{admin}/postgres"))
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (start it: deploy/dev/postgres-up)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    format!("{admin}/{name}")
}

/// The rig's LMTP port.
pub const LMTP_PORT: u16 = 10024;
/// The rig's mail domain.
pub const DOMAIN: &str = "example.test";

async fn reply(r: &mut BufReader<OwnedReadHalf>, expect: &str) -> Result<()> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                "LMTP server closed the connection",
            ));
        }
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            break;
        }
    }
    if all.starts_with(expect) {
        Ok(())
    } else {
        Err(Error::other(format!(
            "LMTP: expected {expect}, got {}",
            all.trim_end()
        )))
    }
}

/// Delivers raw bytes straight into Dovecot over LMTP, bypassing Postfix (which would repair a
/// broken mail's headers, and is slower). Many mails in one session.
pub async fn lmtp_deliver(to: &str, mails: &[Vec<u8>]) -> Result<()> {
    lmtp_deliver_at(LMTP_PORT, to, mails).await
}

/// [`lmtp_deliver`] to the LMTP server on `port` (another rig).
pub async fn lmtp_deliver_at(port: u16, to: &str, mails: &[Vec<u8>]) -> Result<()> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    reply(&mut r, "220").await?;
    w.write_all(b"LHLO rig\r\n").await?;
    reply(&mut r, "250").await?;
    let mut data = Vec::new();
    for raw in mails {
        w.write_all(format!("MAIL FROM:<lmtp@{DOMAIN}>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes())
            .await?;
        for expect in ["250", "250", "354"] {
            reply(&mut r, expect).await?;
        }
        data.clear();
        for line in raw.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b".") {
                data.push(b'.');
            }
            data.extend_from_slice(line);
        }
        if !data.ends_with(b"\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        w.write_all(&data).await?;
        reply(&mut r, "250").await?;
    }
    w.write_all(b"QUIT\r\n").await?;
    Ok(())
}

/// Everything a pure stage's unit test needs: a [`Desk`](crate::app::context::Desk) with the
/// shipped templates, a signer, the default promises (or given ones), one agent, one other agent
/// and one supervisor, answering in Simplified Chinese, with the shared-mailbox queue on.
pub struct StageFixture {
    pub desk: crate::app::context::Desk,
    pub agents: Vec<crate::domain::Agent>,
}

impl StageFixture {
    pub fn new() -> StageFixture {
        StageFixture::with_sla("")
    }

    /// With `[sla]` settings given as TOML.
    pub fn with_sla(sla_toml: &str) -> StageFixture {
        use crate::domain::EmailAddress;
        use crate::domain::{Agent, Role};
        let addr = |s: &str| EmailAddress::parse(s).unwrap_or_else(|| panic!("address {s}"));
        let settings: crate::ticket::sla::SlaSettings =
            toml::from_str(sla_toml).unwrap_or_else(|e| panic!("sla settings: {e}"));
        let templates = crate::outbound::templates::Templates::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates"),
        )
        .unwrap_or_else(|e| panic!("templates: {e}"));
        let signer = crate::inbound::thread::ReplySigner::new(
            crate::config::Secret::new("0123456789abcdef0123"),
            vec![],
        );
        let support = addr("support@example.test");
        let agents = vec![
            Agent {
                name: "李娜".into(),
                address: addr("lina@example.test"),
                role: Role::Agent,
            },
            Agent {
                name: "Tom".into(),
                address: addr("tom@example.test"),
                role: Role::Agent,
            },
            Agent {
                name: "王敏".into(),
                address: addr("wangmin@example.test"),
                role: Role::Supervisor,
            },
        ];
        let desk = crate::app::context::Desk {
            templates,
            analyzer: crate::inbound::analyze::Analyzer::new(
                support.clone(),
                "example.test".into(),
                signer.clone(),
                std::sync::Arc::new(crate::inbound::classify::Classifier::builtin()),
            )
            .with_agents(&agents),
            signer,
            support_address: support.clone(),
            support_name: "客服中心".into(),
            message_id_domain: "example.test".into(),
            thread_policy: crate::inbound::thread::ThreadPolicy {
                reopen_within_ms: 30 * 86_400_000,
                agents: agents.iter().map(|a| a.address.clone()).collect(),
                internal_domains: vec!["example.test".into()],
            },
            sla: std::sync::Arc::new(
                crate::ticket::sla::SlaPolicy::new(
                    &settings,
                    crate::ticket::calendar::Calendar::hours(),
                )
                .unwrap_or_else(|e| panic!("sla: {e:?}")),
            ),
            agents: agents.clone(),
            agent_language: crate::domain::Language::ZhHans,
            ack_limit_per_hour: 3,
            authority: Default::default(),
            wording: Default::default(),
            queue: Some(crate::app::context::QueuePolicy {
                notify_new: false,
                card_attachments_max_bytes: 20 * 1024 * 1024,
            }),
            outbox: crate::domain::OutboxPolicy {
                envelope_from: support,
                give_up_after_ms: 86_400_000,
                max_message_bytes: 25 * 1024 * 1024,
            },
        };
        StageFixture { desk, agents }
    }

    /// The desk the stages consult.
    pub fn desk(&self) -> &crate::app::context::Desk {
        &self.desk
    }

    /// Agent number `i` of the fixture's list.
    pub fn agent(&self, i: usize) -> crate::domain::EmailAddress {
        self.agents[i].address.clone()
    }

    /// An open ticket of a category, not created by the mail at hand.
    pub fn ticket(&self, category: crate::domain::Category) -> crate::domain::TicketState {
        let mut c = crate::domain::Classification::plain(crate::domain::Language::ZhHans);
        c.category = category;
        if category == crate::domain::Category::Complaint {
            c.severity = Some(crate::domain::Severity::General);
        }
        c.priority = crate::domain::Priority::derive(c.category, c.severity, false, false);
        let mut t = crate::domain::TicketState::new(
            crate::domain::TicketRef(42),
            crate::domain::EmailAddress::parse("wang@qq.com").unwrap_or_else(|| panic!("addr")),
            Some("王先生".into()),
            "退款".into(),
            &c,
        );
        t.created = false;
        t
    }
}

impl Default for StageFixture {
    fn default() -> Self {
        StageFixture::new()
    }
}
