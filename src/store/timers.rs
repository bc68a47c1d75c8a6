//! The service promises' timers as the timer worker sees them: what is due, locking one for
//! firing, and when the next falls due (one indexed query, no scans).

use super::{Backend, Result, Store, Tx};
use crate::domain::{Millis, TicketRef, TimerKind};
use sqlx::Row;

impl Store {
    /// Running timers due at `now`, soonest first (the partial index on `next_at`: no scans).
    pub async fn due_timers(&self, now: Millis, limit: u32) -> Result<Vec<i64>> {
        Ok(sqlx::query(
            "SELECT id FROM timers WHERE state = 'running' AND next_at <= $1 ORDER BY next_at LIMIT $2",
        )
        .bind(now)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    /// Timer `id` with its ticket, if it is still running and due, locked for firing inside `tx`
    /// (PostgreSQL: a timer another daemon is firing is skipped, not waited for).
    pub async fn timer_for_firing(
        &self,
        tx: &mut Tx,
        id: i64,
        now: Millis,
    ) -> Result<Option<(crate::ticket::sla::Timer, TicketRef)>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT id, ticket_id, kind, started_at, span_ms, due_at, next_at, warnings_fired
                 FROM timers WHERE id = $1 AND state = 'running' AND next_at <= $2"
            }
            Backend::Postgres => {
                "SELECT id, ticket_id, kind, started_at, span_ms, due_at, next_at, warnings_fired
                 FROM timers WHERE id = $1 AND state = 'running' AND next_at <= $2 FOR UPDATE SKIP LOCKED"
            }
        };
        let Some(r) = sqlx::query(sql)
            .bind(id)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(None);
        };
        let Some(kind) = TimerKind::parse(&r.get::<String, _>(2)) else {
            return Ok(None);
        };
        Ok(Some((
            crate::ticket::sla::Timer {
                id: r.get(0),
                kind,
                started_at: r.get(3),
                span_ms: r.get(4),
                due_at: r.get(5),
                next_at: r.get(6),
                warnings_fired: r.get::<i64, _>(7).clamp(0, u32::MAX as i64) as u32,
            },
            TicketRef(r.get(1)),
        )))
    }

    pub async fn cancel_timer(&self, tx: &mut Tx, id: i64) -> Result<()> {
        sqlx::query("UPDATE timers SET state = 'cancelled' WHERE id = $1 AND state = 'running'")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// When the next running timer falls due.
    /// The earliest due time of a running promise (what ops call "the next promise due"; the
    /// timer worker wakes at [`Store::next_timer_at`], which counts warnings too).
    pub async fn next_promise_due(&self) -> Result<Option<Millis>> {
        Ok(
            sqlx::query("SELECT MIN(due_at) FROM timers WHERE state = 'running'")
                .fetch_one(&self.pool)
                .await?
                .get::<Option<i64>, _>(0),
        )
    }

    pub async fn next_timer_at(&self) -> Result<Option<Millis>> {
        Ok(
            sqlx::query("SELECT MIN(next_at) FROM timers WHERE state = 'running'")
                .fetch_one(&self.pool)
                .await?
                .get::<Option<i64>, _>(0),
        )
    }
}
