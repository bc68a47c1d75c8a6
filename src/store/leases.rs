//! Mailbox leases for several daemons on one PostgreSQL (README "High availability"): which
//! daemon fetches which mailbox, with an epoch that fences out a paused old holder, heartbeats
//! for fair shares, and the history ops read in `supportd status`. Times are the daemons'
//! clocks (ms); hosts keep them in step with NTP, and the lease length leaves room for skew.

use super::{Result, Store, StoreError, Tx};
use crate::domain::Millis;
use sqlx::Row;

/// A mailbox lease this daemon holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The mailbox's checkpoint key (`name/folder`).
    pub mailbox: String,
    pub holder: String,
    pub epoch: i64,
}

/// A lease as `supportd status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseRow {
    pub mailbox: String,
    pub holder: String,
    pub epoch: i64,
    pub acquired_at: Millis,
    pub renewed_at: Millis,
    pub expires_at: Millis,
}

/// A daemon as `supportd status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DaemonRow {
    pub holder: String,
    pub host: String,
    pub pid: i64,
    pub started_at: Millis,
    pub heartbeat_at: Millis,
}

impl Store {
    /// Records this daemon alive at `now`; returns how many daemons are alive (a heartbeat
    /// within `ttl_ms`), this one included.
    pub async fn heartbeat(
        &self,
        holder: &str,
        host: &str,
        pid: u32,
        started_at: Millis,
        now: Millis,
        ttl_ms: Millis,
    ) -> Result<i64> {
        sqlx::query(
            "INSERT INTO daemons (holder, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (holder) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(holder)
        .bind(host)
        .bind(i64::from(pid))
        .bind(started_at)
        .bind(now)
        .execute(&self.writer)
        .await?;
        // Daemons silent for a day are forgotten.
        sqlx::query("DELETE FROM daemons WHERE heartbeat_at < $1")
            .bind(now - 86_400_000)
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query("SELECT COUNT(*) FROM daemons WHERE heartbeat_at > $1")
                .bind(now - ttl_ms)
                .fetch_one(&self.pool)
                .await?
                .get(0),
        )
    }

    /// How many leases `holder` holds unexpired at `now`.
    pub async fn leases_held(&self, holder: &str, now: Millis) -> Result<i64> {
        Ok(
            sqlx::query(
                "SELECT COUNT(*) FROM mailbox_leases WHERE holder = $1 AND expires_at > $2",
            )
            .bind(holder)
            .bind(now)
            .fetch_one(&self.pool)
            .await?
            .get(0),
        )
    }

    /// Takes `mailbox` for `holder` until `now + ttl_ms` if nobody holds it: no lease, an
    /// expired one, or one whose holder `is_dead` proves gone. Returns the lease (a new epoch)
    /// or `None` when another daemon holds it. Atomic: of daemons racing, one wins.
    pub async fn try_acquire(
        &self,
        mailbox: &str,
        holder: &str,
        now: Millis,
        ttl_ms: Millis,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<Option<Lease>> {
        let mut tx = self.begin().await?;
        if self.backend == super::Backend::Postgres {
            // A holder frozen in a batch's transaction keeps the lease row locked until
            // PostgreSQL ends that transaction: wait briefly, then look again later.
            sqlx::query("SET LOCAL lock_timeout = 2000")
                .execute(&mut *tx)
                .await?;
        }
        let current =
            sqlx::query("SELECT holder, epoch, expires_at FROM mailbox_leases WHERE mailbox = $1")
                .bind(mailbox)
                .fetch_optional(&mut *tx)
                .await?;
        let (epoch, how) = match current {
            None => {
                let won = sqlx::query(
                    "INSERT INTO mailbox_leases (mailbox, holder, epoch, acquired_at, renewed_at, expires_at)
                     VALUES ($1, $2, 1, $3, $3, $4) ON CONFLICT (mailbox) DO NOTHING",
                )
                .bind(mailbox)
                .bind(holder)
                .bind(now)
                .bind(now + ttl_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !won {
                    return Ok(None);
                }
                (1, None)
            }
            Some(r) => {
                let (old, old_epoch, expires): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
                let how = if expires <= now {
                    "expired"
                } else if is_dead(&old) {
                    "holder dead"
                } else {
                    return Ok(None);
                };
                let won = sqlx::query(
                    "UPDATE mailbox_leases SET holder = $1, epoch = epoch + 1, acquired_at = $2, renewed_at = $2, expires_at = $3
                     WHERE mailbox = $4 AND epoch = $5",
                )
                .bind(holder)
                .bind(now)
                .bind(now + ttl_ms)
                .bind(mailbox)
                .bind(old_epoch)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !won {
                    return Ok(None);
                }
                (old_epoch + 1, Some((old_epoch, how)))
            }
        };
        if let Some((old_epoch, how)) = how {
            end_history(&mut tx, mailbox, old_epoch, now, how).await?;
        }
        sqlx::query(
            "INSERT INTO lease_history (mailbox, epoch, holder, acquired_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (mailbox, epoch) DO NOTHING",
        )
        .bind(mailbox)
        .bind(epoch)
        .bind(holder)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Lease {
            mailbox: mailbox.to_string(),
            holder: holder.to_string(),
            epoch,
        }))
    }

    /// Extends `lease` to `now + ttl_ms`; false when it was lost (another holder, or it had
    /// expired and been taken).
    pub async fn renew(&self, lease: &Lease, now: Millis, ttl_ms: Millis) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE mailbox_leases SET renewed_at = $1, expires_at = $2
             WHERE mailbox = $3 AND holder = $4 AND epoch = $5",
        )
        .bind(now)
        .bind(now + ttl_ms)
        .bind(&lease.mailbox)
        .bind(&lease.holder)
        .bind(lease.epoch)
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1)
    }

    /// The fence, inside a batch's transaction: the batch commits only if `lease` is still this
    /// daemon's and unexpired at `now` (the row stays locked until the commit, so no takeover
    /// can slip in between). [`StoreError::LeaseLost`] otherwise.
    pub async fn fence(&self, tx: &mut Tx, lease: &Lease, now: Millis) -> Result<()> {
        let held = sqlx::query(
            "UPDATE mailbox_leases SET renewed_at = $1
             WHERE mailbox = $2 AND holder = $3 AND epoch = $4 AND expires_at > $1",
        )
        .bind(now)
        .bind(&lease.mailbox)
        .bind(&lease.holder)
        .bind(lease.epoch)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            == 1;
        if held {
            Ok(())
        } else {
            Err(StoreError::LeaseLost(lease.mailbox.clone(), lease.epoch))
        }
    }

    /// Gives `lease` up (at shutdown, or to even out shares): another daemon may take it at
    /// once.
    pub async fn release(&self, lease: &Lease, now: Millis, how: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let released = sqlx::query(
            "UPDATE mailbox_leases SET expires_at = $1 WHERE mailbox = $2 AND holder = $3 AND epoch = $4",
        )
        .bind(now)
        .bind(&lease.mailbox)
        .bind(&lease.holder)
        .bind(lease.epoch)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if released {
            end_history(&mut tx, &lease.mailbox, lease.epoch, now, how).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every lease, by mailbox.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>> {
        Ok(sqlx::query(
            "SELECT mailbox, holder, epoch, acquired_at, renewed_at, expires_at FROM mailbox_leases ORDER BY mailbox",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| LeaseRow {
            mailbox: r.get(0),
            holder: r.get(1),
            epoch: r.get(2),
            acquired_at: r.get(3),
            renewed_at: r.get(4),
            expires_at: r.get(5),
        })
        .collect())
    }

    /// Every daemon seen in the last day, newest heartbeat first.
    pub async fn daemons(&self) -> Result<Vec<DaemonRow>> {
        Ok(sqlx::query(
            "SELECT holder, host, pid, started_at, heartbeat_at FROM daemons ORDER BY heartbeat_at DESC",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| DaemonRow {
            holder: r.get(0),
            host: r.get(1),
            pid: r.get(2),
            started_at: r.get(3),
            heartbeat_at: r.get(4),
        })
        .collect())
    }

    /// A mailbox's holders in order: (epoch, holder, acquired, ended, how).
    #[allow(clippy::type_complexity)]
    pub async fn lease_history(
        &self,
        mailbox: &str,
    ) -> Result<Vec<(i64, String, Millis, Option<Millis>, Option<String>)>> {
        Ok(sqlx::query(
            "SELECT epoch, holder, acquired_at, ended_at, how FROM lease_history WHERE mailbox = $1 ORDER BY epoch",
        )
        .bind(mailbox)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect())
    }
}

/// Records in `lease_history` how and when `mailbox`'s holder of `epoch` ended.
async fn end_history(tx: &mut Tx, mailbox: &str, epoch: i64, now: Millis, how: &str) -> Result<()> {
    sqlx::query(
        "UPDATE lease_history SET ended_at = $1, how = $2 WHERE mailbox = $3 AND epoch = $4 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(how)
    .bind(mailbox)
    .bind(epoch)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
