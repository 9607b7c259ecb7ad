//! `GET /docs`: Swagger UI served entirely from the binary (README, "API documentation").

use crate::helpers::*;
use rocket::http::{ContentType, Status};

/// The local paths a page refers to in `src="..."` and `href="..."`.
fn local_assets(html: &str) -> Vec<String> {
    let mut assets = vec![];
    for attribute in ["src=\"", "href=\""] {
        for (start, _) in html.match_indices(attribute) {
            let rest = &html[start + attribute.len()..];
            let value = &rest[..rest.find('"').expect("closing quote")];
            assert!(
                value.starts_with('/') && !value.starts_with("//"),
                "the page refers to {value:?}, not a local path"
            );
            assets.push(value.to_owned());
        }
    }
    assets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_served_entirely_by_the_binary() {
    let app = TestApp::new(Backend::Sqlite).await;
    for page in ["/docs", "/docs/"] {
        let response = app.client.get(page).dispatch().await;
        assert_eq!(response.status(), Status::Ok, "{page}");
        assert_eq!(response.content_type(), Some(ContentType::HTML), "{page}");
        let csp = response.headers().get_one("Content-Security-Policy").expect("a CSP").to_owned();
        assert!(csp.contains("connect-src 'self'") && csp.contains("script-src 'self'"), "{csp}");
        let html = response.into_string().await.expect("html");
        assert!(!html.contains("http://") && !html.contains("https://"), "no absolute URL in the page");
        let assets = local_assets(&html);
        for expected in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/swagger-initializer.js"] {
            assert!(assets.iter().any(|a| a == expected), "the page loads {expected}");
        }
        for asset in assets {
            let response = app.client.get(asset.clone()).dispatch().await;
            assert_eq!(response.status(), Status::Ok, "{asset}");
            let content_type = response.content_type().expect("a content type");
            // Rocket sends `X-Content-Type-Options: nosniff`: scripts must be served as scripts.
            if asset.ends_with(".js") {
                assert!(content_type.sub() == "javascript", "{asset}: {content_type}");
            }
            if asset.ends_with(".css") {
                assert_eq!(content_type, ContentType::CSS, "{asset}");
            }
            assert!(!response.into_bytes().await.expect("body").is_empty(), "{asset}");
        }
    }
    // The configuration points at this service's document, nowhere else.
    let config = app.client.get("/docs/swagger-initializer.js").dispatch().await.into_string().await.expect("js");
    assert!(config.contains("\"url\": \"/openapi.json\""), "{config}");
    assert!(config.contains("\"validatorUrl\": \"none\""), "{config}");
    assert!(!config.contains("http://") && !config.contains("https://"), "{config}");
    // Unknown files are the contract's 404.
    let (status, code) = error_of(app.client.get("/docs/no-such-file.js").dispatch().await).await;
    assert_eq!((status, code.as_str()), (Status::NotFound, "not_found"));
}
