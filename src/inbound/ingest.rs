//! Wiring for inbound mail: one mailbox's loop (fetch → parse → screen → thread → classify →
//! apply → store, then the IMAP action) and [`Pipeline::analyze`], the pure part that `inspect`
//! runs too — the same functions, never a copy.
//!
//! Invariants: everything one mail causes commits in one transaction with the mailbox checkpoint;
//! the IMAP flag/move happens only after commit (a crash in between means a re-fetch, which the
//! dedupe turns into a no-op, and left-over actions are finished on the next connect); a server
//! that goes away means reconnect with backoff, never exit.

use crate::agents::mail::{self, AgentPolicy, Authority};
use crate::agents::shared_mailbox::QueuePolicy;
use crate::clock::{Millis, SharedClock};
use crate::config::{MailboxSettings, Settings};
use crate::domain::Agent;
use crate::domain::Classification;
use crate::domain::InboundMail;
use crate::domain::ScreenVerdict;
use crate::domain::ThreadHints;
use crate::domain::{EmailAddress, Language};
use crate::inbound::apply;
use crate::inbound::classify::Classifier;
use crate::inbound::fetch::{self, FetchError};
use crate::inbound::parse;
use crate::inbound::reply_text;
use crate::inbound::screen::{self, ScreenContext};
use crate::inbound::thread::{self, ReplySigner, ThreadPolicy};
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::outbound::compose::Ctx;
use crate::outbound::templates::Templates;
use crate::store::{self, ImapLocation, OutboxPolicy, Store, StoreError, Tx};
use crate::ticket::sla::SlaPolicy;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("processing task failed: {0}")]
    Task(String),
}

/// The pure stages' settings: all `inspect` needs.
#[derive(Debug, Clone)]
pub struct Analyzer {
    pub signer: ReplySigner,
    pub support_address: EmailAddress,
    pub screen: ScreenContext,
    pub classifier: Arc<Classifier>,
}

impl Analyzer {
    pub fn new(
        support_address: EmailAddress,
        message_id_domain: String,
        signer: ReplySigner,
        classifier: Arc<Classifier>,
    ) -> Analyzer {
        Analyzer {
            screen: ScreenContext {
                message_id_domain,
                support_address: support_address.clone(),
            },
            support_address,
            signer,
            classifier,
        }
    }

    /// The analyzer a configuration describes.
    pub fn from_settings(s: &Settings) -> Analyzer {
        Analyzer::new(
            s.service.support_address.clone(),
            s.message_id_domain().to_string(),
            ReplySigner::new(
                s.threading.reply_secret.clone(),
                s.threading.old_reply_secrets.clone(),
            ),
            s.classifier(),
        )
    }

    /// parse → screen → reply text → thread hints → classify. Pure.
    pub fn analyze(&self, raw: &[u8]) -> Analysis {
        let mail = parse::parse(raw);
        let screen = screen::screen(&mail, &self.screen);
        let reply_text = reply_text::extract(&mail.text);
        let hints = thread::hints(&mail, &self.support_address, &self.signer);
        let classification =
            self.classifier
                .classify(mail.from.as_ref(), &mail.subject, &reply_text);
        Analysis {
            mail,
            screen,
            reply_text,
            hints,
            classification,
        }
    }
}

/// The parts of the configuration a reload (SIGHUP) replaces, all at once: templates, rules,
/// promises, agents, reply secrets. A mail or a timer uses one snapshot from start to commit.
#[derive(Debug)]
pub struct Live {
    pub templates: Templates,
    /// The pure stages; also holds the reply signer and the support address.
    pub analyzer: Analyzer,
    pub thread_policy: ThreadPolicy,
    pub sla: Arc<SlaPolicy>,
    pub agents: Vec<Agent>,
    pub agent_language: Language,
    pub ack_limit_per_hour: u32,
    pub agent_policy: AgentPolicy,
    pub queue: Option<QueuePolicy>,
}

impl Live {
    pub fn new(s: &Settings, templates: Templates) -> Live {
        Live {
            templates,
            analyzer: Analyzer::from_settings(s),
            thread_policy: ThreadPolicy {
                reopen_within_ms: s.threading.reopen_within_days as i64 * 86_400_000,
                agents: s.agents.iter().map(|a| a.address.clone()).collect(),
            },
            sla: s.sla_policy(),
            agents: s.agents.clone(),
            agent_language: s.service.agent_language,
            ack_limit_per_hour: s.screening.ack_limit_per_hour,
            agent_policy: AgentPolicy::new(&s.agent_mail, &s.wording),
            queue: s.queue.as_ref().map(|q| QueuePolicy {
                notify_new: q.notify_new,
            }),
        }
    }
}

/// The stages' settings, built from config and shared by every mailbox loop and worker.
#[derive(Debug)]
pub struct Pipeline {
    live: RwLock<Arc<Live>>,
    pub support_name: String,
    pub message_id_domain: String,
    pub outbox_policy: OutboxPolicy,
}

/// What the pure stages conclude about one mail (what `inspect` prints).
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub mail: InboundMail,
    pub screen: ScreenVerdict,
    pub reply_text: String,
    pub hints: ThreadHints,
    pub classification: Classification,
}

impl Pipeline {
    pub fn new(s: &Settings, templates: Templates) -> Pipeline {
        Pipeline {
            live: RwLock::new(Arc::new(Live::new(s, templates))),
            outbox_policy: OutboxPolicy {
                envelope_from: s.envelope_from().clone(),
                give_up_after_ms: s.outbox.give_up_after_secs as i64 * 1000,
            },
            support_name: s.service.support_name.clone(),
            message_id_domain: s.message_id_domain().to_string(),
        }
    }

    /// The current reloadable settings.
    pub fn live(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in reloaded settings.
    pub fn set_live(&self, live: Live) {
        match self.live.write() {
            Ok(mut g) => *g = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
    }

    /// The context a stage needs to write mail and keep promises.
    pub fn ctx<'a>(&'a self, live: &'a Live) -> Ctx<'a> {
        Ctx {
            templates: &live.templates,
            signer: &live.analyzer.signer,
            support_address: &live.analyzer.support_address,
            support_name: &self.support_name,
            message_id_domain: &self.message_id_domain,
            sla: &live.sla,
            agents: &live.agents,
            agent_language: live.agent_language,
            ack_limit_per_hour: live.ack_limit_per_hour,
            queue: live.queue,
        }
    }

    /// Stores one fetched mail and everything it causes, in one transaction. Returns what it did
    /// (`None`: already stored, nothing to do).
    pub async fn process(
        &self,
        store: &Store,
        at: &ImapLocation,
        raw: &[u8],
        now: Millis,
    ) -> Result<Option<Processed>, StoreError> {
        let started = std::time::Instant::now();
        let mut tx = store.begin().await?;
        let done = self.process_in(store, &mut tx, at, raw, now).await?;
        store
            .set_checkpoint(&mut tx, &at.mailbox, at.uidvalidity, at.uid, now)
            .await?;
        tx.commit().await?;
        Ok(done.map(|mut p| {
            p.seconds = started.elapsed().as_secs_f64();
            p
        }))
    }

    /// Stores a fetched batch (ascending UIDs) in one transaction — group commit: each mail's
    /// effects are still all-or-nothing, and the checkpoint moves with them. If the batch fails,
    /// it is retried one transaction per mail, so one bad mail cannot hold back the others'
    /// commits. Returns what each new mail did.
    ///
    /// Mail without thread hints (it opens a ticket or files on none) is written in segments with
    /// multi-row INSERTs (`store::batch`); mail with hints (follow-ups, agents, bounces) flushes
    /// the segment before it and takes the per-mail path, so it sees everything before it.
    pub async fn process_batch(
        &self,
        store: &Store,
        mailbox: &str,
        uidvalidity: u32,
        batch: &[(u32, Vec<u8>)],
        now: Millis,
    ) -> Result<Vec<Processed>, StoreError> {
        let Some(last) = batch.iter().map(|(u, _)| *u).max() else {
            return Ok(Vec::new());
        };
        let grouped = async {
            let started = std::time::Instant::now();
            let live = self.live();
            let analyzed: Vec<Analysis> = batch
                .iter()
                .map(|(_, raw)| live.analyzer.analyze(raw))
                .collect();
            let mut tx = store.begin().await?;
            let ids: Vec<&str> = analyzed
                .iter()
                .map(|a| a.mail.message_id.as_str())
                .collect();
            let uids: Vec<u32> = batch.iter().map(|(u, _)| *u).collect();
            let (mut seen, stored_uids) = store
                .stored_among(&mut tx, &ids, mailbox, uidvalidity, &uids)
                .await?;
            let mut done = Vec::with_capacity(batch.len());
            let mut segment: Vec<usize> = Vec::new();
            for (k, ((uid, raw), a)) in batch.iter().zip(&analyzed).enumerate() {
                if stored_uids.contains(uid) || !seen.insert(a.mail.message_id.as_str().to_string())
                {
                    continue;
                }
                if fast_path(a, &live) {
                    segment.push(k);
                    continue;
                }
                self.write_segment(
                    store,
                    &mut tx,
                    &live,
                    mailbox,
                    uidvalidity,
                    batch,
                    &analyzed,
                    &mut segment,
                    now,
                    &mut done,
                )
                .await?;
                let at = ImapLocation {
                    mailbox: mailbox.to_string(),
                    uidvalidity,
                    uid: *uid,
                };
                if let Some(p) = self
                    .process_analyzed(store, &mut tx, &at, raw, a, &live, now)
                    .await?
                {
                    done.push(p);
                }
            }
            self.write_segment(
                store,
                &mut tx,
                &live,
                mailbox,
                uidvalidity,
                batch,
                &analyzed,
                &mut segment,
                now,
                &mut done,
            )
            .await?;
            store
                .set_checkpoint(&mut tx, mailbox, uidvalidity, last, now)
                .await?;
            tx.commit().await?;
            // Each mail's share of the batch, commit included.
            let each = started.elapsed().as_secs_f64() / batch.len() as f64;
            for p in &mut done {
                p.seconds = each;
            }
            Ok::<_, StoreError>(done)
        }
        .await;
        match grouped {
            Ok(done) => Ok(done),
            Err(e) if batch.len() > 1 => {
                warn!(error = %e, mails = batch.len(), "group commit failed; storing the batch one mail at a time");
                let mut done = Vec::new();
                for (uid, raw) in batch {
                    let at = ImapLocation {
                        mailbox: mailbox.to_string(),
                        uidvalidity,
                        uid: *uid,
                    };
                    match self.process(store, &at, raw, now).await {
                        Ok(p) => done.extend(p),
                        // The database refused this mail's data (not the connection): keep it
                        // raw and flagged, and go on, rather than block the mailbox on it.
                        Err(StoreError::Db(sqlx::Error::Database(e))) => {
                            warn!(imap.uid = uid, error = %e, "mail refused by the database; quarantined raw");
                            store.quarantine(&at, raw, &e.to_string(), now).await?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(done)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the segment of new mail collected so far (indexes into `batch`), with reserved
    /// ids and multi-row INSERTs, then empties it.
    #[allow(clippy::too_many_arguments)]
    async fn write_segment(
        &self,
        store: &Store,
        tx: &mut Tx,
        live: &Live,
        mailbox: &str,
        uidvalidity: u32,
        batch: &[(u32, Vec<u8>)],
        analyzed: &[Analysis],
        segment: &mut Vec<usize>,
        now: Millis,
        done: &mut Vec<Processed>,
    ) -> Result<(), StoreError> {
        if segment.is_empty() {
            return Ok(());
        }
        let ctx = self.ctx(live);
        let no_facts = crate::domain::ThreadFacts::default();
        // Who opens a ticket, and the senders' recent acknowledgements (the loop brake).
        let decisions: Vec<(crate::domain::ThreadDecision, Option<apply::NewTicket>)> = segment
            .iter()
            .map(|k| {
                let a = &analyzed[*k];
                let d = thread::thread(&a.mail, &no_facts, &live.thread_policy, now);
                let n = apply::new_ticket(&a.mail, &a.screen, &d, &a.classification);
                (d, n)
            })
            .collect();
        let senders: Vec<&str> = segment
            .iter()
            .filter_map(|k| analyzed[*k].mail.from.as_ref().map(|f| f.as_str()))
            .collect();
        let mut acks = store.ack_counts(tx, &senders, now).await?;
        let mut ticket_ids = store
            .reserve_ids(
                tx,
                "tickets",
                decisions.iter().filter(|d| d.1.is_some()).count(),
            )
            .await?
            .into_iter();
        let mut plans = Vec::with_capacity(segment.len());
        let mut message_rows = 0;
        for (k, (d, new)) in segment.iter().zip(&decisions) {
            let a = &analyzed[*k];
            let ticket = match (new, ticket_ids.next()) {
                (Some(n), Some(id)) => Some(crate::domain::TicketState::new(
                    crate::domain::TicketRef(id),
                    n.requester.clone(),
                    n.requester_name.clone(),
                    n.subject.clone(),
                    &n.classification,
                )),
                _ => None,
            };
            let sender = a.mail.from.as_ref().map(|f| f.as_str().to_string());
            let facts = apply::AckFacts {
                acks_to_sender_last_hour: sender
                    .as_ref()
                    .and_then(|s| acks.get(s).copied())
                    .unwrap_or(0),
            };
            let plan = apply::apply(
                &ctx,
                &a.mail,
                &a.reply_text,
                &a.screen,
                &a.classification,
                d,
                ticket.as_ref(),
                facts,
                now,
            );
            if let Some(s) = sender {
                let queued = plan.outbox.iter().filter(|o| o.kind == "ack").count() as u32;
                *acks.entry(s).or_default() += queued;
            }
            message_rows += 1 + plan.outbox.len();
            plans.push((*k, ticket, plan));
        }
        let message_ids = store.reserve_ids(tx, "messages", message_rows).await?;
        let mut rows = store::batch::NewRows::new(message_ids);
        let mut rest = Vec::new();
        for (k, ticket, plan) in &plans {
            let a = &analyzed[*k];
            let (uid, raw) = &batch[*k];
            let at = ImapLocation {
                mailbox: mailbox.to_string(),
                uidvalidity,
                uid: *uid,
            };
            if let Some(t) = ticket {
                rows.ticket(t, plan, now);
            }
            rows.inbound(
                &store::batch::InboundRow {
                    mail: &a.mail,
                    raw,
                    at: &at,
                    verdict: a.screen.verdict.as_str(),
                    reason: &a.screen.reason,
                    language: a.classification.language.code(),
                    reply_text: &a.reply_text,
                },
                plan.ticket.map(|t| t.0),
                now,
            );
            if store::batch::writes_only_new_rows(plan) {
                rows.plan(plan, &self.outbox_policy, now);
            } else {
                // Anything else: written the ordinary way once the rows exist.
                rest.push(plan);
            }
            debug!(imap.uid = uid, message.id = %a.mail.message_id, ticket.ref = plan.ticket.map(|t| t.to_string()).unwrap_or_default(), screen.verdict = a.screen.verdict.as_str(), "mail stored (group)");
            done.push(Processed {
                verdict: a.screen.verdict.as_str(),
                events: plan
                    .events
                    .iter()
                    .map(|e| (e.kind, e.detail.clone()))
                    .collect(),
                seconds: 0.0,
            });
        }
        store.write_new(tx, &rows).await?;
        for plan in rest {
            store.apply_plan(tx, plan, &self.outbox_policy, now).await?;
        }
        info!(mails = segment.len(), "batch of new mail stored");
        segment.clear();
        Ok(())
    }

    /// Everything one mail causes, written inside `tx` (the caller commits).
    async fn process_in(
        &self,
        store: &Store,
        tx: &mut Tx,
        at: &ImapLocation,
        raw: &[u8],
        now: Millis,
    ) -> Result<Option<Processed>, StoreError> {
        let live = self.live();
        let a = live.analyzer.analyze(raw);
        self.process_analyzed(store, tx, at, raw, &a, &live, now)
            .await
    }

    /// [`Pipeline::process_in`] for a mail already analyzed.
    #[allow(clippy::too_many_arguments)]
    async fn process_analyzed(
        &self,
        store: &Store,
        tx: &mut Tx,
        at: &ImapLocation,
        raw: &[u8],
        a: &Analysis,
        live: &Live,
        now: Millis,
    ) -> Result<Option<Processed>, StoreError> {
        let span = info_span!("message", imap.mailbox = %at.mailbox, imap.uid = at.uid, message.id = %a.mail.message_id);
        async {
            if store.already_stored(tx, &a.mail.message_id, at).await? {
                debug!("already stored; nothing to do");
                return Ok(None);
            }
            // An agent's mail to a ticket's signed address (never machine mail: an agent's
            // out-of-office reply to a card must not reach the customer).
            let mut refused = None;
            if a.screen.is_human() {
                match mail::recognise(&a.mail, a.hints.token, &live.agents, &live.agent_policy) {
                    Authority::Agent(who) => {
                        if let Some(t) = a.hints.token {
                            if let Some(ticket) = store.ticket_state(tx, t).await? {
                                return self
                                    .agent_mail(store, tx, at, raw, a, live, who, &ticket, now)
                                    .await
                                    .map(Some);
                            }
                        }
                    }
                    Authority::Refused(why) => refused = Some(why),
                    Authority::None => {}
                }
            }
            let facts = store.thread_facts(tx, &a.hints).await?;
            let decision = thread::thread(&a.mail, &facts, &live.thread_policy, now);
            let ticket = match apply::new_ticket(&a.mail, &a.screen, &decision, &a.classification) {
                Some(new) => Some(store.create_ticket(tx, &new, now).await?),
                None => match &decision {
                    crate::domain::ThreadDecision::FollowUp { ticket, .. } => {
                        store.ticket_state(tx, *ticket).await?
                    }
                    crate::domain::ThreadDecision::New { .. } => None,
                },
            };
            let acks = store.ack_facts(tx, a.mail.from.as_ref(), now).await?;
            let mut plan = apply::apply(
                &self.ctx(live),
                &a.mail,
                &a.reply_text,
                &a.screen,
                &a.classification,
                &decision,
                ticket.as_ref(),
                acks,
                now,
            );
            if let Some(why) = refused {
                warn!(from = a.mail.from.as_ref().map(crate::ops::logging::addr).unwrap_or_default(), %why, "agent address without agent authority: treated as customer mail");
                plan.event("agent_authority_refused", serde_json::json!({"why": why}));
            }
            store
                .write_inbound(
                    tx,
                    &a.mail,
                    raw,
                    at,
                    &a.screen,
                    &a.classification,
                    &a.reply_text,
                    plan.ticket,
                    now,
                )
                .await?;
            store
                .apply_plan(tx, &plan, &self.outbox_policy, now)
                .await?;
            info!(
                ticket.ref = plan.ticket.map(|t| t.to_string()).unwrap_or_default(),
                from = a.mail.from.as_ref().map(crate::ops::logging::addr).unwrap_or_default(),
                screen.verdict = a.screen.verdict.as_str(),
                outbox = plan.outbox.len(),
                "mail stored"
            );
            Ok(Some(Processed {
                verdict: a.screen.verdict.as_str(),
                events: plan
                    .events
                    .iter()
                    .map(|e| (e.kind, e.detail.clone()))
                    .collect(),
                seconds: 0.0,
            }))
        }
        .instrument(span)
        .await
    }
}

impl Pipeline {
    /// An agent's mail: the reply to the customer, the commands, or the draft returned.
    #[allow(clippy::too_many_arguments)]
    async fn agent_mail(
        &self,
        store: &Store,
        tx: &mut Tx,
        at: &ImapLocation,
        raw: &[u8],
        a: &Analysis,
        live: &Live,
        who: &Agent,
        ticket: &crate::domain::TicketState,
        now: Millis,
    ) -> Result<Processed, StoreError> {
        let thread = store.thread_of(tx, ticket.ticket).await?;
        let ctx = self.ctx(live);
        let mut plan = mail::handle(
            &ctx,
            &live.agent_policy,
            ticket,
            who,
            &a.mail,
            &a.reply_text,
            &thread,
            now,
        );
        if ctx.queue.is_some() {
            crate::agents::shared_mailbox::follow_state(ticket, &mut plan);
        }
        store
            .write_inbound_as(
                tx,
                &a.mail,
                raw,
                at,
                "agent",
                &format!("from agent {}", who.address),
                &a.classification,
                &a.reply_text,
                Some(ticket.ticket),
                now,
            )
            .await?;
        store
            .apply_plan(tx, &plan, &self.outbox_policy, now)
            .await?;
        info!(
            ticket.ref = %ticket.ticket,
            agent = %crate::ops::logging::addr(&who.address),
            events = ?plan.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            "agent mail"
        );
        Ok(Processed {
            verdict: "agent",
            events: plan
                .events
                .iter()
                .map(|e| (e.kind, e.detail.clone()))
                .collect(),
            seconds: 0.0,
        })
    }

    /// A batch from the shared mailbox's Sent folder: agents' direct replies are recorded on
    /// their tickets; everything else (supportd's own copies, unrelated mail) is left alone.
    pub async fn process_sent_batch(
        &self,
        store: &Store,
        mailbox: &str,
        uidvalidity: u32,
        batch: &[(u32, Vec<u8>)],
        now: Millis,
    ) -> Result<Vec<Processed>, StoreError> {
        let Some(last) = batch.iter().map(|(u, _)| *u).max() else {
            return Ok(Vec::new());
        };
        let live = self.live();
        let mut tx = store.begin().await?;
        let mut done = Vec::new();
        for (uid, raw) in batch {
            let at = ImapLocation {
                mailbox: mailbox.to_string(),
                uidvalidity,
                uid: *uid,
            };
            let mail = parse::parse(raw);
            if store.already_stored(&mut tx, &mail.message_id, &at).await? {
                continue;
            }
            let hints = thread::hints(&mail, &live.analyzer.support_address, &live.analyzer.signer);
            let facts = store.thread_facts(&mut tx, &hints).await?;
            let Some(t) = facts.by_reference.or(facts.by_tag).map(|f| f.ticket) else {
                continue;
            };
            let Some(ticket) = store.ticket_state(&mut tx, t).await? else {
                continue;
            };
            if crate::agents::shared_mailbox::classify_sent(
                &mail,
                Some(&ticket),
                &self.message_id_domain,
            ) != crate::agents::shared_mailbox::SentMail::Direct
            {
                continue;
            }
            let ctx = self.ctx(&live);
            let mut plan = crate::agents::shared_mailbox::direct_reply(&ctx, &ticket, &mail, now);
            crate::agents::shared_mailbox::follow_state(&ticket, &mut plan);
            store
                .write_sent_copy(&mut tx, &mail, raw, &at, t, now)
                .await?;
            store
                .apply_plan(&mut tx, &plan, &self.outbox_policy, now)
                .await?;
            warn!(ticket.ref = %t, "an agent replied to the customer directly, bypassing supportd: recorded, wording not checked");
            done.push(Processed {
                verdict: "agent_direct",
                events: plan
                    .events
                    .iter()
                    .map(|e| (e.kind, e.detail.clone()))
                    .collect(),
                seconds: 0.0,
            });
        }
        store
            .set_checkpoint(&mut tx, mailbox, uidvalidity, last, now)
            .await?;
        tx.commit().await?;
        Ok(done)
    }
}

/// What storing one new mail did, for the metrics (counted after the commit).
#[derive(Debug, Clone)]
pub struct Processed {
    pub verdict: &'static str,
    pub events: Vec<(&'static str, serde_json::Value)>,
    /// Time spent on it, commit included (its share of a group commit).
    pub seconds: f64,
}

impl Processed {
    pub fn record(&self, m: &Metrics) {
        m.screened(self.verdict);
        let events: Vec<_> = self.events.iter().map(|(k, d)| (*k, d)).collect();
        m.events(&events);
        m.processed(self.seconds);
    }
}

/// Whether a mail can be written with the batch of new mail: it carries no thread hint (no
/// signed address, reference, ticket tag or bounced Message-ID) and is not from an agent's
/// address, so it opens a ticket or files on none, and nothing it does depends on rows the
/// batch has not written yet.
fn fast_path(a: &Analysis, live: &Live) -> bool {
    let h = &a.hints;
    let from_agent = [a.mail.from.as_ref(), a.mail.sender.as_ref()]
        .into_iter()
        .flatten()
        .any(|x| live.agents.iter().any(|g| &g.address == x));
    !from_agent
        && h.token.is_none()
        && !h.bad_token
        && h.references.is_empty()
        && h.tag.is_none()
        && h.bounced.is_none()
}

/// The checkpoint key of a mailbox account and folder.
pub fn checkpoint_key(name: &str, folder: &str) -> String {
    format!("{name}/{folder}")
}

/// One mailbox's loop: runs until `cancel`, reconnecting with backoff on any error.
pub struct MailboxLoop {
    pub name: String,
    pub settings: MailboxSettings,
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    pub clock: SharedClock,
    pub outbox_wake: Arc<Notify>,
    pub timer_wake: Arc<Notify>,
    pub imap_wake: Arc<Notify>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub role: FolderRole,
}

/// A fetched batch being processed and committed.
type BatchTask = tokio::task::JoinHandle<Result<Vec<Processed>, StoreError>>;

/// What a mailbox loop does with its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderRole {
    /// Customer and agent mail: stored, then marked `\Seen` or moved (`after`).
    Inbox,
    /// The shared mailbox's Sent folder: read only, agents' direct replies recorded.
    Sent,
}

impl MailboxLoop {
    /// Waits for a batch's commit, then counts it, wakes the workers and flags or moves its
    /// mail on the server.
    async fn finish_batch(
        &self,
        conn: &mut fetch::ImapConn,
        key: &str,
        uidvalidity: u32,
        done: Vec<u32>,
        task: BatchTask,
    ) -> Result<(), IngestError> {
        let processed = match task.await {
            Ok(r) => r?,
            Err(e) => return Err(IngestError::Task(e.to_string())),
        };
        self.metrics.fetched(&self.name, done.len() as u64);
        for p in &processed {
            p.record(&self.metrics);
        }
        self.health.beat(&self.task());
        self.outbox_wake.notify_one();
        self.timer_wake.notify_one();
        self.imap_wake.notify_one();
        if self.role == FolderRole::Inbox {
            let s = &self.settings;
            conn.mark_done(&done, s.after, s.move_to.as_deref()).await?;
            self.store.mark_imap_done(key, uidvalidity, &done).await?;
        }
        Ok(())
    }

    fn task(&self) -> String {
        format!("mailbox {}", self.name)
    }

    pub async fn run(self, cancel: CancellationToken) {
        let span = info_span!("mailbox", imap.mailbox = %self.name);
        self.health.register_mailbox(&self.name);
        async {
            let mut backoff = Duration::from_secs(1);
            while !cancel.is_cancelled() {
                self.health.beat(&self.task());
                match self.session(&cancel, &mut backoff).await {
                    Ok(()) => break,
                    Err(e) => {
                        warn!(error = %e, retry_in = ?backoff, "IMAP session ended; reconnecting");
                        self.health.mailbox_failed(&self.name, &e.to_string());
                        self.metrics.imap_reconnect(&self.name);
                        self.health.waiting(&self.task(), backoff);
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                }
            }
            self.health.retire(&self.task());
            info!("mailbox loop stopped");
        }
        .instrument(span)
        .await
    }

    async fn session(
        &self,
        cancel: &CancellationToken,
        backoff: &mut Duration,
    ) -> Result<(), IngestError> {
        let s = &self.settings;
        let mut conn = fetch::connect(s).await?;
        // `idle = false` in config: poll even when the server offers IDLE.
        conn.idle_supported &= s.idle;
        let inbox = self.role == FolderRole::Inbox;
        if let (true, Some(folder)) = (inbox, &s.move_to) {
            conn.ensure_folder(folder).await?;
        }
        let sel = conn.select(&s.folder).await?;
        let key = checkpoint_key(&self.name, &s.folder);
        let mut last = match self.store.checkpoint(&key).await? {
            Some((v, last)) if v == sel.uidvalidity => last,
            Some((v, _)) => {
                warn!(old = v, new = sel.uidvalidity, "UIDVALIDITY changed: reading the folder again; stored mail is skipped by Message-ID");
                0
            }
            None => 0,
        };
        info!(
            uidvalidity = sel.uidvalidity,
            last_uid = last,
            idle = conn.idle_supported,
            "IMAP connected"
        );
        *backoff = Duration::from_secs(1);

        let pending = if inbox {
            self.store
                .pending_imap_actions(&key, sel.uidvalidity)
                .await?
        } else {
            Vec::new()
        };
        if !pending.is_empty() {
            conn.mark_done(&pending, s.after, s.move_to.as_deref())
                .await?;
            self.store
                .mark_imap_done(&key, sel.uidvalidity, &pending)
                .await?;
        }

        loop {
            self.health.beat(&self.task());
            let uids = conn.new_uids(last).await?;
            self.health.polled(&self.name);
            // Pipelined: batch n+1 is fetched while batch n is processed and committed; batches
            // commit in order, one at a time, and each is flagged or moved after its commit.
            let mut in_hand: Option<(Vec<u32>, BatchTask)> = None;
            for chunk in uids.chunks(s.batch_size as usize) {
                let fetched = match conn.fetch(chunk).await {
                    Ok(f) => f,
                    Err(e) => {
                        // Let the batch in hand commit before this session ends (its flags are
                        // set on the next connect), so batches never commit out of order.
                        if let Some((_, task)) = in_hand.take() {
                            let _ = task.await;
                        }
                        return Err(e.into());
                    }
                };
                if let Some((done, task)) = in_hand.take() {
                    self.finish_batch(&mut conn, &key, sel.uidvalidity, done, task)
                        .await?;
                }
                let done: Vec<u32> = fetched.iter().map(|(uid, _)| *uid).collect();
                let task = {
                    let (pipeline, store, key, now) = (
                        self.pipeline.clone(),
                        self.store.clone(),
                        key.clone(),
                        self.clock.now(),
                    );
                    let uidvalidity = sel.uidvalidity;
                    tokio::spawn(async move {
                        // Group commit: the batch's mails and the checkpoint in one transaction.
                        if inbox {
                            pipeline
                                .process_batch(&store, &key, uidvalidity, &fetched, now)
                                .await
                        } else {
                            pipeline
                                .process_sent_batch(&store, &key, uidvalidity, &fetched, now)
                                .await
                        }
                    })
                };
                in_hand = Some((done, task));
                last = chunk.iter().copied().max().unwrap_or(last).max(last);
                if cancel.is_cancelled() {
                    break;
                }
            }
            if let Some((done, task)) = in_hand.take() {
                self.finish_batch(&mut conn, &key, sel.uidvalidity, done, task)
                    .await?;
            }
            if cancel.is_cancelled() {
                conn.logout().await;
                return Ok(());
            }
            let wait = Duration::from_secs(s.poll_interval_secs);
            self.health.waiting(&self.task(), wait);
            match conn.wait_for_change(wait, cancel).await? {
                Some(c) => conn = c,
                None => return Ok(()),
            }
        }
    }
}
