//! Logs: to stderr for journald, plain or JSON (`[log] format`), filtered by `[log] filter` (or
//! `RUST_LOG`), the filter reloadable on SIGHUP. Customers' addresses can be masked
//! (`mask_addresses`): `wang@qq.com` → `w***@qq.com`.
//!
//! Invariants: message bodies and secrets are never logged at info level (secrets cannot be:
//! `Secret`'s Debug prints `***`); logging set-up never fails the start (a second init is ignored).

use crate::config::{LogFormat, LogSettings};
use crate::domain::EmailAddress;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

static MASK: AtomicBool = AtomicBool::new(false);

/// An address as logs show it: masked when `log.mask_addresses` is on.
pub fn addr(a: &EmailAddress) -> String {
    if !MASK.load(Ordering::Relaxed) {
        return a.to_string();
    }
    let local = a.local_part();
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{}", a.domain())
}

/// Changes the filter of a running daemon.
pub struct LogReload {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set: it wins over config, also on reload.
    from_env: bool,
}

impl LogReload {
    pub fn apply(&self, s: &LogSettings) -> Result<(), String> {
        MASK.store(s.mask_addresses, Ordering::Relaxed);
        if self.from_env {
            return Ok(());
        }
        let filter = EnvFilter::try_new(&s.filter).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())
    }
}

/// Installs the global logger. Returns the reload handle (none if a logger was already set).
pub fn init(s: &LogSettings) -> Option<LogReload> {
    MASK.store(s.mask_addresses, Ordering::Relaxed);
    let (filter, from_env) = match EnvFilter::try_from_default_env() {
        Ok(f) => (f, true),
        Err(_) => (EnvFilter::new(&s.filter), false),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match s.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Plain => registry
            .with(
                tracing_subscriber::fmt::layer()
                    // Colours for a terminal only: journald stores what it is given.
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    installed.ok().map(|_| LogReload { handle, from_env })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_when_asked() {
        let a = EmailAddress::parse("wang.li@qq.com").expect("addr");
        MASK.store(true, Ordering::Relaxed);
        assert_eq!(addr(&a), "w***@qq.com");
        MASK.store(false, Ordering::Relaxed);
        assert_eq!(addr(&a), "wang.li@qq.com");
    }
}
