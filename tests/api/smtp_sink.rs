//! A real SMTP server over TCP for the mail tests (RFC 5321, just enough of it): it accepts
//! every message into memory, unless told to answer the end of the next DATA with a failure
//! code, or to be down (every connection closed at once).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
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
}

/// The server; it runs until the test ends.
#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sink = SmtpSink { addr: listener.local_addr().unwrap(), state: Arc::default() };
        let state = sink.state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, state.clone()));
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.addr.port())
    }

    /// The next DATA ends are answered with these codes.
    pub fn answer_next(&self, codes: &[u16]) {
        self.state.lock().unwrap().replies.extend(codes);
    }

    /// While down, every connection is closed at once.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Messages to `address`.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
    }
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) {
    if state.lock().unwrap().down {
        return;
    }
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
    let mut to = vec![];
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: String = if command.starts_with("EHLO") {
            "250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
        } else if command.starts_with("MAIL FROM") {
            to.clear();
            "250 ok\r\n".into()
        } else if command.starts_with("RCPT TO") {
            let address =
                line.trim_end()[8..].trim().trim_start_matches('<').split('>').next().unwrap_or("").to_owned();
            to.push(address);
            "250 ok\r\n".into()
        } else if command == "DATA" {
            let _ = write.write_all(b"354 go on\r\n").await;
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
                    state.messages.push(Received { to: to.clone(), data });
                    "250 2.0.0 queued\r\n".into()
                }
            }
        } else if command == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else if command.starts_with("RSET") || command.starts_with("NOOP") || command.starts_with("HELO") {
            "250 ok\r\n".into()
        } else {
            "502 not implemented\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
