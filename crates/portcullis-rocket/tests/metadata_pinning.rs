//! The client secret goes only to the configured `url`: a metadata document that names a token
//! endpoint elsewhere (a spoofed or misconfigured Portcullis) stops the app before it sends
//! anything there.

use portcullis_rocket::{ConnectError, Settings, Trust};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers every request on a fresh loopback port with `body` as JSON; returns the base URL.
async fn serve_json(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_outside_the_issuer_is_refused_before_the_secret_is_sent() {
    let issuer = "http://127.0.0.1:9";
    let metadata = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": "http://127.0.0.2:9/collect-secrets",
    });
    let url = serve_json(metadata.to_string()).await;
    let settings: Settings =
        serde_json::from_value(json!({"url": url, "client_id": "reports", "client_secret": "s3cret"}))
            .expect("settings");
    match Trust::connect(settings).await {
        Err(ConnectError::Refused(e)) => assert!(e.contains("token_endpoint"), "{e}"),
        Err(e) => panic!("expected a refusal naming token_endpoint, got: {e}"),
        Ok(_) => panic!("connected through a token endpoint outside the issuer"),
    }
}
