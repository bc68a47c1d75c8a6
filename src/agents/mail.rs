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

use crate::agents::wording::{check_wording, violation_text};
use crate::app::context::Desk;
use crate::clock::Millis;
use crate::domain::EmailAddress;
use crate::domain::EventKind;
use crate::domain::InboundMail;
use crate::domain::MailKind;
use crate::domain::{Agent, Role};
use crate::domain::{Category, Correction, Priority};
use crate::domain::{Plan, Status, TicketState};
use crate::outbound::compose::Letter;
use crate::ticket::lifecycle;
use serde_json::json;

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

/// Plans everything an agent's mail causes: the reply to the customer (or a note), then the
/// commands; or, on any problem, only the draft returned to the agent.
///
/// `images`: the Content-IDs of the pictures inside the agent's new text (see
/// [`files_for_customer`]).
pub fn handle(
    desk: &Desk,
    t: &TicketState,
    agent: &Agent,
    mail: &InboundMail,
    reply_text: &str,
    images: &[String],
    now: Millis,
) -> Plan {
    let canned = |name: &str| desk.templates.has_canned(name);
    let (commands, text, text_line) = match parse_commands(reply_text, &desk.agents, &canned) {
        Ok(p) => (p.commands, p.text, p.text_line),
        Err(problems) => return returned(desk, t, agent, mail, reply_text, &problems, now),
    };
    let note = commands.contains(&Command::Note);
    let template = commands.iter().find_map(|c| match c {
        Command::Template(n) => Some(n.clone()),
        _ => None,
    });
    if !note {
        let violations = check_wording(&text, &desk.wording.forbidden);
        if !violations.is_empty() {
            let problems: Vec<String> = violations
                .iter()
                .map(|v| violation_text(desk.agent_language, v, text_line))
                .collect();
            return returned(desk, t, agent, mail, reply_text, &problems, now);
        }
        if text.is_empty() && template.is_none() && commands.is_empty() {
            return returned(
                desk,
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
        EventKind::AgentMail,
        json!({"by": agent.address.as_str(), "message_id": mail.message_id.as_str(),
               "commands": commands.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>()}),
    );
    if note {
        plan.event(
            EventKind::Note,
            json!({"by": agent.address.as_str(), "text": text}),
        );
    } else if !text.is_empty() || template.is_some() {
        let mut vars = desk.vars(t);
        vars.agent_name = agent.name.clone();
        vars.agent_text = text.clone();
        vars.agent_greets = greets(&text);
        vars.agent_closes = closes(&text);
        let mut participants: Vec<EmailAddress> = t
            .participants
            .iter()
            .filter(|p| *p != &t.requester && !desk.agents.iter().any(|a| &a.address == *p))
            .cloned()
            .collect();
        // Someone outside the organisation the agent addresses on the reply (To/Cc besides the
        // card) joins the ticket and gets this reply too; colleagues the agent consults do not
        // (they are not the customer's side).
        for p in desk
            .newcomers(t, mail)
            .into_iter()
            .filter(|p| !desk.thread_policy.is_colleague(p))
        {
            plan.event(
                EventKind::ParticipantAdded,
                json!({"address": p.as_str(), "added_by": agent.address.as_str(), "message_id": mail.message_id.as_str()}),
            );
            plan.new_participants.push(p.clone());
            participants.push(p);
        }
        let letter = Letter {
            template: match &template {
                Some(name) => format!("{}{name}", crate::outbound::templates::CANNED),
                None => "reply".into(),
            },
            kind: MailKind::Reply,
            language: t.language.template_language(),
            to: vec![(t.requester_name.clone(), t.requester.clone())],
            vars,
            in_reply_to: t.last_customer_message.clone(),
            references: t.first_message.iter().cloned().collect(),
            cc: participants,
            automatic: false,
            from_name: None,
            attachments: files_for_customer(mail, images),
        };
        match desk.draft(t, &letter, now) {
            Ok(f) if f.raw.len() > desk.outbox.max_message_bytes => {
                let problem = too_big(
                    desk.agent_language,
                    f.raw.len(),
                    desk.outbox.max_message_bytes,
                );
                return returned(desk, t, agent, mail, reply_text, &[problem], now);
            }
            Ok(f) => {
                plan.outbox.push(f.clone());
                plan.imap_jobs.push(crate::domain::ImapJob::Append {
                    folder: crate::domain::Folder::Sent,
                    message_id: f.message_id.clone(),
                    raw: f.raw,
                });
                plan.event(
                    EventKind::ReplyQueued,
                    json!({"message_id": f.message_id.as_str(), "by": agent.address.as_str(),
                           "template": letter.template, "wording_checked": true}),
                );
                plan.merge(lifecycle::agent_replied(desk, t, &agent.address, true, now));
            }
            Err(e) => {
                return returned(
                    desk,
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
            Command::Resolve => plan.merge(lifecycle::solve(desk, t, by, now)),
            Command::Pending => {
                if t.status != Status::Pending {
                    plan.update.status = Some(Status::Pending);
                    plan.event(EventKind::Pending, json!({"by": by}));
                }
            }
            Command::Complex => plan.merge(lifecycle::set_complex(desk, t, true, by, now)),
            Command::Escalate => {
                lifecycle::escalate_by_agent(desk, t, &agent.address, now, &mut plan)
            }
            Command::Assign(to) => plan.merge(lifecycle::assign(t, to, by)),
            Command::Category(cat) => correction.category = Some(*cat),
            Command::Priority(p) => correction.priority = Some(*p),
        }
    }
    if correction != Correction::default() {
        plan.merge(lifecycle::correct(desk, t, &correction, by));
    }
    plan
}

/// The agent's draft, returned with every reason; nothing else happens.
pub fn returned(
    desk: &Desk,
    t: &TicketState,
    agent: &Agent,
    mail: &InboundMail,
    draft: &str,
    problems: &[String],
    now: Millis,
) -> Plan {
    let mut plan = Plan::for_ticket(t.ticket);
    plan.event(
        EventKind::AgentMailReturned,
        json!({"by": agent.address.as_str(), "message_id": mail.message_id.as_str(), "problems": problems}),
    );
    let mut vars = desk.vars(t);
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
        MailKind::Notice,
        desk.agent_language,
        Some(agent.name.clone()),
        agent.address.clone(),
        vars,
    );
    letter.in_reply_to = Some(mail.message_id.clone());
    desk.queue(&mut plan, t, letter, now);
    plan
}

static GREETING: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)^\s*((尊敬的|亲爱的|親愛的|敬爱的).{0,30}|.{0,20}(您好|你好|早上好|上午好|下午好|晚上好|早安|午安)|(dear|hi|hello|good (morning|afternoon|evening)|greetings)\b.{0,60})\s*[!！,，:：.。]?\s*$",
    )
    .expect("static regex")
});

static WISHES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)^\s*(祝您?.{0,12}(愉快|顺利|順利|顺心|順心|安康|健康|如意)|顺祝商祺|順祝商祺|祝好|此致敬礼|此致|(best|kind|warm) (regards|wishes)|have a (nice|good|great) (day|weekend|evening))\s*[!！,，.。]?\s*$",
    )
    .expect("static regex")
});

/// Whether the agent's text opens with a greeting of its own (its first line).
pub fn greets(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.chars().count() <= 40 && GREETING.is_match(l))
}

/// Whether the agent's text ends with good wishes of its own (its last line).
pub fn closes(text: &str) -> bool {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| WISHES.is_match(l))
}

/// Which of an agent's files go to the customer with the reply. Everything they attached, and
/// the pictures they pasted into their new text; never what their client adds by itself: the
/// signature's logo (a picture the HTML shows outside the new text, e.g. Outlook's
/// `image001.png`) and vCards. A picture no HTML shows at all (a photo attached from a phone)
/// is an attachment like any other.
pub fn files_for_customer(mail: &InboundMail, images: &[String]) -> Vec<crate::domain::Attachment> {
    mail.attachments
        .iter()
        .filter(|a| {
            let name = a.name.as_deref().unwrap_or("").to_ascii_lowercase();
            let vcard = a.content_type.contains("vcard") || name.ends_with(".vcf");
            if vcard {
                return false;
            }
            match &a.content_id {
                Some(cid) if mail.html_images.contains(cid) => images.contains(cid),
                _ => true,
            }
        })
        .cloned()
        .collect()
}

/// Why a reply with its files cannot be sent, in the agents' language.
fn too_big(lang: crate::domain::Language, size: usize, max: usize) -> String {
    use crate::agents::shared_mailbox::size_text;
    use crate::domain::Language;
    match lang {
        Language::ZhHans => format!(
            "回复连同附件共 {}，超过可发送的上限 {}：请减少或压缩附件（或改用下载链接）后重发。未发送任何内容。",
            size_text(size),
            size_text(max)
        ),
        Language::ZhHant => format!(
            "回覆連同附件共 {}，超過可發送的上限 {}：請減少或壓縮附件（或改用下載連結）後重發。未發送任何內容。",
            size_text(size),
            size_text(max)
        ),
        _ => format!(
            "the reply with its files is {}, over the {} a mail may have: send fewer or smaller files (or a link) and try again. Nothing was sent.",
            size_text(size),
            size_text(max)
        ),
    }
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

    #[test]
    fn the_customer_reads_one_greeting_in_every_language() {
        let f = StageFixture::new();
        let mut t = f.ticket(crate::domain::Category::Inquiry);
        for (lang, text, greeting) in [
            (
                crate::domain::Language::ZhHans,
                "王先生您好：\n\n退款已办理。",
                "尊敬的",
            ),
            (
                crate::domain::Language::ZhHant,
                "王先生您好：\n\n退款已辦理。",
                "親愛的",
            ),
            (
                crate::domain::Language::En,
                "Dear Mr Wang,\n\nYour refund is on its way.",
                "Dear 王先生",
            ),
        ] {
            t.language = lang;
            let mail = crate::inbound::parse::parse(
                b"From: lina@example.test\r\nMessage-ID: <g1@example.test>\r\n\r\nx",
            );
            let plan = handle(f.desk(), &t, &f.agents[0], &mail, text, &[], 0);
            let body = &plan.outbox[0].text;
            assert!(body.contains(text), "{body}");
            assert!(!body.contains(greeting), "{lang:?}: two greetings:\n{body}");
            assert_eq!(
                body.matches("您好").count(),
                usize::from(lang != crate::domain::Language::En),
                "{body}"
            );
            // Without a greeting of its own, the template's stays.
            let plain = handle(f.desk(), &t, &f.agents[0], &mail, "退款已办理。", &[], 0);
            assert!(
                plain.outbox[0].text.contains(greeting),
                "{}",
                plain.outbox[0].text
            );
        }
        assert!(greets("您好，") && greets("Hi Wang,") && greets("尊敬的王先生："));
        assert!(!greets("您好像没有提供订单号，请补充。"));
        assert!(closes("退款已办理。\n祝您生活愉快！") && !closes("退款已办理。"));
    }
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
}
