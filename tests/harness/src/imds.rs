//! A stand-in for the EC2 instance metadata service (IMDSv2) on 127.0.0.1, for tests of
//! code that takes its AWS credentials from an instance profile: the AWS SDKs and CLI
//! (pointed at it by `AWS_EC2_METADATA_SERVICE_ENDPOINT`) and the cloud-init bootstrap.
//!
//! It answers what the real service does for credentials, and nothing else:
//!
//! - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` → a session token;
//! - `GET /latest/meta-data/iam/security-credentials/` with `X-aws-ec2-metadata-token`
//!   → the role name (404 while no role is attached: an instance without a profile);
//! - `GET /latest/meta-data/iam/security-credentials/ROLE` → the credentials JSON
//!   (`Code`, `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`, …);
//! - a metadata request without a valid token → 401 (IMDSv1 is off), anything else → 404.
//!
//! Every request is recorded ([`Imds::requests`]). The server runs on its own thread
//! and stops when the [`Imds`] is dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Temporary credentials as an instance role hands them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCredentials {
    /// AccessKeyId.
    pub access_key_id: String,
    /// SecretAccessKey.
    pub secret_access_key: String,
    /// Token (the session token, sent as `x-amz-security-token`).
    pub token: String,
    /// When they expire.
    pub expiration: SystemTime,
}

#[derive(Debug)]
struct State {
    role: Option<(String, RoleCredentials)>,
    tokens: Vec<String>,
    requests: Vec<String>,
}

/// The running stand-in.
#[derive(Debug)]
pub struct Imds {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const SECURITY_CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials/";

impl Imds {
    /// Starts the service on a free 127.0.0.1 port with `role` attached (or none).
    ///
    /// # Panics
    /// When no port can be bound or the thread cannot start.
    pub fn start(role: Option<(&str, RoleCredentials)>) -> Imds {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port for the IMDS stand-in");
        let addr = listener
            .local_addr()
            .expect("local address of a bound socket");
        let state = Arc::new(Mutex::new(State {
            role: role.map(|(name, creds)| (name.to_owned(), creds)),
            tokens: Vec::new(),
            requests: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("imds-stand-in".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Ok(stream) = stream {
                            let _ = serve(stream, &state);
                        }
                    }
                })
                .expect("start the IMDS stand-in thread")
        };
        Imds {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The value for `AWS_EC2_METADATA_SERVICE_ENDPOINT`, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Attaches `role` (or detaches the role with `None`) from now on.
    pub fn set_role(&self, role: Option<(&str, RoleCredentials)>) {
        self.lock().role = role.map(|(name, creds)| (name.to_owned(), creds));
    }

    /// Every request so far as `METHOD PATH STATUS`, oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Imds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request (`Connection: close`).
fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let (status, content_type, body) = respond(&mut state, &method, &path, &header);
    // The token answer names its TTL, as the real service does (the SDKs require it).
    let ttl = match (status, path.as_str()) {
        (200, "/latest/api/token") => format!(
            "X-aws-ec2-metadata-token-ttl-seconds: {}\r\n",
            header("x-aws-ec2-metadata-token-ttl-seconds").unwrap_or("21600")
        ),
        _ => String::new(),
    };
    state.requests.push(format!("{method} {path} {status}"));
    drop(state);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        _ => "Not Found",
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\n{ttl}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn respond<'a>(
    state: &mut State,
    method: &str,
    path: &str,
    header: &dyn Fn(&str) -> Option<&'a str>,
) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain";
    if path == "/latest/api/token" {
        if method != "PUT" {
            return (405, TEXT, String::new());
        }
        let ttl_ok = header("x-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|ttl| (1..=21600).contains(&ttl));
        if !ttl_ok {
            return (400, TEXT, String::new());
        }
        let token = format!("imds-token-{}", state.tokens.len() + 1);
        state.tokens.push(token.clone());
        return (200, TEXT, token);
    }
    if !path.starts_with("/latest/meta-data/") {
        return (404, TEXT, String::new());
    }
    let token_ok =
        header("x-aws-ec2-metadata-token").is_some_and(|t| state.tokens.iter().any(|k| k == t));
    if !token_ok {
        return (401, TEXT, String::new());
    }
    if method != "GET" {
        return (405, TEXT, String::new());
    }
    let Some((role, creds)) = &state.role else {
        return (404, TEXT, String::new());
    };
    match path.strip_prefix(SECURITY_CREDENTIALS) {
        Some("") => (200, TEXT, role.clone()),
        Some(name) if name == role => {
            let json = serde_json::json!({
                "Code": "Success",
                "LastUpdated": rfc3339(SystemTime::now()),
                "Type": "AWS-HMAC",
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "Token": creds.token,
                "Expiration": rfc3339(creds.expiration),
            });
            (200, "application/json", json.to_string())
        }
        _ => (404, TEXT, String::new()),
    }
}

/// `2026-01-02T03:04:05Z`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3server::http_request;

    fn creds() -> RoleCredentials {
        RoleCredentials {
            access_key_id: "AK".into(),
            secret_access_key: "SK".into(),
            token: "TOK".into(),
            expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        }
    }

    #[test]
    fn formats_times_as_rfc3339() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 3661)),
            "2026-01-01T01:01:01Z"
        );
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn metadata_needs_a_token_and_a_role() {
        let imds = Imds::start(None);
        let addr: SocketAddr = imds
            .endpoint()
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        // No token: IMDSv1 is refused.
        let (status, _) = http_request(addr, "GET", SECURITY_CREDENTIALS, b"").unwrap();
        assert_eq!(status, 401);
        // A token without the TTL header is refused too.
        let (status, _) = http_request(addr, "PUT", "/latest/api/token", b"").unwrap();
        assert_eq!(status, 400);
        assert_eq!(imds.requests().len(), 2);
        imds.set_role(Some(("hoist-host", creds())));
        assert_eq!(
            imds.requests(),
            [
                format!("GET {SECURITY_CREDENTIALS} 401"),
                "PUT /latest/api/token 400".to_string()
            ]
        );
    }
}
