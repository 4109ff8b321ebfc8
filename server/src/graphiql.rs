//! GraphiQL, served entirely from the binary.
//!
//! Regional networks often run on closed networks, and the page is where
//! people paste bearer tokens: it must neither depend on nor run anything
//! from a CDN. GraphiQL 3.9.0 and React 18.3.1 (their standalone UMD builds,
//! `server/assets/graphiql/`, versions and hashes in the README there) are
//! compiled in with `include_bytes!`, checked against the hashes pinned in
//! [`VENDORED`] by a test, and served under `/graphiql/assets/<digest>/<file>`
//! — the digest of the content in the path, so the files may be cached for
//! a year and a new build's files are fetched anew. The page itself
//! ([`page`]) holds no script or style: it loads the hub's own
//! `renkei-graphiql.js` and `.css`, and its Content-Security-Policy
//! ([`PAGE_CSP`]) allows scripts, styles and connections to the hub alone.
//!
//! GraphiQL talks to `POST /graphql`, subscriptions to `/graphql/ws` with the
//! headers pane's `Authorization` in `connection_init` (the token is not
//! stored in the browser). The page and the files are public; everything
//! GraphiQL then asks, introspection included, needs a token.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

/// A file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/graphiql/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Third-party files, exactly as published on npm, with their SHA-256
/// (`server/assets/graphiql/README.md` says where each comes from; a test
/// checks both agree with the bytes compiled in).
pub const VENDORED: &[(&str, &str)] = &[
    (
        "react-18.3.1.production.min.js",
        "d949f1c3687aedadcedac85261865f29b17cd273997e7f6b2bfc53b2f9d4c4dd",
    ),
    (
        "react-dom-18.3.1.production.min.js",
        "35f4f974f4b2bcd44da73963347f8952e341f83909e4498227d4e26b98f66f0d",
    ),
    (
        "graphiql-3.9.0.min.js",
        "a330a2be1d2389486840a9d0a834767d9083a23f105879e0de54e4fce83d3513",
    ),
    (
        "graphiql-3.9.0.min.css",
        "bdddd50aac5bdb0edd83e5c862ba2fed9db2964e4c75d4655ab62b0a7d5bd730",
    ),
];

/// Every file the page loads, in the order the page loads them: React,
/// then GraphiQL (which expects `React` and `ReactDOM` as globals), then the
/// hub's own setup.
const ASSETS: &[Asset] = &[
    asset!("react-18.3.1.production.min.js", JS),
    asset!("react-dom-18.3.1.production.min.js", JS),
    asset!("graphiql-3.9.0.min.js", JS),
    asset!("graphiql-3.9.0.min.css", CSS),
    asset!("renkei-graphiql.css", CSS),
    asset!("renkei-graphiql.js", JS),
];

/// The policy of the page: nothing but the hub's own files, no inline script
/// or style element, no framing. GraphiQL's stylesheet carries its fonts
/// and icons as `data:` URIs. `connect-src 'self'` covers the hub's
/// WebSocket too (CSP 3 matches `ws:`/`wss:` of the page's own host).
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// How long a browser may keep a file: its URL changes with its content.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// The first 16 hex digits of a file's SHA-256: the URL segment that
/// changes with its content.
fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Each asset's digest, in [`ASSETS`] order (hashed once per process).
static DIGESTS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| digest(a.bytes)).collect());

/// The path of an asset's current version.
fn asset_path(name: &str) -> String {
    let i = ASSETS
        .iter()
        .position(|a| a.name == name)
        .expect("the page names only assets of ASSETS");
    format!("/graphiql/assets/{}/{}", DIGESTS[i], name)
}

static PAGE: LazyLock<String> = LazyLock::new(|| {
    let styles: String = ASSETS
        .iter()
        .filter(|a| a.content_type == CSS)
        .map(|a| {
            format!(
                "<link rel=\"stylesheet\" href=\"{}\">\n",
                asset_path(a.name)
            )
        })
        .collect();
    let scripts: String = ASSETS
        .iter()
        .filter(|a| a.content_type == JS)
        .map(|a| format!("<script src=\"{}\"></script>\n", asset_path(a.name)))
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>renkei GraphiQL</title>\n\
         <link rel=\"icon\" href=\"data:,\">\n{styles}</head>\n<body>\n\
         <div id=\"graphiql\">Loading GraphiQL…</div>\n{scripts}</body>\n</html>\n"
    )
});

/// GraphiQL's page, with its security headers.
pub fn page() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        PAGE.as_str(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Revalidated each time, so that a new build's asset URLs are seen.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The routes of GraphiQL's files (the page itself is routed by `http`).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/graphiql/assets/{digest}/{name}", get(asset))
}

/// One file, when the digest is its current one: an old URL is not
/// answered with new content under a year-long cache.
async fn asset(Path((digest, name)): Path<(String, String)>) -> Response {
    let found = ASSETS
        .iter()
        .zip(DIGESTS.iter())
        .find(|(a, d)| a.name == name && **d == digest);
    let Some((asset, _)) = found else {
        return crate::http::error_response(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such file: GraphiQL's page names its files' current digests",
        );
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, ASSET_CACHE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_vendored_files_are_the_pinned_ones_and_the_readme_says_so() {
        let readme = include_str!("../assets/graphiql/README.md");
        for (name, pinned) in VENDORED {
            let asset = ASSETS
                .iter()
                .find(|a| a.name == *name)
                .unwrap_or_else(|| panic!("{name} is pinned but not served"));
            assert_eq!(
                sha256_hex(asset.bytes),
                *pinned,
                "server/assets/graphiql/{name} is not the file pinned in VENDORED"
            );
            assert!(
                readme.contains(pinned) && readme.contains(name),
                "server/assets/graphiql/README.md does not list {name} with {pinned}"
            );
        }
    }

    #[test]
    fn the_page_loads_every_file_from_the_hub_and_nothing_inline() {
        let page = PAGE.as_str();
        for asset in ASSETS {
            assert!(page.contains(&asset_path(asset.name)), "{}", asset.name);
        }
        assert!(!page.contains("http:") && !page.contains("https:") && !page.contains("//"));
        // Every script element has a src and no body; no style element.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("></script>").count()
        );
        assert!(!page.contains("<style") && !page.contains("style="));
        assert!(PAGE_CSP.contains("script-src 'self';"));
        assert!(!PAGE_CSP.contains("unsafe"));
    }
}
