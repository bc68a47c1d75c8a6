//! Signals: SIGTERM/SIGINT stop the daemon after the work in hand; SIGHUP reloads the reloadable
//! settings through the [`Reloader`] (a reload that fails changes nothing).

use crate::app::Reloader;
use tokio_util::sync::CancellationToken;

/// Listens for the signals in the background.
pub fn spawn(cancel: CancellationToken, reloader: Reloader) -> Result<(), std::io::Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); cancel.cancel(); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); cancel.cancel(); break; }
                _ = hup.recv() => {
                    crate::ops::systemd::reloading();
                    match reloader.reload() {
                        Ok(restart) => {
                            tracing::info!("SIGHUP: configuration and templates reloaded");
                            if !restart.is_empty() {
                                tracing::warn!(settings = ?restart, "SIGHUP: these changes take effect only after a restart");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "SIGHUP: reload rejected; keeping the configuration and templates in use"),
                    }
                    crate::ops::systemd::ready("processing mail");
                }
            }
        }
    });
    Ok(())
}
