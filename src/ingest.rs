//! Wiring for inbound mail: one mailbox's loop (fetch → parse → screen → thread → classify →
//! apply → store, then the IMAP action) and [`Pipeline::analyze`], the pure part that `inspect`
//! runs too — the same functions, never a copy.
//!
//! Invariants: everything one mail causes commits in one transaction with the mailbox checkpoint;
//! the IMAP flag/move happens only after commit (a crash in between means a re-fetch, which the
//! dedupe turns into a no-op, and left-over actions are finished on the next connect); a server
//! that goes away means reconnect with backoff, never exit.

use crate::apply;
use crate::classify::{Classification, Classifier};
use crate::clock::{Millis, SharedClock};
use crate::compose::Ctx;
use crate::config::{Agent, MailboxSettings, Settings};
use crate::fetch::{self, FetchError};
use crate::model::{EmailAddress, Language};
use crate::parse::{self, InboundMail};
use crate::reply_text;
use crate::screen::{self, ScreenContext, ScreenVerdict};
use crate::sla::SlaPolicy;
use crate::store::{ImapLocation, OutboxPolicy, Store, StoreError, Tx};
use crate::templates::Templates;
use crate::thread::{self, ReplySigner, ThreadHints, ThreadPolicy};
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

/// The stages' settings, built once from config and shared by every mailbox loop.
#[derive(Debug)]
pub struct Pipeline {
    templates: RwLock<Arc<Templates>>,
    /// The pure stages; also holds the reply signer and the support address.
    pub analyzer: Analyzer,
    pub support_name: String,
    pub message_id_domain: String,
    pub thread_policy: ThreadPolicy,
    pub outbox_policy: OutboxPolicy,
    pub sla: Arc<SlaPolicy>,
    pub agents: Vec<Agent>,
    pub agent_language: Language,
    pub ack_limit_per_hour: u32,
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
        let message_id_domain = s.message_id_domain().to_string();
        Pipeline {
            templates: RwLock::new(Arc::new(templates)),
            analyzer: Analyzer::from_settings(s),
            thread_policy: ThreadPolicy {
                reopen_within_ms: s.threading.reopen_within_days as i64 * 86_400_000,
                agents: s.agents.iter().map(|a| a.address.clone()).collect(),
            },
            outbox_policy: OutboxPolicy {
                envelope_from: s.envelope_from().clone(),
                give_up_after_ms: s.outbox.give_up_after_secs as i64 * 1000,
            },
            support_name: s.service.support_name.clone(),
            message_id_domain,
            sla: s.sla_policy(),
            agents: s.agents.clone(),
            agent_language: s.service.agent_language,
            ack_limit_per_hour: 3,
        }
    }

    /// The context a stage needs to write mail and keep promises, with these templates.
    pub fn ctx<'a>(&'a self, templates: &'a Templates) -> Ctx<'a> {
        Ctx {
            templates,
            signer: &self.analyzer.signer,
            support_address: &self.analyzer.support_address,
            support_name: &self.support_name,
            message_id_domain: &self.message_id_domain,
            sla: &self.sla,
            agents: &self.agents,
            agent_language: self.agent_language,
            ack_limit_per_hour: self.ack_limit_per_hour,
        }
    }

    pub fn templates(&self) -> Arc<Templates> {
        match self.templates.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in freshly loaded templates (reload).
    pub fn set_templates(&self, t: Templates) {
        match self.templates.write() {
            Ok(mut g) => *g = Arc::new(t),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(t),
        }
    }

    /// Stores one fetched mail and everything it causes, in one transaction. Returns whether
    /// anything was written (false: already stored).
    pub async fn process(
        &self,
        store: &Store,
        at: &ImapLocation,
        raw: &[u8],
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = store.begin().await?;
        let wrote = self.process_in(store, &mut tx, at, raw, now).await?;
        store
            .set_checkpoint(&mut tx, &at.mailbox, at.uidvalidity, at.uid, now)
            .await?;
        tx.commit().await?;
        Ok(wrote)
    }

    /// Stores a fetched batch (ascending UIDs) in one transaction — group commit: each mail's
    /// effects are still all-or-nothing, and the checkpoint moves with them. If the batch fails,
    /// it is retried one transaction per mail, so one bad mail cannot hold back the others'
    /// commits. Returns how many mails were new.
    pub async fn process_batch(
        &self,
        store: &Store,
        mailbox: &str,
        uidvalidity: u32,
        batch: &[(u32, Vec<u8>)],
        now: Millis,
    ) -> Result<usize, StoreError> {
        let Some(last) = batch.iter().map(|(u, _)| *u).max() else {
            return Ok(0);
        };
        let at = |uid: u32| ImapLocation {
            mailbox: mailbox.to_string(),
            uidvalidity,
            uid,
        };
        let grouped = async {
            let mut tx = store.begin().await?;
            let mut new = 0;
            for (uid, raw) in batch {
                new += usize::from(self.process_in(store, &mut tx, &at(*uid), raw, now).await?);
            }
            store
                .set_checkpoint(&mut tx, mailbox, uidvalidity, last, now)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(new)
        }
        .await;
        match grouped {
            Ok(n) => Ok(n),
            Err(e) if batch.len() > 1 => {
                warn!(error = %e, mails = batch.len(), "group commit failed; storing the batch one mail at a time");
                let mut new = 0;
                for (uid, raw) in batch {
                    new += usize::from(self.process(store, &at(*uid), raw, now).await?);
                }
                Ok(new)
            }
            Err(e) => Err(e),
        }
    }

    /// Everything one mail causes, written inside `tx` (the caller commits).
    async fn process_in(
        &self,
        store: &Store,
        tx: &mut Tx,
        at: &ImapLocation,
        raw: &[u8],
        now: Millis,
    ) -> Result<bool, StoreError> {
        let a = self.analyzer.analyze(raw);
        let span = info_span!("message", imap.mailbox = %at.mailbox, imap.uid = at.uid, message.id = %a.mail.message_id);
        async {
            if store.already_stored(tx, &a.mail.message_id, at).await? {
                debug!("already stored; nothing to do");
                return Ok(false);
            }
            let facts = store.thread_facts(tx, &a.hints).await?;
            let decision = thread::thread(&a.mail, &facts, &self.thread_policy, now);
            let ticket = match apply::new_ticket(&a.mail, &a.screen, &decision, &a.classification) {
                Some(new) => Some(store.create_ticket(tx, &new, now).await?),
                None => match &decision {
                    thread::ThreadDecision::FollowUp { ticket, .. } => {
                        store.ticket_state(tx, *ticket).await?
                    }
                    thread::ThreadDecision::New { .. } => None,
                },
            };
            let acks = store.ack_facts(tx, a.mail.from.as_ref(), now).await?;
            let templates = self.templates();
            let plan = apply::apply(
                &self.ctx(&templates),
                &a.mail,
                &a.reply_text,
                &a.screen,
                &a.classification,
                &decision,
                ticket.as_ref(),
                acks,
                now,
            );
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
                screen.verdict = a.screen.verdict.as_str(),
                outbox = plan.outbox.len(),
                "mail stored"
            );
            Ok(true)
        }
        .instrument(span)
        .await
    }
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
}

impl MailboxLoop {
    pub async fn run(self, cancel: CancellationToken) {
        let span = info_span!("mailbox", imap.mailbox = %self.name);
        async {
            let mut backoff = Duration::from_secs(1);
            while !cancel.is_cancelled() {
                match self.session(&cancel, &mut backoff).await {
                    Ok(()) => break,
                    Err(e) => {
                        warn!(error = %e, retry_in = ?backoff, "IMAP session ended; reconnecting");
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                }
            }
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
        if let Some(folder) = &s.move_to {
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

        let pending = self
            .store
            .pending_imap_actions(&key, sel.uidvalidity)
            .await?;
        if !pending.is_empty() {
            conn.mark_done(&pending, s.after, s.move_to.as_deref())
                .await?;
            self.store
                .mark_imap_done(&key, sel.uidvalidity, &pending)
                .await?;
        }

        loop {
            let uids = conn.new_uids(last).await?;
            for chunk in uids.chunks(s.batch_size as usize) {
                let fetched = conn.fetch(chunk).await?;
                let mut done = Vec::with_capacity(fetched.len());
                for (uid, raw) in &fetched {
                    let at = ImapLocation {
                        mailbox: key.clone(),
                        uidvalidity: sel.uidvalidity,
                        uid: *uid,
                    };
                    self.pipeline
                        .process(&self.store, &at, raw, self.clock.now())
                        .await?;
                    done.push(*uid);
                }
                self.outbox_wake.notify_one();
                self.timer_wake.notify_one();
                conn.mark_done(&done, s.after, s.move_to.as_deref()).await?;
                self.store
                    .mark_imap_done(&key, sel.uidvalidity, &done)
                    .await?;
                last = chunk.iter().copied().max().unwrap_or(last).max(last);
                if cancel.is_cancelled() {
                    conn.logout().await;
                    return Ok(());
                }
            }
            match conn
                .wait_for_change(Duration::from_secs(s.poll_interval_secs), cancel)
                .await?
            {
                Some(c) => conn = c,
                None => return Ok(()),
            }
        }
    }
}
