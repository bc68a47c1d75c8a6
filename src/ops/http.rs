//! The ops listener (axum, loopback by default): `/metrics` (Prometheus text format), `/healthz`
//! (liveness: no loop is stuck) and `/readyz` (readiness: database reachable, every mailbox polled
//! recently, the outbox not stuck). `/healthz` and `/readyz` answer JSON with every check, 200 when
//! all pass and 503 otherwise.
//!
//! Invariants: the listener is bound when the application is built, so a bad or busy address
//! stops the start with the key at fault; no endpoint writes anything; every check is bounded by
//! a timeout, so a hung database makes `/readyz` fail rather than hang.

use crate::clock::SharedClock;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::store::Store;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the endpoints read.
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub store: Store,
    pub clock: SharedClock,
    pub mailbox_stale: Duration,
    pub outbox_stuck: Duration,
    /// The OAuth 2.0 grants in use: a revoked or failing one makes the daemon unready.
    pub oauth: std::collections::BTreeMap<String, Arc<crate::oauth::TokenSource>>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves until `cancel`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<HttpState>,
    cancel: CancellationToken,
) {
    let app = router(state);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "http listener failed");
    }
}

fn json_response(ok: bool, body: serde_json::Value) -> Response {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics(State(s): State<Arc<HttpState>>) -> Response {
    let now = s.clock.now();
    if let Ok(Ok(o)) = tokio::time::timeout(CHECK_TIMEOUT, s.store.outbox_state(now)).await {
        let timers = tokio::time::timeout(CHECK_TIMEOUT, s.store.count("running_timers"))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        let ages: Vec<(String, f64)> = s
            .health
            .mailboxes()
            .into_iter()
            .map(|m| {
                let age = m
                    .last_poll_age_secs
                    .unwrap_or_else(|| s.health.uptime().as_secs_f64());
                (m.mailbox, age)
            })
            .collect();
        s.metrics.set_state(
            o.depth,
            o.oldest_ms.map(|ms| ms as f64 / 1000.0).unwrap_or(0.0),
            timers,
            &ages,
        );
    }
    s.metrics.set_storage_errors(&s.health.storage());
    s.metrics.set_oauth(&s.oauth);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn healthz(State(s): State<Arc<HttpState>>) -> Response {
    let stuck = s.health.stuck();
    json_response(
        stuck.is_empty(),
        json!({
            "status": if stuck.is_empty() { "ok" } else { "stuck" },
            "stuck": stuck,
            "loops": s.health.beat_ages(),
            "uptime_secs": s.health.uptime().as_secs(),
        }),
    )
}

async fn readyz(State(s): State<Arc<HttpState>>) -> Response {
    let now = s.clock.now();
    let mut ok = true;
    let database = match tokio::time::timeout(CHECK_TIMEOUT, s.store.ping()).await {
        Ok(Ok(())) => json!({"ok": true}),
        Ok(Err(e)) => {
            ok = false;
            json!({"ok": false, "error": e.to_string()})
        }
        Err(_) => {
            ok = false;
            json!({"ok": false, "error": "no answer within 5 s"})
        }
    };
    // A loop whose database work is failing (disk full, I/O errors) makes the daemon unready
    // even while `SELECT 1` still answers.
    let failing: serde_json::Map<String, serde_json::Value> = s
        .health
        .storage()
        .into_iter()
        .filter_map(|(task, (_, e))| e.map(|e| (task, json!(e))))
        .collect();
    ok &= failing.is_empty();
    let database = json!({
        "ok": database["ok"].as_bool().unwrap_or(false) && failing.is_empty(),
        "error": database.get("error"),
        "failing": failing,
    });
    let stale = s.mailbox_stale.as_secs_f64();
    let mailboxes: Vec<serde_json::Value> = s
        .health
        .mailboxes()
        .into_iter()
        .map(|m| {
            // Read recently, and not failing since: a server that went away makes the daemon
            // unready as soon as the session notices, not when the last read grows stale.
            // Standing by for another daemon's mailbox is fine: that daemon reads it.
            let fresh = m.standby.is_some()
                || (m.last_poll_age_secs.is_some_and(|a| a <= stale) && m.last_error.is_none());
            ok &= fresh;
            json!({
                "mailbox": m.mailbox,
                "ok": fresh,
                "held_by": m.standby,
                "last_poll_age_secs": m.last_poll_age_secs,
                "last_error": m.last_error,
            })
        })
        .collect();
    let outbox = match tokio::time::timeout(CHECK_TIMEOUT, s.store.outbox_state(now)).await {
        Ok(Ok(o)) => {
            let stuck_for = o.oldest_due_ms.unwrap_or(0);
            let fine = stuck_for <= s.outbox_stuck.as_millis() as i64;
            ok &= fine;
            json!({
                "ok": fine,
                "depth": o.depth,
                "oldest_secs": o.oldest_ms.map(|ms| ms / 1000),
                "oldest_due_secs": o.oldest_due_ms.map(|ms| ms / 1000),
            })
        }
        _ => {
            ok = false;
            json!({"ok": false, "error": "cannot read the outbox"})
        }
    };
    let oauth: serde_json::Map<String, serde_json::Value> = s
        .oauth
        .iter()
        .map(|(name, src)| {
            let st = src.status();
            ok &= st.is_ok();
            let mut v = json!(st);
            v["ok"] = json!(st.is_ok());
            v["refreshes"] = json!(src.refreshes());
            (name.clone(), v)
        })
        .collect();
    json_response(
        ok,
        json!({
            "status": if ok { "ready" } else { "not ready" },
            "database": database,
            "mailboxes": mailboxes,
            "mailboxes_held": s.health.held(),
            "outbox": outbox,
            "oauth": oauth,
        }),
    )
}
