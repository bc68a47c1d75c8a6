//! A ticket's life after it is opened: agents reply, solve, mark it complex, record the follow-up;
//! customers answer the survey, say it is not solved, reopen it. Pure: each transition returns a
//! [`Plan`] (or adds to one) that the store commits in one transaction.
//!
//! The procedures it keeps:
//! - 首问负责制: the first agent who replies owns the ticket until it is solved; others may reply
//!   (recorded), reassignment is explicit.
//! - The first customer-facing reply is the first solution: it keeps the acknowledgement and
//!   solution promises; on a complex ticket each reply is progress news and restarts that clock.
//! - A solution sends the satisfaction survey; a solved complaint gets a follow-up (回访) timer.
//! - An unsatisfied customer — a low survey score, or a complaint's customer saying it is not
//!   solved — reopens the ticket and escalates it: a supervisor must contact them within 24 h.
//!
//! Invariants: transitions never fail (a template problem becomes a `mail_failed` event); each
//! records an event saying who did what; timers only end by the promises they keep.

use crate::app::context::Desk;
use crate::clock::Millis;
use crate::domain::EventKind;
use crate::domain::MailKind;
use crate::domain::Role;
use crate::domain::Scores;
use crate::domain::{Category, Correction};
use crate::domain::{EmailAddress, MessageId};
use crate::domain::{Plan, Status, TicketState, TimerEnd, TimerKind};
use crate::outbound::compose::Letter;
use crate::outbound::templates::duration_text;
use crate::ticket::sla::{self, Notice};
use regex::Regex;
use serde_json::json;
use std::sync::LazyLock;

/// A customer saying the solution did not solve it.
static NOT_SOLVED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(没有解决|沒有解決|没解决|沒解決|未解决|未解決|还是没|還是沒|还是不行|還是不行|仍然不行|依然不行|问题依旧|問題依舊|不满意|不滿意|没用|沒用|\bnot (solved|resolved|fixed|satisfied)\b|\bstill (not|isn't|doesn't|does not|won't|broken|crashes|failing)\b|\bdidn't (work|help|fix)\b|\bdoesn't work\b)",
    )
    .expect("static regex")
});

/// Whether a customer's reply says the problem is not solved.
pub fn says_not_solved(text: &str) -> bool {
    NOT_SOLVED.is_match(text)
}

fn is_supervisor(desk: &Desk, who: &EmailAddress) -> bool {
    desk.agents
        .iter()
        .any(|a| &a.address == who && a.role == Role::Supervisor)
}

/// An agent's reply reached the customer (through supportd, or seen in the Sent folder).
pub fn agent_replied(
    desk: &Desk,
    t: &TicketState,
    by: &EmailAddress,
    checked_wording: bool,
    now: Millis,
) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    let first = t.first_reply_at.is_none();
    plan.update.agent_reply = true;
    plan.event(
        EventKind::AgentReplied,
        json!({"by": by.as_str(), "first": first, "wording_checked": checked_wording}),
    );
    if t.owner.is_none() {
        plan.update.owner = Some(by.clone());
        plan.event(
            EventKind::OwnerAssigned,
            json!({"owner": by.as_str(), "why": "first reply"}),
        );
    } else if t.owner.as_ref() != Some(by) {
        plan.event(
            EventKind::ReplyByOtherAgent,
            json!({"by": by.as_str(), "owner": t.owner.as_ref().map(|o| o.as_str())}),
        );
    }
    sla::kept_by_reply(&mut plan, is_supervisor(desk, by));
    if t.complex && t.status != Status::Solved {
        // Progress news given: the next is due a full period from now.
        plan.start_timers
            .push(desk.sla.draft(TimerKind::Progress, &t.class, now));
    }
    plan
}

/// The ticket is solved: survey to the customer, follow-up timer for a complaint.
pub fn solve(desk: &Desk, t: &TicketState, by: &str, now: Millis) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    if t.status == Status::Solved {
        plan.event(EventKind::AlreadySolved, json!({"by": by}));
        return plan;
    }
    plan.update.status = Some(Status::Solved);
    plan.update.solved = true;
    plan.event(EventKind::Solved, json!({"by": by}));
    // A solution without a written reply (by phone, say) still keeps the solution promise.
    plan.end(TimerKind::Ack, TimerEnd::Met);
    plan.end(TimerKind::Solution, TimerEnd::Met);
    plan.end(TimerKind::Progress, TimerEnd::Met);
    if desk.sla.survey {
        let letter = Letter::to_requester("survey", MailKind::Survey, t, desk.vars(t));
        if let Some(id) = desk.queue(&mut plan, t, letter, now) {
            plan.update.survey_sent = true;
            plan.event(EventKind::SurveySent, json!({"message_id": id.as_str()}));
        }
    }
    if t.class.category == Category::Complaint {
        plan.start_timers
            .push(desk.sla.draft(TimerKind::Followup, &t.class, now));
    }
    plan
}

/// Marks a ticket complex (progress news every `progress_hours`) or not.
pub fn set_complex(desk: &Desk, t: &TicketState, on: bool, by: &str, now: Millis) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    if t.complex == on {
        return plan;
    }
    plan.update.complex = Some(on);
    plan.event(EventKind::Complex, json!({"complex": on, "by": by}));
    if on && t.status != Status::Solved {
        plan.start_timers
            .push(desk.sla.draft(TimerKind::Progress, &t.class, now));
    } else {
        plan.end(TimerKind::Progress, TimerEnd::Cancelled);
    }
    plan
}

/// The follow-up (回访) was done; `result` is what the customer said.
pub fn record_followup(t: &TicketState, result: &str, by: &str) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    plan.update.followup_result = Some(result.to_string());
    plan.end(TimerKind::Followup, TimerEnd::Met);
    plan.event(
        EventKind::FollowupRecorded,
        json!({"by": by, "result": result}),
    );
    plan
}

/// Renews the ticket's agents' address (a card reached someone it should not have): cards and
/// notices sent before stop carrying authority; new ones carry the new address.
pub fn rotate_agent_address(t: &TicketState, by: &str) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    plan.update.rotate_agent_token = true;
    plan.event(
        EventKind::AgentAddressRotated,
        json!({"by": by, "epoch": t.agent_epoch.map_or(1, |e| e + 1)}),
    );
    plan
}

/// Assigns the ticket to `to` (explicit reassignment).
pub fn assign(t: &TicketState, to: &EmailAddress, by: &str) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    if t.owner.as_ref() == Some(to) {
        return plan;
    }
    plan.update.owner = Some(to.clone());
    plan.event(
        EventKind::OwnerAssigned,
        json!({"owner": to.as_str(), "from": t.owner.as_ref().map(|o| o.as_str()), "by": by}),
    );
    plan
}

/// An agent corrects the ticket's class: the new class, one correction row per field the
/// correction changed (a derived change is not a correction), the `classification_corrected`
/// event; running promises tighten to the new class's times (counted from their start). Nothing
/// when the correction changes nothing.
pub fn correct(desk: &Desk, t: &TicketState, c: &Correction, by: &str) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    let (to, changes) = t.class.corrected(c);
    if changes.is_empty() && to == t.class {
        return plan;
    }
    if !changes.is_empty() {
        plan.event(
            EventKind::ClassificationCorrected,
            json!({"by": by, "changes": changes, "from": t.class, "to": to}),
        );
    }
    for running in &t.timers {
        let d = desk.sla.draft(running.kind, &to, running.started_at);
        if d.due_at < running.due_at {
            plan.start_timers.push(d);
        }
    }
    plan.class = Some(to);
    plan.correction = Some((changes, by.to_string()));
    plan
}

/// A customer reply on a solved ticket reopens it: a new solution is owed.
pub fn reopen(desk: &Desk, t: &TicketState, why: &str, now: Millis, plan: &mut Plan) {
    plan.update.status = Some(Status::Open);
    plan.update.reopened = true;
    plan.event(EventKind::Reopened, json!({"why": why}));
    plan.start_timers
        .push(desk.sla.draft(TimerKind::Solution, &t.class, now));
    if t.complex {
        plan.start_timers
            .push(desk.sla.draft(TimerKind::Progress, &t.class, now));
    }
}

/// An unsatisfied customer: escalate to the supervisors, who must make contact within
/// `supervisor_contact_hours`.
pub fn escalate_unsatisfied(desk: &Desk, t: &TicketState, why: &str, now: Millis, plan: &mut Plan) {
    plan.update.escalate = true;
    plan.event(
        EventKind::Escalated,
        json!({"reason": "unsatisfied", "why": why}),
    );
    let timer = desk.sla.draft(TimerKind::SupervisorContact, &t.class, now);
    let notice = Notice {
        template: "notice_escalation",
        to: sla::escalation_recipients(&desk.agents),
        promise: TimerKind::SupervisorContact,
        due_at: timer.due_at,
        reason: "unsatisfied",
    };
    plan.start_timers.push(timer);
    queue_notices(desk, t, &[notice], now, plan);
}

/// An agent escalates the ticket to the supervisors (`#escalate`).
pub fn escalate_by_agent(
    desk: &Desk,
    t: &TicketState,
    by: &EmailAddress,
    now: Millis,
    plan: &mut Plan,
) {
    plan.update.escalate = true;
    plan.event(
        EventKind::Escalated,
        json!({"reason": "agent", "by": by.as_str()}),
    );
    let notice = Notice {
        template: "notice_escalation",
        to: sla::escalation_recipients(&desk.agents),
        promise: TimerKind::Solution,
        due_at: now,
        reason: "agent",
    };
    let mut shown = t.clone();
    shown.owner = Some(by.clone());
    queue_notices(desk, &shown, &[notice], now, plan);
}

/// A survey answer: recorded; an unsatisfied one reopens and escalates.
pub fn survey_answered(desk: &Desk, t: &TicketState, scores: Scores, now: Millis, plan: &mut Plan) {
    plan.survey = Some(scores);
    plan.update.survey_answered = true;
    plan.event(EventKind::SurveyAnswered, json!(scores));
    if scores.unsatisfied(desk.sla.unsatisfied_score) {
        if t.status == Status::Solved {
            reopen(desk, t, "unsatisfied survey", now, plan);
        }
        escalate_unsatisfied(desk, t, "survey", now, plan);
    }
}

/// What a customer's (human) follow-up on an existing ticket does to its life: a survey answer,
/// a reopen, an unsatisfied complaint, or a pending ticket becoming open again.
pub fn customer_followed_up(
    desk: &Desk,
    t: &TicketState,
    reply_text: &str,
    replies_to: &[MessageId],
    reopen_allowed: bool,
    now: Millis,
    plan: &mut Plan,
) {
    if let Some(survey) = &t.survey_message_id {
        if let Some(scores) = crate::ticket::survey::parse(reply_text, replies_to.contains(survey))
        {
            survey_answered(desk, t, scores, now, plan);
            return;
        }
    }
    let not_solved = says_not_solved(reply_text);
    if t.followup_pending() {
        // The answer to the automatic follow-up (回访) is its result.
        let mut result = reply_text.trim().chars().take(500).collect::<String>();
        if result.is_empty() {
            result = "(empty reply)".into();
        }
        plan.update.followup_result = Some(result.clone());
        plan.event(
            EventKind::FollowupRecorded,
            json!({"by": t.requester.as_str(), "result": result}),
        );
        if !not_solved {
            return;
        }
    }
    match t.status {
        Status::Solved if reopen_allowed => {
            reopen(desk, t, "customer replied", now, plan);
            if not_solved && t.class.category == Category::Complaint {
                escalate_unsatisfied(desk, t, "customer says it is not solved", now, plan);
            }
        }
        Status::Pending => {
            plan.update.status = Some(Status::Open);
            plan.event(EventKind::CustomerAnswered, json!({}));
        }
        _ => {}
    }
}

/// The outbox reports a mail sent: an acknowledgement keeps the acknowledgement promise.
pub fn mail_sent(t: crate::domain::TicketRef, kind: MailKind) -> Plan {
    let mut plan = Plan::for_ticket(t);
    if kind == MailKind::Ack {
        plan.update.acked = true;
        plan.end(TimerKind::Ack, TimerEnd::Met);
    }
    plan
}

/// Renders the SLA notices (warnings, escalations) to the agents they name, one mail each so
/// each is addressed by name.
pub fn queue_notices(
    desk: &Desk,
    t: &TicketState,
    notices: &[Notice],
    now: Millis,
    plan: &mut Plan,
) {
    for n in notices {
        for to in &n.to {
            let mut vars = desk.vars(t);
            vars.promise = n.promise.as_str().into();
            vars.due_at = desk.sla.calendar.show(n.due_at);
            vars.remaining = duration_text((n.due_at - now).abs());
            vars.reason = n.reason.into();
            vars.recipient_name = desk.agent_name(to);
            let letter = Letter::to(
                n.template,
                MailKind::Notice,
                desk.agent_language,
                Some(vars.recipient_name.clone()),
                to.clone(),
                vars,
            );
            desk.queue(plan, t, letter, now);
        }
    }
}

/// The automatic follow-up mail (`sla.followup = "mail"`).
pub fn queue_followup_mail(desk: &Desk, t: &TicketState, now: Millis, plan: &mut Plan) {
    plan.update.followup_sent = true;
    let letter = Letter::to_requester("followup", MailKind::Followup, t, desk.vars(t));
    desk.queue(plan, t, letter, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::StageFixture;

    #[test]
    fn the_first_agent_to_reply_owns_the_ticket_and_keeps_the_promises() {
        let f = StageFixture::new();
        let t = f.ticket(Category::Inquiry);
        let agent = f.agent(0);
        let plan = agent_replied(f.desk(), &t, &agent, true, 1_000);
        assert_eq!(plan.update.owner.as_ref(), Some(&agent));
        assert!(plan.update.agent_reply);
        assert!(plan
            .end_timers
            .contains(&(TimerKind::Solution, TimerEnd::Met)));
        assert!(plan.end_timers.contains(&(TimerKind::Ack, TimerEnd::Met)));
        let mut owned = t.clone();
        owned.owner = Some(agent.clone());
        let other = f.agent(1);
        let plan = agent_replied(f.desk(), &owned, &other, true, 1_000);
        assert_eq!(plan.update.owner, None, "ownership stays with the first");
        assert!(plan.events.iter().any(|e| e.kind == "reply_by_other_agent"));
    }

    #[test]
    fn solving_sends_the_survey_and_a_complaint_gets_a_follow_up_timer() {
        let f = StageFixture::new();
        let t = f.ticket(Category::Complaint);
        let plan = solve(f.desk(), &t, "lina@example.test", 0);
        assert_eq!(plan.update.status, Some(Status::Solved));
        assert_eq!(plan.outbox.len(), 1);
        assert_eq!(plan.outbox[0].kind, "survey");
        assert!(plan.update.survey_sent);
        assert_eq!(plan.start_timers[0].kind, TimerKind::Followup);
        let inquiry = f.ticket(Category::Inquiry);
        assert!(solve(f.desk(), &inquiry, "x", 0).start_timers.is_empty());
    }

    #[test]
    fn a_low_survey_score_reopens_and_escalates_to_a_supervisor() {
        let f = StageFixture::new();
        let mut t = f.ticket(Category::Inquiry);
        t.status = Status::Solved;
        t.survey_message_id = MessageId::parse("s@example.test");
        let mut plan = Plan::for_ticket(t.ticket);
        customer_followed_up(f.desk(), &t, "不满意", &[], true, 0, &mut plan);
        assert_eq!(plan.survey.map(|s| s.overall), Some(2));
        assert_eq!(plan.update.status, Some(Status::Open));
        assert!(plan.update.escalate);
        assert!(plan
            .start_timers
            .iter()
            .any(|d| d.kind == TimerKind::SupervisorContact));
        assert!(plan.outbox.iter().all(|o| o.kind == "notice"));
        assert_eq!(plan.outbox.len(), 1, "one supervisor, one notice");

        let mut plan = Plan::for_ticket(t.ticket);
        customer_followed_up(f.desk(), &t, "5 5 5 5", &[], true, 0, &mut plan);
        assert!(!plan.update.escalate);
        assert_eq!(plan.update.status, None, "a happy vote leaves it solved");
    }

    #[test]
    fn a_complaint_customer_saying_it_is_not_solved_is_escalated() {
        let f = StageFixture::new();
        let mut t = f.ticket(Category::Complaint);
        t.status = Status::Solved;
        let mut plan = Plan::for_ticket(t.ticket);
        customer_followed_up(
            f.desk(),
            &t,
            "问题还是没有解决，打印机仍然显示离线。",
            &[],
            true,
            0,
            &mut plan,
        );
        assert_eq!(plan.update.status, Some(Status::Open));
        assert!(plan.update.escalate);
        let mut inquiry = f.ticket(Category::Inquiry);
        inquiry.status = Status::Solved;
        let mut plan = Plan::for_ticket(inquiry.ticket);
        customer_followed_up(
            f.desk(),
            &inquiry,
            "still not working",
            &[],
            true,
            0,
            &mut plan,
        );
        assert_eq!(plan.update.status, Some(Status::Open), "reopened");
        assert!(
            !plan.update.escalate,
            "only complaints escalate on words alone"
        );
    }

    #[test]
    fn complex_tickets_owe_progress_news_and_each_reply_restarts_it() {
        let f = StageFixture::new();
        let t = f.ticket(Category::Inquiry);
        let plan = set_complex(f.desk(), &t, true, "x", 0);
        assert_eq!(plan.start_timers[0].kind, TimerKind::Progress);
        let mut c = t.clone();
        c.complex = true;
        let plan = agent_replied(f.desk(), &c, &f.agent(0), true, 5);
        assert!(plan
            .end_timers
            .contains(&(TimerKind::Progress, TimerEnd::Met)));
        assert_eq!(plan.start_timers[0].kind, TimerKind::Progress);
        assert_eq!(plan.start_timers[0].started_at, 5);
    }

    #[test]
    fn the_answer_to_the_follow_up_mail_is_its_result_and_reopens_only_if_unsolved() {
        let f = StageFixture::new();
        let mut t = f.ticket(Category::Complaint);
        t.status = Status::Solved;
        t.followup_sent_at = Some(0);
        let mut plan = Plan::for_ticket(t.ticket);
        customer_followed_up(f.desk(), &t, "已经解决了，谢谢！", &[], true, 0, &mut plan);
        assert_eq!(
            plan.update.followup_result.as_deref(),
            Some("已经解决了，谢谢！")
        );
        assert_eq!(plan.update.status, None, "not reopened");
        let mut plan = Plan::for_ticket(t.ticket);
        customer_followed_up(f.desk(), &t, "其实还是没有解决", &[], true, 0, &mut plan);
        assert!(plan.update.followup_result.is_some());
        assert_eq!(plan.update.status, Some(Status::Open));
        assert!(plan.update.escalate);
    }

    #[test]
    fn not_solved_is_recognised_in_both_languages() {
        assert!(says_not_solved("问题还是没有解决"));
        assert!(says_not_solved("Honestly the problem still isn't solved."));
        assert!(says_not_solved("The fix didn't work"));
        assert!(!says_not_solved("Thanks, that solved it!"));
        assert!(!says_not_solved("问题已经解决了，谢谢"));
    }
}
