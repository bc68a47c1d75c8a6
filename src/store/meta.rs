//! Facts about this installation, each written once (`supportd_meta`): when something first
//! happened, such as the upgrade that brought agents' addresses.

use super::{Result, Store};
use crate::domain::Millis;
use sqlx::Row;

impl Store {
    /// When `key` first happened: `now` on the first call (recorded), what was recorded on every
    /// later call.
    pub async fn first_seen(&self, key: &str, now: Millis) -> Result<Millis> {
        sqlx::query(
            "INSERT INTO supportd_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(
            sqlx::query("SELECT value FROM supportd_meta WHERE key = $1")
                .bind(key)
                .fetch_one(&self.pool)
                .await?
                .get(0),
        )
    }
}
