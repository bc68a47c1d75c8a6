//! Stage `decide`: what one fetched mail does, given what the database knows ([`IntakeFacts`]).
//! Pure. The only decision path for inbound mail: a mail fetched alone and the same mail in a
//! batch go through exactly these functions, and the batch's facts are brought up to date after
//! each mail ([`record`]) so the next one sees it as if read back from the database.
//!
//! Two steps, because a new ticket's number comes from the database between them: [`route`]
//! says which way the mail goes (already stored; an agent's mail; a follow-up, a new ticket or
//! nothing for customer and machine mail; a Sent-folder copy), then [`decide`] plans everything
//! it causes.
//!
//! Invariants: "ours" means a mail supportd sent (its Message-ID is in the outbox) or one that
//! carries our loop header, never a domain match — colleagues at the support domain are
//! customers too; machine mail in a batch never changes what happens to the human mail beside
//! it; an agent's command needs an agent's authority (see `agents::authority`).

use crate::agents::authority::{self, Authority};
use crate::agents::mail as agent_mail;
use crate::agents::shared_mailbox::{self, SentMail};
use crate::app::context::Desk;
use crate::domain::EventKind;
use crate::domain::{
    Agent, IntakeFacts, MailKind, Millis, Plan, ScreenVerdict, ThreadDecision, ThreadFacts,
    TicketFacts, TicketRef, TicketState, Verdict,
};
use crate::inbound::analyze::Analysis;
use crate::inbound::apply::{self, NewTicket, SenderFacts};
use crate::inbound::thread;
use serde_json::json;

/// What a mailbox loop does with its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderRole {
    /// Customer and agent mail: stored, then marked `\Seen` or moved (`after`).
    Inbox,
    /// The shared mailbox's Sent folder: read only, agents' direct replies recorded.
    Sent,
}

/// Which way a mail goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// Stored already (the same Message-ID, or the same mailbox UID): nothing to do.
    Duplicate,
    /// An agent's mail about a ticket, with an agent's authority (`legacy`: at an old card's
    /// customer address, during the transition).
    Agent {
        agent: Agent,
        ticket: TicketRef,
        legacy: bool,
    },
    /// An agent's mail at the agents' address without the proof required, or at a revoked card:
    /// the draft goes back to the agent with the reason.
    Returned {
        agent: Agent,
        ticket: TicketRef,
        why: String,
        reason: &'static str,
    },
    /// Customer and machine mail: its verdict, where it threads, the ticket it opens (if any),
    /// and why an agent's address was refused authority (if it was).
    Mail {
        verdict: ScreenVerdict,
        decision: ThreadDecision,
        opens: Option<NewTicket>,
        refused: Option<Refused>,
    },
    /// A mail in the shared mailbox's Sent folder: an agent's direct reply to a ticket's
    /// customer, or nothing of ours to record (`None`).
    Sent { direct: Option<TicketRef> },
}

/// Mail that claims an agent's address without an agent's authority.
#[derive(Debug, Clone)]
pub struct Refused {
    pub claimed: crate::domain::EmailAddress,
    pub why: String,
    /// `customer_address`, `no_agent_address`, `no_proof`, `revoked`.
    pub reason: &'static str,
}

impl Route {
    /// Whether this route opens a ticket (its number is needed before [`decide`]).
    pub fn opens_ticket(&self) -> bool {
        matches!(self, Route::Mail { opens: Some(_), .. })
    }
}

/// What deciding a mail concluded: its message row's verdict, the ticket it is filed on, the
/// ticket it opened, and its plan.
#[derive(Debug, Clone)]
pub struct Decided {
    /// `human`, `auto_reply`, …, `loop`, `agent` (an agent's mail), `agent_direct` (a Sent copy).
    pub verdict: &'static str,
    pub reason: String,
    pub ticket: Option<TicketRef>,
    pub opened: Option<TicketState>,
    pub plan: Plan,
    /// The message row is a copy of mail someone sent (`out`), found in the Sent folder.
    pub outgoing: bool,
}

/// The threading facts for a mail's hints, from the batch's facts.
fn thread_facts(facts: &IntakeFacts, a: &Analysis) -> ThreadFacts {
    let of = |t: TicketRef| facts.tickets.get(&t).map(ticket_facts);
    let h = &a.hints;
    // Of several candidates, those that name no ticket are ignored; one the sender takes part in
    // wins, else the first (which a stranger is then linked to).
    let sender = a.mail.correspondent();
    let pick = |candidates: &[TicketRef]| -> Option<TicketFacts> {
        let found: Vec<TicketFacts> = candidates.iter().filter_map(|t| of(*t)).collect();
        let known = found
            .iter()
            .position(|f| sender.is_some_and(|s| f.knows(s)))
            .unwrap_or(0);
        found.into_iter().nth(known)
    };
    ThreadFacts {
        by_token: h.token.and_then(of),
        // Nearest reference first: hints are ordered In-Reply-To, then newest reference.
        by_reference: h
            .references
            .iter()
            .take(50)
            .find_map(|id| facts.ticket_of(id))
            .and_then(of),
        // An agents' address used by someone who is not an agent threads like a tag: the
        // sender must be the requester or a participant.
        by_tag: match h.agent_token {
            Some((t, _)) => of(t),
            None => pick(&h.tags),
        },
        by_quoted_tag: pick(&h.quoted_tags),
        by_bounce: h
            .bounced
            .as_ref()
            .and_then(|id| facts.outbound.get(id).copied().flatten())
            .and_then(of),
    }
}

fn ticket_facts(t: &TicketState) -> TicketFacts {
    TicketFacts {
        ticket: t.ticket,
        requester: t.requester.clone(),
        participants: t.participants.clone(),
        solved_at: t.solved_at,
    }
}

/// Whether the mail is one supportd itself sent (its Message-ID is one of our outgoing mails).
fn is_ours(facts: &IntakeFacts, a: &Analysis) -> bool {
    !a.mail.synthetic_id && facts.outbound.contains_key(&a.mail.message_id)
}

/// Which way the mail goes. `uid` is its UID in the batch's folder.
/// Context only the store knows: a mail that answers one of our automatic mails (an
/// acknowledgement, a survey, a notice) and carries some machine evidence is that loop's other
/// end — an auto-responder — even when its evidence alone would not decide; more so when it came
/// within a minute of our mail. A person's plain answer ("好的，谢谢") carries none and stays a
/// person's.
fn answers_automatic(facts: &IntakeFacts, a: &Analysis) -> Option<ScreenVerdict> {
    let evidence = a.screen.machine_evidence;
    if evidence < 2 {
        return None;
    }
    let answered = a
        .mail
        .in_reply_to
        .iter()
        .chain(a.mail.references.iter().rev())
        .find_map(|id| facts.automatic.get(id))?;
    let (kind, sent_at) = answered;
    let fast = match (sent_at, a.mail.date) {
        (Some(sent), Some(date)) => (date - sent).abs() <= 60_000,
        _ => false,
    };
    // People rarely answer an acknowledgement, and then with something to say (which offsets
    // the cues before this): an answer to our automatic mail that still carries any cue is the
    // machine's.
    let weight = evidence + 6 + if fast { 4 } else { 0 };
    (weight >= crate::inbound::screen::DECIDES).then(|| {
        let mut v = ScreenVerdict::new(
            Verdict::AutoReply,
            format!(
                "answers our automatic {kind}{} and {}",
                if fast { " within a minute" } else { "" },
                a.screen.reason
            ),
        );
        v.machine_evidence = weight;
        v
    })
}

pub fn route(
    desk: &Desk,
    facts: &IntakeFacts,
    a: &Analysis,
    uid: u32,
    role: FolderRole,
    now: Millis,
) -> Route {
    let id = &a.mail.message_id;
    if role == FolderRole::Sent {
        if facts.uids.contains(&uid) || facts.outbound.contains_key(id) {
            return Route::Duplicate;
        }
        let f = thread_facts(facts, a);
        let ticket = f
            .by_reference
            .or(f.by_tag)
            .and_then(|x| facts.tickets.get(&x.ticket));
        let direct = match shared_mailbox::classify_sent(&a.mail, ticket, is_ours(facts, a)) {
            SentMail::Direct => ticket.map(|t| t.ticket),
            SentMail::Ours | SentMail::Unrelated => None,
        };
        return Route::Sent { direct };
    }
    if facts.uids.contains(&uid) || facts.inbound.contains_key(id) {
        return Route::Duplicate;
    }
    let mut verdict = a.screen.clone();
    if verdict.is_human() && is_ours(facts, a) {
        verdict = ScreenVerdict::new(Verdict::Loop, "Message-ID is one of the mails we sent");
    }
    if verdict.is_human() {
        if let Some(v) = answers_automatic(facts, a) {
            verdict = v;
        }
    }
    let mut refused = None;
    if verdict.is_human() {
        let named = authority::named_ticket(&a.hints).and_then(|t| facts.tickets.get(&t));
        match authority::recognise(&a.mail, &a.hints, named, &desk.agents, &desk.authority, now) {
            Authority::Agent { agent, legacy } => {
                if let Some(t) = named {
                    return Route::Agent {
                        agent: agent.clone(),
                        ticket: t.ticket,
                        legacy,
                    };
                }
            }
            Authority::Returned { agent, why, reason } => {
                if let Some(t) = named {
                    return Route::Returned {
                        agent: agent.clone(),
                        ticket: t.ticket,
                        why,
                        reason: reason.as_str(),
                    };
                }
            }
            Authority::Claimed { agent, why, reason } => {
                refused = Some(Refused {
                    claimed: agent.address.clone(),
                    why,
                    reason: reason.as_str(),
                })
            }
            Authority::None => {}
        }
    }
    let decision = thread::thread(&a.mail, &thread_facts(facts, a), &desk.thread_policy, now);
    let opens = apply::new_ticket(&a.mail, &verdict, &decision, &a.classification);
    Route::Mail {
        verdict,
        decision,
        opens,
        refused,
    }
}

/// Everything the mail causes. `new_ticket` is the number reserved for the ticket it opens (when
/// [`Route::opens_ticket`]). `None`: nothing to store (a duplicate, or a Sent mail that is not
/// ours to record).
pub fn decide(
    desk: &Desk,
    facts: &IntakeFacts,
    a: &Analysis,
    route: Route,
    new_ticket: Option<TicketRef>,
    now: Millis,
) -> Option<Decided> {
    match route {
        Route::Duplicate | Route::Sent { direct: None } => None,
        Route::Sent {
            direct: Some(t), ..
        } => {
            let ticket = facts.tickets.get(&t)?;
            let mut plan = shared_mailbox::direct_reply(desk, ticket, &a.mail, now);
            shared_mailbox::follow_state(ticket, &mut plan);
            Some(Decided {
                verdict: "agent_direct",
                reason: String::new(),
                ticket: Some(t),
                opened: None,
                plan,
                outgoing: true,
            })
        }
        Route::Returned {
            agent,
            ticket,
            why,
            reason,
        } => {
            let t = facts.tickets.get(&ticket)?;
            let mut plan = agent_mail::returned(
                desk,
                t,
                &agent,
                &a.mail,
                &a.reply_text,
                std::slice::from_ref(&why),
                now,
            );
            plan.event(
                EventKind::AgentAuthorityRefused,
                json!({"claimed": agent.address.as_str(), "why": why, "reason": reason}),
            );
            Some(Decided {
                verdict: "agent",
                reason: format!("returned to agent {}: {why}", agent.address),
                ticket: Some(ticket),
                opened: None,
                plan,
                outgoing: false,
            })
        }
        Route::Agent {
            agent,
            ticket,
            legacy,
        } => {
            let t = facts.tickets.get(&ticket)?;
            let mut plan = agent_mail::handle(
                desk,
                t,
                &agent,
                &a.mail,
                &a.reply_text,
                &a.reply_images,
                now,
            );
            if legacy {
                plan.event(
                    EventKind::LegacyCardAddress,
                    json!({"by": agent.address.as_str(), "message_id": a.mail.message_id.as_str()}),
                );
            }
            if desk.queue.is_some() {
                shared_mailbox::follow_state(t, &mut plan);
            }
            Some(Decided {
                verdict: "agent",
                reason: format!("from agent {}", agent.address),
                ticket: Some(ticket),
                opened: None,
                plan,
                outgoing: false,
            })
        }
        Route::Mail {
            verdict,
            decision,
            opens,
            refused,
        } => {
            let ticket = match (opens, new_ticket) {
                (Some(n), Some(id)) => Some(TicketState::new(
                    id,
                    n.requester,
                    n.requester_name,
                    n.subject,
                    &n.classification,
                )),
                (Some(_), None) => {
                    // The caller reserves a number for every ticket a route opens.
                    debug_assert!(false, "a new ticket without a number");
                    None
                }
                (None, _) => match &decision {
                    ThreadDecision::FollowUp { ticket, .. } => facts.tickets.get(ticket).cloned(),
                    ThreadDecision::New { .. } => None,
                },
            };
            let acks = SenderFacts {
                acks_to_sender_last_hour: ticket
                    .as_ref()
                    .and_then(|t| facts.acks_last_hour.get(&t.requester).copied())
                    .unwrap_or(0),
                claims_agent: refused.is_some(),
            };
            let mut plan = apply::apply(
                desk,
                &a.mail,
                &a.reply_text,
                &verdict,
                &a.classification,
                &decision,
                ticket.as_ref(),
                acks,
                now,
            );
            if let Some(r) = refused {
                plan.event(
                    EventKind::AgentAuthorityRefused,
                    json!({"claimed": r.claimed.as_str(), "why": r.why, "reason": r.reason}),
                );
            }
            if a.hints.agent_token.is_some() && plan.ticket.is_some() && verdict.is_human() {
                // Someone who is not an agent has a card's address: rotate it.
                plan.event(
                    EventKind::AgentAddressExposed,
                    json!({"from": a.mail.from.as_ref().map(|f| f.as_str()), "message_id": a.mail.message_id.as_str()}),
                );
            }
            let opened = ticket.filter(|t| t.created);
            Some(Decided {
                verdict: verdict.verdict.as_str(),
                reason: verdict.reason,
                ticket: plan.ticket,
                opened,
                plan,
                outgoing: false,
            })
        }
    }
}

/// Brings the batch's facts up to date with a decided mail: it is stored, the tickets it opened
/// or changed are as its plan leaves them, its outgoing mail is ours, its acknowledgements count.
pub fn record(facts: &mut IntakeFacts, a: &Analysis, uid: u32, d: &Decided, now: Millis) {
    facts.uids.insert(uid);
    let id = a.mail.message_id.clone();
    if d.outgoing {
        facts.outbound.insert(id.clone(), d.ticket);
    } else {
        facts.inbound.insert(id.clone(), d.ticket);
    }
    for alias in &a.mail.original_ids {
        facts.aliases.insert(alias.clone(), d.ticket);
    }
    if let Some(t) = &d.opened {
        facts.tickets.insert(t.ticket, t.clone());
    }
    if let Some(t) = d.plan.ticket.and_then(|t| facts.tickets.get_mut(&t)) {
        t.apply(&d.plan, now);
    }
    if let Some(t) = d.ticket.and_then(|t| facts.tickets.get_mut(&t)) {
        if !d.outgoing {
            t.received(&id, d.verdict == "human", &a.reply_text);
        }
    }
    for o in &d.plan.outbox {
        facts.outbound.insert(o.message_id.clone(), o.ticket);
        if o.kind == MailKind::Ack {
            if let Some(r) = o.recipients.first() {
                *facts.acks_last_hour.entry(r.clone()).or_default() += 1;
            }
        }
    }
}
