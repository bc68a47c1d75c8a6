//! Stage `send`: the outbox worker and the SMTP edge.
//!
//! The worker claims due mail (with a lease, so several daemons never send the same row at once),
//! sends the stored bytes through lettre's SMTP client on up to `outbox.connections` connections
//! at once (one ticket's mail in order on one of them; see [`crate::outbound::smtp`]), and records the outcome: `sent`; `pending` again with
//! exponential backoff and jitter after a transient failure (SMTP 4xx, network); `failed` with an
//! event on the ticket after a permanent failure (5xx) or when `give_up_after_secs` has passed.
//!
//! Invariants: the bytes sent are exactly the bytes committed, Message-ID included, so a retry is
//! the same mail; the worker sleeps until the next due mail or a wake-up, never polls in a loop;
//! a stop lets the mail in hand finish.

use crate::clock::{Millis, SharedClock};
use crate::config::SmtpSettings;
use crate::domain::EventKind;
use crate::domain::{Plan, TicketRef};
use crate::outbound::smtp::{Relay, RelayConfig, RelayError};
use crate::store::{ClaimedMail, Record, Store};
use crate::ticket::lifecycle;
use crate::workers::{self, Step, Worker};
use futures::StreamExt;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("SMTP server {host}:{port}: {reason}")]
    Setup {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
    /// Our own credentials failed (an OAuth grant revoked or its provider down, a refused
    /// password): the recipient is not at fault, so the mail waits — never given up — and is
    /// sent once the credentials work again.
    #[error("{0}")]
    Credentials(String),
}

type Transport = Relay;

/// The SMTP edge: a pooled relay client (see [`crate::outbound::smtp`]) with the relay's password, or, with OAuth 2.0, one built
/// for the grant's current access token (rebuilt when the token changes; the pool's connections
/// stay logged in with the token they were opened with).
#[derive(Clone)]
pub struct Mailer {
    settings: Arc<SmtpSettings>,
    fixed: Option<Transport>,
    oauth: Arc<tokio::sync::Mutex<Option<(crate::config::Secret, Transport)>>>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.settings.host)
            .field("oauth", &self.settings.oauth)
            .finish()
    }
}

fn transport(
    s: &SmtpSettings,
    credentials: Option<(Credentials, bool)>,
) -> Result<Transport, SendError> {
    let setup = |reason: String| SendError::Setup {
        host: s.host.clone(),
        port: s.port,
        reason,
    };
    let (credentials, mechanisms) = match credentials {
        Some((c, true)) => (Some(c), vec![Mechanism::Xoauth2]),
        Some((c, false)) => (Some(c), Vec::new()),
        None => (None, Vec::new()),
    };
    Relay::new(RelayConfig {
        host: s.host.clone(),
        port: s.port,
        tls: s.tls,
        timeout: Duration::from_secs(s.timeout_secs),
        credentials,
        mechanisms,
    })
    .map_err(setup)
}

/// Builds the SMTP edge from config.
pub fn mailer(s: &SmtpSettings) -> Result<Mailer, SendError> {
    let fixed = match (&s.token, &s.user) {
        (Some(_), _) => None,
        (None, Some(user)) => Some(transport(
            s,
            Some((
                Credentials::new(user.clone(), s.password.expose().to_string()),
                false,
            )),
        )?),
        (None, None) => Some(transport(s, None)?),
    };
    if s.token.is_some() {
        // Check the settings now, not at the first mail.
        transport(s, None)?;
    }
    Ok(Mailer {
        settings: Arc::new(s.clone()),
        fixed,
        oauth: Default::default(),
    })
}

/// SMTP replies that mean the credentials were refused (RFC 4954 §6: 530, 534, 535, 538; 454
/// is a temporary authentication failure), or lettre's refusal of the server's XOAUTH2 error
/// challenge (the server sends its JSON error as a 334 challenge).
fn auth_refused(e: &RelayError) -> bool {
    let RelayError::Smtp(e) = e else {
        return false;
    };
    match e.status().map(u16::from) {
        Some(530 | 534 | 535 | 538 | 454) => true,
        _ => e.is_client() && e.to_string().contains("challenge"),
    }
}

impl Mailer {
    /// The transport to send with now, and the access token it logs in with (OAuth).
    async fn transport(&self) -> Result<(Transport, Option<crate::config::Secret>), SendError> {
        if let Some(t) = &self.fixed {
            return Ok((t.clone(), None));
        }
        let (Some(src), Some(user)) = (&self.settings.token, &self.settings.user) else {
            return Err(SendError::Transient(
                "SMTP OAuth2 settings incomplete".into(),
            ));
        };
        // The grant failing is our side's problem, never the recipient's: the mail waits.
        let token = src
            .access_token()
            .await
            .map_err(|e| SendError::Credentials(e.to_string()))?;
        let mut cur = self.oauth.lock().await;
        if let Some((t, tr)) = cur.as_ref() {
            if *t == token {
                return Ok((tr.clone(), Some(token)));
            }
        }
        let tr = transport(
            &self.settings,
            Some((
                Credentials::new(user.clone(), token.expose().to_string()),
                true,
            )),
        )?;
        *cur = Some((token.clone(), tr.clone()));
        Ok((tr, Some(token)))
    }
}

/// Checks that the SMTP server answers EHLO (and accepts our credentials).
pub async fn check(m: &Mailer) -> Result<(), String> {
    let (t, _) = m.transport().await.map_err(|e| e.to_string())?;
    match t.test_connection().await {
        Ok(true) => Ok(()),
        Ok(false) => Err("server did not accept the connection".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends one claimed mail. With OAuth 2.0, a refused access token is refreshed and the mail
/// sent once more; refused credentials are a transient failure (the mail waits for the grant to
/// be fixed rather than fail for good).
pub async fn send_one(m: &Mailer, mail: &ClaimedMail) -> Result<(), SendError> {
    let from = mail.envelope_from.parse().map_err(|e| {
        SendError::Permanent(format!("bad envelope sender {}: {e}", mail.envelope_from))
    })?;
    let mut to = Vec::new();
    for r in &mail.recipients {
        to.push(
            r.parse()
                .map_err(|e| SendError::Permanent(format!("bad recipient {r}: {e}")))?,
        );
    }
    let envelope =
        Envelope::new(Some(from), to).map_err(|e| SendError::Permanent(e.to_string()))?;
    let mut retried = false;
    loop {
        let (t, token) = m.transport().await?;
        match t.send_raw(&envelope, &mail.raw).await {
            Ok(_) => return Ok(()),
            Err(e) if auth_refused(&e) => {
                if let (Some(token), Some(src), false) = (&token, &m.settings.token, retried) {
                    if src.rejected(token).await {
                        retried = true;
                        continue;
                    }
                }
                return Err(SendError::Credentials(format!(
                    "the SMTP server refused our credentials: {e}"
                )));
            }
            Err(e) if e.is_permanent() => return Err(SendError::Permanent(e.to_string())),
            Err(e) => return Err(SendError::Transient(e.to_string())),
        }
    }
}

/// Retry schedule: base · 2^attempt, capped, with ±20 % jitter so a fleet does not retry in step.
pub fn backoff(attempt: i64, base_ms: Millis, max_ms: Millis) -> Millis {
    let exp = base_ms.saturating_mul(1i64 << attempt.clamp(0, 30));
    let d = exp.min(max_ms);
    let jitter = rand::thread_rng().gen_range(-(d / 5)..=(d / 5).max(1));
    (d + jitter).max(base_ms / 2)
}

/// `items` in lanes: the items of one key in one lane, in their order; each item without a key
/// in a lane of its own. Lanes come in the order of their first item.
fn lanes<T>(items: Vec<T>, key: impl Fn(&T) -> Option<i64>) -> Vec<Vec<T>> {
    let mut lanes: Vec<Vec<T>> = Vec::new();
    let mut lane_of: std::collections::HashMap<i64, usize> = Default::default();
    for item in items {
        let k = key(&item);
        match k.and_then(|k| lane_of.get(&k).copied()) {
            Some(l) => lanes[l].push(item),
            None => {
                if let Some(k) = k {
                    lane_of.insert(k, lanes.len());
                }
                lanes.push(vec![item]);
            }
        }
    }
    lanes
}

/// The outbox worker.
#[derive(Clone)]
pub struct OutboxWorker {
    pub store: Store,
    pub mailer: Mailer,
    pub clock: SharedClock,
    pub wake: Arc<Notify>,
    pub retry_base_ms: Millis,
    pub retry_max_ms: Millis,
    pub batch: u32,
    /// SMTP connections used at once (`outbox.connections`).
    pub connections: usize,
    /// This daemon's identity, on the leases it takes (see `app::instance`).
    pub holder: String,
    pub health: Arc<crate::ops::health::Health>,
    pub metrics: Arc<crate::ops::metrics::Metrics>,
}

const LEASE_MS: Millis = 5 * 60_000;

/// Claimed mail given back unsent is due again after this long (ms).
const RELEASE_DELAY_MS: Millis = 10_000;

/// How soon mail waiting for our credentials is tried again: `retry_base_secs`, 5 s to 60 s.
fn credentials_retry(base_ms: Millis) -> Millis {
    base_ms.clamp(5_000, 60_000)
}

/// The worker's name in health reports.
const TASK: &str = "outbox";

impl OutboxWorker {
    /// Claims and sends one batch of due mail.
    pub async fn try_send_once(&self) -> Result<Step, crate::store::StoreError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_due(now, LEASE_MS, self.batch, &self.holder)
            .await?;
        if claimed.is_empty() {
            return Ok(Step::Idle);
        }
        let n = claimed.len();
        // Once our credentials fail, the rest of the batch waits without another login each.
        let credentials_down = std::sync::Mutex::new(None::<String>);
        // Mail of one ticket goes in order, one after the other; tickets go side by side, on up
        // to `connections` SMTP connections at once.
        let lanes = lanes(claimed, |m| m.ticket_id);
        // No mail is begun once half the lease has passed.
        let begin_by = now + LEASE_MS / 2;
        // Every lane runs to its end: a lane dropped mid-send (as `try_for_each_concurrent`
        // would on another lane's error) could leave a mail the server took unrecorded, to be
        // sent again. A lane stops at its first database error; the first is returned.
        let first_error = std::sync::Mutex::new(None::<crate::store::StoreError>);
        // Claimed mail never begun (after a lane's database error, or past `begin_by`): given
        // back below rather than left to wait out its 5-minute claim. Never sent, so never sent
        // twice.
        let unsent = std::sync::Mutex::new(Vec::<i64>::new());
        futures::stream::iter(lanes)
            .for_each_concurrent(self.connections.max(1), |lane| {
                let (down, first_error, unsent) = (&credentials_down, &first_error, &unsent);
                async move {
                    let mut lane = lane.into_iter();
                    while let Some(mail) = lane.next() {
                        let id = mail.id;
                        let mut begun = false;
                        let result = if self.clock.now() > begin_by {
                            Ok(false)
                        } else {
                            self.send_claimed(mail, down, &mut begun)
                                .await
                                .map(|()| true)
                        };
                        match result {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(e) => {
                                first_error
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .get_or_insert(e);
                            }
                        }
                        let mut u = unsent.lock().unwrap_or_else(|p| p.into_inner());
                        if !begun {
                            u.push(id);
                        }
                        u.extend(lane.by_ref().map(|m| m.id));
                        break;
                    }
                }
            })
            .await;
        let unsent = unsent.into_inner().unwrap_or_else(|p| p.into_inner());
        if !unsent.is_empty() {
            self.release_unsent(&unsent).await;
        }
        if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(Step::Worked(n))
    }

    /// Gives back claimed mail never begun, due again in [`RELEASE_DELAY_MS`] (not at once: a
    /// database fault that stopped it would otherwise be met again in a tight loop). The
    /// database may be what failed, so this is retried in place like recording a sent mail;
    /// after that the mail waits out its claim, as before.
    async fn release_unsent(&self, ids: &[i64]) {
        let what = format!("{} claimed mail(s) not begun, to give back", ids.len());
        let released = self
            .retry_in_place(&what, || {
                let next = self.clock.now() + RELEASE_DELAY_MS;
                self.store.release_unsent(ids, &self.holder, next)
            })
            .await;
        match released {
            Ok(0) => {}
            Ok(n) => info!(mails = n, "claimed mail not begun given back to the queue"),
            Err(e) => {
                warn!(error = %e, mails = ids.len(), "claimed mail not begun could not be given back; it is claimed again when its claim runs out (5 min)")
            }
        }
    }

    /// Runs a database step, retrying it in place on an error up to 8 times with growing
    /// pauses (~30 s in all), each retry a WARN naming `what` and a storage failure in the
    /// health report; the last error is returned.
    async fn retry_in_place<T, Fut>(
        &self,
        what: &str,
        mut step: impl FnMut() -> Fut,
    ) -> Result<T, crate::store::StoreError>
    where
        Fut: std::future::Future<Output = Result<T, crate::store::StoreError>>,
    {
        let mut failures = 0u32;
        loop {
            match step().await {
                Ok(v) => return Ok(v),
                Err(e) if failures < 8 => {
                    failures += 1;
                    warn!(error = %e, "{what}: not yet recorded; retrying");
                    self.health.storage_failed(TASK, &e.to_string());
                    tokio::time::sleep(crate::workers::error_backoff(failures)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends one claimed mail and records the outcome. `credentials_down` holds why our own
    /// credentials failed earlier in the batch: the mail then waits without a login.
    /// `begun` is set once the mail is handed to the SMTP server (from then on it may have
    /// been taken, so it is never given back unsent).
    async fn send_claimed(
        &self,
        mut mail: ClaimedMail,
        credentials_down: &std::sync::Mutex<Option<String>>,
        begun: &mut bool,
    ) -> Result<(), crate::store::StoreError> {
        let span = tracing::info_span!(
            "outbox",
            outbox.id = mail.id,
            ticket.id = mail.ticket_id,
            outbox.attempt = mail.attempts + 1
        );
        async {
                self.health.beat(TASK);
                if mail.accepted {
                    // Accepted by the SMTP server before a crash: record it, never send twice.
                    info!(message_id = %mail.message_id, "mail accepted before a restart; recording it as sent");
                    self.record_sent(&mail, self.clock.now()).await?;
                    self.metrics.mail_sent(mail.kind.as_str());
                    return Ok(());
                }
                let down = credentials_down
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                if let Some(why) = down {
                    let next = self.clock.now() + credentials_retry(self.retry_base_ms);
                    self.store.mark_retry(&mail, &why, next).await?;
                    return Ok(());
                }
                self.store.load_raw(&mut mail).await?;
                tracing::debug!(message_id = %mail.message_id, bytes = mail.raw.len(), "sending");
                // A slow relay is not a stuck worker: beat while the send is in flight (each
                // exchange is bounded in `outbound::smtp`).
                *begun = true;
                let result = {
                    let send = send_one(&self.mailer, &mail);
                    tokio::pin!(send);
                    loop {
                        tokio::select! {
                            r = &mut send => break r,
                            _ = tokio::time::sleep(Duration::from_secs(30)) => self.health.beat(TASK),
                        }
                    }
                };
                mail.raw = Vec::new();
                let now = self.clock.now();
                match result {
                    Ok(()) => {
                        tracing::debug!(message_id = %mail.message_id, "accepted by the SMTP server");
                        let accepted = std::time::Instant::now();
                        if let Err(e) = self.store.mark_accepted(&mail, now).await {
                            warn!(error = %e, message_id = %mail.message_id, "mail sent but its acceptance could not be recorded at once");
                        }
                        self.metrics.send_committed(accepted.elapsed().as_secs_f64());
                        info!(message_id = %mail.message_id, kind = %mail.kind, "mail sent");
                        self.record_sent(&mail, now).await?;
                        self.metrics.mail_sent(mail.kind.as_str());
                        Ok(())
                    }
                    Err(SendError::Credentials(e)) => {
                        // Not the recipient's fault: retried every minute however long it
                        // takes, never given up (the grant's state is in /readyz and the log).
                        let next = now + credentials_retry(self.retry_base_ms);
                        warn!(error = %e, retry_at = %crate::clock::rfc3339(next), "send waits: our SMTP credentials do not work");
                        self.store.mark_retry(&mail, &e, next).await?;
                        self.metrics.send_failure("credentials");
                        *credentials_down.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        Ok(())
                    }
                    Err(SendError::Transient(e)) if now < mail.give_up_at => {
                        let next = now + backoff(mail.attempts, self.retry_base_ms, self.retry_max_ms);
                        warn!(error = %e, retry_at = %crate::clock::rfc3339(next), "send failed; will retry");
                        self.store.mark_retry(&mail, &e, next).await?;
                        self.metrics.send_failure("retry");
                        Ok(())
                    }
                    Err(e) => {
                        warn!(error = %e, "send failed for good; recorded on the ticket");
                        self.failed(&mail, &e.to_string(), now).await?;
                        self.metrics.send_failure("failed");
                        Ok::<(), crate::store::StoreError>(())
                    }
                }
            }
        .instrument(span)
        .await
    }

    /// Records a mail the SMTP server accepted. This is the one at-least-once window: until
    /// `sent` commits, a crash makes the lease run out and the mail go again (same bytes, same
    /// Message-ID). A database error here is retried in place for up to ~30 s rather than left
    /// to the lease, so a passing fault (a full disk, a lost connection) does not re-send.
    async fn record_sent(
        &self,
        mail: &ClaimedMail,
        now: Millis,
    ) -> Result<(), crate::store::StoreError> {
        let what = format!("mail {} sent", mail.message_id);
        self.retry_in_place(&what, || self.sent(mail, now)).await
    }

    /// Records a sent mail and what sending it changes on its ticket (an acknowledgement keeps
    /// the acknowledgement promise), in one transaction.
    async fn sent(&self, mail: &ClaimedMail, now: Millis) -> Result<(), crate::store::StoreError> {
        let mut tx = self.store.begin().await?;
        if self.store.mark_sent(&mut tx, mail, now).await? {
            let mut plan = match mail.ticket_id {
                Some(t) => lifecycle::mail_sent(TicketRef(t), mail.kind),
                None => Plan::default(),
            };
            plan.event(
                EventKind::MailSent,
                serde_json::json!({"message_id": mail.message_id, "attempts": mail.attempts + 1}),
            );
            self.store
                .commit(&mut tx, &[Record::plan(&plan)], now)
                .await?;
        }
        tx.commit().await?;
        self.store.sent_recorded(mail);
        Ok(())
    }

    /// Gives a mail up, with an `outbox_failed` event on its ticket, in one transaction.
    async fn failed(
        &self,
        mail: &ClaimedMail,
        error: &str,
        now: Millis,
    ) -> Result<(), crate::store::StoreError> {
        let mut tx = self.store.begin().await?;
        self.store.mark_failed(&mut tx, mail, error).await?;
        let plan = Plan::with_event(
            mail.ticket_id.map(TicketRef),
            EventKind::OutboxFailed,
            serde_json::json!({"message_id": mail.message_id, "error": error, "attempts": mail.attempts + 1}),
        );
        self.store
            .commit(&mut tx, &[Record::plan(&plan)], now)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Worker for OutboxWorker {
    const TASK: &'static str = TASK;
    async fn step(&mut self) -> Result<Step, crate::store::StoreError> {
        self.try_send_once().await
    }
    async fn next_due(&mut self) -> Result<Option<Millis>, crate::store::StoreError> {
        self.store.next_due().await
    }
    fn now(&self) -> Millis {
        self.clock.now()
    }
    fn health(&self) -> Arc<crate::ops::health::Health> {
        self.health.clone()
    }
    fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

impl OutboxWorker {
    /// Runs until `cancel`: sends what is due, then sleeps until the next due mail or a wake-up.
    pub async fn run(self, cancel: CancellationToken) {
        workers::run(self, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tickets_mail_stays_in_order_in_one_lane() {
        let mail = vec![
            (Some(1), 'a'),
            (Some(2), 'b'),
            (None, 'c'),
            (Some(1), 'd'),
            (None, 'e'),
        ];
        let got: Vec<String> = lanes(mail, |m| m.0)
            .into_iter()
            .map(|l| l.into_iter().map(|m| m.1).collect())
            .collect();
        assert_eq!(got, ["ad", "b", "c", "e"]);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let a = backoff(0, 30_000, 3_600_000);
        assert!((24_000..=36_000).contains(&a), "{a}");
        let b = backoff(3, 30_000, 3_600_000);
        assert!((192_000..=288_000).contains(&b), "{b}");
        let c = backoff(40, 30_000, 3_600_000);
        assert!(c <= 4_320_000, "{c}");
    }
}
