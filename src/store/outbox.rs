//! The outbox as the sending worker sees it: claiming due mail with a lease, and recording what
//! became of each attempt. What sending changes on a ticket is decided by the caller and committed
//! through the writer.

use super::{Backend, Result, Store, Tx};
use crate::domain::{MailKind, Millis};
use sqlx::Row;

/// A queued mail claimed for sending.
#[derive(Debug, Clone)]
pub struct ClaimedMail {
    pub id: i64,
    /// `None`: mail about no ticket (the monthly report).
    pub ticket_id: Option<i64>,
    /// `ack`, `survey`, `notice`, …
    pub kind: MailKind,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub envelope_from: String,
    /// The `messages` row holding the finished mail.
    pub message_row: i64,
    /// The SMTP server accepted it already (a daemon died before recording it sent): record
    /// it, do not send it again.
    pub accepted: bool,
    /// The finished mail: empty until [`Store::load_raw`] (a claimed batch does not hold every
    /// mail's bytes at once; the worker loads each just before sending it).
    pub raw: Vec<u8>,
    pub attempts: i64,
    pub created_at: Millis,
    pub give_up_at: Millis,
}

/// The outbox for `/readyz` and `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct OutboxState {
    pub depth: i64,
    pub oldest_ms: Option<Millis>,
    pub oldest_due_ms: Option<Millis>,
}

impl Store {
    /// The outbox as ops see it: how many mails wait, how old the oldest is, and how long the
    /// longest-due one has been due without being sent (a working outbox keeps that near 0).
    pub async fn outbox_state(&self, now: Millis) -> Result<OutboxState> {
        let r = sqlx::query(
            "SELECT COUNT(*), MIN(created_at),
                    MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE locked_until END)
             FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = r.get(1);
        let due: Option<i64> = r.get(2);
        Ok(OutboxState {
            depth: r.get(0),
            oldest_ms: oldest.map(|t| (now - t).max(0)),
            oldest_due_ms: due.map(|t| (now - t).max(0)),
        })
    }

    /// Claims up to `limit` due mails for sending, with a lease: a daemon that dies mid-send
    /// leaves the lease to expire and the mail is claimed again.
    pub async fn claim_due(
        &self,
        now: Millis,
        lease_ms: Millis,
        limit: u32,
        holder: &str,
    ) -> Result<Vec<ClaimedMail>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "UPDATE outbox SET status = 'sending', locked_until = $1, locked_by = $4
                 WHERE id IN (SELECT id FROM outbox
                              WHERE (status = 'pending' AND next_attempt_at <= $2)
                                 OR (status = 'sending' AND locked_until <= $2)
                              ORDER BY next_attempt_at LIMIT $3)
                 RETURNING id, ticket_id, message_id, recipients, envelope_from, message_row, attempts, created_at, give_up_at, kind, accepted_at"
            }
            Backend::Postgres => {
                "UPDATE outbox SET status = 'sending', locked_until = $1, locked_by = $4
                 WHERE id IN (SELECT id FROM outbox
                              WHERE (status = 'pending' AND next_attempt_at <= $2)
                                 OR (status = 'sending' AND locked_until <= $2)
                              ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id, ticket_id, message_id, recipients, envelope_from, message_row, attempts, created_at, give_up_at, kind, accepted_at"
            }
        };
        let mut tx = self.begin().await?;
        let rows = sqlx::query(sql)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit as i64)
            .bind(holder)
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(ClaimedMail {
                id: r.get(0),
                ticket_id: r.get(1),
                message_id: r.get(2),
                recipients: r
                    .get::<String, _>(3)
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                envelope_from: r.get(4),
                accepted: r.get::<Option<i64>, _>(10).is_some()
                    || self.accepted.as_ref().is_some_and(|j| j.contains(r.get(0))),
                message_row: r.get(5),
                raw: Vec::new(),
                attempts: r.get(6),
                created_at: r.get(7),
                give_up_at: r.get(8),
                // A kind this version does not know (written by a newer one) changes nothing
                // on its ticket when sent, as a notice does not.
                kind: MailKind::parse(&r.get::<String, _>(9)).unwrap_or(MailKind::Notice),
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Loads a claimed mail's bytes (RFC 5322, exactly as committed).
    pub async fn load_raw(&self, mail: &mut ClaimedMail) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let r = sqlx::query("SELECT raw, raw_blob FROM messages WHERE id = $1")
            .bind(mail.message_row)
            .fetch_one(&mut *conn)
            .await?;
        mail.raw = super::rows::read_raw(&mut conn, r.get(0), r.get(1)).await?;
        Ok(())
    }

    /// When the next pending mail is due, if any.
    pub async fn next_due(&self) -> Result<Option<Millis>> {
        let row = sqlx::query(
            "SELECT MIN(t) FROM (
                SELECT MIN(next_attempt_at) AS t FROM outbox WHERE status = 'pending'
                UNION ALL SELECT MIN(locked_until) AS t FROM outbox WHERE status = 'sending') AS due",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<Option<i64>, _>(0))
    }

    /// Records a claimed mail as sent, inside `tx` (the caller commits what sending changed on
    /// the ticket in the same transaction). False when the claim was lost meanwhile.
    pub async fn mark_sent(&self, tx: &mut Tx, m: &ClaimedMail, now: Millis) -> Result<bool> {
        Ok(sqlx::query("UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, locked_until = NULL WHERE id = $2 AND status = 'sending'")
            .bind(now)
            .bind(m.id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1)
    }

    /// Records at once, in a transaction of its own, that the SMTP server accepted `m`: the
    /// first thing done after the server's 250, so that a crash before [`Store::mark_sent`]
    /// commits does not send it again (only a crash between the 250 and this one-row commit
    /// does).
    ///
    /// SQLite: a line in the accepted-mail journal (see [`super::accepted`]), which waits for
    /// no database lock. PostgreSQL: the row's `accepted_at`.
    pub async fn mark_accepted(&self, m: &ClaimedMail, now: Millis) -> Result<()> {
        if let Some(j) = &self.accepted {
            let j = j.clone();
            let id = m.id;
            return tokio::task::spawn_blocking(move || j.record(id))
                .await
                .map_err(|e| super::StoreError::Io(std::io::Error::other(e.to_string())))?
                .map_err(super::StoreError::Io);
        }
        sqlx::query("UPDATE outbox SET accepted_at = $1 WHERE id = $2 AND status = 'sending'")
            .bind(now)
            .bind(m.id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// `m` is recorded sent (committed): it leaves the accepted-mail journal.
    pub fn sent_recorded(&self, m: &ClaimedMail) {
        if let Some(j) = &self.accepted {
            j.done(m.id);
        }
    }

    pub async fn mark_retry(&self, m: &ClaimedMail, error: &str, next: Millis) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = $1, last_error = $2, locked_until = NULL WHERE id = $3 AND status = 'sending'",
        )
        .bind(next)
        .bind(error)
        .bind(m.id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Gives back claimed mail this daemon never began to send (a database error stopped its
    /// lane, or half the claim had passed): due again at `next`, for any daemon, instead of when
    /// the 5-minute claim runs out. Only rows still claimed by `holder` and not accepted by the
    /// SMTP server are touched; returns how many were given back.
    pub async fn release_unsent(&self, ids: &[i64], holder: &str, next: Millis) -> Result<u64> {
        let mut n = 0;
        for id in ids {
            n += sqlx::query(
                "UPDATE outbox SET status = 'pending', next_attempt_at = $1, locked_until = NULL
                 WHERE id = $2 AND status = 'sending' AND locked_by = $3 AND accepted_at IS NULL",
            )
            .bind(next)
            .bind(id)
            .bind(holder)
            .execute(&self.writer)
            .await?
            .rows_affected();
        }
        Ok(n)
    }

    /// Gives up a claimed mail, inside `tx` (the caller records why on the ticket).
    pub async fn mark_failed(&self, tx: &mut Tx, m: &ClaimedMail, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1, locked_until = NULL WHERE id = $2 AND status = 'sending'",
        )
        .bind(error)
        .bind(m.id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claimed mail given back unsent is due again for anyone; mail claimed by another daemon,
    /// or already taken by the SMTP server, is left alone.
    #[tokio::test]
    async fn only_this_daemon_s_unsent_claims_are_given_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("o.db").display());
        let store = Store::connect(&url, 1).await.expect("store");
        store.migrate().await.expect("migrate");
        // Bare outbox rows (no tickets or messages behind them) on the one writer connection.
        sqlx::raw_sql("PRAGMA foreign_keys = OFF")
            .execute(&store.writer)
            .await
            .expect("pragma");
        for (id, by, accepted) in [
            (1, "me", None),
            (2, "me", None),
            (3, "other", None),
            (4, "me", Some(50)),
        ] {
            sqlx::query(
                "INSERT INTO outbox (id, ticket_id, message_row, kind, message_id, recipient, recipients,
                    envelope_from, status, attempts, created_at, next_attempt_at, give_up_at,
                    locked_until, locked_by, accepted_at)
                 VALUES ($1, 1, 1, 'ack', $2, 'c@example.com', 'c@example.com', 's@example.test',
                    'sending', 0, 10, 10, 1000000, 300010, $3, $4)",
            )
            .bind(id)
            .bind(format!("m{id}@example.test"))
            .bind(by)
            .bind(accepted)
            .execute(&store.writer)
            .await
            .expect("insert");
        }
        let n = store
            .release_unsent(&[1, 2, 3, 4], "me", 100)
            .await
            .expect("release");
        assert_eq!(n, 2);
        let rows: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT id, status, next_attempt_at FROM outbox ORDER BY id")
                .fetch_all(&store.writer)
                .await
                .expect("rows");
        assert_eq!(
            rows,
            [
                (1, "pending".into(), 100),
                (2, "pending".into(), 100),
                (3, "sending".into(), 10),
                (4, "sending".into(), 10)
            ]
        );
        // Due again at once for any daemon, long before the claims would have run out.
        let again = store
            .claim_due(100, 300_000, 10, "another")
            .await
            .expect("claim");
        let mut ids: Vec<i64> = again.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2]);
    }
}
