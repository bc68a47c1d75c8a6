//! The shared mailbox as the agents' queue. Pure: it decides which cards go into which folder
//! and when a ticket's cards move; the IMAP work itself is done after the commit by the IMAP job
//! worker (`imap_jobs.rs`).
//!
//! Every new ticket and every customer follow-up puts a card — the customer's new text, the
//! ticket's number, class, owner and next due promise, and a cheat-sheet of commands — into the
//! folder of the ticket's state (`[queue]`: Open, Waiting, Escalated, Solved). A card's
//! `Reply-To` is the ticket's signed address, so a plain Reply in any client reaches supportd.
//! When a ticket's state changes, all its cards move to the new state's folder.
//!
//! It also reads the shared mailbox's Sent folder: a reply an agent sent straight to a customer
//! (bypassing supportd) is recorded on its ticket, counts for the clock, and is flagged as not
//! checked for wording.
//!
//! Invariants: a card is addressed to nobody and is never sent, only appended; folders follow
//! state only (`Folder::of`); supportd's own copies in Sent are recognised by its loop header.

use crate::app::context::Desk;
use crate::clock::Millis;
use crate::domain::EventKind;
use crate::domain::MailKind;
use crate::domain::LOOP_HEADER;
use crate::domain::{Attachment, InboundMail};
use crate::domain::{Folder, ImapJob, Plan, Status, TicketState};
use crate::outbound::compose::Letter;
use crate::outbound::templates::duration_text;
use crate::ticket::lifecycle;
use serde_json::json;

/// The folder the ticket is in once `plan` is applied.
pub fn folder_after(t: &TicketState, plan: &Plan) -> Folder {
    let status = plan.update.status.unwrap_or(t.status);
    let escalated = t.escalated || plan.update.escalate;
    Folder::of(status, escalated)
}

/// Adds the folder move a plan causes, if it changes the ticket's state folder.
pub fn follow_state(t: &TicketState, plan: &mut Plan) {
    if t.created {
        return;
    }
    let before = Folder::of(t.status, t.escalated);
    let after = folder_after(t, plan);
    if before != after && !plan.imap_jobs.contains(&ImapJob::Move { to: after }) {
        plan.imap_jobs.push(ImapJob::Move { to: after });
    }
}

/// Adds a card with the customer's new `text` and `files` to the folder the ticket will be in.
/// The files go with the card, byte for byte, up to `card_attachments_max_bytes` in all (in
/// order); the card names those left out and how to get them.
pub fn add_card(
    desk: &Desk,
    t: &TicketState,
    text: &str,
    files: &[Attachment],
    plan: &mut Plan,
    now: Millis,
) {
    let mut vars = desk.vars(t);
    vars.summary = text.trim().to_string();
    let cap = desk
        .queue
        .map_or(usize::MAX, |q| q.card_attachments_max_bytes);
    let (mut carried, mut left_out, mut total) = (Vec::new(), Vec::new(), 0usize);
    for f in files {
        if total + f.size <= cap {
            total += f.size;
            carried.push(f.clone());
        } else {
            left_out.push(f);
        }
    }
    vars.attachments = attachments_note(desk.agent_language, t, &carried, &left_out, cap);
    let next = plan
        .start_timers
        .iter()
        .map(|d| (d.kind, d.due_at))
        .chain(t.timers.iter().map(|r| (r.kind, r.due_at)))
        .min_by_key(|(_, due)| *due);
    if let Some((kind, due)) = next {
        vars.promise = kind.as_str().into();
        vars.due_at = desk.sla.calendar.show(due);
        vars.remaining = duration_text(due - now);
    } else {
        vars.promise = "-".into();
    }
    if let Some(owner) = plan.update.owner.as_ref().or(t.owner.as_ref()) {
        vars.owner = desk.agent_name(owner);
    }
    let letter = Letter {
        from_name: Some(format!("{} ({})", t.customer_name(), desk.support_name)),
        automatic: false,
        attachments: carried,
        ..Letter::to(
            "card",
            MailKind::Card,
            desk.agent_language,
            None,
            desk.support_address.clone(),
            vars,
        )
    };
    match desk.render_mail(t, &letter, now) {
        Ok(f) => plan.imap_jobs.push(ImapJob::Append {
            folder: folder_after(t, plan),
            message_id: f.message_id,
            raw: f.raw,
        }),
        Err(e) => plan.event(
            EventKind::MailFailed,
            json!({"template": "card", "kind": "card", "error": e}),
        ),
    }
}

/// `1.2 MB`, `230 KB`, `512 B`.
pub fn size_text(bytes: usize) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
        b if b >= 1024 => format!("{} KB", b.div_ceil(1024)),
        b => format!("{b} B"),
    }
}

fn file_list(files: &[&Attachment], sep: &str) -> String {
    files
        .iter()
        .map(|f| {
            format!(
                "{} ({})",
                f.name.as_deref().unwrap_or("(unnamed)"),
                size_text(f.size)
            )
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// The card's line about the customer's files, in the agents' language.
fn attachments_note(
    lang: crate::domain::Language,
    t: &TicketState,
    carried: &[Attachment],
    left_out: &[&Attachment],
    cap: usize,
) -> String {
    use crate::domain::Language;
    let carried: Vec<&Attachment> = carried.iter().collect();
    let mut out = String::new();
    if !carried.is_empty() {
        out.push_str(&match lang {
            Language::ZhHans => format!("\n附件（随本卡片）：{}", file_list(&carried, "、")),
            Language::ZhHant => format!("\n附件（隨本卡片）：{}", file_list(&carried, "、")),
            _ => format!("\nAttached: {}", file_list(&carried, ", ")),
        });
    }
    if !left_out.is_empty() {
        let first = left_out[0].name.as_deref().unwrap_or("1");
        let get = format!("supportd attachment get {} \"{first}\"", t.ticket);
        out.push_str(&match lang {
            Language::ZhHans => format!(
                "\n未随卡片附上（合计超过 {}）：{}。取出：{get}；原邮件已归档。",
                size_text(cap),
                file_list(left_out, "、")
            ),
            Language::ZhHant => format!(
                "\n未隨卡片附上（合計超過 {}）：{}。取出：{get}；原郵件已歸檔。",
                size_text(cap),
                file_list(left_out, "、")
            ),
            _ => format!(
                "\nNot attached (over {} in all): {}. Get them with: {get} (the original mail is archived).",
                size_text(cap),
                file_list(left_out, ", ")
            ),
        });
    }
    out
}

/// `notify_new`: every agent hears of a new ticket by mail.
pub fn notify_new(desk: &Desk, t: &TicketState, text: &str, plan: &mut Plan, now: Millis) {
    for a in desk
        .agents
        .iter()
        .filter(|a| a.role == crate::domain::Role::Agent)
    {
        let mut vars = desk.vars(t);
        vars.summary = text.trim().chars().take(600).collect();
        vars.recipient_name = a.name.clone();
        let letter = Letter::to(
            "notice_new",
            MailKind::Notice,
            desk.agent_language,
            Some(a.name.clone()),
            a.address.clone(),
            vars,
        );
        desk.queue(plan, t, letter, now);
    }
}

/// What a mail in the shared mailbox's Sent folder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentMail {
    /// A copy of supportd's own mail: nothing to do.
    Ours,
    /// Not about a ticket (or not to its customer): nothing to do.
    Unrelated,
    /// An agent's reply to a ticket's customer, sent around supportd.
    Direct,
}

/// Whether a Sent mail is ours, unrelated, or a direct reply to `t`'s customer. `sent_by_us`:
/// its Message-ID is one of the mails supportd sent (the caller knows from the store); our loop
/// header says so too. Agents' own clients may use Message-IDs in our domain: a domain proves
/// nothing.
pub fn classify_sent(mail: &InboundMail, t: Option<&TicketState>, sent_by_us: bool) -> SentMail {
    if sent_by_us || mail.header(&LOOP_HEADER.to_ascii_lowercase()).is_some() {
        return SentMail::Ours;
    }
    let Some(t) = t else {
        return SentMail::Unrelated;
    };
    let to_customer = mail
        .recipients()
        .any(|r| r == &t.requester || t.participants.contains(r));
    if to_customer {
        SentMail::Direct
    } else {
        SentMail::Unrelated
    }
}

/// The plan for an agent's direct reply found in Sent: it counts for the clock (and, from a
/// listed agent, for ownership), flagged as not checked for wording.
pub fn direct_reply(desk: &Desk, t: &TicketState, mail: &InboundMail, now: Millis) -> Plan {
    let agent = [mail.from.as_ref(), mail.sender.as_ref()]
        .into_iter()
        .flatten()
        .find(|a| desk.agents.iter().any(|x| &x.address == *a))
        .cloned();
    let mut plan = match &agent {
        Some(a) => lifecycle::agent_replied(desk, t, a, false, now),
        None => {
            // Sent from the shared address itself: which agent is unknown; the clock still stops.
            let mut p = Plan::for_ticket(t.ticket);
            p.update.agent_reply = true;
            crate::ticket::sla::kept_by_reply(&mut p, false);
            p
        }
    };
    plan.event(
        EventKind::AgentReplyUnchecked,
        json!({
            "message_id": mail.message_id.as_str(),
            "from": mail.from.as_ref().map(|a| a.as_str()),
            "why": "sent directly from the shared mailbox, not through supportd: wording not checked",
        }),
    );
    if t.status == Status::Pending {
        plan.update.status = Some(Status::Open);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Category;
    use crate::inbound::parse::parse;
    use crate::testing::StageFixture;

    #[test]
    fn a_state_change_moves_the_cards_and_nothing_else_does() {
        let f = StageFixture::new();
        let t = f.ticket(Category::Inquiry);
        let mut plan = Plan::for_ticket(t.ticket);
        follow_state(&t, &mut plan);
        assert!(plan.imap_jobs.is_empty());
        plan.update.status = Some(Status::Solved);
        follow_state(&t, &mut plan);
        assert_eq!(plan.imap_jobs, [ImapJob::Move { to: Folder::Solved }]);
        let mut esc = Plan::for_ticket(t.ticket);
        esc.update.escalate = true;
        follow_state(&t, &mut esc);
        assert_eq!(
            esc.imap_jobs,
            [ImapJob::Move {
                to: Folder::Escalated
            }]
        );
    }

    #[test]
    fn files_over_the_card_s_limit_are_named_with_how_to_get_them() {
        let mut f = StageFixture::new();
        f.desk.queue = Some(crate::app::context::QueuePolicy {
            notify_new: false,
            card_attachments_max_bytes: 1_000,
        });
        let t = f.ticket(Category::Complaint);
        let file = |name: &str, size: usize| Attachment {
            name: Some(name.into()),
            content_type: "image/jpeg".into(),
            size,
            content_id: None,
            inline: false,
            message: false,
            bytes: vec![7; size],
        };
        let mut plan = Plan::for_ticket(t.ticket);
        add_card(
            f.desk(),
            &t,
            "货物破损",
            &[file("a.jpg", 600), file("b.jpg", 600)],
            &mut plan,
            0,
        );
        let Some(ImapJob::Append { raw, .. }) = plan.imap_jobs.first() else {
            panic!("{:?}", plan.imap_jobs);
        };
        let card = parse(raw);
        assert_eq!(card.attachments.len(), 1, "one fits");
        assert_eq!(card.attachments[0].bytes, vec![7; 600]);
        assert!(card.text.contains("b.jpg"), "{}", card.text);
        assert!(
            card.text.contains("supportd attachment get T-000042"),
            "{}",
            card.text
        );
    }

    #[test]
    fn a_card_carries_the_text_and_replies_to_the_agents_address() {
        let f = StageFixture::new();
        let t = f.ticket(Category::Complaint);
        let mut plan = Plan::for_ticket(t.ticket);
        add_card(f.desk(), &t, "我的退款还没有到账。", &[], &mut plan, 0);
        let ImapJob::Append { folder, raw, .. } = &plan.imap_jobs[0] else {
            panic!("{:?}", plan.imap_jobs);
        };
        assert_eq!(*folder, Folder::Open);
        let card = parse(raw);
        assert!(card.text.contains("我的退款还没有到账。"));
        assert!(card.text.contains("#resolve"), "cheat-sheet");
        let reply_to = card.reply_to.as_ref().expect("reply-to").to_string();
        // The agents' address: never the customer's reply address.
        assert!(reply_to.starts_with("support+a0.t000042."), "{reply_to}");
        assert!(card.header("auto-submitted").is_none());
    }

    #[test]
    fn sent_mail_is_ours_unrelated_or_a_direct_reply() {
        let f = StageFixture::new();
        let t = f.ticket(Category::Inquiry);
        let ours = parse(b"From: support@example.test\r\nTo: wang@qq.com\r\nMessage-ID: <x@example.test>\r\nX-Supportd-Loop: example.test\r\n\r\nx");
        assert_eq!(classify_sent(&ours, Some(&t), false), SentMail::Ours);
        let direct = parse(b"From: support@example.test\r\nTo: wang@qq.com\r\nMessage-ID: <y@thunderbird.example>\r\n\r\nDone.");
        assert_eq!(classify_sent(&direct, Some(&t), false), SentMail::Direct);
        let other = parse(b"From: support@example.test\r\nTo: boss@example.test\r\nMessage-ID: <z@thunderbird.example>\r\n\r\nx");
        assert_eq!(classify_sent(&other, Some(&t), false), SentMail::Unrelated);
        let plan = direct_reply(f.desk(), &t, &direct, 0);
        assert!(plan.update.agent_reply);
        assert!(plan
            .events
            .iter()
            .any(|e| e.kind == "agent_reply_unchecked"));
        assert_eq!(plan.update.owner, None, "no agent known: no owner");
    }
}
