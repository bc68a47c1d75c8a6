//! The accepted-mail journal (SQLite only): which claimed outbox mails the SMTP server has
//! accepted (its 250 after DATA, RFC 5321 §4.1.1.4) but that are not yet recorded `sent`.
//!
//! Why a file beside the database: on SQLite one writer holds the database at a time, and an
//! intake batch can hold it for a while; recording the acceptance in the database would have to
//! wait for it, and a crash in that wait sends the mail again. Appending a line to this file and
//! syncing it takes well under a millisecond and waits for nobody. (On PostgreSQL the outbox row
//! is updated instead: rows lock one by one there, and every daemon sees it.)
//!
//! Format: one decimal outbox id per line. Invariants: an id is in the file from its acceptance
//! until its `sent` commits; the file is emptied whenever no acceptance is outstanding, so it
//! stays a few lines long; a torn last line (a crash mid-write) is ignored.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub struct AcceptedJournal {
    path: PathBuf,
    state: Mutex<(Option<std::fs::File>, BTreeSet<i64>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AcceptedJournal {
    /// Opens (or creates) the journal at `path` and reads the acceptances a previous process
    /// left outstanding.
    pub fn open(path: &Path) -> std::io::Result<AcceptedJournal> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let ids: BTreeSet<i64> = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AcceptedJournal {
            path: path.to_path_buf(),
            state: Mutex::new((Some(file), ids)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that outbox mail `id` was accepted, synced to disk before returning.
    pub fn record(&self, id: i64) -> std::io::Result<()> {
        let mut st = lock(&self.state);
        let (file, ids) = &mut *st;
        let f = match file {
            Some(f) => f,
            None => file.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            ),
        };
        f.write_all(format!("{id}\n").as_bytes())?;
        f.sync_data()?;
        ids.insert(id);
        Ok(())
    }

    /// Whether outbox mail `id` was accepted and is not yet recorded sent.
    pub fn contains(&self, id: i64) -> bool {
        lock(&self.state).1.contains(&id)
    }

    /// Outbox mail `id` is recorded sent (or given up): it leaves the journal, and the file is
    /// emptied once nothing is outstanding.
    pub fn done(&self, id: i64) {
        let mut st = lock(&self.state);
        let (file, ids) = &mut *st;
        if ids.remove(&id) && ids.is_empty() {
            if let Some(f) = file {
                // Failing to empty it only leaves stale ids, which name rows already sent.
                let _ = f.set_len(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptances_survive_a_restart_and_the_file_empties_when_none_is_outstanding() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.accepted");
        let j = AcceptedJournal::open(&path).expect("open");
        j.record(7).expect("record");
        j.record(9).expect("record");
        drop(j);
        // A torn line from a crash mid-write is ignored.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"1"))
            .expect("torn");
        let j = AcceptedJournal::open(&path).expect("reopen");
        assert!(j.contains(7) && j.contains(9) && !j.contains(1));
        j.done(7);
        assert!(std::fs::metadata(&path).expect("meta").len() > 0);
        j.done(9);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 0);
        j.record(11).expect("record after emptying");
        assert!(j.contains(11));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "11\n");
    }
}
