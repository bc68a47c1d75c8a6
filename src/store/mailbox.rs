//! The IMAP side of the store: each mailbox folder's checkpoint (UIDVALIDITY and the last UID
//! stored), the mail stored but not yet flagged or moved on the server, and the queue of work on
//! the shared mailbox (`imap_jobs`: cards appended, cards moved, Sent copies) with its leases.

use super::{Backend, Result, Store, Tx};
use crate::domain::{Folder, Millis, TicketRef};
use sqlx::{AssertSqlSafe, Row};

/// Where an inbound mail came from on the IMAP server.
#[derive(Debug, Clone)]
pub struct ImapLocation {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// A claimed IMAP job.
#[derive(Debug, Clone)]
pub struct ImapJobRow {
    pub id: i64,
    pub ticket: TicketRef,
    /// `append` or `move`.
    pub kind: String,
    pub folder: Folder,
    pub message_id: Option<String>,
    pub raw: Option<Vec<u8>>,
    pub attempts: i64,
}

impl Store {
    pub async fn checkpoint(&self, mailbox: &str) -> Result<Option<(u32, u32)>> {
        let row =
            sqlx::query("SELECT uidvalidity, last_uid FROM imap_checkpoints WHERE mailbox = $1")
                .bind(mailbox)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| (r.get::<i64, _>(0) as u32, r.get::<i64, _>(1) as u32)))
    }

    /// UIDs stored but not yet flagged/moved on the server (a crash between commit and the IMAP
    /// action leaves some).
    pub async fn pending_imap_actions(&self, mailbox: &str, uidvalidity: u32) -> Result<Vec<u32>> {
        let rows = sqlx::query(
            "SELECT uid FROM messages WHERE imap_done = 0 AND mailbox = $1 AND uidvalidity = $2 ORDER BY uid",
        )
        .bind(mailbox)
        .bind(uidvalidity as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0) as u32).collect())
    }

    pub async fn mark_imap_done(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let (lo, hi) = (
            uids.iter().min().copied().unwrap_or(0),
            uids.iter().max().copied().unwrap_or(0),
        );
        sqlx::query(
            "UPDATE messages SET imap_done = 1 WHERE imap_done = 0 AND mailbox = $1 AND uidvalidity = $2 AND uid BETWEEN $3 AND $4",
        )
        .bind(mailbox)
        .bind(uidvalidity as i64)
        .bind(lo as i64)
        .bind(hi as i64)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The oldest pending IMAP jobs, in order, claimed with a lease (another daemon skips them).
    pub async fn claim_imap_jobs(
        &self,
        now: Millis,
        lease_ms: Millis,
        limit: u32,
        holder: &str,
    ) -> Result<Vec<ImapJobRow>> {
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE imap_jobs SET status = 'working', locked_until = $1, locked_by = $4
             WHERE id IN (SELECT id FROM imap_jobs
                          WHERE (status = 'pending' AND next_attempt_at <= $2)
                             OR (status = 'working' AND locked_until <= $2)
                          ORDER BY id LIMIT $3 {lock})
             RETURNING id, ticket_id, kind, folder, message_id, raw, attempts, raw_blob"
        );
        let mut tx = self.begin().await?;
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit as i64)
            .bind(holder)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut conn = self.pool.acquire().await?;
        let mut out: Vec<ImapJobRow> = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(folder) = Folder::parse(&r.get::<String, _>(3)) else {
                continue;
            };
            let raw = match (
                r.get::<Option<Vec<u8>>, _>(5),
                r.get::<Option<String>, _>(7),
            ) {
                (Some(inline), blob) => Some(super::rows::read_raw(&mut conn, inline, blob).await?),
                (None, _) => None,
            };
            out.push(ImapJobRow {
                id: r.get(0),
                ticket: TicketRef(r.get(1)),
                kind: r.get(2),
                folder,
                message_id: r.get(4),
                raw,
                attempts: r.get(6),
            });
        }
        out.sort_by_key(|j| j.id);
        Ok(out)
    }

    pub async fn imap_job_done(&self, id: i64, now: Millis) -> Result<()> {
        let mut tx = self.begin().await?;
        let blob: Option<String> = sqlx::query("SELECT raw_blob FROM imap_jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .and_then(|r| r.get(0));
        sqlx::query(
            "UPDATE imap_jobs SET status = 'done', done_at = $1, raw = NULL, raw_blob = NULL, locked_until = NULL
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(blob) = blob {
            // The chunks go with the last row that names them.
            sqlx::query(
                "DELETE FROM raw_chunks WHERE blob = $1
                   AND NOT EXISTS (SELECT 1 FROM imap_jobs WHERE raw_blob = $1)
                   AND NOT EXISTS (SELECT 1 FROM messages WHERE raw_blob = $1)",
            )
            .bind(&blob)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A job failed: retry at `next`, or give it up (`next` = None), inside `tx` (the caller
    /// records a given-up job on its ticket in the same transaction).
    pub async fn imap_job_failed(
        &self,
        tx: &mut Tx,
        job: &ImapJobRow,
        error: &str,
        next: Option<Millis>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE imap_jobs SET status = $1, attempts = attempts + 1, next_attempt_at = COALESCE($2, next_attempt_at),
                last_error = $3, locked_until = NULL WHERE id = $4",
        )
        .bind(if next.is_some() { "pending" } else { "failed" })
        .bind(next)
        .bind(error)
        .bind(job.id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Who holds leases on work now (outbox mail being sent, shared-mailbox jobs being done).
    pub async fn lease_holders(&self) -> Result<Vec<String>> {
        Ok(sqlx::query(
            "SELECT DISTINCT locked_by FROM outbox WHERE status = 'sending' AND locked_by IS NOT NULL
             UNION SELECT DISTINCT locked_by FROM imap_jobs WHERE status = 'working' AND locked_by IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// Gives the work `holder` had leased back to the queue, due now. Returns how many rows.
    pub async fn release_leases(&self, holder: &str, now: Millis) -> Result<u64> {
        let mut tx = self.begin().await?;
        let a = sqlx::query(
            "UPDATE outbox SET status = 'pending', locked_until = NULL, locked_by = NULL,
                next_attempt_at = CASE WHEN next_attempt_at > $2 THEN $2 ELSE next_attempt_at END
             WHERE status = 'sending' AND locked_by = $1",
        )
        .bind(holder)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let b = sqlx::query(
            "UPDATE imap_jobs SET status = 'pending', locked_until = NULL, locked_by = NULL
             WHERE status = 'working' AND locked_by = $1",
        )
        .bind(holder)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(a + b)
    }

    /// When the next pending job is due (a retry's wait), if any.
    pub async fn next_imap_job_at(&self) -> Result<Option<Millis>> {
        Ok(sqlx::query(
            "SELECT MIN(t) FROM (
                SELECT MIN(next_attempt_at) AS t FROM imap_jobs WHERE status = 'pending'
                UNION ALL SELECT MIN(locked_until) AS t FROM imap_jobs WHERE status = 'working') AS due",
        )
        .fetch_one(&self.pool)
        .await?
        .get::<Option<i64>, _>(0))
    }

    /// Releases claimed jobs not worked on (an earlier one failed: order is kept).
    pub async fn release_imap_jobs(&self, ids: &[i64]) -> Result<()> {
        for id in ids {
            sqlx::query("UPDATE imap_jobs SET status = 'pending', locked_until = NULL WHERE id = $1 AND status = 'working'")
                .bind(id)
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }
}
