//! OAuth 2.0 for the mail edges: Microsoft 365 and Gmail no longer take (or discourage)
//! passwords for IMAP and SMTP, so a mailbox or the SMTP relay can log in with an access token
//! obtained from a refresh token (RFC 6749 §6), sent with SASL XOAUTH2 (Google's and Microsoft's
//! mechanism) or OAUTHBEARER (RFC 7628).
//!
//! - [`GrantSettings`] (`[oauth.NAME]` in the config) names a token endpoint, a client and the
//!   file holding the refresh token; presets fill in Microsoft 365's and Google's endpoints,
//!   scopes and mail servers. Mailboxes and `[smtp]` refer to a grant by name, so one grant (one
//!   refresh token) serves a mailbox and the relay of the same account.
//! - [`token::TokenSource`] keeps the access token, refreshes it before it expires and after an
//!   authentication failure, saves a rotated refresh token, and tells a revoked grant apart from a
//!   provider that is down (both visible in `/readyz`, `supportd check` and the log).
//! - [`authorize`] is the first grant: the device-code flow (RFC 8628) or the browser flow
//!   (authorization code with PKCE, RFC 7636, to a loopback redirect, RFC 8252 §7.3).
//! - [`sasl`] builds the initial client responses.

pub mod authorize;
pub mod sasl;
pub mod token;

use crate::config::{Secret, TlsMode};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub use token::{GrantStatus, OAuthError, TokenSource};

/// How a mailbox or the SMTP relay authenticates.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// IMAP LOGIN / SMTP AUTH PLAIN or LOGIN with `password`.
    #[default]
    Password,
    /// SASL XOAUTH2 with an access token of the grant named by `oauth`.
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628) with an access token of the grant named by `oauth`.
    Oauthbearer,
}

impl AuthMethod {
    /// The SASL mechanism name (IMAP `AUTHENTICATE`, SMTP `AUTH`).
    pub fn mechanism(self) -> &'static str {
        match self {
            AuthMethod::Password => "LOGIN",
            AuthMethod::Xoauth2 => "XOAUTH2",
            AuthMethod::Oauthbearer => "OAUTHBEARER",
        }
    }
}

/// Known identity providers: their endpoints, the scopes mail needs, their mail servers.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Endpoints and scopes given in the config.
    #[default]
    Custom,
    /// Microsoft 365 / Exchange Online (Microsoft identity platform v2.0).
    Microsoft365,
    /// Google Workspace and Gmail.
    Google,
}

/// A mail server's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerPreset {
    pub host: &'static str,
    pub port: u16,
    pub tls: TlsMode,
}

impl Provider {
    /// The provider's IMAP server.
    pub fn imap(self) -> Option<ServerPreset> {
        match self {
            Provider::Custom => None,
            Provider::Microsoft365 => Some(ServerPreset {
                host: "outlook.office365.com",
                port: 993,
                tls: TlsMode::Tls,
            }),
            Provider::Google => Some(ServerPreset {
                host: "imap.gmail.com",
                port: 993,
                tls: TlsMode::Tls,
            }),
        }
    }

    /// The provider's SMTP submission server.
    pub fn smtp(self) -> Option<ServerPreset> {
        match self {
            Provider::Custom => None,
            Provider::Microsoft365 => Some(ServerPreset {
                host: "smtp.office365.com",
                port: 587,
                tls: TlsMode::Starttls,
            }),
            Provider::Google => Some(ServerPreset {
                host: "smtp.gmail.com",
                port: 465,
                tls: TlsMode::Tls,
            }),
        }
    }
}

/// `[oauth.NAME]`: one OAuth 2.0 grant (a client registration and the refresh token of one
/// account).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSettings {
    /// `microsoft365`, `google`, or `custom` (default) with the endpoints given.
    #[serde(default)]
    pub provider: Provider,
    /// Microsoft 365: the directory (tenant) id or a verified domain (`contoso.onmicrosoft.com`);
    /// default `organizations`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// The client secret, for confidential clients (Google's "Desktop app" clients have one that
    /// is not secret; Microsoft's public clients have none).
    #[serde(default)]
    pub client_secret: Secret,
    /// A file holding the client secret; relative paths are looked up in
    /// `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`) first.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Token endpoint (RFC 6749 §3.2). Set by the provider's preset.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Device authorization endpoint (RFC 8628 §3.1). Set by the provider's preset.
    #[serde(default)]
    pub device_authorization_url: Option<String>,
    /// Authorization endpoint (RFC 6749 §3.1), for the browser flow. Set by the preset.
    #[serde(default)]
    pub authorization_url: Option<String>,
    /// Scopes asked for at the first grant. Set by the provider's preset.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Where the refresh token is kept; supportd rewrites it when the provider rotates the
    /// token, so it must be writable (not in `$CREDENTIALS_DIRECTORY`). Default:
    /// `STATE_DIR/oauth/NAME.refresh-token`.
    #[serde(default)]
    pub refresh_token_file: Option<PathBuf>,
    /// Refresh the access token this long before it expires (seconds; default 300, at most half
    /// the token's lifetime).
    #[serde(default = "default_margin")]
    pub refresh_margin_secs: u64,
}

fn default_margin() -> u64 {
    300
}

/// A grant with the preset applied and files resolved: what the token source and the first
/// grant use.
#[derive(Debug, Clone)]
pub struct Grant {
    pub name: String,
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub token_url: String,
    pub device_authorization_url: Option<String>,
    pub authorization_url: Option<String>,
    pub scopes: Vec<String>,
    pub refresh_token_file: PathBuf,
    pub refresh_margin_secs: u64,
}

fn valid_url(key: &str, url: &str, problems: &mut Vec<String>) {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(char::is_whitespace)
        && url.len() > "http://x".len();
    if !ok {
        problems.push(format!("{key}: not an http(s) URL: {url:?}"));
    }
}

impl GrantSettings {
    /// Applies the provider's preset and reads the secret file. Problems name the key.
    pub fn resolve(&self, name: &str, state_dir: &Path, problems: &mut Vec<String>) -> Grant {
        let key = format!("oauth.{name}");
        if self.client_id.trim().is_empty() {
            problems.push(format!("{key}.client_id: must not be empty"));
        }
        let mut secret = self.client_secret.clone();
        if let Some(file) = &self.client_secret_file {
            if !secret.is_empty() {
                problems.push(format!(
                    "{key}.client_secret_file: set together with {key}.client_secret; keep one"
                ));
            } else {
                match read_credential(file) {
                    Ok(s) => secret = Secret::new(s),
                    Err(e) => problems.push(format!("{key}.client_secret_file: {e}")),
                }
            }
        }
        // A single-tenant registration (what the README's walkthrough makes) is refused at the
        // `organizations` and `common` endpoints (AADSTS50194), so the tenant is required.
        let tenant = self.tenant.as_deref().unwrap_or("organizations");
        if self.tenant.is_none() && self.provider == Provider::Microsoft365 {
            problems.push(format!(
                "{key}.tenant: required with provider = \"microsoft365\": the directory (tenant) id or a verified domain (contoso.onmicrosoft.com); \"organizations\" only for a multi-tenant app"
            ));
        }
        if self.tenant.is_some() && self.provider != Provider::Microsoft365 {
            problems.push(format!(
                "{key}.tenant: only for provider = \"microsoft365\""
            ));
        }
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        {
            problems.push(format!(
                "{key}.tenant: a directory (tenant) id or domain, not {tenant:?}"
            ));
        }
        let (token, device, auth, scopes): (String, Option<String>, Option<String>, Vec<&str>) =
            match self.provider {
                Provider::Microsoft365 => {
                    let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
                    (
                        format!("{base}/token"),
                        Some(format!("{base}/devicecode")),
                        Some(format!("{base}/authorize")),
                        vec![
                            "https://outlook.office.com/IMAP.AccessAsUser.All",
                            "https://outlook.office.com/SMTP.Send",
                            "offline_access",
                        ],
                    )
                }
                Provider::Google => (
                    "https://oauth2.googleapis.com/token".into(),
                    Some("https://oauth2.googleapis.com/device/code".into()),
                    Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
                    vec!["https://mail.google.com/"],
                ),
                Provider::Custom => (String::new(), None, None, Vec::new()),
            };
        let token_url = self.token_url.clone().unwrap_or(token);
        if token_url.is_empty() {
            problems.push(format!(
                "{key}.token_url: required (or provider = \"microsoft365\" | \"google\")"
            ));
        } else {
            valid_url(&format!("{key}.token_url"), &token_url, problems);
        }
        let device_authorization_url = self.device_authorization_url.clone().or(device);
        if let Some(u) = &device_authorization_url {
            valid_url(&format!("{key}.device_authorization_url"), u, problems);
        }
        let authorization_url = self.authorization_url.clone().or(auth);
        if let Some(u) = &authorization_url {
            valid_url(&format!("{key}.authorization_url"), u, problems);
        }
        let scopes = self
            .scopes
            .clone()
            .unwrap_or_else(|| scopes.into_iter().map(String::from).collect());
        if self.refresh_margin_secs > 3000 {
            problems.push(format!(
                "{key}.refresh_margin_secs: at most 3000 (access tokens live about an hour), not {}",
                self.refresh_margin_secs
            ));
        }
        let refresh_token_file = self.refresh_token_file.clone().unwrap_or_else(|| {
            state_dir
                .join("oauth")
                .join(format!("{name}.refresh-token"))
        });
        Grant {
            name: name.to_string(),
            provider: self.provider,
            client_id: self.client_id.trim().to_string(),
            client_secret: (!secret.is_empty()).then_some(secret),
            token_url,
            device_authorization_url,
            authorization_url,
            scopes,
            refresh_token_file,
            refresh_margin_secs: self.refresh_margin_secs,
        }
    }
}

/// Reads a one-line credential file (found as [`crate::config::credential_path`] says).
pub fn read_credential(file: &Path) -> Result<String, String> {
    let path = crate::config::credential_path(file);
    std::fs::read_to_string(&path)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(toml: &str) -> (Grant, Vec<String>) {
        let g: GrantSettings = toml::from_str(toml).expect("parses");
        let mut problems = Vec::new();
        let r = g.resolve("m", Path::new("/var/lib/supportd"), &mut problems);
        (r, problems)
    }

    #[test]
    fn microsoft365_preset_fills_endpoints_scopes_and_file() {
        let (g, p) = grant("provider = \"microsoft365\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"abc\"");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            g.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(g.device_authorization_url.unwrap().ends_with("/devicecode"));
        assert!(g
            .scopes
            .iter()
            .any(|s| s.ends_with("IMAP.AccessAsUser.All")));
        assert!(g.scopes.iter().any(|s| s == "offline_access"));
        assert_eq!(
            g.refresh_token_file,
            Path::new("/var/lib/supportd/oauth/m.refresh-token")
        );
        assert!(g.client_secret.is_none());
        assert_eq!(
            Provider::Microsoft365.smtp().unwrap().host,
            "smtp.office365.com"
        );
    }

    #[test]
    fn custom_needs_a_token_url_and_bad_values_are_named() {
        let (_, p) = grant("client_id = \"\"\ntenant = \"x y\"");
        let all = p.join("\n");
        assert!(
            all.contains("oauth.m.client_id: must not be empty"),
            "{all}"
        );
        assert!(all.contains("oauth.m.token_url: required"), "{all}");
        assert!(all.contains("oauth.m.tenant: only for provider"), "{all}");
        let (_, p) = grant("provider = \"microsoft365\"\nclient_id = \"a\"");
        assert!(p
            .join("\n")
            .contains("oauth.m.tenant: required with provider"));
        let (_, p) = grant("client_id = \"a\"\ntoken_url = \"ftp://x\"");
        assert!(p
            .join("\n")
            .contains("oauth.m.token_url: not an http(s) URL"));
    }
}
