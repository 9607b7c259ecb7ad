//! A minimal keep-alive HTTP/1.1 client: one TCP connection, one request in flight.

use std::borrow::Cow;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where the server listens: `http://host:port` split into what the client needs.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("--url must start with http:// (got {url:?})"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("cannot resolve {authority}"))?;
        let host = HeaderValue::from_str(authority).map_err(|e| e.to_string())?;
        Ok(Target { addr, host })
    }
}

/// One request, built once per send.
pub struct Call {
    pub method: Method,
    pub path: Cow<'static, str>,
    pub bearer: Option<HeaderValue>,
    /// A `Cookie` header (the code-flow scenarios' browser).
    pub cookie: Option<HeaderValue>,
    /// The body and its content type.
    pub body: Option<(&'static str, Bytes)>,
}

impl Call {
    pub fn get(path: impl Into<Cow<'static, str>>, bearer: Option<HeaderValue>) -> Call {
        Call { method: Method::GET, path: path.into(), bearer, cookie: None, body: None }
    }

    pub fn post_json(path: impl Into<Cow<'static, str>>, json: Bytes) -> Call {
        Call::post(path, "application/json", json)
    }

    /// An `application/x-www-form-urlencoded` POST (the hosted forms, `/oauth/token`).
    pub fn post_form(path: impl Into<Cow<'static, str>>, form: Bytes) -> Call {
        Call::post(path, "application/x-www-form-urlencoded", form)
    }

    fn post(path: impl Into<Cow<'static, str>>, content_type: &'static str, body: Bytes) -> Call {
        Call { method: Method::POST, path: path.into(), bearer: None, cookie: None, body: Some((content_type, body)) }
    }
}

/// An answer with the headers a browser acts on.
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    /// Each `Set-Cookie` header's value.
    pub set_cookies: Vec<String>,
    pub body: Bytes,
}

/// A keep-alive connection that reconnects on the next send after any failure.
pub struct Client {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(target: Target) -> Client {
        Client { target, sender: None }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(self.target.addr).await.map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends `call` and reads the whole response body.
    pub async fn send(&mut self, call: &Call) -> Result<(StatusCode, Bytes), String> {
        let (parts, body) = self.exchange(call).await?;
        Ok((parts.status, body))
    }

    /// Sends `call`; the answer with its `Location` and `Set-Cookie` headers.
    pub async fn send_reply(&mut self, call: &Call) -> Result<Reply, String> {
        let (parts, body) = self.exchange(call).await?;
        let text = |v: &HeaderValue| v.to_str().map(str::to_owned).map_err(|e| format!("a header: {e}"));
        Ok(Reply {
            status: parts.status,
            location: parts.headers.get(LOCATION).map(text).transpose()?,
            set_cookies: parts.headers.get_all(SET_COOKIE).iter().map(text).collect::<Result<_, _>>()?,
            body,
        })
    }

    async fn exchange(&mut self, call: &Call) -> Result<(hyper::http::response::Parts, Bytes), String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(call.path.as_ref())
            .header(HOST, self.target.host.clone());
        if let Some(bearer) = &call.bearer {
            builder = builder.header(AUTHORIZATION, bearer.clone());
        }
        if let Some(cookie) = &call.cookie {
            builder = builder.header(COOKIE, cookie.clone());
        }
        let body = match &call.body {
            Some((content_type, body)) => {
                builder = builder.header(CONTENT_TYPE, HeaderValue::from_static(content_type));
                Full::new(body.clone())
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|e| e.to_string())?;
        let result = async {
            let sender = self.sender.as_mut().ok_or("not connected")?;
            sender.ready().await.map_err(|e| format!("ready: {e}"))?;
            let response = sender.send_request(request).await.map_err(|e| format!("send: {e}"))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
            Ok::<_, String>((parts, body))
        }
        .await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

/// A bearer header value for `token`.
pub fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("tokens are header-safe")
}
