//! SMTP connections of the sender's own, kept in a small pool, each socket with `TCP_NODELAY`.
//!
//! Why not lettre's pooled transport: it opens its sockets with Nagle's algorithm on (RFC 896),
//! and lettre writes a message's end marker (`\r\n.\r\n`, RFC 5321 §4.1.1.4) in a write of its
//! own after the body. With Nagle that small write waits for the ACK of the body, which the
//! server delays (RFC 1122 §4.2.3.2; about 40 ms on Linux), so every message cost ~40 ms per
//! connection: at most ~200 messages a second from 8 connections, whatever the machine
//! (bench/README.md, "Mail"). Here the socket is made by us, with `TCP_NODELAY`, and handed to
//! lettre's SMTP client (`AsyncSmtpConnection`) for the protocol.
//!
//! A connection taken from the pool is checked with `NOOP` first (as lettre's pool does, but
//! bounded by `mail.timeout`), and one that failed or did not answer is dropped, never reused.
//! STARTTLS (RFC 3207) when offered or required; implicit TLS (RFC 8314 §3.3) for `smtps://`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::tls_stream;

/// Connections kept, and deliveries in flight at once.
pub const CONNECTIONS: usize = 8;
/// A kept connection unused for longer is closed rather than reused.
const IDLE: Duration = Duration::from_secs(60);

/// How the session is secured.
pub enum Security {
    /// Plain text (`mail.tls = "none"`).
    None,
    /// STARTTLS when the server offers it.
    Opportunistic(TlsParameters),
    /// STARTTLS or no session.
    Required(TlsParameters),
    /// TLS from the first byte (`smtps://`).
    Implicit(TlsParameters),
}

/// Where and how to connect.
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    /// Bound on connecting, on the session set-up (implicit TLS, greeting, EHLO, STARTTLS,
    /// AUTH), and on each `NOOP` and `QUIT` of a kept session.
    pub timeout: Duration,
}

/// Why a delivery failed.
#[derive(Debug)]
pub enum Failed {
    /// What lettre's SMTP client reported: a reply (4yz, 5yz) or the connection.
    Smtp(Error),
    /// No session could be made (connecting, timeouts): worth another try.
    Connect(String),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed::Smtp(e)
    }
}

/// The pool: at most [`CONNECTIONS`] sessions at once, idle ones kept for the next message.
pub struct SmtpPool {
    endpoint: Endpoint,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    slots: Semaphore,
}

impl SmtpPool {
    pub fn new(endpoint: Endpoint) -> SmtpPool {
        SmtpPool {
            endpoint,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(CONNECTIONS),
        }
    }

    /// Sends one message (already formatted) over a kept or a new connection.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<Response, Failed> {
        let _slot = self.slots.acquire().await.expect("the pool's semaphore is never closed");
        let mut conn = match self.kept().await {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let sent = conn.send(envelope, message).await;
        if !conn.has_broken() {
            self.idle.lock().expect("pool lock").push((conn, Instant::now()));
        }
        Ok(sent?)
    }

    /// Ends every kept session with `QUIT` (RFC 5321 §4.1.1.10: the server may treat a session
    /// closed without it as aborted, and some log each as an error), all at once; for shutdown,
    /// after the last delivery.
    pub async fn close(&self) {
        self.quit_all(self.take_idle()).await;
    }

    fn take_idle(&self) -> Vec<(AsyncSmtpConnection, Instant)> {
        std::mem::take(&mut *self.idle.lock().expect("pool lock"))
    }

    /// Ends sessions with `QUIT`, all at once, each bounded by the endpoint's timeout. A session
    /// that does not answer in time is simply dropped (its socket closed): lettre's `abort`
    /// would send `QUIT` again and wait for it without a bound.
    async fn quit_all(&self, sessions: Vec<(AsyncSmtpConnection, Instant)>) {
        let quit = |(mut conn, _): (AsyncSmtpConnection, Instant)| async move {
            let _ = tokio::time::timeout(self.endpoint.timeout, conn.quit()).await;
        };
        futures_util::future::join_all(sessions.into_iter().map(quit)).await;
    }

    /// A kept connection that still answers `NOOP`, if there is one. Those kept too long are
    /// ended with `QUIT`; a broken one is dropped. The check is bounded by the endpoint's timeout
    /// (`mail.timeout`, one command's): a connection whose peer went away without a word (a
    /// NAT or firewall that forgot it) would otherwise hold the delivery until the delivery's
    /// own bound ran out and cost the message a try. After such a silence the delivery connects
    /// anew rather than wait on the next kept connection, which likely shares its fate.
    async fn kept(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().expect("pool lock").pop()?;
            if conn.has_broken() {
                continue;
            }
            if since.elapsed() >= IDLE {
                // Kept connections are pushed in time order, so the rest are older still: end
                // them all at once (one timeout at most, not one each) and connect anew.
                let mut stale = self.take_idle();
                stale.push((conn, since));
                self.quit_all(stale).await;
                return None;
            }
            match tokio::time::timeout(self.endpoint.timeout, conn.test_connected()).await {
                Ok(true) => return Some(conn),
                Ok(false) => continue,
                Err(_) => return None,
            }
        }
    }

    /// A new session: TCP with `TCP_NODELAY`, then TLS, EHLO, STARTTLS and AUTH as configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failed> {
        let e = &self.endpoint;
        let late = |what: &'static str| move |_| Failed::Connect(what.to_owned());
        let tcp = tokio::time::timeout(e.timeout, TcpStream::connect((e.host.as_str(), e.port)))
            .await
            .map_err(late("connecting to the SMTP server timed out"))?
            .map_err(|io| Failed::Connect(format!("cannot connect to the SMTP server: {io}")))?;
        tcp.set_nodelay(true).map_err(|io| Failed::Connect(format!("TCP_NODELAY: {io}")))?;
        let setup = async {
            let stream = match &e.security {
                Security::Implicit(tls) => tls_stream::wrap(tcp, tls.clone()).await?,
                _ => Box::new(tcp),
            };
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
            match &e.security {
                Security::Opportunistic(tls) if conn.can_starttls() => conn.starttls(tls.clone(), &self.hello).await?,
                Security::Required(tls) => conn.starttls(tls.clone(), &self.hello).await?,
                _ => {}
            }
            if let Some(credentials) = &e.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await?;
            }
            Ok::<_, Error>(conn)
        };
        Ok(tokio::time::timeout(e.timeout, setup).await.map_err(late("the SMTP session set-up timed out"))??)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;

    /// A bare SMTP peer: greets, answers EHLO and NOOP, counts QUIT; while `silent`, answers nothing.
    struct Peer {
        port: u16,
        quits: Arc<AtomicUsize>,
        silent: Arc<AtomicBool>,
    }

    async fn peer() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (quits, silent) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let port = listener.local_addr().unwrap().port();
        let (q, s) = (quits.clone(), silent.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (quits, silent) = (q.clone(), s.clone());
                tokio::spawn(async move {
                    let mut lines = BufReader::new(socket);
                    let _ = lines.get_mut().write_all(b"220 peer\r\n").await;
                    let mut line = String::new();
                    while lines.read_line(&mut line).await.unwrap_or(0) > 0 {
                        let quit = line.starts_with("QUIT");
                        quits.fetch_add(quit as usize, Ordering::SeqCst);
                        if !silent.load(Ordering::SeqCst) {
                            let _ = lines.get_mut().write_all(if quit { b"221 bye\r\n" } else { b"250 ok\r\n" }).await;
                        }
                        line.clear();
                    }
                });
            }
        });
        Peer { port, quits, silent }
    }

    fn pool(port: u16) -> SmtpPool {
        let timeout = Duration::from_secs(1);
        SmtpPool::new(Endpoint { host: "127.0.0.1".into(), port, security: Security::None, credentials: None, timeout })
    }

    /// Keeps two new sessions, last used `ago`.
    async fn keep_two(pool: &SmtpPool, ago: Duration) {
        for _ in 0..2 {
            let conn = pool.connect().await.unwrap();
            pool.idle.lock().unwrap().push((conn, Instant::now().checked_sub(ago).unwrap()));
        }
    }

    #[tokio::test]
    async fn a_kept_session_that_answers_noop_is_reused() {
        let peer = peer().await;
        let pool = pool(peer.port);
        keep_two(&pool, Duration::ZERO).await;
        assert!(pool.kept().await.is_some());
        assert_eq!(pool.idle.lock().unwrap().len(), 1, "the other stays kept");
    }

    #[tokio::test]
    async fn sessions_past_their_idle_time_are_all_ended_with_quit_at_once() {
        let peer = peer().await;
        let pool = pool(peer.port);
        keep_two(&pool, IDLE * 2).await;
        assert!(pool.kept().await.is_none(), "connect anew");
        assert_eq!(peer.quits.load(Ordering::SeqCst), 2);
        assert!(pool.idle.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn silent_sessions_past_their_idle_time_are_sent_quit_and_dropped_without_waiting_on_them() {
        let peer = peer().await;
        let pool = pool(peer.port);
        keep_two(&pool, IDLE * 2).await;
        peer.silent.store(true, Ordering::SeqCst);
        // lettre's `abort` would wait for the reply to its QUIT for ever: this bound only stops a hang.
        let ended = tokio::time::timeout(Duration::from_secs(60), pool.kept()).await;
        assert!(matches!(ended, Ok(None)), "connect anew");
        assert_eq!(peer.quits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_silent_kept_session_is_given_up_after_the_timeout() {
        let peer = peer().await;
        let pool = pool(peer.port);
        keep_two(&pool, Duration::ZERO).await;
        peer.silent.store(true, Ordering::SeqCst);
        assert!(pool.kept().await.is_none(), "connect anew rather than wait on the other");
        assert_eq!(pool.idle.lock().unwrap().len(), 1);
    }
}
