//! Multi-row INSERTs: through sqlx a statement costs ~50 µs on SQLite (a round trip to its worker
//! thread) whatever it does, while a row of a multi-row INSERT costs ~2.5 µs, so the writer
//! collects rows per table and sends them a few hundred parameters a statement.

use super::{Backend, Result, Tx};
use sqlx::AssertSqlSafe;
use std::borrow::Cow;

/// A value to bind. Blobs (raw mails, up to the maximum mail size) are borrowed from the records
/// being written, never copied before binding: binding copies once more, SQLite once again.
#[derive(Debug, Clone)]
pub(super) enum V<'a> {
    I(Option<i64>),
    S(Option<String>),
    B(Option<Cow<'a, [u8]>>),
}

pub(super) fn s(v: impl Into<String>) -> V<'static> {
    V::S(Some(v.into()))
}
pub(super) fn os(v: Option<&str>) -> V<'static> {
    V::S(v.map(str::to_string))
}
pub(super) fn i(v: i64) -> V<'static> {
    V::I(Some(v))
}
/// A borrowed blob.
pub(super) fn b(v: Option<&[u8]>) -> V<'_> {
    V::B(v.map(Cow::Borrowed))
}

/// Raw mails above this many bytes are stored in chunks of this size (`raw_chunks`).
pub(super) const CHUNK: usize = 1024 * 1024;

/// A raw mail's two columns, `raw` and `raw_blob`: inline when it is small, else empty and the
/// name of its chunks (SHA-256, hex), with the bytes to write as chunks.
pub(super) fn raw_columns(raw: &[u8]) -> (V<'_>, V<'static>, Option<(String, &[u8])>) {
    if raw.len() <= CHUNK {
        return (b(Some(raw)), V::S(None), None);
    }
    use sha2::Digest;
    let name = hex::encode(sha2::Sha256::digest(raw));
    (b(Some(&[])), s(name.clone()), Some((name, raw)))
}

/// Writes `raw` as the chunks named `blob`, one statement a chunk (so no statement binds more
/// than [`CHUNK`] bytes). Chunks that exist already (the same bytes stored before) are kept.
pub(super) async fn write_chunks(tx: &mut Tx, blob: &str, raw: &[u8]) -> Result<()> {
    for (seq, c) in raw.chunks(CHUNK).enumerate() {
        sqlx::query(
            "INSERT INTO raw_chunks (blob, seq, bytes) VALUES ($1, $2, $3) ON CONFLICT (blob, seq) DO NOTHING",
        )
        .bind(blob)
        .bind(seq as i64)
        .bind(c)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A stored raw mail: `inline` itself, or its chunks joined when `blob` names them.
pub(super) async fn read_raw(
    conn: &mut sqlx::AnyConnection,
    inline: Vec<u8>,
    blob: Option<String>,
) -> Result<Vec<u8>> {
    use sqlx::Row;
    let Some(blob) = blob else {
        return Ok(inline);
    };
    let rows = sqlx::query("SELECT bytes FROM raw_chunks WHERE blob = $1 ORDER BY seq")
        .bind(&blob)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len() * CHUNK);
    for r in rows {
        let c: Vec<u8> = r.get(0);
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// Rows for one table.
#[derive(Debug)]
pub(super) struct Rows<'a> {
    head: &'static str,
    cols: usize,
    tail: &'static str,
    values: Vec<V<'a>>,
}

impl<'a> Rows<'a> {
    pub(super) fn new(head: &'static str, cols: usize, tail: &'static str) -> Rows<'a> {
        Rows {
            head,
            cols,
            tail,
            values: Vec::new(),
        }
    }
    pub(super) fn push(&mut self, row: Vec<V<'a>>) {
        debug_assert_eq!(row.len(), self.cols, "{}", self.head);
        self.values.extend(row);
    }

    /// Inserts the rows, a few hundred parameters a statement. SQLite gets anonymous `?`
    /// parameters (bound in order), PostgreSQL numbered `$n`.
    pub(super) async fn write(&self, tx: &mut Tx, backend: Backend) -> Result<()> {
        // Measured on SQLite: with numbered `$n` parameters binding grows faster than their
        // number (460 mails/s at 12,000 a statement); with `?` it does not, and statements of a
        // few thousand parameters are best (6,600 mails/s at 8,000). Both backends' limits
        // (32,766 and 65,535) are far above.
        let per = (8_000 / self.cols).max(1);
        for chunk in self.values.chunks(per * self.cols) {
            let rows = chunk.len() / self.cols;
            let mut sql = String::with_capacity(self.head.len() + rows * self.cols * 5);
            sql.push_str(self.head);
            sql.push_str(" VALUES ");
            let mut n = 0;
            for r in 0..rows {
                if r > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for c in 0..self.cols {
                    if c > 0 {
                        sql.push(',');
                    }
                    n += 1;
                    match backend {
                        Backend::Sqlite => sql.push('?'),
                        Backend::Postgres => {
                            sql.push('$');
                            sql.push_str(&n.to_string());
                        }
                    }
                }
                sql.push(')');
            }
            sql.push(' ');
            sql.push_str(self.tail);
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for v in chunk {
                q = match v {
                    V::I(x) => q.bind(*x),
                    V::S(x) => q.bind(x.as_deref()),
                    V::B(x) => q.bind(x.as_deref()),
                };
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

impl Rows<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Writes the collected rows and forgets them.
    pub(super) async fn flush(&mut self, tx: &mut Tx, backend: Backend) -> Result<()> {
        if !self.values.is_empty() {
            self.write(tx, backend).await?;
            self.values.clear();
        }
        Ok(())
    }
}
