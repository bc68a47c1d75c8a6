//! The access token of one grant: fetched with the refresh token (RFC 6749 §6), kept until shortly
//! before it expires, refreshed again after an authentication failure (once; then the caller's
//! back-off applies), and the refresh token saved when the provider rotates it.
//!
//! Invariants:
//! - one refresh at a time per grant (a mailbox and the SMTP relay share the token);
//! - a refused refresh token (`invalid_grant`) is remembered and not sent again until the file
//!   holds another one (`supportd oauth authorize` writes it; the daemon needs no restart);
//! - a provider that is down is retried with back-off (5 s doubling to 5 min), never in a loop;
//! - tokens never reach a log; the status names the grant and the file, never the token.
//!
//! Expiry uses the monotonic clock, not the injected one: it is the provider's time, and a test's
//! fake clock must not expire real tokens.

use super::Grant;
use crate::config::Secret;
use oauth2::basic::BasicErrorResponseType;
use oauth2::{RefreshToken, RequestTokenError, TokenResponse};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Why no access token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    #[error("OAuth2 grant {grant:?} has no refresh token in {file}: run `supportd oauth authorize {grant}`")]
    NotAuthorized { grant: String, file: String },
    #[error("OAuth2 grant {grant:?} was refused by the provider ({reason}): the refresh token is revoked or expired; run `supportd oauth authorize {grant}`")]
    Revoked { grant: String, reason: String },
    #[error("OAuth2 grant {grant:?}: the provider refused the client ({reason}): check oauth.{grant}.client_id and the client secret (an expired secret is renewed in the app registration), then restart")]
    ClientRefused { grant: String, reason: String },
    #[error(
        "OAuth2 token endpoint of grant {grant:?} failed: {reason} (tried again in {}s; check network access, or HTTPS_PROXY)", retry_in.as_secs().max(1)
    )]
    Unavailable {
        grant: String,
        reason: String,
        retry_in: Duration,
    },
}

/// What `/readyz`, `supportd check` and `status` show for a grant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GrantStatus {
    /// No token asked for yet.
    Unused,
    /// An access token is held; seconds until it expires.
    Ok {
        expires_in_secs: u64,
    },
    NotAuthorized {
        file: String,
    },
    Revoked {
        reason: String,
    },
    /// The provider refused the client itself (id or secret).
    ClientRefused {
        reason: String,
    },
    /// The token endpoint fails, but the access token held is still valid.
    Degraded {
        reason: String,
        expires_in_secs: u64,
    },
    Failing {
        reason: String,
    },
}

impl GrantStatus {
    /// Whether the grant works (or has not been needed yet, or still has a valid token).
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            GrantStatus::Unused | GrantStatus::Ok { .. } | GrantStatus::Degraded { .. }
        )
    }
}

struct Held {
    token: Secret,
    issued: Instant,
    refresh_at: Instant,
    expires: Instant,
}

#[derive(Default)]
struct State {
    access: Option<Held>,
    /// The refresh token the provider refused; not sent again.
    refused: Option<Secret>,
    /// Token-endpoint failures in a row, and when the next try may be.
    failures: u32,
    next_try: Option<Instant>,
    last_failure: Option<String>,
    /// When an authentication failure last forced a refresh.
    forced_at: Option<Instant>,
    /// A rotated refresh token that could not be saved, and the one it replaced: used while the
    /// file still holds the old one.
    unsaved: Option<(Secret, Secret)>,
}

/// The access tokens of one grant, shared by everything that logs in with it.
pub struct TokenSource {
    grant: Grant,
    /// Built at first use (it reads the system's CA certificates).
    http: std::sync::OnceLock<reqwest::Client>,
    state: tokio::sync::Mutex<State>,
    status: Mutex<(GrantStatus, Option<Instant>)>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("grant", &self.grant.name)
            .finish_non_exhaustive()
    }
}

/// An HTTP client for token endpoints: no redirects (RFC 6749 §3.2 endpoints answer directly;
/// following them would open SSRF), a 30 s timeout, the system's CA certificates.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("supportd/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The token endpoint's client for `g` (client secret in the request body, RFC 6749 §2.3.1,
/// which Microsoft and Google both accept).
macro_rules! oauth_client {
    ($g:expr) => {{
        let g: &Grant = $g;
        let mut c = ::oauth2::basic::BasicClient::new(::oauth2::ClientId::new(g.client_id.clone()))
            .set_auth_type(::oauth2::AuthType::RequestBody)
            .set_token_uri(
                ::oauth2::TokenUrl::new(g.token_url.clone()).map_err(|e| e.to_string())?,
            );
        if let Some(s) = &g.client_secret {
            c = c.set_client_secret(::oauth2::ClientSecret::new(s.expose().to_string()));
        }
        c
    }};
}
pub(crate) use oauth_client;

/// A token-endpoint answer reduced to what matters here.
pub(crate) struct Tokens {
    pub access: Secret,
    pub expires_in: Duration,
    pub refresh: Option<Secret>,
}

pub(crate) fn tokens_of(r: &oauth2::basic::BasicTokenResponse) -> Tokens {
    Tokens {
        access: Secret::new(r.access_token().secret().clone()),
        // RFC 6749 §5.1: expires_in is RECOMMENDED; an hour is what both big providers give.
        expires_in: r.expires_in().unwrap_or(Duration::from_secs(3600)),
        refresh: r.refresh_token().map(|t| Secret::new(t.secret().clone())),
    }
}

/// Writes `token` to `path` atomically (temporary file, fsync, rename), readable by the owner only.
///
/// The file (and an `oauth/` folder it creates) takes the owner of the folder above, so a first
/// sign-in run as root into `/var/lib/supportd` leaves a file the `supportd` user can read and
/// rewrite.
pub fn save_refresh_token(path: &std::path::Path, token: &Secret) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
                if let Some(up) = dir.parent() {
                    inherit_owner(dir, up);
                }
            }
        }
    }
    let tmp = path.with_extension(format!(
        "tmp.{}.{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(token.expose().as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        inherit_owner(&tmp, dir);
    }
    std::fs::rename(&tmp, path)?;
    // The rename itself survives a crash only once the directory is synced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Gives `path` the owner and group of `dir` where permitted (as root); otherwise leaves it.
#[cfg(unix)]
fn inherit_owner(path: &std::path::Path, dir: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(dir) {
        let _ = std::os::unix::fs::chown(path, Some(m.uid()), Some(m.gid()));
    }
}

fn backoff(failures: u32) -> Duration {
    Duration::from_secs((5u64 << failures.saturating_sub(1).min(6)).min(300))
}

impl TokenSource {
    pub fn new(grant: Grant) -> Arc<TokenSource> {
        Arc::new(TokenSource {
            grant,
            http: Default::default(),
            state: Default::default(),
            status: Mutex::new((GrantStatus::Unused, None)),
            refreshes: Default::default(),
        })
    }

    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// Refreshes done since start (a metric and a test's witness).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The grant's state now.
    pub fn status(&self) -> GrantStatus {
        let Ok(s) = self.status.lock() else {
            return GrantStatus::Failing {
                reason: "status lock poisoned".into(),
            };
        };
        match (&s.0, s.1) {
            (GrantStatus::Ok { .. }, Some(expires)) => GrantStatus::Ok {
                expires_in_secs: expires.saturating_duration_since(Instant::now()).as_secs(),
            },
            (GrantStatus::Degraded { reason, .. }, Some(expires)) => {
                let left = expires.saturating_duration_since(Instant::now()).as_secs();
                if left == 0 {
                    GrantStatus::Failing {
                        reason: reason.clone(),
                    }
                } else {
                    GrantStatus::Degraded {
                        reason: reason.clone(),
                        expires_in_secs: left,
                    }
                }
            }
            (other, _) => other.clone(),
        }
    }

    fn set_status(&self, st: GrantStatus, expires: Option<Instant>) {
        if let Ok(mut s) = self.status.lock() {
            *s = (st, expires);
        }
    }

    /// A valid access token: the one held, or a fresh one from the token endpoint.
    ///
    /// Errors: [`OAuthError::NotAuthorized`] (no refresh token file), [`OAuthError::Revoked`]
    /// (`invalid_grant`/`invalid_client`/`unauthorized_client`), [`OAuthError::Unavailable`]
    /// (network, 5xx, bad answer; retried after the back-off it names).
    pub async fn access_token(&self) -> Result<Secret, OAuthError> {
        let mut st = self.state.lock().await;
        let now = Instant::now();
        if let Some(h) = &st.access {
            if now < h.refresh_at {
                return Ok(h.token.clone());
            }
        }
        let file = self.grant.refresh_token_file.display().to_string();
        // Every process that refreshes (the daemon, `check`, `oauth status`, `oauth authorize`)
        // holds the grant's lock from reading the file to saving a rotated token, so none sends
        // a token another has just rotated away, and a new grant is never overwritten.
        let _lock = lock_grant(&self.grant.refresh_token_file).await;
        let refresh = match std::fs::read_to_string(&self.grant.refresh_token_file) {
            Ok(s) if !s.trim().is_empty() => {
                let on_file = Secret::new(s.trim());
                match &st.unsaved {
                    Some((old, new)) if *old == on_file => new.clone(),
                    _ => on_file,
                }
            }
            _ => {
                self.set_status(GrantStatus::NotAuthorized { file: file.clone() }, None);
                return Err(OAuthError::NotAuthorized {
                    grant: self.grant.name.clone(),
                    file,
                });
            }
        };
        if st.refused.as_ref() == Some(&refresh) {
            let reason = st.last_failure.clone().unwrap_or_default();
            let grant = self.grant.name.clone();
            return Err(match self.status() {
                GrantStatus::ClientRefused { .. } => OAuthError::ClientRefused { grant, reason },
                _ => OAuthError::Revoked { grant, reason },
            });
        }
        if st.refused.is_some() {
            // `supportd oauth authorize` wrote a new grant: start afresh.
            info!(oauth.grant = %self.grant.name, "a new refresh token is in place; using it");
            st.refused = None;
            st.failures = 0;
            st.next_try = None;
        }
        if let Some(next) = st.next_try {
            if now < next {
                // Still valid (refresh_at is early): use it while the provider is away.
                if let Some(h) = st.access.as_ref().filter(|h| now < h.expires) {
                    return Ok(h.token.clone());
                }
                return Err(OAuthError::Unavailable {
                    grant: self.grant.name.clone(),
                    reason: st.last_failure.clone().unwrap_or_default(),
                    retry_in: next - now,
                });
            }
        }
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.exchange(&refresh).await {
            Ok(t) => {
                let now = Instant::now();
                let margin =
                    Duration::from_secs(self.grant.refresh_margin_secs).min(t.expires_in / 2);
                let held = Held {
                    token: t.access.clone(),
                    issued: now,
                    refresh_at: now + t.expires_in - margin,
                    expires: now + t.expires_in,
                };
                self.set_status(
                    GrantStatus::Ok {
                        expires_in_secs: t.expires_in.as_secs(),
                    },
                    Some(held.expires),
                );
                st.access = Some(held);
                st.failures = 0;
                st.next_try = None;
                st.last_failure = None;
                info!(oauth.grant = %self.grant.name, expires_in_secs = t.expires_in.as_secs(), "OAuth2 access token refreshed");
                if let Some(new) = t.refresh.filter(|n| *n != refresh) {
                    let on_file = std::fs::read_to_string(&self.grant.refresh_token_file)
                        .map(|s| Secret::new(s.trim()))
                        .ok();
                    let replaced = st.unsaved.as_ref().map(|(old, _)| old.clone());
                    if on_file.is_some() && on_file != Some(refresh.clone()) && on_file != replaced
                    {
                        // A new grant was written meanwhile (outside the lock): keep it.
                        warn!(oauth.grant = %self.grant.name, file = %file, "the refresh token file changed during a refresh; keeping the file's");
                    } else {
                        match save_refresh_token(&self.grant.refresh_token_file, &new) {
                            Ok(()) => {
                                st.unsaved = None;
                                info!(oauth.grant = %self.grant.name, file = %file, "the provider rotated the refresh token; the new one is saved")
                            }
                            Err(e) => {
                                error!(oauth.grant = %self.grant.name, file = %file, error = %e, "the provider rotated the refresh token but it cannot be saved: it is kept in memory, and the grant fails after a restart; make the file writable");
                                let old = on_file.unwrap_or_else(|| refresh.clone());
                                st.unsaved = Some((old, new));
                            }
                        }
                    }
                }
                Ok(t.access)
            }
            Err(ClientRefused(reason)) => {
                error!(oauth.grant = %self.grant.name, %reason, "the provider refused the client (id or secret): mail on this grant stops until the client settings are fixed");
                st.refused = Some(refresh);
                st.access = None;
                st.last_failure = Some(reason.clone());
                self.set_status(
                    GrantStatus::ClientRefused {
                        reason: reason.clone(),
                    },
                    None,
                );
                Err(OAuthError::ClientRefused {
                    grant: self.grant.name.clone(),
                    reason,
                })
            }
            Err(Refused(reason)) => {
                error!(oauth.grant = %self.grant.name, file = %file, %reason, "the provider refused the refresh token (revoked or expired): mail on this grant stops until `supportd oauth authorize {}`", self.grant.name);
                st.refused = Some(refresh);
                st.access = None;
                st.last_failure = Some(reason.clone());
                self.set_status(
                    GrantStatus::Revoked {
                        reason: reason.clone(),
                    },
                    None,
                );
                Err(OAuthError::Revoked {
                    grant: self.grant.name.clone(),
                    reason,
                })
            }
            Err(Failed(reason)) => {
                st.failures += 1;
                let wait = backoff(st.failures);
                st.next_try = Some(Instant::now() + wait);
                st.last_failure = Some(reason.clone());
                warn!(oauth.grant = %self.grant.name, %reason, retry_in = ?wait, "OAuth2 token endpoint failed");
                if let Some(h) = st.access.as_ref().filter(|h| Instant::now() < h.expires) {
                    self.set_status(
                        GrantStatus::Degraded {
                            reason: reason.clone(),
                            expires_in_secs: 0,
                        },
                        Some(h.expires),
                    );
                    return Ok(h.token.clone());
                }
                self.set_status(
                    GrantStatus::Failing {
                        reason: reason.clone(),
                    },
                    None,
                );
                Err(OAuthError::Unavailable {
                    grant: self.grant.name.clone(),
                    reason,
                    retry_in: wait,
                })
            }
        }
    }

    /// The server refused `token`: drop it so the next [`access_token`](Self::access_token)
    /// refreshes. Returns whether it was dropped: only once per minute, so a server that refuses
    /// every fresh token is not asked in a loop (the caller backs off instead).
    pub async fn rejected(&self, token: &Secret) -> bool {
        let mut st = self.state.lock().await;
        let now = Instant::now();
        match &st.access {
            Some(h) if h.token == *token => {
                if st
                    .forced_at
                    .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
                {
                    return false;
                }
                warn!(oauth.grant = %self.grant.name, age_secs = now.duration_since(h.issued).as_secs(), "the server refused the access token; refreshing it once");
                st.access = None;
                st.forced_at = Some(now);
                true
            }
            // Already replaced by another user of the grant.
            _ => true,
        }
    }

    async fn exchange(&self, refresh: &Secret) -> Result<Tokens, Failure> {
        let client =
            (|| -> Result<_, String> { Ok(oauth_client!(&self.grant)) })().map_err(Failed)?;
        match client
            .exchange_refresh_token(&RefreshToken::new(refresh.expose().to_string()))
            .request_async(self.http.get_or_init(http_client))
            .await
        {
            Ok(r) => Ok(tokens_of(&r)),
            Err(RequestTokenError::ServerResponse(e)) => {
                let reason = match e.error_description() {
                    Some(d) => format!("{}: {d}", e.error()),
                    None => e.error().to_string(),
                };
                match e.error() {
                    BasicErrorResponseType::InvalidGrant => Err(Refused(reason)),
                    BasicErrorResponseType::InvalidClient
                    | BasicErrorResponseType::UnauthorizedClient => Err(ClientRefused(reason)),
                    // Microsoft: MFA, conditional access or consent now demand a person.
                    BasicErrorResponseType::Extension(x)
                        if matches!(
                            x.as_str(),
                            "interaction_required" | "consent_required" | "login_required"
                        ) =>
                    {
                        Err(Refused(reason))
                    }
                    _ => Err(Failed(reason)),
                }
            }
            Err(RequestTokenError::Request(e)) => Err(Failed(error_chain(&e))),
            // Never the body: a 2xx answer that fails to parse holds tokens.
            Err(RequestTokenError::Parse(e, body)) => Err(Failed(format!(
                "unreadable answer from the token endpoint ({} bytes): {}",
                body.len(),
                e.path()
            ))),
            Err(RequestTokenError::Other(e)) => Err(Failed(e)),
        }
    }
}

/// An error and its causes on one line (reqwest's top-level message alone says little).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

enum Failure {
    Refused(String),
    ClientRefused(String),
    Failed(String),
}
use Failure::{ClientRefused, Failed, Refused};

/// Takes the grant's lock (`FILE.lock`, an advisory `flock` shared by every supportd process),
/// waiting up to 30 s; `None` when the lock file cannot be made (a read-only place: the grant
/// goes on without it).
pub(crate) async fn lock_grant(file: &std::path::Path) -> Option<std::fs::File> {
    let path = file.with_extension("lock");
    // No folder yet means no grant yet: nothing to protect, and a folder made here by root
    // would be one the service's user cannot write.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    if !dir.exists() {
        return None;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ok()?;
    #[cfg(unix)]
    inherit_owner(&path, dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f.try_lock() {
            Ok(()) => return Some(f),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let s: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(s, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn refresh_token_is_saved_atomically_and_privately() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("oauth/g.refresh-token");
        save_refresh_token(&p, &Secret::new("r1")).unwrap();
        save_refresh_token(&p, &Secret::new("r2")).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "r2\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_grant_saved_by_root_belongs_to_the_state_directorys_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        // As root (the tests' usual user), hand the state directory to `nobody` like systemd's
        // StateDirectory= gives it to the service user; as anyone else, the owner is ours.
        let _ = std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534));
        let owner = std::fs::metadata(dir.path()).unwrap().uid();
        let p = dir.path().join("oauth/g.refresh-token");
        save_refresh_token(&p, &Secret::new("r1")).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().uid(), owner);
        assert_eq!(std::fs::metadata(p.parent().unwrap()).unwrap().uid(), owner);
        assert_eq!(
            std::fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
    }
}
