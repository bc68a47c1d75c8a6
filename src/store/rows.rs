//! Multi-row INSERTs: through sqlx a statement costs ~50 µs on SQLite (a round trip to its worker
//! thread) whatever it does, while a row of a multi-row INSERT costs ~2.5 µs, so the writer
//! collects rows per table and sends them a few hundred parameters a statement.

use super::{Backend, Result, Tx};
use sqlx::AssertSqlSafe;

/// A value to bind.
#[derive(Debug, Clone)]
pub(super) enum V {
    I(Option<i64>),
    S(Option<String>),
    B(Option<Vec<u8>>),
}

pub(super) fn s(v: impl Into<String>) -> V {
    V::S(Some(v.into()))
}
pub(super) fn os(v: Option<&str>) -> V {
    V::S(v.map(str::to_string))
}
pub(super) fn i(v: i64) -> V {
    V::I(Some(v))
}

/// Rows for one table.
#[derive(Debug)]
pub(super) struct Rows {
    head: &'static str,
    cols: usize,
    tail: &'static str,
    values: Vec<V>,
}

impl Rows {
    pub(super) fn new(head: &'static str, cols: usize, tail: &'static str) -> Rows {
        Rows {
            head,
            cols,
            tail,
            values: Vec::new(),
        }
    }
    pub(super) fn push(&mut self, row: Vec<V>) {
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
                    V::S(x) => q.bind(x.clone()),
                    V::B(x) => q.bind(x.clone()),
                };
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

impl Rows {
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
