//! Prometheus metrics (prometheus-client, the Prometheus project's own Rust client): counters the
//! stages bump as they work, a processing-latency histogram, and gauges read from the database
//! when `/metrics` is scraped (outbox depth and oldest age, running promises).
//!
//! Invariants: labels only ever take values from small fixed sets (verdicts, mail kinds,
//! promise kinds, configured mailbox names) — never addresses or subjects; a metric is only ever
//! incremented after the work it counts has committed.

use crate::domain::EventKind;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

/// One label.
fn l(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}

pub struct Metrics {
    registry: Registry,
    fetched: Family<Labels, Counter>,
    screened: Family<Labels, Counter>,
    tickets_created: Counter,
    unattributed: Family<Labels, Counter>,
    authority_refused: Family<Labels, Counter>,
    acks_suppressed: Family<Labels, Counter>,
    mail_sent: Family<Labels, Counter>,
    send_failures: Family<Labels, Counter>,
    sla_warnings: Family<Labels, Counter>,
    sla_breaches: Family<Labels, Counter>,
    escalations: Family<Labels, Counter>,
    imap_reconnects: Family<Labels, Counter>,
    storage_errors: Family<Labels, Counter>,
    send_commit: Histogram,
    processing: Histogram,
    outbox_depth: Gauge,
    outbox_oldest: Gauge<f64, AtomicU64>,
    timers_running: Gauge,
    mailbox_poll_age: Family<Labels, Gauge<f64, AtomicU64>>,
    oauth_grant_ok: Family<Labels, Gauge>,
    oauth_refreshes: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("supportd");
        let m = Metrics {
            fetched: Family::default(),
            screened: Family::default(),
            tickets_created: Counter::default(),
            unattributed: Family::default(),
            authority_refused: Family::default(),
            acks_suppressed: Family::default(),
            mail_sent: Family::default(),
            send_failures: Family::default(),
            sla_warnings: Family::default(),
            sla_breaches: Family::default(),
            escalations: Family::default(),
            imap_reconnects: Family::default(),
            storage_errors: Family::default(),
            // 100 µs … ~26 s.
            send_commit: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            // 50 µs … ~6.5 s per mail (commit included).
            processing: Histogram::new(exponential_buckets(0.00005, 2.0, 18)),
            outbox_depth: Gauge::default(),
            outbox_oldest: Gauge::default(),
            timers_running: Gauge::default(),
            mailbox_poll_age: Family::default(),
            oauth_grant_ok: Family::default(),
            oauth_refreshes: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "messages_fetched",
            "Mails fetched from IMAP and committed, by mailbox",
            m.fetched.clone(),
        );
        registry.register(
            "messages_screened",
            "New mails stored, by screening verdict",
            m.screened.clone(),
        );
        registry.register(
            "tickets_created",
            "Tickets opened",
            m.tickets_created.clone(),
        );
        registry.register(
            "mail_unattributed",
            "Mails stored without a ticket that a person may have written, by reason (no_sender: no usable From, Reply-To or Sender; quarantined: refused by the database): see `supportd unattributed list`",
            m.unattributed.clone(),
        );
        registry.register(
            "agent_authority_refused",
            "Mails from an agent's address without an agent's authority, by reason (customer_address: sent to the customer's reply address; no_agent_address; no_proof: require_auth not met; revoked: a rotated card; exposed: a non-agent wrote to a card's address)",
            m.authority_refused.clone(),
        );
        registry.register(
            "acks_suppressed",
            "People's mails ticketed without an acknowledgement, by reason (possibly_automated: machine evidence short of deciding; no_reply_address; rate_limit: the per-address brake)",
            m.acks_suppressed.clone(),
        );
        registry.register(
            "mail_sent",
            "Mails sent, by kind (ack, survey, followup, notice, reply)",
            m.mail_sent.clone(),
        );
        registry.register(
            "send_failures",
            "Failed sending attempts, by outcome (retry, failed)",
            m.send_failures.clone(),
        );
        registry.register(
            "sla_warnings",
            "Service-promise warnings, by promise",
            m.sla_warnings.clone(),
        );
        registry.register(
            "sla_breaches",
            "Service promises breached, by promise",
            m.sla_breaches.clone(),
        );
        registry.register(
            "escalations",
            "Tickets escalated to supervisors, by reason (breach, unsatisfied)",
            m.escalations.clone(),
        );
        registry.register(
            "imap_reconnects",
            "IMAP sessions that ended in an error and were reconnected, by mailbox",
            m.imap_reconnects.clone(),
        );
        registry.register(
            "storage_errors",
            "Database errors (disk full, I/O, lost connection) by loop (mailbox <name>, outbox, timers, imap-jobs); each loop backs off (≤ 5 s) and retries, and /readyz is false while it fails",
            m.storage_errors.clone(),
        );
        registry.register(
            "send_commit_seconds",
            "Time from the SMTP server accepting a mail (its 250 after DATA) to that acceptance committed: the one window in which a crash re-sends a mail (with the same Message-ID)",
            m.send_commit.clone(),
        );
        registry.register(
            "processing_seconds",
            "Time to process and commit one inbound mail",
            m.processing.clone(),
        );
        registry.register(
            "outbox_depth",
            "Mails waiting to be sent (pending or being sent)",
            m.outbox_depth.clone(),
        );
        registry.register(
            "outbox_oldest_seconds",
            "Age of the oldest mail waiting to be sent",
            m.outbox_oldest.clone(),
        );
        registry.register(
            "timers_running",
            "Service promises running",
            m.timers_running.clone(),
        );
        registry.register(
            "mailbox_last_poll_age_seconds",
            "Seconds since each mailbox was last read successfully",
            m.mailbox_poll_age.clone(),
        );
        registry.register(
            "oauth_grant_ok",
            "1 while an OAuth 2.0 grant gives access tokens (or has not been needed yet), 0 while it is revoked, unauthorised or its token endpoint fails, by grant",
            m.oauth_grant_ok.clone(),
        );
        registry.register(
            "oauth_refreshes",
            "Access-token refreshes asked of the token endpoint, by grant",
            m.oauth_refreshes.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Sets the OAuth gauges from the grants' state (scrape time).
    pub fn set_oauth(
        &self,
        grants: &std::collections::BTreeMap<String, std::sync::Arc<crate::oauth::TokenSource>>,
    ) {
        for (name, src) in grants {
            self.oauth_grant_ok
                .get_or_create(&l("grant", name.as_str()))
                .set(i64::from(src.status().is_ok()));
            let c = self
                .oauth_refreshes
                .get_or_create(&l("grant", name.as_str()));
            let n = src.refreshes();
            if n > c.get() {
                c.inc_by(n - c.get());
            }
        }
    }

    pub fn fetched(&self, mailbox: &str, n: u64) {
        self.fetched.get_or_create(&l("mailbox", mailbox)).inc_by(n);
    }
    /// Mails fetched and committed from `mailbox` since start (`supportd_messages_fetched_total`).
    pub fn fetched_total(&self, mailbox: &str) -> u64 {
        self.fetched.get_or_create(&l("mailbox", mailbox)).get()
    }
    pub fn screened(&self, verdict: &'static str) {
        self.screened.get_or_create(&l("verdict", verdict)).inc();
    }
    pub fn ticket_created(&self) {
        self.tickets_created.inc();
    }
    pub fn mail_sent(&self, kind: &str) {
        self.mail_sent.get_or_create(&l("kind", kind)).inc();
    }
    pub fn send_failure(&self, outcome: &'static str) {
        self.send_failures
            .get_or_create(&l("outcome", outcome))
            .inc();
    }
    /// Counts what a committed plan's events say about promises.
    pub fn events(&self, kinds: &[(EventKind, &serde_json::Value)]) {
        for (kind, detail) in kinds {
            let promise = detail["promise"].as_str().unwrap_or("").to_string();
            match *kind {
                EventKind::SlaWarning => self
                    .sla_warnings
                    .get_or_create(&l("promise", promise))
                    .inc(),
                EventKind::SlaBreached => self
                    .sla_breaches
                    .get_or_create(&l("promise", promise))
                    .inc(),
                EventKind::Escalated => {
                    let reason = detail["reason"].as_str().unwrap_or("").to_string();
                    self.escalations.get_or_create(&l("reason", reason)).inc()
                }
                EventKind::TicketCreated => self.tickets_created.inc(),
                EventKind::UnattributedMail => self
                    .unattributed
                    .get_or_create(&l("reason", "no_sender".to_string()))
                    .inc(),
                EventKind::AgentAuthorityRefused => {
                    let reason = detail["reason"].as_str().unwrap_or("").to_string();
                    self.authority_refused
                        .get_or_create(&l("reason", reason))
                        .inc()
                }
                EventKind::AgentAddressExposed => self
                    .authority_refused
                    .get_or_create(&l("reason", "exposed".to_string()))
                    .inc(),
                EventKind::AckSuppressed => {
                    let reason = detail["reason"]
                        .as_str()
                        .unwrap_or("")
                        .replace([' ', '-'], "_");
                    self.acks_suppressed
                        .get_or_create(&l("reason", reason))
                        .inc()
                }
                EventKind::MailQuarantined => self
                    .unattributed
                    .get_or_create(&l("reason", "quarantined".to_string()))
                    .inc(),
                _ => 0,
            };
        }
    }
    pub fn imap_reconnect(&self, mailbox: &str) {
        self.imap_reconnects
            .get_or_create(&l("mailbox", mailbox))
            .inc();
    }
    /// Brings the per-loop database error counters up to `health`'s counts.
    pub fn set_storage_errors(
        &self,
        counts: &std::collections::BTreeMap<String, (u64, Option<String>)>,
    ) {
        for (task, (n, _)) in counts {
            let c = self.storage_errors.get_or_create(&l("loop", task.as_str()));
            let seen = c.get();
            if *n > seen {
                c.inc_by(n - seen);
            }
        }
    }
    pub fn send_committed(&self, seconds: f64) {
        self.send_commit.observe(seconds);
    }
    pub fn processed(&self, seconds: f64) {
        self.processing.observe(seconds);
    }

    /// Sets the scrape-time gauges.
    pub fn set_state(
        &self,
        outbox_depth: i64,
        outbox_oldest_secs: f64,
        timers_running: i64,
        poll_ages: &[(String, f64)],
    ) {
        self.outbox_depth.set(outbox_depth);
        self.outbox_oldest.set(outbox_oldest_secs);
        self.timers_running.set(timers_running);
        for (mailbox, age) in poll_ages {
            self.mailbox_poll_age
                .get_or_create(&l("mailbox", mailbox.as_str()))
                .set(*age);
        }
    }

    /// The Prometheus/OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_in_text_format_with_their_labels() {
        let m = Metrics::new();
        m.fetched("support", 3);
        m.screened("human");
        m.events(&[
            (EventKind::TicketCreated, &serde_json::json!({})),
            (
                EventKind::SlaBreached,
                &serde_json::json!({"promise": "solution"}),
            ),
            (
                EventKind::AckSuppressed,
                &serde_json::json!({"reason": "possibly automated"}),
            ),
        ]);
        m.processed(0.002);
        m.set_state(2, 1.5, 7, &[("support".into(), 4.0)]);
        let text = m.encode();
        for want in [
            "supportd_messages_fetched_total{mailbox=\"support\"} 3",
            "supportd_messages_screened_total{verdict=\"human\"} 1",
            "supportd_tickets_created_total 1",
            "supportd_sla_breaches_total{promise=\"solution\"} 1",
            "supportd_acks_suppressed_total{reason=\"possibly_automated\"} 1",
            "supportd_outbox_depth 2",
            "supportd_timers_running 7",
            "supportd_mailbox_last_poll_age_seconds{mailbox=\"support\"} 4.0",
            "supportd_processing_seconds_count 1",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
    }
}
