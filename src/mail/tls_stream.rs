//! Implicit TLS (`smtps://`, RFC 8314 §3.3) over a socket of ours: lettre's client accepts any
//! stream of its `AsyncTokioStream` kind, but makes TLS only through its own
//! `AsyncNetworkStream`, whose reads and writes are the `futures` I/O traits. [`Sealed`] carries
//! that TLS stream over to tokio's traits, unchanged, so the socket under it keeps the
//! `TCP_NODELAY` of [`super::connection`]. lettre marks `AsyncNetworkStream` deprecated as "not
//! meant to be public"; it is still its one way to start TLS on a given socket.

#![allow(deprecated)]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead as FuturesRead, AsyncWrite as FuturesWrite};
use lettre::transport::smtp::client::{AsyncNetworkStream, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// `tcp` with a TLS session made on it (the handshake done), for lettre's client.
pub async fn wrap(tcp: TcpStream, tls: TlsParameters) -> Result<Box<dyn AsyncTokioStream>, Error> {
    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
    stream.upgrade_tls(tls).await?;
    Ok(Box::new(Sealed(stream)))
}

/// lettre's TLS stream behind tokio's I/O traits.
#[derive(Debug)]
struct Sealed(AsyncNetworkStream);

impl AsyncRead for Sealed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match Pin::new(&mut self.0).poll_read(cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Sealed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

impl AsyncTokioStream for Sealed {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}
