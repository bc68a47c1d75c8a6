//! Stage `agent`: mail from agents, who work from their ordinary mail client. Pure.
//!
//! An agent answers a ticket by replying to its card (or to any mail about it): the reply goes
//! to the ticket's signed address (`support+TOKEN@…`). This stage decides whether such a mail has
//! an agent's authority, reads the commands at its top, checks the wording, and plans the reply
//! to the customer — the agent's text wrapped in the approved `reply` template, in the customer's
//! language, to the requester and participants, threaded, from the support address.
//!
//! Invariants:
//! - Authority needs all of: a sender (From or Sender) on the agents list, a validly signed
//!   ticket address (a forged one never qualifies), and — when `agent_mail.require_auth` says so
//!   — a DKIM (or SPF) pass for the agent's domain in an Authentication-Results header written by
//!   our own server (`authserv_id`). Anything else is customer mail and never runs a command.
//! - Nothing half-applies: every command is checked and the wording too before anything
//!   happens; a problem returns the draft to the agent with every reason, and nothing reaches
//!   the customer.
//! - Internal notes (`#note`) never reach a customer.

use crate::clock::Millis;
use crate::config::{AgentMailSettings, ForbiddenPhrase, WordingSettings};
use crate::domain::InboundMail;
use crate::domain::{Agent, Role};
use crate::domain::{Category, Correction, Priority};
use crate::domain::{EmailAddress, MessageId, TicketRef};
use crate::domain::{Plan, Status, TicketState};
use crate::outbound::compose::{Ctx, Letter};
use crate::ticket::lifecycle;
use serde_json::json;

/// The procedures' forbidden phrases and their approved alternatives.
pub const BUILTIN_FORBIDDEN: &[(&str, &str)] = &[
    ("不清楚", "我为您确认后回复"),
    ("不知道", "我为您确认后回复"),
    ("不歸我管", "我幫您聯繫相關部門處理"),
    ("不归我管", "我帮您联系相关部门处理"),
    ("这不是我们的问题", "我们一起看看怎样为您解决"),
    ("這不是我們的問題", "我們一起看看怎樣為您解決"),
    ("没办法", "我们会尽力为您协调解决"),
    ("沒辦法", "我們會盡力為您協調解決"),
    ("你自己看", "我为您详细说明"),
    ("不可能", "我们会认真为您核实"),
    (
        "i don't know",
        "let me check that for you and get back to you",
    ),
    (
        "i do not know",
        "let me check that for you and get back to you",
    ),
    (
        "not my problem",
        "I will make sure the right team handles this",
    ),
    (
        "not our problem",
        "I will make sure the right team handles this",
    ),
    ("calm down", "I understand how frustrating this is"),
    ("there's nothing we can do", "here is what we can do"),
    ("there is nothing we can do", "here is what we can do"),
];

/// How much proof an agent's mail needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequirement {
    None,
    Dkim,
    DkimOrSpf,
}

/// Who may act as an agent, and which words never reach a customer. Built from config.
#[derive(Debug, Clone)]
pub struct AgentPolicy {
    pub require: AuthRequirement,
    pub authserv_id: Option<String>,
    pub forbidden: Vec<ForbiddenPhrase>,
}

impl AgentPolicy {
    pub fn new(mail: &AgentMailSettings, wording: &WordingSettings) -> AgentPolicy {
        let mut forbidden: Vec<ForbiddenPhrase> = Vec::new();
        if wording.builtin {
            forbidden.extend(BUILTIN_FORBIDDEN.iter().map(|(p, i)| ForbiddenPhrase {
                phrase: p.to_string(),
                instead: i.to_string(),
            }));
        }
        forbidden.extend(wording.forbidden.iter().cloned());
        AgentPolicy {
            require: match mail.require_auth.as_str() {
                "dkim" => AuthRequirement::Dkim,
                "dkim_or_spf" => AuthRequirement::DkimOrSpf,
                _ => AuthRequirement::None,
            },
            authserv_id: mail.authserv_id.clone(),
            forbidden,
        }
    }
}

impl Default for AgentPolicy {
    fn default() -> Self {
        AgentPolicy::new(&AgentMailSettings::default(), &WordingSettings::default())
    }
}

/// Whether a mail carries an agent's authority over a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority<'a> {
    Agent(&'a Agent),
    /// Not from an agent.
    None,
    /// From an agent's address but without authority (no valid signed address, or no
    /// authentication pass): treated as customer mail, and the refusal is recorded.
    Refused(String),
}

/// Decides whether `mail`, delivered to the signed address of `token` (if any), is an agent's.
pub fn recognise<'a>(
    mail: &InboundMail,
    token: Option<TicketRef>,
    agents: &'a [Agent],
    policy: &AgentPolicy,
) -> Authority<'a> {
    let agent = [mail.from.as_ref(), mail.sender.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|a| agents.iter().find(|x| &x.address == a));
    let Some(agent) = agent else {
        return Authority::None;
    };
    if token.is_none() {
        return Authority::Refused(
            "not sent to a ticket's signed reply address (reply to the ticket's card or notice)"
                .into(),
        );
    }
    if policy.require != AuthRequirement::None {
        let domain = agent.address.domain();
        let passed = mail
            .headers("authentication-results")
            .any(|v| auth_pass(v, domain, policy));
        if !passed {
            return Authority::Refused(format!(
                "no {} pass for {domain} from {}",
                if policy.require == AuthRequirement::Dkim {
                    "DKIM"
                } else {
                    "DKIM or SPF"
                },
                policy.authserv_id.as_deref().unwrap_or("our server")
            ));
        }
    }
    Authority::Agent(agent)
}

/// One Authentication-Results header (RFC 8601): written by our server, with a pass for `domain`.
fn auth_pass(value: &str, domain: &str, policy: &AgentPolicy) -> bool {
    let mut parts = value.split(';');
    let id = parts.next().unwrap_or("").trim();
    let id = id.split_whitespace().next().unwrap_or("");
    if policy
        .authserv_id
        .as_deref()
        .is_none_or(|want| !want.eq_ignore_ascii_case(id))
    {
        return false;
    }
    parts.any(|r| {
        let r = r.trim().to_ascii_lowercase();
        let dkim = r.starts_with("dkim=pass")
            && (r.contains(&format!("header.d={domain}"))
                || r.contains(&format!("header.i=@{domain}")));
        let spf = r.starts_with("spf=pass")
            && (r.contains(&format!("smtp.mailfrom={domain}"))
                || r.contains(&format!("@{domain}")));
        dkim || (policy.require == AuthRequirement::DkimOrSpf && spf)
    })
}

/// A command at the top of an agent's mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Note,
    Resolve,
    Pending,
    Complex,
    Escalate,
    Assign(EmailAddress),
    Category(Category),
    Priority(Priority),
    Template(String),
}

const KNOWN: &str = "#note, #resolve (#solved), #pending, #complex, #escalate, #assign ADDRESS, #category C, #priority P, #template NAME";

/// An agent's mail read: its commands, the text below them, and the line (0-based) the text
/// starts on, so problems in it can be reported by the mail's own line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub commands: Vec<Command>,
    pub text: String,
    pub text_line: usize,
}

/// Reads the commands on the first lines (one per line, each starting with `#` and a letter)
/// and returns them with the text below. Every problem is reported, with its line.
pub fn parse_commands(
    text: &str,
    agents: &[Agent],
    canned: &dyn Fn(&str) -> bool,
) -> Result<Parsed, Vec<String>> {
    let mut commands = Vec::new();
    let mut problems = Vec::new();
    let mut rest_from = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() && commands.is_empty() && problems.is_empty() {
            rest_from = i + 1;
            continue;
        }
        let is_command = t.starts_with('#')
            && t[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        if !is_command {
            break;
        }
        rest_from = i + 1;
        let mut words = t[1..].split_whitespace();
        let name = words.next().unwrap_or("").to_ascii_lowercase();
        let arg: Vec<&str> = words.collect();
        let arg = arg.join(" ");
        let n = i + 1;
        let no_arg = |c: Command, problems: &mut Vec<String>| {
            if !arg.is_empty() {
                problems.push(format!("line {n}: #{name} takes no argument (got {arg:?})"));
            }
            c
        };
        let cmd = match name.as_str() {
            "note" => Some(no_arg(Command::Note, &mut problems)),
            "resolve" | "resolved" | "solved" | "solve" => {
                Some(no_arg(Command::Resolve, &mut problems))
            }
            "pending" => Some(no_arg(Command::Pending, &mut problems)),
            "complex" => Some(no_arg(Command::Complex, &mut problems)),
            "escalate" => Some(no_arg(Command::Escalate, &mut problems)),
            "assign" => match EmailAddress::parse(&arg) {
                Some(a) if agents.iter().any(|x| x.address == a) => Some(Command::Assign(a)),
                Some(a) => {
                    problems.push(format!("line {n}: #assign {a}: not one of the agents"));
                    None
                }
                None => {
                    problems.push(format!("line {n}: #assign needs an agent's address"));
                    None
                }
            },
            "category" => match Category::parse(&arg.to_ascii_lowercase()) {
                Some(c) => Some(Command::Category(c)),
                None => {
                    problems.push(format!(
                        "line {n}: #category {arg:?}: expected inquiry, status_query, complaint or suggestion"
                    ));
                    None
                }
            },
            "priority" => match Priority::parse(&arg.to_ascii_lowercase()) {
                Some(p) => Some(Command::Priority(p)),
                None => {
                    problems.push(format!(
                        "line {n}: #priority {arg:?}: expected urgent, high, normal or low"
                    ));
                    None
                }
            },
            "template" => {
                if arg.is_empty() {
                    problems.push(format!("line {n}: #template needs a name"));
                    None
                } else if canned(&arg) {
                    Some(Command::Template(arg.clone()))
                } else {
                    problems.push(format!(
                        "line {n}: #template {arg}: no approved answer of that name"
                    ));
                    None
                }
            }
            other => {
                problems.push(format!(
                    "line {n}: unknown command #{other} (known: {KNOWN})"
                ));
                None
            }
        };
        if let Some(c) = cmd {
            if commands.contains(&c) {
                problems.push(format!("line {n}: #{name} given twice"));
            } else {
                commands.push(c);
            }
        }
    }
    if commands.contains(&Command::Note)
        && commands.iter().any(|c| matches!(c, Command::Template(_)))
    {
        problems.push(
            "#note and #template together: a note goes to no customer, a template does".into(),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let lines: Vec<&str> = text.lines().skip(rest_from).collect();
    let blank = lines.iter().take_while(|l| l.trim().is_empty()).count();
    Ok(Parsed {
        commands,
        text: lines.join("\n").trim().to_string(),
        text_line: rest_from + blank,
    })
}

/// A forbidden phrase found in an agent's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub phrase: String,
    pub instead: String,
    pub line: usize,
    pub excerpt: String,
}

/// Every forbidden phrase in `text` (case-insensitive; Latin phrases as whole words).
pub fn check_wording(text: &str, forbidden: &[ForbiddenPhrase]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lower = line.to_lowercase().replace('’', "'");
        for f in forbidden {
            let p = f.phrase.to_lowercase();
            let found = lower.match_indices(&p).any(|(at, _)| {
                if !p.is_ascii() {
                    return true;
                }
                let before = lower[..at].chars().next_back();
                let after = lower[at + p.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric())
                    && !after.is_some_and(|c| c.is_alphanumeric())
            });
            if found {
                out.push(Violation {
                    phrase: f.phrase.clone(),
                    instead: f.instead.clone(),
                    line: i + 1,
                    excerpt: line.trim().chars().take(80).collect(),
                });
            }
        }
    }
    out
}

/// A forbidden phrase, explained to the agent in their language, by the line of their mail.
fn violation_text(lang: crate::domain::Language, v: &Violation, offset: usize) -> String {
    use crate::domain::Language;
    let line = v.line + offset;
    match lang {
        Language::ZhHans => format!(
            "第 {line} 行（line {line}）：\"{}\" 不是规范用语，请改为 \"{}\"。原文：{}",
            v.phrase, v.instead, v.excerpt
        ),
        Language::ZhHant => format!(
            "第 {line} 行（line {line}）：「{}」不是規範用語，請改為「{}」。原文：{}",
            v.phrase, v.instead, v.excerpt
        ),
        _ => format!(
            "line {line}: \"{}\" is not approved wording; say \"{}\" instead. ({})",
            v.phrase, v.instead, v.excerpt
        ),
    }
}

/// The forbidden-phrase check over every template in every language, rendered with sample
/// data: approved wording never contains forbidden wording. Problems read `name.lang: …`.
pub fn check_templates(
    templates: &crate::outbound::templates::Templates,
    forbidden: &[ForbiddenPhrase],
) -> Vec<String> {
    let mut problems = Vec::new();
    let vars = crate::outbound::templates::TemplateVars::sample();
    for key in templates.approvals().keys() {
        let Some((name, lang)) = key.split_once('.') else {
            continue;
        };
        let Some(lang) = crate::domain::Language::from_code(lang) else {
            continue;
        };
        match templates.render(name, lang, &vars) {
            Ok(r) => {
                // The sample agent text and problem list are not the template's own wording.
                let text = format!("{}\n{}", r.subject, r.body)
                    .replace(&vars.agent_text, "")
                    .replace(&vars.problems, "");
                for v in check_wording(&text, forbidden) {
                    problems.push(format!(
                        "{key}: line {}: \"{}\" is a forbidden phrase (say \"{}\")",
                        v.line, v.phrase, v.instead
                    ));
                }
            }
            Err(e) => problems.push(format!("{key}: {e}")),
        }
    }
    problems
}

/// What the stage needs to know about the mail and the ticket beyond the ticket's state.
#[derive(Debug, Clone)]
pub struct Thread {
    /// The customer's newest message on the ticket (the reply threads under it).
    pub last_customer_message: Option<MessageId>,
    /// The ticket's first message.
    pub first_message: Option<MessageId>,
}

/// Plans everything an agent's mail causes: the reply to the customer (or a note), then the
/// commands; or, on any problem, only the draft returned to the agent.
#[allow(clippy::too_many_arguments)]
pub fn handle(
    ctx: &Ctx<'_>,
    policy: &AgentPolicy,
    t: &TicketState,
    agent: &Agent,
    mail: &InboundMail,
    reply_text: &str,
    thread: &Thread,
    now: Millis,
) -> Plan {
    let canned = |name: &str| ctx.templates.has_canned(name);
    let (commands, text, text_line) = match parse_commands(reply_text, ctx.agents, &canned) {
        Ok(p) => (p.commands, p.text, p.text_line),
        Err(problems) => return returned(ctx, t, agent, mail, reply_text, &problems, now),
    };
    let note = commands.contains(&Command::Note);
    let template = commands.iter().find_map(|c| match c {
        Command::Template(n) => Some(n.clone()),
        _ => None,
    });
    if !note {
        let violations = check_wording(&text, &policy.forbidden);
        if !violations.is_empty() {
            let problems: Vec<String> = violations
                .iter()
                .map(|v| violation_text(ctx.agent_language, v, text_line))
                .collect();
            return returned(ctx, t, agent, mail, reply_text, &problems, now);
        }
        if text.is_empty() && template.is_none() && commands.is_empty() {
            return returned(
                ctx,
                t,
                agent,
                mail,
                reply_text,
                &["there is no text to send and no command".to_string()],
                now,
            );
        }
    }

    let mut plan = Plan::for_ticket(t.ticket);
    plan.event(
        "agent_mail",
        json!({"by": agent.address.as_str(), "message_id": mail.message_id.as_str(),
               "commands": commands.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>()}),
    );
    if note {
        plan.event("note", json!({"by": agent.address.as_str(), "text": text}));
    } else if !text.is_empty() || template.is_some() {
        let mut vars = ctx.vars(t);
        vars.agent_name = agent.name.clone();
        vars.agent_text = text.clone();
        let participants: Vec<EmailAddress> = t
            .participants
            .iter()
            .filter(|p| *p != &t.requester && !ctx.agents.iter().any(|a| &a.address == *p))
            .cloned()
            .collect();
        let letter = Letter {
            template: match &template {
                Some(name) => format!("{}{name}", crate::outbound::templates::CANNED),
                None => "reply".into(),
            },
            kind: "reply",
            language: t.language.template_language(),
            to: vec![(t.requester_name.clone(), t.requester.clone())],
            vars,
            in_reply_to: thread.last_customer_message.clone(),
            references: thread.first_message.iter().cloned().collect(),
            cc: participants,
            automatic: false,
            from_name: None,
        };
        match ctx.render_mail(t.ticket, &letter, now) {
            Ok(f) => {
                let mut recipients: Vec<EmailAddress> =
                    letter.to.iter().map(|(_, a)| a.clone()).collect();
                recipients.extend(letter.cc.iter().cloned());
                plan.outbox.push(crate::domain::OutboxDraft {
                    ticket: t.ticket,
                    kind: "reply",
                    message_id: f.message_id.clone(),
                    recipients,
                    subject: f.subject,
                    text: f.body,
                    in_reply_to: letter.in_reply_to,
                    raw: f.raw.clone(),
                });
                plan.imap_jobs.push(crate::domain::ImapJob::Append {
                    folder: crate::domain::Folder::Sent,
                    message_id: f.message_id.clone(),
                    raw: f.raw,
                });
                plan.event(
                    "reply_queued",
                    json!({"message_id": f.message_id.as_str(), "by": agent.address.as_str(),
                           "template": letter.template, "wording_checked": true}),
                );
                plan.merge(lifecycle::agent_replied(ctx, t, &agent.address, true, now));
            }
            Err(e) => {
                return returned(
                    ctx,
                    t,
                    agent,
                    mail,
                    reply_text,
                    &[format!("the reply could not be rendered: {e}")],
                    now,
                )
            }
        }
    }

    let by = agent.address.as_str();
    let mut correction = Correction::default();
    for c in &commands {
        match c {
            Command::Note | Command::Template(_) => {}
            Command::Resolve => plan.merge(lifecycle::solve(ctx, t, by, now)),
            Command::Pending => {
                if t.status != Status::Pending {
                    plan.update.status = Some(Status::Pending);
                    plan.event("pending", json!({"by": by}));
                }
            }
            Command::Complex => plan.merge(lifecycle::set_complex(ctx, t, true, by, now)),
            Command::Escalate => {
                lifecycle::escalate_by_agent(ctx, t, &agent.address, now, &mut plan)
            }
            Command::Assign(to) => plan.merge(lifecycle::assign(t, to, by)),
            Command::Category(cat) => correction.category = Some(*cat),
            Command::Priority(p) => correction.priority = Some(*p),
        }
    }
    if correction != Correction::default() {
        // Running promises tighten to the corrected class's times.
        let (after, _) = t.class.corrected(&correction);
        for running in &t.timers {
            let d = ctx.sla.draft(running.kind, &after, running.started_at);
            if d.due_at < running.due_at {
                plan.start_timers.push(d);
            }
        }
        plan.correction = Some((correction, by.to_string()));
    }
    plan
}

/// The agent's draft, returned with every reason; nothing else happens.
fn returned(
    ctx: &Ctx<'_>,
    t: &TicketState,
    agent: &Agent,
    mail: &InboundMail,
    draft: &str,
    problems: &[String],
    now: Millis,
) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    plan.event(
        "agent_mail_returned",
        json!({"by": agent.address.as_str(), "message_id": mail.message_id.as_str(), "problems": problems}),
    );
    let mut vars = ctx.vars(t);
    vars.recipient_name = agent.name.clone();
    vars.agent_name = agent.name.clone();
    vars.agent_text = draft.trim().to_string();
    vars.problems = problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut letter = Letter::to(
        "agent_returned",
        "notice",
        ctx.agent_language,
        Some(agent.name.clone()),
        agent.address.clone(),
        vars,
    );
    letter.in_reply_to = Some(mail.message_id.clone());
    ctx.queue(&mut plan, t.ticket, letter, now);
    plan
}

/// Whether an address belongs to a supervisor.
pub fn is_supervisor(agents: &[Agent], a: &EmailAddress) -> bool {
    agents
        .iter()
        .any(|x| &x.address == a && x.role == Role::Supervisor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;
    use crate::testing::StageFixture;

    fn canned(n: &str) -> bool {
        n == "refund_policy"
    }

    #[test]
    fn commands_are_read_from_the_top_with_the_text_below() {
        let f = StageFixture::new();
        let p = parse_commands(
            "\n#resolve\n#category complaint\n#assign tom@example.test\n\n您好，退款已办理。\n#not a command here",
            &f.agents,
            &canned,
        )
        .expect("valid");
        assert_eq!(
            p.commands,
            [
                Command::Resolve,
                Command::Category(Category::Complaint),
                Command::Assign(f.agent(1)),
            ]
        );
        assert_eq!(p.text, "您好，退款已办理。\n#not a command here");
        assert_eq!(p.text_line, 5, "the text starts on the mail's sixth line");
        let p = parse_commands("#1 is the best answer", &f.agents, &canned).expect("valid");
        assert!(p.commands.is_empty(), "#1 is not a command");
        assert_eq!(p.text, "#1 is the best answer");
    }

    #[test]
    fn bad_commands_are_all_reported_with_their_lines() {
        let f = StageFixture::new();
        let err = parse_commands(
            "#resolv\n#assign someone@else.example\n#priority asap\n#template nosuch\ntext",
            &f.agents,
            &canned,
        )
        .expect_err("invalid");
        assert_eq!(err.len(), 4, "{err:?}");
        assert!(err[0].contains("line 1") && err[0].contains("#resolv"));
        assert!(err[1].contains("not one of the agents"));
        assert!(err[2].contains("urgent, high, normal or low"));
        assert!(err[3].contains("nosuch"));
        let err = parse_commands("#note\n#template refund_policy", &f.agents, &canned)
            .expect_err("conflict");
        assert!(err[0].contains("#note and #template"));
    }

    #[test]
    fn the_shipped_templates_contain_no_forbidden_wording_and_a_bad_one_is_named() {
        let f = StageFixture::new();
        let forbidden = AgentPolicy::default().forbidden;
        assert_eq!(
            check_templates(&f.templates, &forbidden),
            Vec::<String>::new()
        );
        let strict = vec![ForbiddenPhrase {
            phrase: "请直接回复".into(),
            instead: "x".into(),
        }];
        let problems = check_templates(&f.templates, &strict);
        assert!(
            problems.iter().any(|p| p.starts_with("ack.zh-Hans: line")),
            "{problems:?}"
        );
    }

    #[test]
    fn forbidden_phrases_are_found_with_line_and_alternative() {
        let v = check_wording(
            "您好，\n这个问题我们也不清楚。\nI don't know when it ships.",
            &AgentPolicy::default().forbidden,
        );
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!((v[0].line, v[0].phrase.as_str()), (2, "不清楚"));
        assert_eq!(v[0].instead, "我为您确认后回复");
        assert_eq!(v[1].line, 3);
        assert!(
            check_wording(
                "I don't knowingly delay refunds",
                &AgentPolicy::default().forbidden
            )
            .is_empty(),
            "whole words only"
        );
        assert!(
            check_wording("I don’t know", &AgentPolicy::default().forbidden).len() == 1,
            "curly apostrophe"
        );
    }

    fn token_mail(from: &str, extra: &str) -> InboundMail {
        parse(
            format!("From: {from}\r\nTo: support+T000042.x@example.test\r\nMessage-ID: <a1@example.test>\r\n{extra}Subject: Re: [#T-000042] x\r\n\r\nhi")
                .as_bytes(),
        )
    }

    #[test]
    fn authority_needs_an_agent_a_signed_address_and_if_required_a_pass() {
        let f = StageFixture::new();
        let p = AgentPolicy::default();
        let t = Some(TicketRef(42));
        assert!(matches!(
            recognise(&token_mail("lina@example.test", ""), t, &f.agents, &p),
            Authority::Agent(a) if a.name == "李娜"
        ));
        assert_eq!(
            recognise(&token_mail("stranger@example.org", ""), t, &f.agents, &p),
            Authority::None
        );
        assert!(matches!(
            recognise(&token_mail("lina@example.test", ""), None, &f.agents, &p),
            Authority::Refused(_)
        ));
        let strict = AgentPolicy {
            require: AuthRequirement::Dkim,
            authserv_id: Some("mx.example.test".into()),
            ..AgentPolicy::default()
        };
        let pass = "Authentication-Results: mx.example.test; dkim=pass header.d=example.test header.s=s1\r\n";
        let forged = "Authentication-Results: evil.example; dkim=pass header.d=example.test\r\n";
        let fail = "Authentication-Results: mx.example.test; dkim=fail header.d=example.test\r\n";
        assert!(matches!(
            recognise(
                &token_mail("lina@example.test", pass),
                t,
                &f.agents,
                &strict
            ),
            Authority::Agent(_)
        ));
        for bad in [forged, fail, ""] {
            assert!(
                matches!(
                    recognise(&token_mail("lina@example.test", bad), t, &f.agents, &strict),
                    Authority::Refused(_)
                ),
                "{bad}"
            );
        }
    }
}
