//! The SMTP relay's connections: lettre's SMTP client (`AsyncSmtpConnection`: EHLO, STARTTLS,
//! AUTH, MAIL / RCPT / DATA of RFC 5321) over TCP sockets opened here, kept in a small pool.
//!
//! Why not lettre's `AsyncSmtpTransport`: it opens its sockets with Nagle's algorithm on, and its
//! client writes a message's end (`CRLF . CRLF`, RFC 5321 §4.1.1.4) apart from the message. The
//! server acknowledges the message's bytes only when its delayed-ACK timer fires (40 ms on
//! Linux), so the end waited for it: every mail took ~45 ms, and the outbox sent ~21 mails a
//! second (`cargo bench --bench pipeline -- burst`). Here every socket has `TCP_NODELAY`, as
//! mail servers' own clients do; a mail to Postfix on loopback takes ~2–3 ms.

use crate::config::TlsMode;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::Error;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Idle connections kept for the next mail (at most `outbox.connections` are ever in use).
const MAX_IDLE: usize = 32;
/// A connection idle longer than this is closed rather than reused (Postfix's `smtpd_timeout`
/// is 300 s; many servers close sooner).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest one mail may take, from MAIL FROM to the reply after its end. RFC 5321
/// §4.5.3.2.6 lets a server take 10 minutes over that reply; a healthy relay takes seconds, and
/// a send that cannot finish must end well inside the worker's watchdog (150 s) and its claim's
/// lease (300 s), or another attempt could begin while this one may still succeed.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);

/// How to reach and log in to the relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Connect timeout (and of each step of the greeting, TLS and login).
    pub timeout: Duration,
    pub credentials: Option<Credentials>,
    /// AUTH mechanisms to choose from (RFC 4954); PLAIN and LOGIN when not given.
    pub mechanisms: Vec<Mechanism>,
}

/// A pool of logged-in connections to one relay. Clones share the pool.
#[derive(Clone)]
pub struct Relay {
    config: Arc<RelayConfig>,
    tls: Option<TlsParameters>,
    /// Implicit TLS: built once (it reads the system's certificates).
    connector: Option<tokio_rustls::TlsConnector>,
    hello: Arc<ClientId>,
    idle: Arc<std::sync::Mutex<Vec<(AsyncSmtpConnection, Instant)>>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("tls", &self.config.tls)
            .finish()
    }
}

/// A TLS stream lettre's client can run over (implicit TLS, RFC 8314 §3.3).
struct Tls(tokio_rustls::client::TlsStream<TcpStream>);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// A failure to reach or talk to the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// From lettre's client: a reply of the server (with its code), or a fault it saw.
    #[error(transparent)]
    Smtp(#[from] Error),
    /// No connection, no TLS, or no answer in time: transient.
    #[error("{0}")]
    Network(String),
}

impl RelayError {
    /// A 5xx reply (RFC 5321 §4.2.1), or a mail lettre refuses to send: sending it again cannot
    /// help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, RelayError::Smtp(e) if e.is_permanent())
    }
}

fn network(e: impl std::fmt::Display) -> RelayError {
    RelayError::Network(e.to_string())
}

impl Relay {
    /// Checks the TLS settings (the host must be a valid TLS server name) without connecting.
    ///
    /// Errors: the reason, as text, when TLS parameters cannot be built for the host.
    pub fn new(config: RelayConfig) -> Result<Relay, String> {
        let tls = match config.tls {
            TlsMode::None => None,
            TlsMode::Starttls | TlsMode::Tls => {
                Some(TlsParameters::new(config.host.clone()).map_err(|e| e.to_string())?)
            }
        };
        let connector = match config.tls {
            TlsMode::Tls => Some(crate::inbound::fetch::tls_connector()?),
            _ => None,
        };
        Ok(Relay {
            config: Arc::new(config),
            tls,
            connector,
            hello: Arc::new(ClientId::default()),
            idle: Default::default(),
        })
    }

    async fn within<T, E: Into<RelayError>>(
        &self,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, RelayError> {
        match tokio::time::timeout(self.config.timeout, fut).await {
            Ok(r) => r.map_err(Into::into),
            Err(_) => Err(network(format!(
                "no answer from {}:{} within {} s",
                self.config.host,
                self.config.port,
                self.config.timeout.as_secs()
            ))),
        }
    }

    /// Opens a connection: TCP with `TCP_NODELAY`, implicit TLS or STARTTLS as configured, EHLO,
    /// AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, RelayError> {
        let c = &self.config;
        let tcp = self
            .within(async {
                TcpStream::connect((c.host.as_str(), c.port))
                    .await
                    .map_err(network)
            })
            .await?;
        tcp.set_nodelay(true).map_err(network)?;
        let stream: Box<dyn AsyncTokioStream> = match c.tls {
            TlsMode::Tls => {
                let connector = self
                    .connector
                    .clone()
                    .ok_or_else(|| network("no TLS connector"))?;
                let name =
                    rustls::pki_types::ServerName::try_from(c.host.clone()).map_err(network)?;
                let tls = self
                    .within(async { connector.connect(name, tcp).await.map_err(network) })
                    .await?;
                Box::new(Tls(tls))
            }
            _ => Box::new(tcp),
        };
        let mut conn = self
            .within(AsyncSmtpConnection::connect_with_transport(
                stream,
                &self.hello,
            ))
            .await?;
        if let (TlsMode::Starttls, Some(p)) = (c.tls, &self.tls) {
            self.within(conn.starttls(p.clone(), &self.hello)).await?;
        }
        if let Some(credentials) = &c.credentials {
            let mechanisms: &[Mechanism] = if c.mechanisms.is_empty() {
                DEFAULT_MECHANISMS
            } else {
                &c.mechanisms
            };
            self.within(conn.auth(mechanisms, credentials)).await?;
        }
        Ok(conn)
    }

    /// A pooled connection that still answers, or a new one.
    async fn take(&self) -> Result<AsyncSmtpConnection, RelayError> {
        loop {
            let parked = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.pop()
            };
            let Some((mut conn, since)) = parked else {
                return self.connect().await;
            };
            let idle_for = since.elapsed();
            if idle_for > IDLE_TIMEOUT {
                self.close(conn).await;
                continue;
            }
            // Checked with NOOP before each mail, as lettre's pool does: a relay that closed the
            // connection (its idle timeout, a per-connection limit) costs a round trip, not the
            // mail's next attempt. A peer gone without a word (half-open) must not hold the
            // outbox: the NOOP is bounded by the timeout, and a failed one is dropped at once
            // (a QUIT to a dead peer would wait the timeout again).
            if !tokio::time::timeout(self.config.timeout, conn.test_connected())
                .await
                .unwrap_or(false)
            {
                drop(conn);
                continue;
            }
            return Ok(conn);
        }
    }

    /// Says QUIT, waiting at most the timeout, and drops the connection.
    async fn close(&self, mut conn: AsyncSmtpConnection) {
        let _ = tokio::time::timeout(self.config.timeout, conn.abort()).await;
    }

    fn park(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    /// Sends `raw` as it is (RFC 5321 MAIL, RCPT, DATA) on a pooled connection.
    ///
    /// Errors: [`RelayError::Smtp`] with the server's reply code when it gave one (4xx transient,
    /// 5xx permanent); [`RelayError::Network`] when the relay cannot be reached in time.
    pub async fn send_raw(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), RelayError> {
        let mut conn = self.take().await?;
        let sent = match tokio::time::timeout(SEND_TIMEOUT, conn.send(envelope, raw)).await {
            Ok(r) => r,
            Err(_) => {
                return Err(network(format!(
                    "{}:{} did not answer within {} s",
                    self.config.host,
                    self.config.port,
                    SEND_TIMEOUT.as_secs()
                )))
            }
        };
        match sent {
            Ok(_) => {
                self.park(conn);
                Ok(())
            }
            Err(e) => {
                // After a refusal the server waits for the next transaction; after a network
                // fault lettre marks the connection broken and it is dropped.
                if !conn.has_broken()
                    && matches!(
                        tokio::time::timeout(self.config.timeout, conn.command(lettre_rset()))
                            .await,
                        Ok(Ok(_))
                    )
                {
                    self.park(conn);
                }
                Err(e.into())
            }
        }
    }

    /// Connects, logs in and says QUIT: whether the relay takes our connection.
    pub async fn test_connection(&self) -> Result<bool, RelayError> {
        let conn = self.connect().await?;
        self.close(conn).await;
        Ok(true)
    }
}

fn lettre_rset() -> lettre::transport::smtp::commands::Rset {
    lettre::transport::smtp::commands::Rset
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay that takes the connection and never says a word (a half-open or hung server):
    /// the send fails as a network fault within the timeout instead of holding the outbox.
    #[tokio::test]
    async fn a_silent_server_is_a_transient_failure_within_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                open.push(s);
            }
        });
        let relay = Relay::new(RelayConfig {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            timeout: Duration::from_millis(300),
            credentials: None,
            mechanisms: Vec::new(),
        })
        .expect("relay");
        let envelope = Envelope::new(
            Some("support@example.test".parse().expect("from")),
            vec!["customer@example.org".parse().expect("to")],
        )
        .expect("envelope");
        let started = Instant::now();
        let e = relay
            .send_raw(&envelope, b"Subject: x\r\n\r\nx\r\n")
            .await
            .expect_err("no greeting");
        assert!(matches!(e, RelayError::Network(_)), "{e}");
        assert!(!e.is_permanent());
        assert!(started.elapsed() < Duration::from_secs(5));
        held.abort();
    }
}
