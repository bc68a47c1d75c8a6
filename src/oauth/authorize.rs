//! The first grant, run once by an operator (`supportd oauth authorize`): it obtains a refresh
//! token and saves it where the grant's `refresh_token_file` says.
//!
//! - [`Flow::Device`], the device authorization grant (RFC 8628): prints a URL and a code, the
//!   operator signs in as the mailbox's account on any device, and the token endpoint is polled
//!   at the interval the provider asks. Microsoft 365's usual way for a server without a browser.
//! - [`Flow::Browser`], the authorization code grant with PKCE (RFC 7636) to a loopback redirect
//!   (RFC 8252 §7.3): prints a URL to open; the provider redirects the browser to
//!   `http://127.0.0.1:PORT/`, where this command listens. On a remote server the operator
//!   opens the URL on their own machine and pastes the address the browser ends on (which fails
//!   to load) back here. Google's way: its device flow does not allow the Gmail scope.

use super::token::{
    error_chain, http_client, lock_grant, oauth_client, save_refresh_token, tokens_of,
};
use super::{Grant, Provider};
use oauth2::{
    AuthUrl, AuthorizationCode, CsrfToken, DeviceAuthorizationUrl, PkceCodeChallenge, RedirectUrl,
    RequestTokenError, Scope, StandardDeviceAuthorizationResponse,
};
use std::io::Write;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which first-grant flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flow {
    Device,
    Browser,
}

impl Flow {
    /// The provider's usual flow: the browser for Google (its device flow refuses the Gmail
    /// scope), else the device flow when the grant has its endpoint.
    pub fn default_for(g: &Grant) -> Flow {
        match (g.provider, &g.device_authorization_url) {
            (Provider::Google, _) | (_, None) => Flow::Browser,
            _ => Flow::Device,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("grant {grant:?}: {what}")]
    Setup { grant: String, what: String },
    #[error("the provider refused: {0}")]
    Refused(String),
    #[error(
        "the provider could not be reached or failed: {0} (check network access, or HTTPS_PROXY)"
    )]
    Failed(String),
    #[error("no sign-in within {0:?}")]
    TimedOut(Duration),
    #[error("no refresh token in the provider's answer (for Microsoft add the scope offline_access; for Google the consent screen must be shown again: revoke the app's access and retry)")]
    NoRefreshToken,
    #[error("cannot save the refresh token to {file}: {source}")]
    Save {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a completed grant gave.
#[derive(Debug)]
pub struct Authorized {
    pub file: std::path::PathBuf,
    pub access_token: crate::config::Secret,
    pub expires_in: Duration,
}

fn setup(g: &Grant, what: impl std::fmt::Display) -> AuthorizeError {
    AuthorizeError::Setup {
        grant: g.name.clone(),
        what: what.to_string(),
    }
}

fn token_error<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    e: RequestTokenError<RE, T>,
) -> AuthorizeError {
    match e {
        RequestTokenError::ServerResponse(r) => AuthorizeError::Refused(r.to_string()),
        RequestTokenError::Request(e) => AuthorizeError::Failed(error_chain(&e)),
        // Never the body: a 2xx answer that fails to parse holds tokens.
        RequestTokenError::Parse(e, body) => AuthorizeError::Failed(format!(
            "unreadable answer from the provider ({} bytes): {}",
            body.len(),
            e.path()
        )),
        RequestTokenError::Other(s) => AuthorizeError::Failed(s),
    }
}

async fn finish(
    g: &Grant,
    r: &oauth2::basic::BasicTokenResponse,
) -> Result<Authorized, AuthorizeError> {
    let t = tokens_of(r);
    let refresh = t.refresh.ok_or(AuthorizeError::NoRefreshToken)?;
    // Wait for a daemon's refresh in progress, so it cannot write its rotated token over ours.
    let _lock = lock_grant(&g.refresh_token_file).await;
    save_refresh_token(&g.refresh_token_file, &refresh).map_err(|source| AuthorizeError::Save {
        file: g.refresh_token_file.display().to_string(),
        source,
    })?;
    Ok(Authorized {
        file: g.refresh_token_file.clone(),
        access_token: t.access,
        expires_in: t.expires_in,
    })
}

/// Runs `flow` for `g`, telling the operator what to do on `out`. `timeout` bounds the wait for
/// the operator (the device code's own expiry also does).
pub async fn authorize(
    g: &Grant,
    flow: Flow,
    timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<Authorized, AuthorizeError> {
    match flow {
        Flow::Device => device(g, timeout, out).await,
        Flow::Browser => browser(g, timeout, out).await,
    }
}

async fn device(
    g: &Grant,
    timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<Authorized, AuthorizeError> {
    let url = g.device_authorization_url.clone().ok_or_else(|| {
        setup(
            g,
            "no device_authorization_url: set it, or use --flow browser",
        )
    })?;
    let http = http_client();
    let client = (|| -> Result<_, String> { Ok(oauth_client!(g)) })()
        .map_err(|e| setup(g, e))?
        .set_device_authorization_url(DeviceAuthorizationUrl::new(url).map_err(|e| setup(g, e))?);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(g.scopes.iter().map(|s| Scope::new(s.clone())))
        .request_async(&http)
        .await
        .map_err(token_error)?;
    writeln!(
        out,
        "To let supportd use the mailbox, sign in as the mailbox's account:\n\n  open   {}\n  code   {}\n",
        details.verification_uri().as_str(),
        details.user_code().secret()
    )?;
    if let Some(full) = details.verification_uri_complete() {
        writeln!(out, "  (or open {} directly)\n", full.secret())?;
    }
    writeln!(
        out,
        "Waiting for the sign-in (the code expires in {} min)…",
        details.expires_in().as_secs() / 60
    )?;
    out.flush()?;
    let r = client
        .exchange_device_access_token(&details)
        .request_async(&http, tokio::time::sleep, Some(timeout))
        .await
        .map_err(token_error)?;
    finish(g, &r).await
}

/// The `code` and `state` of a redirect's query (`/?code=…&state=…` or a pasted full URL).
fn redirect_params(target: &str) -> Option<(Option<String>, Option<String>, Option<String>)> {
    let query = target.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    let mut code = None;
    let mut state = None;
    let mut error = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            _ => {}
        }
    }
    Some((code, state, error))
}

async fn browser(
    g: &Grant,
    timeout: Duration,
    out: &mut (dyn Write + Send),
) -> Result<Authorized, AuthorizeError> {
    let auth_url = g
        .authorization_url
        .clone()
        .ok_or_else(|| setup(g, "no authorization_url: set it, or use --flow device"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    // Microsoft accepts any port on a registered http://localhost redirect; Google any port on a
    // loopback IP (RFC 8252 §7.3).
    let host = if g.provider == Provider::Microsoft365 {
        "localhost"
    } else {
        "127.0.0.1"
    };
    let redirect = format!("http://{host}:{port}/");
    let http = http_client();
    let client = (|| -> Result<_, String> { Ok(oauth_client!(g)) })()
        .map_err(|e| setup(g, e))?
        .set_auth_uri(AuthUrl::new(auth_url).map_err(|e| setup(g, e))?)
        .set_redirect_uri(RedirectUrl::new(redirect.clone()).map_err(|e| setup(g, e))?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(g.scopes.iter().map(|s| Scope::new(s.clone())))
        .set_pkce_challenge(challenge);
    if g.provider == Provider::Google {
        // A refresh token is only issued for offline access, and again only with consent.
        req = req
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent");
    }
    let (url, csrf) = req.url();
    writeln!(
        out,
        "To let supportd use the mailbox, open this address in a browser and sign in as the mailbox's account:\n\n  {url}\n\nThe browser is then sent to {redirect}. If that is not this machine, the page will not load:\ncopy the address it shows and paste it here.\n"
    )?;
    out.flush()?;

    // A pasted address arrives on stdin, read on a thread of its own: tokio's stdin cannot be
    // cancelled and would hold the process open at exit until Enter is pressed.
    let (pasted_tx, mut pasted) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if pasted_tx.send(line).is_err() {
                break;
            }
        }
    });
    let (code, state, error) = tokio::time::timeout(timeout, async {
        let mut stdin_open = true;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (mut sock, _) = accepted?;
                    let mut buf = vec![0u8; 8192];
                    // A browser's idle or speculative connection must not hold up the next one.
                    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    // Only the provider's redirect carries our state (or an error): ignore the rest.
                    let Some(found) = redirect_params(&target).filter(|(_, st, err)| st.is_some() || err.is_some()) else {
                        let _ = sock.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                        continue;
                    };
                    let page = "supportd: sign-in received. You can close this page.";
                    let _ = sock
                        .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len()).as_bytes())
                        .await;
                    return Ok::<_, std::io::Error>(found);
                }
                line = pasted.recv(), if stdin_open => {
                    match line {
                        Some(l) => if let Some(found) = redirect_params(l.trim()) { return Ok(found) },
                        // stdin closed: wait for the browser alone.
                        None => stdin_open = false,
                    }
                }
            }
        }
    })
    .await
    .map_err(|_| AuthorizeError::TimedOut(timeout))??;
    if let Some(e) = error {
        return Err(AuthorizeError::Refused(e));
    }
    if state.as_deref() != Some(csrf.secret().as_str()) {
        return Err(AuthorizeError::Refused(
            "the redirect's state does not match this sign-in (an old or forged redirect)".into(),
        ));
    }
    let code = code.ok_or_else(|| AuthorizeError::Refused("the redirect has no code".into()))?;
    let r = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(token_error)?;
    finish(g, &r).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_parameters_from_a_request_target_or_a_pasted_address() {
        assert_eq!(
            redirect_params("/?code=abc%2F1&state=xyz"),
            Some((Some("abc/1".into()), Some("xyz".into()), None))
        );
        assert_eq!(
            redirect_params("http://127.0.0.1:4242/?state=s&error=access_denied#"),
            Some((None, Some("s".into()), Some("access_denied".into())))
        );
        assert_eq!(redirect_params("/favicon.ico"), None);
    }
}
