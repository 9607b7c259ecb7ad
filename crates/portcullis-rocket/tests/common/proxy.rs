//! A TCP proxy in front of the issuer that can be frozen: then it holds every byte it reads and
//! forwards nothing, as a Portcullis that hangs would (SIGSTOP), while connections stay open.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub base: String,
    frozen: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy on a free port forwarding to `127.0.0.1:target`.
    pub async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let frozen = Arc::new(AtomicBool::new(false));
        let held = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else { continue };
                let ((client_read, client_write), (server_read, server_write)) =
                    (client.into_split(), server.into_split());
                tokio::spawn(pump(client_read, server_write, held.clone()));
                tokio::spawn(pump(server_read, client_write, held.clone()));
            }
        });
        Proxy { base, frozen }
    }

    /// From now on nothing passes: requests in flight and new ones go unanswered.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }
}

async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, frozen: Arc<AtomicBool>) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                while frozen.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                if to.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
