//! The decision context: the [`Desk`] — everything a decision consults (approved templates, the
//! classification rules, the promises, the agents, the wording, our identity and reply signer) —
//! and [`SharedDesk`], which the application owns and a reload (SIGHUP) replaces whole.
//!
//! Invariant: a decision uses one `Desk` snapshot from start to commit; a reload never changes
//! the rules under a mail or a timer being decided.

use crate::agents::authority::AuthorityPolicy;
use crate::agents::wording::Wording;
use crate::config::Settings;
use crate::domain::{Agent, EmailAddress, Language, OutboxPolicy};
use crate::inbound::analyze::Analyzer;
use crate::inbound::thread::{ReplySigner, ThreadPolicy};
use crate::outbound::templates::Templates;
use crate::ticket::sla::SlaPolicy;
use std::sync::{Arc, RwLock};

/// The shared mailbox's queue settings a decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePolicy {
    /// Also mail every agent about each new ticket.
    pub notify_new: bool,
    /// The customer's files on a card, at most this many bytes in all.
    pub card_attachments_max_bytes: usize,
}

/// What every decision consults: built from the settings, replaced whole by a reload.
#[derive(Debug)]
pub struct Desk {
    pub templates: Templates,
    /// The pure inbound stages (parse, screen, reply text, thread hints, classify).
    pub analyzer: Analyzer,
    pub signer: ReplySigner,
    pub support_address: EmailAddress,
    pub support_name: String,
    /// The domain of the Message-IDs we write.
    pub message_id_domain: String,
    pub thread_policy: ThreadPolicy,
    pub sla: Arc<SlaPolicy>,
    pub agents: Vec<Agent>,
    /// The language of notices to agents.
    pub agent_language: Language,
    /// Acknowledgements to one address per hour, at most (loop brake).
    pub ack_limit_per_hour: u32,
    pub authority: AuthorityPolicy,
    pub wording: Wording,
    /// The shared mailbox queue, when configured.
    pub queue: Option<QueuePolicy>,
    pub outbox: OutboxPolicy,
}

impl Desk {
    pub fn new(s: &Settings, templates: Templates) -> Desk {
        Desk {
            templates,
            analyzer: Analyzer::from_settings(s),
            signer: ReplySigner::new(
                s.threading.reply_secret.clone(),
                s.threading.old_reply_secrets.clone(),
            ),
            support_address: s.service.support_address.clone(),
            support_name: s.service.support_name.clone(),
            message_id_domain: s.message_id_domain().to_string(),
            thread_policy: ThreadPolicy {
                reopen_within_ms: s.threading.reopen_within_days as i64 * 86_400_000,
                agents: s.agents.iter().map(|a| a.address.clone()).collect(),
                internal_domains: s
                    .service
                    .internal_domains
                    .clone()
                    .unwrap_or_else(|| vec![s.service.support_address.domain().to_string()]),
            },
            sla: s.sla_policy(),
            agents: s.agents.clone(),
            agent_language: s.service.agent_language,
            ack_limit_per_hour: s.screening.ack_limit_per_hour,
            authority: AuthorityPolicy::new(&s.agent_mail),
            wording: Wording::new(&s.wording),
            queue: s.queue.as_ref().map(|q| QueuePolicy {
                notify_new: q.notify_new,
                card_attachments_max_bytes: q.card_attachments_max_mb as usize * 1024 * 1024,
            }),
            outbox: OutboxPolicy {
                envelope_from: s.envelope_from().clone(),
                give_up_after_ms: s.outbox.give_up_after_secs as i64 * 1000,
                max_message_bytes: s.outbox.max_message_mb as usize * 1024 * 1024,
            },
        }
    }
}

impl Desk {
    /// Old cards (with the customer's address) keep working for agents for
    /// `agent_mail.legacy_card_days` after `since`, when this installation first ran with agents'
    /// addresses.
    pub fn with_agent_addresses_since(mut self, since: crate::domain::Millis) -> Desk {
        self.authority = self.authority.with_upgrade_at(since);
        self
    }

    /// The people a mail on ticket `t` addresses (To, Cc) who are not on it yet: not the
    /// requester, not a participant, not one of our addresses (`support`, `support+…`), not an
    /// agent. When the requester or an agent writes, these join the ticket.
    pub fn newcomers(
        &self,
        t: &crate::domain::TicketState,
        mail: &crate::domain::InboundMail,
    ) -> Vec<EmailAddress> {
        let support = &self.support_address;
        let mut out: Vec<EmailAddress> = Vec::new();
        for r in mail.recipients() {
            let ours = r.domain().eq_ignore_ascii_case(support.domain())
                && r.local_part().split('+').next() == Some(support.local_part());
            if !ours
                && r != &t.requester
                && !t.participants.contains(r)
                && !self.agents.iter().any(|a| &a.address == r)
                && !out.contains(r)
            {
                out.push(r.clone());
            }
        }
        out
    }
}

/// The current [`Desk`], shared by every mailbox loop and worker; a reload swaps it.
#[derive(Debug)]
pub struct SharedDesk {
    current: RwLock<Arc<Desk>>,
}

impl SharedDesk {
    pub fn new(desk: Desk) -> SharedDesk {
        SharedDesk {
            current: RwLock::new(Arc::new(desk)),
        }
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<Desk> {
        match self.current.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in a new desk (a reload).
    pub fn replace(&self, desk: Desk) {
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(desk),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(desk),
        }
    }
}
