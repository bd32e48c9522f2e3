//! The HTTP endpoints.
//!
//! - `GET /` → `200 {"version":"1.0.0","pid":123}`
//! - `GET /healthz` → `200 ok`
//! - `GET /sleep?ms=N` → the response head at once, then after N ms (at most
//!   600000) the body `{"version":…,"pid":…,"slept_ms":N}`; a client can tell
//!   from the head that its request is in flight, and from the body that it
//!   completed.
//!
//! Every response carries `x-hello-pid` and `x-hello-version`. A build with
//! `HELLO_BROKEN=500` answers `/` and `/healthz` with 500.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::build_info::{self, Broken};

/// Response body: whole or streamed.
pub type Body = BoxBody<Bytes, Infallible>;

const MAX_SLEEP_MS: u64 = 600_000;

/// Routes one request.
pub async fn handle(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let broken = build_info::broken() == Some(Broken::Status500);
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/") if broken => text(StatusCode::INTERNAL_SERVER_ERROR, "broken build\n"),
        (&Method::GET, "/") => json(StatusCode::OK, &identity()),
        (&Method::GET, "/healthz") if broken => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unhealthy: broken build\n",
        ),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/sleep") => match sleep_ms(request.uri().query()) {
            Ok(ms) => slow(ms),
            Err(message) => text(StatusCode::BAD_REQUEST, &message),
        },
        (_, "/" | "/healthz" | "/sleep") => text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /, /healthz or /sleep?ms=N\n",
        ),
    };
    Ok(with_identity_headers(response))
}

fn identity() -> serde_json::Value {
    serde_json::json!({ "version": build_info::VERSION, "pid": std::process::id() })
}

fn sleep_ms(query: Option<&str>) -> Result<u64, String> {
    let value = query
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .ok_or_else(|| "missing ms: use /sleep?ms=N\n".to_owned())?;
    match value.parse::<u64>() {
        Ok(ms) if ms <= MAX_SLEEP_MS => Ok(ms),
        _ => Err(format!(
            "ms must be a whole number of milliseconds up to {MAX_SLEEP_MS}\n"
        )),
    }
}

/// Head now, body after `ms`.
fn slow(ms: u64) -> Response<Body> {
    let body = futures::stream::once(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let mut value = identity();
        value["slept_ms"] = ms.into();
        Ok::<_, Infallible>(Frame::data(Bytes::from(format!("{value}\n"))))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = whole(status, format!("{value}\n"));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = whole(status, message.to_owned());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn whole(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response
}

fn with_identity_headers(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert("x-hello-pid", HeaderValue::from(std::process::id()));
    if let Ok(version) = HeaderValue::from_str(build_info::VERSION) {
        headers.insert("x-hello-version", version);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_parameter_is_bounded_and_explained() {
        assert_eq!(sleep_ms(Some("ms=250")), Ok(250));
        assert_eq!(sleep_ms(Some("x=1&ms=0")), Ok(0));
        assert!(sleep_ms(None).unwrap_err().contains("/sleep?ms=N"));
        assert!(
            sleep_ms(Some("ms=-1"))
                .unwrap_err()
                .contains("milliseconds")
        );
        assert!(sleep_ms(Some("ms=600001")).is_err());
    }
}
