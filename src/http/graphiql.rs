//! GraphiQL IDE, served by voltgate itself.
//!
//! GraphiQL 3 and its runtime dependencies (React 18, ReactDOM 18, graphql-ws 5)
//! are vendored as minified UMD builds under `assets/graphiql/` and compiled into
//! the binary, so the IDE works without internet access (air-gapped sites, CDNs
//! blocked by a CSP). Licenses sit next to the files as `*.LICENSE.txt`.

use axum::{
    Router,
    extract::Path,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};

const JS: &str = "application/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The GraphiQL HTML page; it loads its scripts from `/graphiql/<file>`.
pub fn page() -> Html<&'static str> {
    Html(include_str!("../../assets/graphiql/index.html"))
}

/// Serves the vendored assets at `GET /graphiql/{file}`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route("/graphiql/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    let (content_type, body): (&str, &'static [u8]) = match file.as_str() {
        "react.min.js" => (JS, include_bytes!("../../assets/graphiql/react.min.js")),
        "react-dom.min.js" => (JS, include_bytes!("../../assets/graphiql/react-dom.min.js")),
        "graphql-ws.min.js" => (
            JS,
            include_bytes!("../../assets/graphiql/graphql-ws.min.js"),
        ),
        "graphiql.min.js" => (JS, include_bytes!("../../assets/graphiql/graphiql.min.js")),
        "graphiql.min.css" => (
            CSS,
            include_bytes!("../../assets/graphiql/graphiql.min.css"),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
