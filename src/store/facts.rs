//! What decisions need to know, loaded in a few queries: the facts for a batch of inbound mail
//! ([`Store::intake_facts`]) and tickets in full ([`Store::ticket_states`]). Reads only.

use super::{addr, class_from_row, lang, Result, Store, Tx};
use crate::domain::{
    EmailAddress, FactsWanted, IntakeFacts, MessageId, Millis, RunningTimer, Status, TicketRef,
    TicketState, TimerKind,
};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use std::collections::{HashMap, HashSet};

/// Rows per `IN (…)` list.
const CHUNK: usize = 500;

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|k| format!("${k}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    /// Loads everything the batch's decisions depend on: which Message-IDs and UIDs are stored,
    /// the tickets the mails point to (directly, or through a stored message), and recent
    /// acknowledgements per sender. `mailbox` is the checkpoint key of the folder.
    pub async fn intake_facts(
        &self,
        tx: &mut Tx,
        mailbox: &str,
        uidvalidity: u32,
        wanted: &FactsWanted,
        now: Millis,
    ) -> Result<IntakeFacts> {
        let mut f = IntakeFacts::default();
        let mut ids: Vec<&str> = wanted.message_ids.iter().map(|m| m.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(CHUNK) {
            let mut q = sqlx::query(AssertSqlSafe(sql::message_ids(chunk.len())));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut **tx).await? {
                let Some(id) = MessageId::parse(&r.get::<String, _>(0)) else {
                    continue;
                };
                let ticket = r.get::<Option<i64>, _>(2).map(TicketRef);
                if r.get::<String, _>(1) == "in" {
                    f.inbound.insert(id, ticket);
                } else {
                    if let Some(kind) = r
                        .get::<Option<String>, _>(3)
                        .and_then(|k| crate::domain::MailKind::parse(&k))
                        .filter(|k| k.is_automatic())
                    {
                        f.automatic.insert(id.clone(), (kind, r.get(4)));
                    }
                    f.outbound.insert(id, ticket);
                }
            }
        }
        // Ids gateways recorded before rewriting (only ids that are no mail's own are asked).
        let unknown: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| {
                MessageId::parse(id)
                    .is_some_and(|m| !f.inbound.contains_key(&m) && !f.outbound.contains_key(&m))
            })
            .collect();
        for chunk in unknown.chunks(CHUNK) {
            let mut q = sqlx::query(AssertSqlSafe(sql::aliases(chunk.len())));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut **tx).await? {
                if let Some(id) = MessageId::parse(&r.get::<String, _>(0)) {
                    f.aliases
                        .insert(id, r.get::<Option<i64>, _>(1).map(TicketRef));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (wanted.uids.iter().min(), wanted.uids.iter().max()) {
            for r in sqlx::query(
                "SELECT uid FROM messages WHERE mailbox = $1 AND uidvalidity = $2 AND uid BETWEEN $3 AND $4",
            )
            .bind(mailbox)
            .bind(uidvalidity as i64)
            .bind(*lo as i64)
            .bind(*hi as i64)
            .fetch_all(&mut **tx)
            .await?
            {
                f.uids.insert(r.get::<i64, _>(0) as u32);
            }
        }
        let mut tickets: Vec<TicketRef> = wanted.tickets.clone();
        tickets.extend(
            f.inbound
                .values()
                .chain(f.outbound.values())
                .chain(f.aliases.values())
                .flatten(),
        );
        f.tickets = self.ticket_states(tx, &tickets).await?;
        f.acks_last_hour = self.ack_counts(tx, &wanted.senders, now).await?;
        Ok(f)
    }

    /// One ticket in full, if it exists.
    pub async fn ticket_state(&self, tx: &mut Tx, t: TicketRef) -> Result<Option<TicketState>> {
        Ok(self.ticket_states(tx, &[t]).await?.remove(&t))
    }

    /// Tickets in full (those that exist), by number: five queries per 500 tickets.
    pub async fn ticket_states(
        &self,
        tx: &mut Tx,
        tickets: &[TicketRef],
    ) -> Result<HashMap<TicketRef, TicketState>> {
        let mut ids: Vec<i64> = tickets.iter().map(|t| t.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let n = chunk.len();
            let rows = bound(&sql::tickets(n), chunk, tx).await?;
            for row in rows {
                let Some(requester) = addr(&row.get::<String, _>(1)) else {
                    continue;
                };
                let t = TicketRef(row.get(0));
                out.insert(
                    t,
                    TicketState {
                        ticket: t,
                        requester,
                        requester_name: row.get(2),
                        subject: row.get(3),
                        language: lang(&row.get::<String, _>(4)),
                        status: Status::parse(&row.get::<String, _>(5)).unwrap_or(Status::Open),
                        participants: Vec::new(),
                        class: class_from_row(&row, 6),
                        owner: row.get::<Option<String>, _>(11).as_deref().and_then(addr),
                        complex: row.get::<i64, _>(12) != 0,
                        escalated: row.get::<i64, _>(13) != 0,
                        survey_message_id: row
                            .get::<Option<String>, _>(14)
                            .as_deref()
                            .and_then(MessageId::parse),
                        first_reply_at: row.get(15),
                        solved_at: row.get(16),
                        followup_sent_at: row.get(17),
                        followup_at: row.get(18),
                        summary: String::new(),
                        first_message: None,
                        last_customer_message: None,
                        agent_epoch: row
                            .get::<Option<i64>, _>(19)
                            .map(|e| e.clamp(0, u32::MAX as i64) as u32),
                        timers: Vec::new(),
                        created: false,
                    },
                );
            }
            let by = |r: &AnyRow| TicketRef(r.get::<i64, _>(0));
            for r in bound(&sql::participants(n), chunk, tx).await? {
                if let (Some(t), Some(a)) = (out.get_mut(&by(&r)), addr(&r.get::<String, _>(1))) {
                    t.participants.push(a);
                }
            }
            for r in bound(&sql::timers(n), chunk, tx).await? {
                if let (Some(t), Some(kind)) = (
                    out.get_mut(&by(&r)),
                    TimerKind::parse(&r.get::<String, _>(1)),
                ) {
                    t.timers.push(RunningTimer {
                        kind,
                        started_at: r.get(2),
                        due_at: r.get(3),
                    });
                }
            }
            for r in bound(&sql::first_messages(n), chunk, tx).await? {
                if let Some(t) = out.get_mut(&by(&r)) {
                    t.first_message = MessageId::parse(&r.get::<String, _>(1));
                }
            }
            for r in bound(&sql::last_messages(n), chunk, tx).await? {
                if let Some(t) = out.get_mut(&by(&r)) {
                    t.last_customer_message = MessageId::parse(&r.get::<String, _>(1));
                    t.summary = r.get(2);
                }
            }
        }
        for t in out.values_mut() {
            t.timers.sort_by_key(|x| x.kind);
            t.order_participants();
        }
        Ok(out)
    }

    /// Acknowledgements queued to each of these addresses in the last hour.
    pub async fn ack_counts(
        &self,
        tx: &mut Tx,
        senders: &[EmailAddress],
        now: Millis,
    ) -> Result<HashMap<EmailAddress, u32>> {
        let mut out = HashMap::new();
        let senders: Vec<&str> = senders
            .iter()
            .map(|a| a.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for chunk in senders.chunks(CHUNK) {
            let mut q =
                sqlx::query(AssertSqlSafe(sql::ack_counts(chunk.len()))).bind(now - 3_600_000);
            for a in chunk {
                q = q.bind(*a);
            }
            for r in q.fetch_all(&mut **tx).await? {
                if let Some(a) = addr(&r.get::<String, _>(0)) {
                    out.insert(a, r.get::<i64, _>(1).clamp(0, u32::MAX as i64) as u32);
                }
            }
        }
        Ok(out)
    }
}

/// The intake's lookups, with `n` values bound as `$1…$n` (`ack_counts`: `$2…$n+1`). Every one
/// is found through an index whatever the tables hold and however long the list: the plans are
/// checked in the tests below.
pub(crate) mod sql {
    use super::placeholders;

    /// Stored mail by Message-ID, with the kind of an outgoing one. `direction IN (…)` lets the
    /// lookup use the unique index on (direction, message_id); without it the query reads the
    /// whole messages table once per batch.
    pub fn message_ids(n: usize) -> String {
        format!(
            "SELECT m.message_id, m.direction, m.ticket_id, o.kind, o.sent_at
             FROM messages m LEFT JOIN outbox o ON o.message_row = m.id
             WHERE m.direction IN ('in', 'out') AND m.message_id IN ({})",
            placeholders(1, n)
        )
    }

    /// Ids gateways recorded before rewriting.
    pub fn aliases(n: usize) -> String {
        format!(
            "SELECT a.alias, m.ticket_id FROM message_aliases a JOIN messages m ON m.id = a.message_row
             WHERE a.alias IN ({})",
            placeholders(1, n)
        )
    }

    pub fn tickets(n: usize) -> String {
        format!(
            "SELECT id, requester, requester_name, subject, language, status, category, severity, urgent, vip,
                    priority, owner, complex, escalated, survey_message_id, first_reply_at, solved_at,
                    followup_sent_at, followup_at, agent_token_epoch
             FROM tickets WHERE id IN ({})",
            placeholders(1, n)
        )
    }

    pub fn participants(n: usize) -> String {
        format!(
            "SELECT ticket_id, address FROM participants WHERE ticket_id IN ({}) ORDER BY address",
            placeholders(1, n)
        )
    }

    pub fn timers(n: usize) -> String {
        format!(
            "SELECT ticket_id, kind, started_at, due_at FROM timers WHERE state = 'running' AND ticket_id IN ({})",
            placeholders(1, n)
        )
    }

    /// Each ticket's first customer mail (index `messages_ticket` on (ticket_id, direction, id)).
    pub fn first_messages(n: usize) -> String {
        format!(
            "SELECT ticket_id, message_id FROM messages WHERE id IN
               (SELECT MIN(id) FROM messages WHERE direction = 'in' AND ticket_id IN ({}) GROUP BY ticket_id)",
            placeholders(1, n)
        )
    }

    /// Each ticket's last mail from a person.
    pub fn last_messages(n: usize) -> String {
        format!(
            "SELECT ticket_id, message_id, reply_text FROM messages WHERE id IN
               (SELECT MAX(id) FROM messages WHERE direction = 'in' AND verdict = 'human'
                AND ticket_id IN ({}) GROUP BY ticket_id)",
            placeholders(1, n)
        )
    }

    /// Acknowledgements to these addresses since `$1`.
    pub fn ack_counts(n: usize) -> String {
        format!(
            "SELECT recipient, COUNT(*) FROM outbox WHERE kind = 'ack' AND created_at > $1
             AND recipient IN ({}) GROUP BY recipient",
            placeholders(2, n)
        )
    }
}

/// Runs `sql` with `ids` bound as `$1…$n`.
async fn bound(sql: &str, ids: &[i64], tx: &mut Tx) -> Result<Vec<AnyRow>> {
    let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(&mut **tx).await?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{sql, CHUNK};
    use crate::store::Store;

    /// The plan SQLite chooses for `query`, one line per step.
    pub(crate) async fn plan(store: &Store, query: &str) -> Vec<String> {
        use sqlx::Row;
        sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {query}")))
            .fetch_all(store.pool())
            .await
            .expect("plan")
            .iter()
            .map(|r| r.get::<String, _>(3))
            .collect()
    }

    /// A migrated, empty SQLite database (kept while the directory lives).
    pub(crate) async fn empty_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
        let store = Store::connect(&url, 1).await.expect("store");
        store.migrate().await.expect("migrate");
        (dir, store)
    }

    /// Whether a plan reads a table or index from end to end, or builds an index on the fly.
    pub(crate) fn scans(plan: &[String]) -> bool {
        plan.iter().any(|l| {
            (l.starts_with("SCAN") && !l.starts_with("SCAN CONSTANT"))
                || l.contains("AUTOMATIC")
                || l.contains("messages_direction_message_id (direction=?)")
        })
    }

    #[tokio::test]
    async fn plan_of_every_intake_lookup_uses_an_index_for_a_whole_batch() {
        // SQLite chooses plans without knowing table sizes (no ANALYZE), so an empty database
        // gets the plan a database of a million tickets gets. A full batch is the worst case:
        // with a long IN list the planner once preferred reading every inbound mail.
        let (_dir, store) = empty_store().await;
        for n in [1, 7, CHUNK] {
            for (name, q) in [
                ("message_ids", sql::message_ids(n)),
                ("aliases", sql::aliases(n)),
                ("tickets", sql::tickets(n)),
                ("participants", sql::participants(n)),
                ("timers", sql::timers(n)),
                ("first_messages", sql::first_messages(n)),
                ("last_messages", sql::last_messages(n)),
                ("ack_counts", sql::ack_counts(n)),
            ] {
                let p = plan(&store, &q).await;
                assert!(!scans(&p), "{name} with {n} values: {p:?}");
            }
        }
    }
}
