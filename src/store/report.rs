//! The monthly report's counts (`supportd report`, the report mailed on the 1st): aggregates
//! over one period, each an indexed range scan of the period's rows (`tickets_created`,
//! `tickets_solved`, `tickets_first_reply`, `tickets_survey_sent`, `surveys_at`,
//! `timers_started`, `timers_breached`), so a month costs what that month holds, however many
//! months are stored. No writes.

use super::{Result, Store};
use crate::domain::report::{AgentRows, MonthRows, BUCKET_MS};
use crate::domain::Millis;
use sqlx::Row;
use std::collections::BTreeMap;

impl Store {
    /// The counts of `[from, to)` as of `now` (promises still running and not yet due are not
    /// counted). Errors: the database's.
    pub async fn month_rows(&self, from: Millis, to: Millis, now: Millis) -> Result<MonthRows> {
        let mut r = MonthRows {
            from,
            to,
            now,
            ..Default::default()
        };
        let q = |sql: &'static str| sqlx::query(sql).bind(from).bind(to);
        r.created = q(
            "SELECT (created_at - $1) / $3, category, COUNT(*) FROM tickets
             WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(BUCKET_MS)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| (from + x.get::<i64, _>(0) * BUCKET_MS, x.get(1), x.get(2)))
        .collect();
        r.complaints = q("SELECT COALESCE(severity, 'general'), COUNT(*) FROM tickets
             WHERE created_at >= $1 AND created_at < $2 AND category = 'complaint'
             GROUP BY 1 ORDER BY 1")
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| (x.get(0), x.get(1)))
        .collect();
        r.solved_of_created = q(
            // The status inside the sum, not in WHERE: there SQLite's planner would take the
            // status index and count every solved ticket ever stored.
            "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'solved' THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM tickets WHERE created_at >= $1 AND created_at < $2",
        )
        .fetch_one(&self.pool)
        .await?
        .get(0);
        let row = q(
            "SELECT COUNT(*), CAST(SUM(CASE WHEN agent_replies <= 1 AND reopens = 0 THEN 1 ELSE 0 END) AS BIGINT)
             FROM tickets WHERE solved_at >= $1 AND solved_at < $2",
        )
        .fetch_one(&self.pool)
        .await?;
        r.solved_in_period = row.get(0);
        r.first_contact = row.get::<Option<i64>, _>(1).unwrap_or(0);
        r.promises = q(
            "SELECT kind, CAST(SUM(CASE WHEN met_at IS NOT NULL AND met_at <= due_at THEN 1 ELSE 0 END) AS BIGINT), COUNT(*)
             FROM timers WHERE started_at >= $1 AND started_at < $2 AND state <> 'cancelled'
                AND (state <> 'running' OR due_at <= $3)
             GROUP BY kind ORDER BY kind",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| (x.get(0), x.get::<Option<i64>, _>(1).unwrap_or(0), x.get(2)))
        .collect();
        r.breaches = q(
            "SELECT x.kind, t.category, t.priority, COUNT(*) FROM timers x JOIN tickets t ON t.id = x.ticket_id
             WHERE x.breached_at >= $1 AND x.breached_at < $2
             GROUP BY x.kind, t.category, t.priority ORDER BY x.kind, t.category, t.priority",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| (x.get(0), x.get(1), x.get(2), x.get(3)))
        .collect();
        r.scores = q(
            "SELECT speed, solving, attitude, overall, COUNT(*) FROM surveys
             WHERE at >= $1 AND at < $2
             GROUP BY speed, solving, attitude, overall ORDER BY speed, solving, attitude, overall",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| ([x.get(0), x.get(1), x.get(2), Some(x.get(3))], x.get(4)))
        .collect();
        r.surveys_sent =
            q("SELECT COUNT(*) FROM tickets WHERE survey_sent_at >= $1 AND survey_sent_at < $2")
                .fetch_one(&self.pool)
                .await?
                .get(0);

        let mut agents: BTreeMap<String, AgentRows> = BTreeMap::new();
        for x in q("SELECT owner, COUNT(*) FROM tickets
                    WHERE created_at >= $1 AND created_at < $2 AND owner IS NOT NULL GROUP BY owner")
        .fetch_all(&self.pool)
        .await?
        {
            agent(&mut agents, x.get(0)).owned = x.get(1);
        }
        for x in q(
            "SELECT owner, COUNT(*), CAST(SUM(CASE WHEN reopens > 0 THEN 1 ELSE 0 END) AS BIGINT) FROM tickets
             WHERE solved_at >= $1 AND solved_at < $2 AND owner IS NOT NULL GROUP BY owner",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let a = agent(&mut agents, x.get(0));
            a.solved = x.get(1);
            a.reopened = x.get::<Option<i64>, _>(2).unwrap_or(0);
        }
        for x in q(
            "SELECT t.owner, COUNT(*), CAST(SUM(CASE WHEN s.overall >= 4 THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(SUM(s.overall) AS BIGINT)
             FROM surveys s JOIN tickets t ON t.id = s.ticket_id
             WHERE s.at >= $1 AND s.at < $2 AND t.owner IS NOT NULL GROUP BY t.owner",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let a = agent(&mut agents, x.get(0));
            a.surveys = x.get(1);
            a.satisfied = x.get::<Option<i64>, _>(2).unwrap_or(0);
            a.overall_sum = x.get::<Option<i64>, _>(3).unwrap_or(0);
        }
        for x in q(
            "SELECT t.owner, COUNT(*) FROM timers x JOIN tickets t ON t.id = x.ticket_id
             WHERE x.kind = 'supervisor_contact' AND x.started_at >= $1 AND x.started_at < $2
                AND t.owner IS NOT NULL
             GROUP BY t.owner",
        )
        .fetch_all(&self.pool)
        .await?
        {
            agent(&mut agents, x.get(0)).unsatisfied = x.get(1);
        }
        r.agents = agents.into_values().collect();
        r.first_replies = q(
            "SELECT COALESCE(owner, ''), (first_reply_at - created_at) / 60000, COUNT(*) FROM tickets
             WHERE first_reply_at >= $1 AND first_reply_at < $2 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|x| (x.get(0), x.get(1), x.get(2)))
        .collect();
        r.corrected = self.correction_rate(from, to).await?.0;
        Ok(r)
    }
}

/// `name`'s counts in `agents`, added when new.
fn agent(agents: &mut BTreeMap<String, AgentRows>, name: String) -> &mut AgentRows {
    agents.entry(name.clone()).or_insert_with(|| AgentRows {
        agent: name,
        ..Default::default()
    })
}
