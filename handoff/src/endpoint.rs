//! Listen addresses: a TCP socket address or a Unix socket path.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a listener listens.
///
/// Parsed from text (for flags and config files) as `IP:PORT` (`127.0.0.1:8080`,
/// `[::]:8080`) or as a Unix socket path, written `unix:/run/app.sock` or just
/// `/run/app.sock`. [`Display`](fmt::Display) writes the same forms back, so the
/// text round-trips.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A TCP listener bound to this address.
    Tcp(SocketAddr),
    /// A Unix stream socket bound to this filesystem path.
    Unix(PathBuf),
}

/// The text given as an [`Endpoint`] is neither `IP:PORT` nor a Unix socket path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a listen address: write IP:PORT (e.g. 127.0.0.1:8080 or [::]:8080; \
     host names are not resolved) or a Unix socket path (unix:/run/app.sock)"
)]
pub struct EndpointParseError {
    input: String,
}

impl FromStr for Endpoint {
    type Err = EndpointParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || EndpointParseError {
            input: input.to_owned(),
        };
        if let Some(path) = input.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(error());
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if input.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(input)));
        }
        input.parse().map(Endpoint::Tcp).map_err(|_| error())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        Endpoint::Tcp(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_unix_forms_and_round_trips() {
        for (text, expected) in [
            (
                "127.0.0.1:8080",
                Endpoint::Tcp("127.0.0.1:8080".parse().unwrap()),
            ),
            ("[::1]:9", Endpoint::Tcp("[::1]:9".parse().unwrap())),
            ("unix:/run/a.sock", Endpoint::Unix("/run/a.sock".into())),
        ] {
            let parsed: Endpoint = text.parse().unwrap();
            assert_eq!(parsed, expected);
            assert_eq!(parsed.to_string(), text);
        }
        let bare: Endpoint = "/tmp/x.sock".parse().unwrap();
        assert_eq!(bare, Endpoint::Unix("/tmp/x.sock".into()));
        assert_eq!(bare.to_string(), "unix:/tmp/x.sock");
    }

    #[test]
    fn rejects_host_names_and_empty_paths_with_a_hint() {
        for bad in ["localhost:80", "8080", "unix:", ""] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert!(err.to_string().contains("IP:PORT"), "{err}");
        }
    }
}
