//! A small OAuth 2.0 authorization server for the tests: a real HTTP server on the loopback port
//! the rig's Dovecot asks to introspect tokens (`deploy/dev/mailrig`, 14180), speaking the
//! protocol as Microsoft's and Google's do — the token endpoint (RFC 6749 §5: refresh_token,
//! authorization_code with PKCE S256, device_code), device authorization (RFC 8628 §3.1-3.5),
//! an authorization endpoint that signs in a chosen user at once and redirects, and token
//! introspection (RFC 7662) for Dovecot. The tests drive it in-process: register clients,
//! expire access tokens, revoke grants, approve device codes, count refreshes.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The port the rig's Dovecot asks (`SUPPORTD_RIG_OAUTH_PORT`, as `deploy/dev/mailrig` reads it).
fn port() -> u16 {
    std::env::var("SUPPORTD_RIG_OAUTH_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(14180)
}

#[derive(Clone)]
pub struct Client {
    pub secret: Option<String>,
    /// Lifetime of access tokens (seconds).
    pub access_ttl: u64,
    /// Issue a new refresh token at every refresh (and refuse the old one afterwards).
    pub rotate: bool,
    /// The user the authorization endpoint signs in (the browser flow).
    pub browser_user: Option<String>,
}

struct Access {
    user: String,
    expires: Instant,
    revoked: bool,
}

struct RefreshGrant {
    client: String,
    user: String,
    revoked: bool,
}

struct Device {
    client: String,
    user_code: String,
    approved_for: Option<String>,
    denied: bool,
    done: bool,
}

struct Code {
    client: String,
    user: String,
    challenge: String,
    redirect: String,
}

#[derive(Default)]
struct ServerState {
    clients: HashMap<String, Client>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, RefreshGrant>,
    devices: HashMap<String, Device>,
    codes: HashMap<String, Code>,
    /// Refresh-token exchanges per user.
    refreshes: HashMap<String, u32>,
    /// Introspections per user (Dovecot's logins).
    introspections: HashMap<String, u32>,
    /// Clients whose token endpoint answers 503 (the provider is down for them).
    down: std::collections::HashSet<String>,
}

pub struct OAuthServer {
    state: Arc<Mutex<ServerState>>,
    pub base: String,
}

fn random(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let s: String = (0..24)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]))
        .collect();
    format!("{prefix}.{s}")
}

/// The test process's one server (Dovecot asks one fixed port), started at first use on its own
/// runtime so it outlives each test's runtime.
pub fn oauth_server() -> &'static OAuthServer {
    static SERVER: OnceLock<OAuthServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let state: Arc<Mutex<ServerState>> = Default::default();
        let st = state.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port()))
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "the test token server cannot listen on 127.0.0.1:{}: {e}",
                            port()
                        )
                    });
                tx.send(()).expect("started");
                let app = Router::new()
                    .route("/token", post(token))
                    .route("/devicecode", post(devicecode))
                    .route("/authorize", get(authorize))
                    .route("/introspect", post(introspect))
                    .with_state(st);
                axum::serve(listener, app).await.expect("serves");
            });
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("token server starts");
        OAuthServer {
            state,
            base: format!("http://127.0.0.1:{}", port()),
        }
    })
}

impl OAuthServer {
    fn with<T>(&self, f: impl FnOnce(&mut ServerState) -> T) -> T {
        f(&mut self.state.lock().expect("state"))
    }

    pub fn register(&self, client_id: &str, c: Client) {
        self.with(|s| s.clients.insert(client_id.to_string(), c));
    }

    /// A refresh token for `user`, as a completed first sign-in gives.
    pub fn grant(&self, client_id: &str, user: &str) -> String {
        let t = random("rt");
        self.with(|s| {
            s.refresh.insert(
                t.clone(),
                RefreshGrant {
                    client: client_id.into(),
                    user: user.into(),
                    revoked: false,
                },
            )
        });
        t
    }

    /// Every access token of `user` expires now (refresh tokens stay good).
    pub fn expire_access(&self, user: &str) {
        self.with(|s| {
            for a in s.access.values_mut().filter(|a| a.user == user) {
                a.expires = Instant::now();
            }
        })
    }

    /// The user withdraws consent: refresh and access tokens are refused from now on.
    pub fn revoke(&self, user: &str) {
        self.with(|s| {
            for r in s.refresh.values_mut().filter(|r| r.user == user) {
                r.revoked = true;
            }
            for a in s.access.values_mut().filter(|a| a.user == user) {
                a.revoked = true;
            }
        })
    }

    pub fn set_down(&self, client_id: &str, down: bool) {
        self.with(|s| {
            if down {
                s.down.insert(client_id.to_string());
            } else {
                s.down.remove(client_id);
            }
        })
    }

    /// The operator signs in as `user` and enters `user_code` (RFC 8628 §3.3).
    pub fn approve_device(&self, user_code: &str, user: &str) -> bool {
        self.with(|s| {
            match s
                .devices
                .values_mut()
                .find(|d| d.user_code == user_code && !d.done)
            {
                Some(d) => {
                    d.approved_for = Some(user.into());
                    true
                }
                None => false,
            }
        })
    }

    pub fn deny_device(&self, user_code: &str) {
        self.with(|s| {
            for d in s.devices.values_mut().filter(|d| d.user_code == user_code) {
                d.denied = true;
            }
        })
    }

    pub fn refreshes(&self, user: &str) -> u32 {
        self.with(|s| s.refreshes.get(user).copied().unwrap_or(0))
    }

    pub fn introspections(&self, user: &str) -> u32 {
        self.with(|s| s.introspections.get(user).copied().unwrap_or(0))
    }

    /// Whether `token` is a refresh token the server still takes.
    pub fn refresh_token_valid(&self, token: &str) -> bool {
        self.with(|s| s.refresh.get(token).is_some_and(|r| !r.revoked))
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn issue(s: &mut ServerState, client_id: &str, user: &str, refresh: Option<String>) -> Response {
    let ttl = s.clients.get(client_id).map_or(3600, |c| c.access_ttl);
    let access = random("at");
    s.access.insert(
        access.clone(),
        Access {
            user: user.into(),
            expires: Instant::now() + Duration::from_secs(ttl),
            revoked: false,
        },
    );
    let mut body = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": "mail",
    });
    if let Some(r) = refresh {
        body["refresh_token"] = serde_json::json!(r);
    }
    Json(body).into_response()
}

/// The client's authentication: client_id (and secret when it has one) in the body
/// (RFC 6749 §2.3.1).
fn client_ok(s: &ServerState, f: &HashMap<String, String>) -> Result<String, Box<Response>> {
    let id = f.get("client_id").cloned().unwrap_or_default();
    let refuse = |why: &str| {
        Err(Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            why,
        )))
    };
    match s.clients.get(&id) {
        None => refuse("unknown client"),
        Some(c) if c.secret.is_some() && c.secret.as_ref() != f.get("client_secret") => {
            refuse("bad client secret")
        }
        Some(_) => Ok(id),
    }
}

async fn token(
    State(st): State<Arc<Mutex<ServerState>>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let mut s = st.lock().expect("state");
    if f.get("client_id").is_some_and(|c| s.down.contains(c)) {
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    let client = match client_ok(&s, &f) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match f.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            let rt = f.get("refresh_token").cloned().unwrap_or_default();
            let Some(g) = s
                .refresh
                .get(&rt)
                .filter(|g| !g.revoked && g.client == client)
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "AADSTS70000: the refresh token is revoked or expired",
                );
            };
            let user = g.user.clone();
            *s.refreshes.entry(user.clone()).or_default() += 1;
            let rotate = s.clients.get(&client).is_some_and(|c| c.rotate);
            let next = if rotate {
                let n = random("rt");
                s.refresh.get_mut(&rt).expect("present").revoked = true;
                s.refresh.insert(
                    n.clone(),
                    RefreshGrant {
                        client: client.clone(),
                        user: user.clone(),
                        revoked: false,
                    },
                );
                Some(n)
            } else {
                None
            };
            issue(&mut s, &client, &user, next)
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let code = f.get("device_code").cloned().unwrap_or_default();
            let Some(d) = s
                .devices
                .get_mut(&code)
                .filter(|d| d.client == client && !d.done)
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "expired_token",
                    "unknown device code",
                );
            };
            if d.denied {
                d.done = true;
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "access_denied",
                    "the user declined",
                );
            }
            let Some(user) = d.approved_for.clone() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "authorization_pending",
                    "waiting for the user",
                );
            };
            d.done = true;
            let rt = random("rt");
            s.refresh.insert(
                rt.clone(),
                RefreshGrant {
                    client: client.clone(),
                    user: user.clone(),
                    revoked: false,
                },
            );
            issue(&mut s, &client, &user, Some(rt))
        }
        Some("authorization_code") => {
            let code = f.get("code").cloned().unwrap_or_default();
            let Some(c) = s.codes.remove(&code).filter(|c| c.client == client) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != c.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            if f.get("redirect_uri") != Some(&c.redirect) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri differs",
                );
            }
            let rt = random("rt");
            s.refresh.insert(
                rt.clone(),
                RefreshGrant {
                    client: client.clone(),
                    user: c.user.clone(),
                    revoked: false,
                },
            );
            issue(&mut s, &client, &c.user, Some(rt))
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "?"),
    }
}

async fn devicecode(
    State(st): State<Arc<Mutex<ServerState>>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let mut s = st.lock().expect("state");
    let client = match client_ok(&s, &f) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let device_code = random("dc");
    let user_code = random("uc")[3..11].to_uppercase();
    s.devices.insert(
        device_code.clone(),
        Device {
            client,
            user_code: user_code.clone(),
            approved_for: None,
            denied: false,
            done: false,
        },
    );
    Json(serde_json::json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": format!("http://127.0.0.1:{}/device", port()),
        "expires_in": 900,
        "interval": 1,
    }))
    .into_response()
}

async fn authorize(
    State(st): State<Arc<Mutex<ServerState>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = st.lock().expect("state");
    let client = q.get("client_id").cloned().unwrap_or_default();
    let Some(user) = s.clients.get(&client).and_then(|c| c.browser_user.clone()) else {
        return (
            StatusCode::BAD_REQUEST,
            "unknown client or no user to sign in",
        )
            .into_response();
    };
    if q.get("response_type").map(String::as_str) != Some("code")
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "code flow with PKCE S256 only").into_response();
    }
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let code = random("code");
    s.codes.insert(
        code.clone(),
        Code {
            client,
            user,
            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
            redirect: redirect.clone(),
        },
    );
    let state = q.get("state").cloned().unwrap_or_default();
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

/// RFC 7662 §2: `token=…` in, `{"active": …}` out; the user under `username` (Dovecot's
/// `username_attribute`).
async fn introspect(
    State(st): State<Arc<Mutex<ServerState>>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let mut s = st.lock().expect("state");
    let token = f.get("token").cloned().unwrap_or_default();
    let found = s
        .access
        .get(&token)
        .map(|a| (a.user.clone(), !a.revoked && Instant::now() < a.expires));
    match found {
        Some((user, active)) => {
            *s.introspections.entry(user.clone()).or_default() += 1;
            Json(serde_json::json!({"active": active, "username": user})).into_response()
        }
        None => Json(serde_json::json!({"active": false})).into_response(),
    }
}
