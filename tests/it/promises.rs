//! Service promises through the real rig with a fake clock: days of SLA in seconds. A complaint
//! is acknowledged, its first-solution promise warns the agents at 36 h and breaches at 48 h
//! (escalated to the supervisor), an agent replies and solves it, the customer answers the
//! survey, the follow-up (回访) reminder reaches the owner and the follow-up is recorded. Every
//! mail is read back over IMAP from the recipient's mailbox.

use crate::helpers::*;
use std::sync::Arc;
use std::time::Duration;
use supportd::cli::actions::{perform, Action};
use supportd::clock::{Clock, FakeClock, SystemClock};
use supportd::domain::{EmailAddress, TicketRef};
use supportd::inbound::parse::parse;
use supportd::store::{TicketFilter, TicketOrder};

const H: Duration = Duration::from_secs(3600);

struct Team {
    agent: String,
    other: String,
    supervisor: String,
}

impl Team {
    fn new() -> Team {
        Team {
            agent: address(&unique("agent")),
            other: address(&unique("agent2")),
            supervisor: address(&unique("sup")),
        }
    }
    fn config(&self) -> String {
        format!(
            "[[agents]]\nname = \"李娜\"\naddress = \"{}\"\n[[agents]]\nname = \"Tom\"\naddress = \"{}\"\n[[agents]]\nname = \"王敏\"\naddress = \"{}\"\nrole = \"supervisor\"\n",
            self.agent, self.other, self.supervisor
        )
    }
}

async fn app_with_fake_clock(db: Db, team: &Team) -> (TestApp, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::new(SystemClock.now()));
    let app = spawn_app(AppOptions {
        db,
        clock: Some(clock.clone()),
        extra: team.config(),
        ..Default::default()
    })
    .await;
    (app, clock)
}

fn subjects(mails: &[Vec<u8>]) -> Vec<String> {
    mails.iter().map(|m| parse(m).subject).collect()
}

async fn act(app: &TestApp, t: TicketRef, action: Action) -> supportd::cli::actions::Done {
    let done = perform(&app.store, &app.desk(), t, &action, app.clock.now())
        .await
        .expect("action");
    app.outbox_wake.notify_one();
    done
}

async fn the_promises_of_a_complaint(db: Db) {
    let team = Team::new();
    let (app, clock) = app_with_fake_clock(db, &team).await;
    let created = clock.now();
    let (customer, _) = app
        .mail_from_new_customer(
            "安装服务",
            "我要投诉，安装师傅迟到了三个小时，还把地板刮花了。",
        )
        .await;
    let ack = parse(&wait_for_mail(&customer, 1, 60).await[0]);
    let t = TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref");
    assert!(ack.subject.contains(&t.to_string()));
    app.wait_until(
        10,
        "the sent acknowledgement keeps the ack promise",
        |s| async move {
            s.ticket_detail(t)
                .await
                .ok()
                .flatten()
                .and_then(|d| d.acked_at)
                .is_some()
        },
    )
    .await;
    let d = app.detail(t).await;
    assert_eq!(d.summary.class.category.as_str(), "complaint");
    let promise = |name: &str| {
        d.timers
            .iter()
            .find(|x| x.promise == name)
            .unwrap_or_else(|| panic!("{name} timer"))
            .clone()
    };
    assert_eq!(promise("ack").state, "met");
    assert_eq!(promise("solution").state, "running");
    assert_eq!(promise("solution").due_at, created + 48 * 3_600_000);

    // 36 h: the first-solution promise warns every agent (nobody owns the ticket yet). Two
    // schedulers race for it, as two daemons sharing a database would: it fires once.
    clock.advance(36 * H);
    let (a, b) = tokio::join!(app.fire_timers(), app.fire_timers());
    assert_eq!(a + b, 1, "fired once between two racing schedulers");
    for a in [&team.agent, &team.other] {
        let notice = parse(&wait_for_mail(a, 1, 60).await[0]);
        assert!(
            notice.subject.contains(&format!("[#{t}]")),
            "{}",
            notice.subject
        );
        assert!(notice.subject.contains("时限提醒"), "{}", notice.subject);
        assert!(
            notice.text.contains("地板刮花"),
            "the customer's text: {}",
            notice.text
        );
    }
    assert!(read_folder(&team.supervisor, "INBOX").await.is_empty());

    // 48 h: breached, escalated to the supervisor.
    clock.advance(12 * H);
    assert_eq!(app.fire_timers().await, 1);
    let escalation = parse(&wait_for_mail(&team.supervisor, 1, 60).await[0]);
    assert!(
        escalation.subject.contains("升级"),
        "{}",
        escalation.subject
    );
    let now = clock.now();
    let overdue = app
        .store
        .list_tickets(TicketOrder::Queue, TicketFilter::Overdue, now, 10)
        .await
        .expect("list");
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].next_promise.as_deref(), Some("solution"));
    let escalated = app
        .store
        .list_tickets(TicketOrder::Queue, TicketFilter::Escalated, now, 10)
        .await
        .expect("list");
    assert_eq!(escalated.len(), 1);
    assert_eq!(app.fire_timers().await, 0, "each step fires once");

    // The agent replies: owns the ticket, the solution promise is kept late.
    clock.advance(H);
    let agent = EmailAddress::parse(&team.agent).expect("addr");
    act(&app, t, Action::ReplySent { by: agent.clone() }).await;
    let d = app.detail(t).await;
    assert_eq!(d.summary.owner.as_deref(), Some(team.agent.as_str()));
    let solution = d
        .timers
        .iter()
        .find(|x| x.promise == "solution")
        .expect("timer");
    assert_eq!(solution.state, "breached");
    assert!(solution.met_at.is_some(), "kept late");

    // Solved: the survey reaches the customer; a complaint starts its follow-up promise.
    act(
        &app,
        t,
        Action::Solve {
            by: team.agent.clone(),
        },
    )
    .await;
    let mails = wait_for_mail(&customer, 2, 60).await;
    let survey = parse(&mails[1]);
    assert!(survey.subject.contains("评价"), "{:?}", subjects(&mails));
    assert!(survey.text.contains("5 4 5 5"), "{}", survey.text);

    // The customer answers the survey by replying.
    let answer = customer_mail(
        &customer,
        &app.support,
        &format!("Re: {}", survey.subject),
        "5 4 5 5",
        &format!("{}@customer.example", unique("m")),
        &format!(
            "In-Reply-To: <{}>\r\nReferences: <{}>\r\n",
            survey.message_id, survey.message_id
        ),
    );
    send_raw(&customer, &app.support, &answer).await;
    app.wait_until(60, "survey stored", |s| async move {
        s.count("surveys").await.unwrap_or(0) == 1
    })
    .await;
    let d = app.detail(t).await;
    assert_eq!(d.summary.status, "solved", "a happy vote leaves it solved");

    // 5.25 days later (75 % of 7 days): the owner is reminded of the follow-up.
    clock.advance(126 * H);
    assert_eq!(app.fire_timers().await, 1);
    let reminders = wait_for_mail(&team.agent, 2, 60).await;
    assert!(
        parse(&reminders[1]).subject.contains("投诉回访"),
        "{:?}",
        subjects(&reminders)
    );
    assert_eq!(
        read_folder(&team.other, "INBOX").await.len(),
        1,
        "the owner alone now, not every agent"
    );
    act(
        &app,
        t,
        Action::Followup {
            result: "客户表示满意".into(),
            by: team.agent.clone(),
        },
    )
    .await;
    let d = app.detail(t).await;
    assert_eq!(d.followup_result.as_deref(), Some("客户表示满意"));
    assert_eq!(app.store.count("running_timers").await.expect("count"), 0);

    let events = app.events(t).await;
    let expected = [
        "ticket_created",
        "classified",
        "ack_queued",
        "mail_sent",
        "sla_warning",
        "sla_breached",
        "escalated",
        "agent_replied",
        "owner_assigned",
        "solved",
        "survey_sent",
        "customer_replied",
        "survey_answered",
        "sla_warning",
        "followup_recorded",
    ];
    let mut at = 0;
    for e in expected {
        match events[at..].iter().position(|x| x == e) {
            Some(i) => at += i + 1,
            None => panic!("{e} missing or out of order in {events:?}"),
        }
    }

    // The month's figures.
    let r = app
        .store
        .month_rows(created - 1, clock.now() + 1, clock.now())
        .await
        .expect("report");
    assert_eq!(r.created.iter().map(|x| x.2).sum::<i64>(), 1);
    let kept = |k: &str| r.promises.iter().find(|p| p.0 == k).map(|p| (p.1, p.2));
    assert_eq!(kept("ack"), Some((1, 1)));
    assert_eq!(kept("solution"), Some((0, 1)));
    assert_eq!(
        r.breaches
            .iter()
            .map(|b| (b.0.as_str(), b.1.as_str(), b.3))
            .collect::<Vec<_>>(),
        [("solution", "complaint", 1)]
    );
    assert_eq!(r.scores.len(), 1);
    assert_eq!(r.scores[0].1, 1);
    assert!(r.scores[0].0[3] >= Some(4));
    assert_eq!((r.solved_in_period, r.first_contact), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_goes_through_ack_warning_breach_escalation_solution_survey_and_follow_up_on_sqlite(
) {
    the_promises_of_a_complaint(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_goes_through_ack_warning_breach_escalation_solution_survey_and_follow_up_on_postgresql(
) {
    the_promises_of_a_complaint(Db::Postgres).await;
}

async fn an_unsatisfied_customer(db: Db) {
    let team = Team::new();
    let (app, clock) = app_with_fake_clock(db, &team).await;
    let (customer, _) = app
        .mail_from_new_customer("Broken kettle", "The kettle I bought leaks. Please help.")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let t = TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref");
    let agent = EmailAddress::parse(&team.agent).expect("addr");
    clock.advance(2 * H);
    act(&app, t, Action::ReplySent { by: agent }).await;
    act(
        &app,
        t,
        Action::Solve {
            by: team.agent.clone(),
        },
    )
    .await;
    let survey = parse(&wait_for_mail(&customer, 2, 60).await[1]);
    let answer = customer_mail(
        &customer,
        &app.support,
        &format!("Re: {}", survey.subject),
        "not satisfied",
        &format!("{}@customer.example", unique("m")),
        &format!("In-Reply-To: <{}>\r\n", survey.message_id),
    );
    send_raw(&customer, &app.support, &answer).await;
    // Reopened, escalated: the supervisor must call within 24 h.
    let escalation = parse(&wait_for_mail(&team.supervisor, 1, 60).await[0]);
    assert!(
        escalation.subject.contains("客户不满意"),
        "{}",
        escalation.subject
    );
    let d = app.detail(t).await;
    assert_eq!(d.summary.status, "open");
    assert!(d.summary.escalated);
    assert_eq!(d.reopens, 1);
    assert!(d
        .timers
        .iter()
        .any(|x| x.promise == "supervisor_contact" && x.state == "running"));
    // 18 h: the supervisors are warned; then the supervisor replies, keeping the promise.
    clock.advance(18 * H);
    assert!(app.fire_timers().await >= 1);
    wait_for_mail(&team.supervisor, 2, 60).await;
    let sup = EmailAddress::parse(&team.supervisor).expect("addr");
    act(&app, t, Action::ReplySent { by: sup }).await;
    let d = app.detail(t).await;
    let contact = d
        .timers
        .iter()
        .find(|x| x.promise == "supervisor_contact")
        .expect("timer");
    assert_eq!(contact.state, "met");
    assert!(app
        .events(t)
        .await
        .contains(&"reply_by_other_agent".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsatisfied_survey_reopens_and_a_supervisor_must_call_within_24_hours_on_sqlite() {
    an_unsatisfied_customer(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsatisfied_survey_reopens_and_a_supervisor_must_call_within_24_hours_on_postgresql() {
    an_unsatisfied_customer(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_follow_up_by_mail_the_customer_s_answer_is_recorded_without_reopening() {
    let team = Team::new();
    let clock = Arc::new(FakeClock::new(SystemClock.now()));
    let app = spawn_app(AppOptions {
        clock: Some(clock.clone()),
        extra: format!(
            "{}\n[sla]\nfollowup = \"mail\"\nsurvey = false\n",
            team.config()
        ),
        ..Default::default()
    })
    .await;
    let (customer, _) = app
        .mail_from_new_customer("投诉", "我要投诉，送货员态度太差。")
        .await;
    wait_for_mail(&customer, 1, 60).await;
    let t = TicketRef::parse(&app.store.tickets(1).await.expect("tickets")[0].ticket).expect("ref");
    act(
        &app,
        t,
        Action::Solve {
            by: team.agent.clone(),
        },
    )
    .await;
    clock.advance(7 * 24 * H);
    // The warning at 75 % went by unseen (the daemon "was down"): straight to the mail.
    assert_eq!(app.fire_timers().await, 1);
    let followup = parse(&wait_for_mail(&customer, 2, 60).await[1]);
    assert!(followup.subject.contains("回访"), "{}", followup.subject);
    let answer = customer_mail(
        &customer,
        &app.support,
        &format!("Re: {}", followup.subject),
        "已经解决了，谢谢你们。",
        &format!("{}@customer.example", unique("m")),
        &format!("In-Reply-To: <{}>\r\n", followup.message_id),
    );
    send_raw(&customer, &app.support, &answer).await;
    app.wait_until(60, "follow-up result recorded", |s| async move {
        s.ticket_detail(t)
            .await
            .ok()
            .flatten()
            .and_then(|d| d.followup_result)
            .is_some()
    })
    .await;
    let d = app.detail(t).await;
    assert_eq!(d.followup_result.as_deref(), Some("已经解决了，谢谢你们。"));
    assert_eq!(d.summary.status, "solved");
    assert_eq!(d.reopens, 0);
}
