//! Stage `fetch`: the IMAP edge. Connects (plain, STARTTLS or implicit TLS via rustls), logs in,
//! lists UIDs above the checkpoint, fetches them in batches, marks them done after commit, and
//! waits for new mail with IDLE (or a poll when the server lacks IDLE).
//!
//! Invariants: only UIDs above the checkpoint are ever fetched (`UID SEARCH UID n:*`, then
//! `UID FETCH` in batches): no mailbox re-scans; bodies are fetched with `BODY.PEEK[]`, so nothing
//! is marked read before the database has committed it; every wait can be interrupted by shutdown.

use crate::config::{AfterProcessing, MailboxSettings, TlsMode};
use async_imap::types::UnsolicitedResponse;
use futures::TryStreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Any byte stream IMAP can run over (TCP or TLS).
pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> ImapStream for T {}

type Session = async_imap::Session<Box<dyn ImapStream>>;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot connect to IMAP server {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with IMAP server {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("IMAP login as {user} at {host} failed: {reason}")]
    Login {
        user: String,
        host: String,
        reason: String,
    },
    #[error("IMAP server has no folder {folder:?} or refused to open it: {reason}")]
    Select { folder: String, reason: String },
    #[error("IMAP server did not report UIDVALIDITY for {folder:?}")]
    NoUidValidity { folder: String },
    #[error("IMAP timed out after {0:?}")]
    Timeout(Duration),
    #[error("IMAP error: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("{0}")]
    OAuth(#[from] crate::oauth::OAuthError),
}

pub type Result<T> = std::result::Result<T, FetchError>;

/// An open, logged-in IMAP session on one mailbox account.
pub struct ImapConn {
    session: Session,
    pub idle_supported: bool,
    pub move_supported: bool,
}

impl std::fmt::Debug for ImapConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapConn")
            .field("idle", &self.idle_supported)
            .field("move", &self.move_supported)
            .finish()
    }
}

/// The selected folder's identity.
#[derive(Debug, Clone, Copy)]
pub struct Selected {
    pub uidvalidity: u32,
    pub uid_next: Option<u32>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(60);

async fn timed<T, E: Into<FetchError>>(
    fut: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(IO_TIMEOUT, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(FetchError::Timeout(IO_TIMEOUT)),
    }
}

pub(crate) fn tls_connector() -> std::result::Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_native_certs::load_native_certs();
    for cert in certs.certs {
        // A single unparseable system certificate should not stop the daemon.
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn wrap_tls(host: &str, tcp: TcpStream) -> Result<Box<dyn ImapStream>> {
    let tls_err = |reason: String| FetchError::Tls {
        host: host.to_string(),
        reason,
    };
    let connector = tls_connector().map_err(tls_err)?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| tls_err(e.to_string()))?;
    let stream = timed(async {
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| tls_err(e.to_string()))
    })
    .await?;
    Ok(Box::new(stream))
}

/// Connects and logs in. Never logs the password or token.
///
/// With OAuth the access token is had first: a grant that is revoked or not yet authorised
/// fails here without a connection to the server.
pub async fn connect(s: &MailboxSettings) -> Result<ImapConn> {
    let first_token = match &s.token {
        Some(src) => Some(src.access_token().await?),
        None => None,
    };
    let tcp = timed(async {
        TcpStream::connect((s.host.as_str(), s.port))
            .await
            .map_err(|source| FetchError::Connect {
                host: s.host.clone(),
                port: s.port,
                source,
            })
    })
    .await?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn ImapStream> = match s.tls {
        TlsMode::Tls => wrap_tls(&s.host, tcp).await?,
        TlsMode::None => Box::new(tcp),
        TlsMode::Starttls => {
            let mut client = async_imap::Client::new(tcp);
            timed(async {
                client
                    .read_response()
                    .await
                    .map_err(async_imap::error::Error::from)
            })
            .await?;
            timed(client.run_command_and_check_ok("STARTTLS", None)).await?;
            wrap_tls(&s.host, client.into_inner()).await?
        }
    };
    let mut client = async_imap::Client::new(stream);
    if s.tls != TlsMode::Starttls {
        // Greeting. (After STARTTLS there is none.)
        timed(async {
            client
                .read_response()
                .await
                .map_err(async_imap::error::Error::from)
        })
        .await?;
    }
    let mut session = match &s.token {
        None => match timed(async {
            Ok::<_, FetchError>(client.login(&s.user, s.password.expose()).await)
        })
        .await?
        {
            Ok(session) => session,
            Err((e, _)) => {
                return Err(FetchError::Login {
                    user: s.user.clone(),
                    host: s.host.clone(),
                    reason: e.to_string(),
                })
            }
        },
        Some(src) => bearer_login(client, s, src, first_token).await?,
    };
    let caps = timed(session.capabilities()).await?;
    Ok(ImapConn {
        idle_supported: caps.has_str("IDLE"),
        move_supported: caps.has_str("MOVE"),
        session,
    })
}

/// `AUTHENTICATE XOAUTH2|OAUTHBEARER` with the grant's access token; when the server refuses
/// it, the token is refreshed and tried once more on the same connection.
async fn bearer_login(
    client: async_imap::Client<Box<dyn ImapStream>>,
    s: &MailboxSettings,
    src: &crate::oauth::TokenSource,
    first_token: Option<crate::config::Secret>,
) -> Result<Session> {
    let method = s.auth.unwrap_or(crate::oauth::AuthMethod::Xoauth2);
    let mut client = client;
    let mut retried = false;
    let mut first_token = first_token;
    loop {
        let token = match first_token.take() {
            Some(t) => t,
            None => src.access_token().await?,
        };
        let auth = crate::oauth::sasl::BearerAuthenticator::new(method, &s.user, token.expose());
        let said = auth.error.clone();
        let attempt = timed(async {
            Ok::<_, FetchError>(client.authenticate(method.mechanism(), auth).await)
        })
        .await?;
        match attempt {
            Ok(session) => return Ok(session),
            Err((e, back)) => {
                if !retried && src.rejected(&token).await {
                    retried = true;
                    client = back;
                    continue;
                }
                let server = said.lock().ok().and_then(|g| g.clone());
                return Err(FetchError::Login {
                    user: s.user.clone(),
                    host: s.host.clone(),
                    reason: match server {
                        Some(json) => format!("{e} ({} refused: {json})", method.mechanism()),
                        None => format!("{e} ({})", method.mechanism()),
                    },
                });
            }
        }
    }
}

impl ImapConn {
    pub async fn select(&mut self, folder: &str) -> Result<Selected> {
        let mb = timed(async {
            self.session
                .select(folder)
                .await
                .map_err(|e| FetchError::Select {
                    folder: folder.to_string(),
                    reason: e.to_string(),
                })
        })
        .await?;
        Ok(Selected {
            uidvalidity: mb.uid_validity.ok_or_else(|| FetchError::NoUidValidity {
                folder: folder.to_string(),
            })?,
            uid_next: mb.uid_next,
        })
    }

    /// UIDs greater than `after`, ascending. (`n:*` matches the last message even when its UID
    /// is below n, so the result is filtered.)
    pub async fn new_uids(&mut self, after: u32) -> Result<Vec<u32>> {
        let found = timed(
            self.session
                .uid_search(format!("UID {}:*", after.saturating_add(1))),
        )
        .await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > after).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The sizes (RFC822.SIZE, bytes) of `uids` (one command), ascending by UID; a UID the server
    /// does not report (expunged meanwhile) is left out.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u64)>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let mut out: Vec<(u32, u64)> = timed(async {
            let stream = self.session.uid_fetch(&set, "(UID RFC822.SIZE)").await?;
            stream
                .try_filter_map(
                    |f| async move { Ok(f.uid.map(|u| (u, f.size.map_or(0, u64::from)))) },
                )
                .try_collect()
                .await
        })
        .await?;
        out.sort_unstable_by_key(|(u, _)| *u);
        out.dedup_by_key(|(u, _)| *u);
        Ok(out)
    }

    /// Fetches the raw bytes of `uids` (one command), ascending by UID. Each mail is copied out
    /// of the response as it arrives and the response dropped, so a batch costs its mails'
    /// bytes once plus one response in flight.
    ///
    /// Only responses that carry the body count (a server may interleave flag updates for the
    /// same UIDs). A UID asked for that comes back without a body is asked for once more on its
    /// own; one that still does not has been expunged by another client meanwhile, and is
    /// logged (WARN, with its UID).
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut out = self.fetch_bodies(uids).await?;
        let missing: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| out.binary_search_by_key(u, |(x, _)| *x).is_err())
            .collect();
        if !missing.is_empty() {
            for uid in missing {
                let again = self.fetch_bodies(&[uid]).await?;
                if again.is_empty() {
                    tracing::warn!(
                        imap.uid = uid,
                        "mail vanished before it could be read (expunged by another client?)"
                    );
                }
                out.extend(again);
            }
            out.sort_unstable_by_key(|(u, _)| *u);
        }
        Ok(out)
    }

    async fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let mut out: Vec<(u32, Vec<u8>)> = timed(async {
            let stream = self.session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
            stream
                .try_filter_map(|f| async move {
                    Ok(match (f.uid, f.body()) {
                        (Some(u), Some(body)) => Some((u, body.to_vec())),
                        _ => None,
                    })
                })
                .try_collect()
                .await
        })
        .await?;
        out.sort_unstable_by_key(|(u, _)| *u);
        out.dedup_by_key(|(u, _)| *u);
        out.retain(|(u, _)| uids.contains(u));
        Ok(out)
    }

    /// Applies the after-processing action (\Seen, or MOVE) to committed UIDs.
    pub async fn mark_done(
        &mut self,
        uids: &[u32],
        after: AfterProcessing,
        move_to: Option<&str>,
    ) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        match (after, move_to) {
            (AfterProcessing::Move, Some(folder)) => {
                if self.move_supported {
                    timed(self.session.uid_mv(&set, folder)).await?;
                } else {
                    timed(self.session.uid_copy(&set, folder)).await?;
                    self.flag_and_expunge(&set, "\\Seen \\Deleted").await?;
                }
            }
            _ => {
                timed(async {
                    let s = self
                        .session
                        .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                        .await?;
                    let _: Vec<_> = s.try_collect().await?;
                    Ok::<_, async_imap::error::Error>(())
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Appends `raw` to `folder` unless a message with this Message-ID is already there (so a
    /// retried append never makes a second copy). Returns whether it appended.
    pub async fn append_once(
        &mut self,
        folder: &str,
        message_id: &str,
        raw: &[u8],
    ) -> Result<bool> {
        let query = format!("HEADER Message-ID {}", quoted(&format!("<{message_id}>")));
        let found = timed(async {
            self.session.examine(folder).await?;
            self.session.uid_search(&query).await
        })
        .await?;
        if !found.is_empty() {
            return Ok(false);
        }
        timed(self.session.append(folder, None, None, raw)).await?;
        Ok(true)
    }

    /// Moves every message carrying `X-Supportd-Ticket: ticket` from the `from` folders into
    /// `to`. Returns how many moved.
    pub async fn move_cards(&mut self, ticket: &str, from: &[&str], to: &str) -> Result<usize> {
        let query = format!("HEADER X-Supportd-Ticket {}", quoted(ticket));
        let mut moved = 0;
        for folder in from.iter().filter(|f| **f != to) {
            let uids: Vec<u32> = timed(async {
                self.session.select(folder).await?;
                self.session.uid_search(&query).await
            })
            .await?
            .into_iter()
            .collect();
            if uids.is_empty() {
                continue;
            }
            moved += uids.len();
            self.mark_done(&uids, AfterProcessing::Move, Some(to))
                .await?;
        }
        Ok(moved)
    }

    /// Deletes every message matching the IMAP SEARCH `query` in each of `folders` (flag
    /// `\Deleted`, then UID EXPUNGE of just those). Returns how many. A folder that does not
    /// exist is skipped.
    pub async fn expunge_matching(&mut self, folders: &[&str], query: &str) -> Result<usize> {
        let mut gone = 0;
        for folder in folders {
            let uids: Vec<u32> = match timed(async {
                self.session.select(folder).await?;
                self.session.uid_search(query).await
            })
            .await
            {
                Ok(u) => u.into_iter().collect(),
                Err(FetchError::Imap(_)) => continue,
                Err(e) => return Err(e),
            };
            if uids.is_empty() {
                continue;
            }
            self.flag_and_expunge(&uid_set(&uids), "\\Deleted").await?;
            gone += uids.len();
        }
        Ok(gone)
    }

    /// Adds `flags` (which include `\Deleted`) to the messages of the UID `set` in the selected
    /// folder, then expunges just those (RFC 4315 UID EXPUNGE).
    async fn flag_and_expunge(&mut self, set: &str, flags: &str) -> Result<()> {
        timed(async {
            let s = self
                .session
                .uid_store(set, format!("+FLAGS.SILENT ({flags})"))
                .await?;
            let _: Vec<_> = s.try_collect().await?;
            let e = self.session.uid_expunge(set).await?;
            let _: Vec<_> = e.try_collect().await?;
            Ok::<_, async_imap::error::Error>(())
        })
        .await
    }

    /// Creates a folder if it does not exist (used for the move target).
    pub async fn ensure_folder(&mut self, folder: &str) -> Result<()> {
        // CREATE fails when it exists; that is fine.
        let _ = timed(self.session.create(folder)).await;
        Ok(())
    }

    /// Whether the server announced new mail (EXISTS/RECENT) since the last look: it says so
    /// between commands, e.g. while a batch is fetched or moved. Drains what it told.
    fn changes_announced(rx: &async_channel::Receiver<UnsolicitedResponse>) -> bool {
        let mut changed = false;
        while let Ok(r) = rx.try_recv() {
            changed |= matches!(
                r,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            );
        }
        changed
    }

    /// Waits until the server reports a change, `max_wait` passes, or shutdown. With IDLE the
    /// wait ends ~0.5 s after delivery; without it this is the poll interval.
    ///
    /// Nothing the server says is lost: new mail it announced between commands (while a batch
    /// was fetched or moved, or as IDLE started) ends the wait at once; and `max_wait` is a hard
    /// deadline that server keepalives (`* OK Still here`) cannot extend.
    pub async fn wait_for_change(
        mut self,
        max_wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<ImapConn>> {
        let announced = self.session.unsolicited_responses.clone();
        if Self::changes_announced(&announced) {
            return Ok(Some(self));
        }
        if !self.idle_supported {
            tokio::select! {
                _ = tokio::time::sleep(max_wait) => {}
                _ = cancel.cancelled() => return Ok(None),
            }
            timed(self.session.noop()).await?;
            return Ok(Some(self));
        }
        let (idle_supported, move_supported) = (self.idle_supported, self.move_supported);
        let mut handle = self.session.idle();
        timed(handle.init()).await?;
        // Mail announced as IDLE started (before the server's "+ idling").
        let stopped = if Self::changes_announced(&announced) {
            false
        } else {
            let (wait, stop) = handle.wait_with_timeout(max_wait);
            let stopped = tokio::select! {
                r = wait => { r?; false }
                _ = tokio::time::sleep(max_wait) => false,
                _ = cancel.cancelled() => true,
            };
            drop(stop);
            stopped
        };
        if stopped {
            return Ok(None);
        }
        let session = timed(handle.done()).await?;
        // Drain unsolicited responses collected while idle: we re-check with SEARCH anyway.
        while session.unsolicited_responses.try_recv().is_ok() {}
        Ok(Some(ImapConn {
            session,
            idle_supported,
            move_supported,
        }))
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// An IMAP quoted string.
pub fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The most bytes one fetch brings in: mails are fetched in batches of at most `max_count`
/// mails and this many bytes (a mail larger than this alone), so that memory follows the size
/// of the largest mail, not of the batch.
pub const BATCH_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Splits `(uid, size)` (ascending) into fetch batches of at most `max_count` UIDs and
/// `max_bytes` bytes, a larger mail alone; order kept.
pub fn batches(sizes: &[(u32, u64)], max_count: usize, max_bytes: u64) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sizes {
        if !current.is_empty() && (current.len() >= max_count.max(1) || bytes + size > max_bytes) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(uid);
        bytes += size;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Compresses sorted UIDs into an IMAP set: `1:5,7,9:12`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_strings_are_quoted() {
        assert_eq!(quoted("T-000123"), "\"T-000123\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn batches_are_bounded_by_count_and_bytes_a_big_mail_alone() {
        let mb = 1024 * 1024;
        let sizes = [
            (1, mb),
            (2, mb),
            (3, 30 * mb),
            (4, mb),
            (5, 3 * mb),
            (6, 5 * mb),
            (7, 10),
        ];
        assert_eq!(
            batches(&sizes, 50, 8 * mb),
            vec![vec![1, 2], vec![3], vec![4, 5], vec![6, 7]]
        );
        assert_eq!(
            batches(&sizes, 2, 64 * mb),
            vec![vec![1, 2], vec![3, 4], vec![5, 6], vec![7]]
        );
        assert!(batches(&[], 50, mb).is_empty());
        // Every UID once, in order, whatever the bounds.
        let flat: Vec<u32> = batches(&sizes, 1, 1).concat();
        assert_eq!(flat, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn uid_sets_are_compressed() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8, 9, 12]), "1:3,5,7:9,12");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[3, 1, 2, 2]), "1:3");
    }
}
