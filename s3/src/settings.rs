//! Where the release object lives and how to reach it.

use std::time::Duration;

/// Address of the one S3 object hoist releases to and hosts poll, plus how to reach it.
///
/// Every optional field falls back to the standard AWS environment when `None`:
/// `region` to `AWS_REGION` / the profile / instance metadata (and finally `us-east-1`),
/// `endpoint` to `AWS_ENDPOINT_URL` (AWS S3 itself when unset), `profile` to `AWS_PROFILE`.
/// Path-style addressing (`http://endpoint/bucket/key`) is used when `path_style` is set
/// and also, always, when the endpoint's host is an IP address or `localhost`, where
/// virtual-hosted addressing (`http://bucket.endpoint/key`) cannot resolve.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// Bucket name (must exist; should have versioning enabled).
    pub bucket: String,
    /// Object key, e.g. `releases/hello.deb`.
    pub key: String,
    /// AWS region; `None` = standard region chain.
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible server, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Force path-style addressing (needed by most self-hosted servers).
    #[serde(default)]
    pub path_style: bool,
    /// Named profile from `~/.aws/config` / `~/.aws/credentials`.
    pub profile: Option<String>,
}

/// Timeouts (and optionally fixed credentials) of the client. The default timeouts suit
/// a 10 s poll loop: a dead endpoint is detected in seconds, a slow transfer is not cut
/// off as long as bytes keep flowing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Time to establish a TCP (and TLS) connection. Default 3 s.
    pub connect_timeout: Duration,
    /// Whole-operation bound (all retries included) for small requests: HEAD, list
    /// versions, get versioning. Default 10 s.
    pub operation_timeout: Duration,
    /// For transfers (GET body, PUT, CopyObject), which have no whole-operation bound:
    /// the longest wait for the next bytes from the server. Default 60 s.
    pub transfer_read_timeout: Duration,
    /// Use these credentials instead of the standard AWS chain (for programs that hold
    /// keys themselves, and tests that must not touch the process environment).
    /// `None` (the default) = the standard chain.
    pub static_credentials: Option<StaticCredentials>,
}

/// Fixed credentials for [`ClientOptions::static_credentials`].
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(10),
            transfer_read_timeout: Duration::from_secs(60),
            static_credentials: None,
        }
    }
}

/// Whether virtual-hosted addressing cannot work for `endpoint` (its host is an IP
/// address or `localhost`), so path-style must be used.
pub(crate) fn endpoint_needs_path_style(endpoint: &str) -> bool {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        // IPv6 literal: `[::1]:9000`.
        return v6.contains(']');
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_and_localhost_endpoints_need_path_style() {
        assert!(endpoint_needs_path_style("http://127.0.0.1:9000"));
        assert!(endpoint_needs_path_style("http://127.0.0.1:9000/"));
        assert!(endpoint_needs_path_style("https://10.1.2.3"));
        assert!(endpoint_needs_path_style("http://localhost:4566"));
        assert!(endpoint_needs_path_style("http://[::1]:9000"));
        assert!(endpoint_needs_path_style("127.0.0.1:9000"));
    }

    #[test]
    fn dns_endpoints_keep_virtual_hosted_addressing() {
        assert!(!endpoint_needs_path_style(
            "https://s3.eu-west-1.amazonaws.com"
        ));
        assert!(!endpoint_needs_path_style("https://minio.example.com:9000"));
        assert!(!endpoint_needs_path_style("http://localhost.example.com"));
    }

    #[test]
    fn settings_parse_from_toml_and_reject_unknown_fields() {
        let s: S3Settings = serde_json::from_str(
            r#"{"bucket":"b","key":"k","region":null,"endpoint":"http://x","profile":null}"#,
        )
        .unwrap();
        assert_eq!(s.bucket, "b");
        assert!(!s.path_style);
        let err = serde_json::from_str::<S3Settings>(r#"{"bucket":"b","key":"k","typo":1}"#);
        assert!(err.is_err());
    }
}
