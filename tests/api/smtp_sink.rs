//! A real SMTP server over TCP for the mail tests (RFC 5321, just enough of it): it accepts
//! every message into memory, unless told to answer the end of the next DATA with a failure
//! code, or to be down (every connection closed at once). Started with [`SmtpSink::start_tls`]
//! it offers STARTTLS (RFC 3207) with a self-signed certificate made at start, and records
//! whether each message came over the upgraded session.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::rustls::{self, pki_types};
use tokio_rustls::TlsAcceptor;

/// A connection, plain or after STARTTLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// A message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
    /// It came over a session upgraded by STARTTLS.
    pub tls: bool,
}

impl Received {
    /// The message with quoted-printable soft breaks and `=3D` undone.
    pub fn text(&self) -> String {
        self.data.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The token of the first link in the message.
    pub fn token(&self) -> String {
        let text = self.text();
        let start = text.find("?token=").expect("a link with a token") + "?token=".len();
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }

    pub fn subject(&self) -> String {
        self.data.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_owned()
    }
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    /// Replies to the next DATA ends (then 250).
    replies: VecDeque<u16>,
    down: bool,
    /// Sessions opened (greeted).
    sessions: usize,
    /// Sessions up to this one (by opening order) read on but answer nothing: a peer gone
    /// without a word, or a NAT that forgot the connection.
    frozen_upto: usize,
    /// Sessions the client ended with `QUIT` (answered or not).
    quits: usize,
    /// Sessions whose client closed the connection (end of stream).
    hang_ups: usize,
}

/// The server; it runs until the test ends.
#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// With STARTTLS: the certificate, PEM (for `mail.tls_ca_file`).
    pub certificate_pem: Option<String>,
    /// TLS from the first byte.
    implicit: bool,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::listen(None, false).await
    }

    /// A sink that offers STARTTLS with a self-signed certificate for 127.0.0.1 and localhost.
    pub async fn start_tls() -> SmtpSink {
        Self::start_with_certificate(false).await
    }

    /// A sink speaking TLS from the first byte (`smtps://`, RFC 8314 §3.3), same certificate.
    pub async fn start_implicit_tls() -> SmtpSink {
        Self::start_with_certificate(true).await
    }

    async fn start_with_certificate(implicit: bool) -> SmtpSink {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("a self-signed certificate");
        let key = pki_types::PrivatePkcs8KeyDer::from(made.key_pair.serialize_der());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key.into())
            .expect("the certificate and its key");
        let mut sink = Self::listen(Some(TlsAcceptor::from(Arc::new(config))), implicit).await;
        sink.certificate_pem = Some(made.cert.pem());
        sink
    }

    async fn listen(tls: Option<TlsAcceptor>, implicit: bool) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sink =
            SmtpSink { addr: listener.local_addr().unwrap(), state: Arc::default(), certificate_pem: None, implicit };
        let state = sink.state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, tls) = (state.clone(), tls.clone());
                tokio::spawn(async move {
                    match (implicit, tls) {
                        (true, Some(tls)) => {
                            let Ok(secured) = tls.accept(stream).await else { return };
                            session(Box::new(secured), state, None, true).await
                        }
                        (_, tls) => session(Box::new(stream), state, tls, false).await,
                    }
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        let scheme = if self.implicit { "smtps" } else { "smtp" };
        format!("{scheme}://127.0.0.1:{}", self.addr.port())
    }

    /// The next DATA ends are answered with these codes.
    pub fn answer_next(&self, codes: &[u16]) {
        self.state.lock().unwrap().replies.extend(codes);
    }

    /// While down, every connection is closed at once.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// How many sessions ended with the client closing the connection.
    pub fn hang_ups(&self) -> usize {
        self.state.lock().unwrap().hang_ups
    }

    /// The sessions open now stop answering anything, `QUIT` too (new ones answer).
    pub fn freeze_open_sessions(&self) {
        let mut state = self.state.lock().unwrap();
        state.frozen_upto = state.sessions;
    }

    /// How many sessions were opened.
    pub fn sessions(&self) -> usize {
        self.state.lock().unwrap().sessions
    }

    /// How many sessions the client ended with `QUIT`.
    pub fn quits(&self) -> usize {
        self.state.lock().unwrap().quits
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Messages to `address`.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
    }
}

async fn session(stream: Box<dyn Stream>, state: Arc<Mutex<State>>, tls: Option<TlsAcceptor>, secured: bool) {
    let number = {
        let mut state = state.lock().unwrap();
        if state.down {
            return;
        }
        state.sessions += 1;
        state.sessions
    };
    let mut lines = BufReader::new(stream);
    let _ = lines.get_mut().write_all(b"220 sink ESMTP\r\n").await;
    let mut upgraded = secured;
    let mut to = vec![];
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            state.lock().unwrap().hang_ups += 1;
            return;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let frozen = {
            let mut state = state.lock().unwrap();
            state.quits += usize::from(command == "QUIT");
            number <= state.frozen_upto
        };
        if frozen {
            continue;
        }
        let reply: String = if command.starts_with("EHLO") {
            let offer = if tls.is_some() && !upgraded { "250-STARTTLS\r\n" } else { "" };
            format!("250-sink\r\n{offer}250-8BITMIME\r\n250 SMTPUTF8\r\n")
        } else if command == "STARTTLS" && !upgraded && tls.is_some() {
            // RFC 3207 §4.2: after the handshake the client starts over with EHLO.
            if lines.get_mut().write_all(b"220 2.0.0 ready to start TLS\r\n").await.is_err() {
                return;
            }
            let Ok(secured) = tls.as_ref().unwrap().accept(lines.into_inner()).await else { return };
            lines = BufReader::new(Box::new(secured) as Box<dyn Stream>);
            upgraded = true;
            to.clear();
            continue;
        } else if command.starts_with("MAIL FROM") {
            to.clear();
            "250 ok\r\n".into()
        } else if command.starts_with("RCPT TO") {
            let address =
                line.trim_end()[8..].trim().trim_start_matches('<').split('>').next().unwrap_or("").to_owned();
            to.push(address);
            "250 ok\r\n".into()
        } else if command == "DATA" {
            let _ = lines.get_mut().write_all(b"354 go on\r\n").await;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            let mut state = state.lock().unwrap();
            match state.replies.pop_front() {
                Some(code) if code >= 500 => format!("{code} 5.1.1 refused for good\r\n"),
                Some(code) => format!("{code} 4.3.0 try again later\r\n"),
                None => {
                    state.messages.push(Received { to: to.clone(), data, tls: upgraded });
                    "250 2.0.0 queued\r\n".into()
                }
            }
        } else if command == "QUIT" {
            let _ = lines.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else if command.starts_with("RSET") || command.starts_with("NOOP") || command.starts_with("HELO") {
            "250 ok\r\n".into()
        } else {
            "502 not implemented\r\n".into()
        };
        if lines.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
