//! Errors of S3 operations, each naming the object and endpoint and saying what to do.

use std::fmt;
use std::path::PathBuf;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;

/// The object an operation was aimed at; printed in every error message as
/// `s3://BUCKET/KEY at ENDPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Endpoint URL, or `AWS S3 (REGION)` when none was configured.
    pub endpoint: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{} at {}", self.bucket, self.key, self.endpoint)
    }
}

/// Why an S3 operation failed. Every message names bucket, key and endpoint and the
/// likely fix. [`S3Error::is_transient`] tells a poll loop whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// No credentials could be found or loaded.
    #[error(
        "no AWS credentials for {at}: {detail}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         pick a profile (AWS_PROFILE or the `profile` setting), or run on a host with an instance profile"
    )]
    NoCredentials {
        /// Target of the operation.
        at: Location,
        /// What the credential chain reported.
        detail: String,
    },
    /// The server refused the credentials or the operation (403, bad key, bad signature).
    #[error(
        "access denied to {at} ({detail}): check that the credentials are right and that their \
         policy allows this operation on the bucket and key"
    )]
    AccessDenied {
        /// Target of the operation.
        at: Location,
        /// Error code and message from the server.
        detail: String,
    },
    /// The bucket does not exist at this endpoint.
    #[error(
        "bucket `{}` does not exist at {}: create it, or fix the bucket name, endpoint or region",
        .at.bucket, .at.endpoint
    )]
    NoSuchBucket {
        /// Target of the operation.
        at: Location,
    },
    /// No object (or only a delete marker) at the key.
    #[error("no object at {at}: release one first (`hoist release`) or fix the key")]
    NoSuchKey {
        /// Target of the operation.
        at: Location,
    },
    /// The requested VersionId does not exist for this key.
    #[error(
        "version `{version_id}` of {at} does not exist: list the versions with `hoist history`"
    )]
    NoSuchVersion {
        /// Target of the operation.
        at: Location,
        /// The VersionId asked for.
        version_id: String,
    },
    /// The requested VersionId is a delete marker, which has no content.
    #[error(
        "version `{version_id}` of {at} is a delete marker, not a release: pick another version from `hoist history`"
    )]
    DeleteMarker {
        /// Target of the operation.
        at: Location,
        /// The VersionId asked for.
        version_id: String,
    },
    /// The endpoint could not be reached (refused, DNS, TLS, reset).
    #[error(
        "cannot reach the S3 endpoint for {at}: {detail}. Check the endpoint URL \
         (AWS_ENDPOINT_URL or the `endpoint` setting), the region and the network"
    )]
    EndpointUnreachable {
        /// Target of the operation.
        at: Location,
        /// The underlying connection error.
        detail: String,
    },
    /// A conditional write lost: the object changed since it was looked at.
    #[error(
        "{at} changed while this operation ran (condition {condition} failed); nothing was \
         overwritten: look at the current version and try again"
    )]
    PreconditionFailed {
        /// Target of the operation.
        at: Location,
        /// The condition that failed, e.g. `If-Match: "abc"`.
        condition: String,
    },
    /// The server computed a different MD5 than the Content-MD5 that was sent.
    #[error(
        "the server rejected the upload to {at} because the body does not match its Content-MD5 \
         ({detail}): the file changed during the upload or was corrupted in transit; upload again"
    )]
    BadDigest {
        /// Target of the operation.
        at: Location,
        /// Error code and message from the server.
        detail: String,
    },
    /// A connect, read or whole-operation timeout expired.
    #[error(
        "S3 request for {at} timed out ({detail}): the endpoint is slow or unreachable; retry later"
    )]
    Timeout {
        /// Target of the operation.
        at: Location,
        /// Which timeout and where.
        detail: String,
    },
    /// Release metadata that S3 cannot store (non-ASCII, too long).
    #[error("release metadata `{field}` cannot be stored in S3: {reason}")]
    InvalidMetadata {
        /// Metadata key, e.g. `hoist-releaser`.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The settings cannot address an object (empty bucket or key).
    #[error("invalid S3 settings: {reason}")]
    InvalidSettings {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The local file to upload could not be read.
    #[error("cannot read `{}` to upload it to {at}: {source}", .path.display())]
    LocalIo {
        /// Target of the operation.
        at: Location,
        /// The local file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else; `transient` is set for server-side (5xx, throttling) and
    /// mid-response failures.
    #[error("S3 request for {at} failed: {detail}")]
    Other {
        /// Target of the operation.
        at: Location,
        /// The underlying error.
        detail: String,
        /// Whether retrying later may succeed.
        transient: bool,
    },
}

impl S3Error {
    /// Whether the same request may succeed later without any change of settings:
    /// unreachable endpoint, timeouts, 5xx and throttling. Auth, missing objects,
    /// failed preconditions and bad input are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            S3Error::EndpointUnreachable { .. } | S3Error::Timeout { .. } => true,
            S3Error::Other { transient, .. } => *transient,
            _ => false,
        }
    }

    /// The object the failed operation was aimed at, when there is one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            S3Error::NoCredentials { at, .. }
            | S3Error::AccessDenied { at, .. }
            | S3Error::NoSuchBucket { at }
            | S3Error::NoSuchKey { at }
            | S3Error::NoSuchVersion { at, .. }
            | S3Error::DeleteMarker { at, .. }
            | S3Error::EndpointUnreachable { at, .. }
            | S3Error::PreconditionFailed { at, .. }
            | S3Error::BadDigest { at, .. }
            | S3Error::Timeout { at, .. }
            | S3Error::LocalIo { at, .. }
            | S3Error::Other { at, .. } => Some(at),
            S3Error::InvalidMetadata { .. } | S3Error::InvalidSettings { .. } => None,
        }
    }
}

/// What the failed request was about, to turn a bare status (HEAD has no error body)
/// into the right variant.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestContext<'a> {
    /// The VersionId the request named, if any.
    pub version_id: Option<&'a str>,
    /// The conditional header that was sent, if any (for the 412 message).
    pub condition: Option<&'a str>,
}

/// Maps an SDK error to an [`S3Error`] for the object at `at`.
pub(crate) fn from_sdk<E>(
    err: SdkError<E, HttpResponse>,
    at: &Location,
    ctx: RequestContext<'_>,
) -> S3Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let at = at.clone();
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = service.raw().status().as_u16();
            let detail = match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                (None, Some(msg)) => format!("HTTP {status}: {msg}"),
                (None, None) => format!("HTTP {status}: {}", DisplayErrorContext(e)),
            };
            classify_service_error(e.code(), status, detail, at, ctx)
        }
        SdkError::TimeoutError(_) => S3Error::Timeout {
            at,
            detail: DisplayErrorContext(&err).to_string(),
        },
        SdkError::DispatchFailure(dispatch) => {
            let detail = DisplayErrorContext(&err).to_string();
            if dispatch.is_timeout() {
                S3Error::Timeout { at, detail }
            } else if mentions_credentials(&detail) {
                S3Error::NoCredentials { at, detail }
            } else if dispatch.is_io() || dispatch.is_other() {
                S3Error::EndpointUnreachable { at, detail }
            } else {
                S3Error::Other {
                    at,
                    detail,
                    transient: false,
                }
            }
        }
        SdkError::ConstructionFailure(_) => {
            let detail = DisplayErrorContext(&err).to_string();
            if mentions_credentials(&detail) {
                S3Error::NoCredentials { at, detail }
            } else {
                S3Error::Other {
                    at,
                    detail,
                    transient: false,
                }
            }
        }
        // A response that could not be read or parsed: a connection cut mid-response
        // or a proxy answering in its own format. Worth retrying.
        _ => S3Error::Other {
            at,
            detail: DisplayErrorContext(&err).to_string(),
            transient: true,
        },
    }
}

fn mentions_credentials(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("credentials") || lower.contains("no credential")
}

/// Classifies an error response by its S3 error code (absent for HEAD, which has no
/// body) and HTTP status.
pub(crate) fn classify_service_error(
    code: Option<&str>,
    status: u16,
    detail: String,
    at: Location,
    ctx: RequestContext<'_>,
) -> S3Error {
    let version = || ctx.version_id.unwrap_or_default().to_string();
    let condition = || ctx.condition.unwrap_or("(conditional write)").to_string();
    match code {
        Some("NoSuchBucket") => S3Error::NoSuchBucket { at },
        Some("NoSuchKey") => S3Error::NoSuchKey { at },
        Some("NoSuchVersion") => S3Error::NoSuchVersion {
            at,
            version_id: version(),
        },
        Some(
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AllAccessDisabled"
            | "InvalidToken"
            | "ExpiredToken"
            | "AuthorizationHeaderMalformed"
            | "InvalidSignature",
        ) => S3Error::AccessDenied { at, detail },
        Some("PreconditionFailed" | "ConditionalRequestConflict") => S3Error::PreconditionFailed {
            at,
            condition: condition(),
        },
        Some("BadDigest" | "InvalidDigest") => S3Error::BadDigest { at, detail },
        Some("InvalidArgument") if ctx.version_id.is_some() && status == 400 => {
            S3Error::NoSuchVersion {
                at,
                version_id: version(),
            }
        }
        Some("RequestTimeout") => S3Error::Timeout { at, detail },
        Some(
            "SlowDown"
            | "InternalError"
            | "ServiceUnavailable"
            | "RequestTimeTooSkewed"
            | "Throttling"
            | "ThrottlingException",
        ) => S3Error::Other {
            at,
            detail,
            transient: true,
        },
        Some("NotImplemented") => S3Error::Other {
            at,
            detail: format!("{detail} (this S3-compatible server does not implement it)"),
            transient: false,
        },
        Some("PermanentRedirect" | "AuthorizationQueryParametersError") => S3Error::Other {
            at,
            detail: format!("{detail} (the bucket is in another region: set the region)"),
            transient: false,
        },
        _ => match status {
            404 if ctx.version_id.is_some() => S3Error::NoSuchVersion {
                at,
                version_id: version(),
            },
            404 => S3Error::NoSuchKey { at },
            // S3 answers 405 to HEAD/GET of a delete marker by VersionId.
            405 if ctx.version_id.is_some() => S3Error::DeleteMarker {
                at,
                version_id: version(),
            },
            400 if ctx.version_id.is_some() && code.is_none() => S3Error::NoSuchVersion {
                at,
                version_id: version(),
            },
            401 | 403 => S3Error::AccessDenied { at, detail },
            409 | 412 => S3Error::PreconditionFailed {
                at,
                condition: condition(),
            },
            301 | 307 => S3Error::Other {
                at,
                detail: format!(
                    "{detail} (redirect: the bucket is in another region; set the region)"
                ),
                transient: false,
            },
            408 => S3Error::Timeout { at, detail },
            429 | 500..=599 => S3Error::Other {
                at,
                detail,
                transient: true,
            },
            _ => S3Error::Other {
                at,
                detail,
                transient: false,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Location {
        Location {
            bucket: "rel-bucket".into(),
            key: "releases/hello.deb".into(),
            endpoint: "http://127.0.0.1:9".into(),
        }
    }

    fn classify(code: Option<&str>, status: u16, version: Option<&str>) -> S3Error {
        classify_service_error(
            code,
            status,
            format!("{code:?} {status}"),
            at(),
            RequestContext {
                version_id: version,
                condition: Some("If-Match: \"x\""),
            },
        )
    }

    #[test]
    fn codes_map_to_variants() {
        assert!(matches!(
            classify(Some("NoSuchBucket"), 404, None),
            S3Error::NoSuchBucket { .. }
        ));
        assert!(matches!(
            classify(Some("NoSuchKey"), 404, None),
            S3Error::NoSuchKey { .. }
        ));
        assert!(matches!(
            classify(Some("InvalidAccessKeyId"), 403, None),
            S3Error::AccessDenied { .. }
        ));
        assert!(matches!(
            classify(Some("SignatureDoesNotMatch"), 403, None),
            S3Error::AccessDenied { .. }
        ));
        assert!(matches!(
            classify(Some("BadDigest"), 400, None),
            S3Error::BadDigest { .. }
        ));
        assert!(matches!(
            classify(Some("PreconditionFailed"), 412, None),
            S3Error::PreconditionFailed { .. }
        ));
        assert!(matches!(
            classify(Some("InvalidArgument"), 400, Some("v1")),
            S3Error::NoSuchVersion { .. }
        ));
    }

    #[test]
    fn bodiless_head_statuses_map_by_status() {
        assert!(matches!(
            classify(None, 404, None),
            S3Error::NoSuchKey { .. }
        ));
        assert!(matches!(
            classify(None, 404, Some("v9")),
            S3Error::NoSuchVersion { ref version_id, .. } if version_id == "v9"
        ));
        assert!(matches!(
            classify(None, 405, Some("v9")),
            S3Error::DeleteMarker { .. }
        ));
        assert!(matches!(
            classify(None, 403, None),
            S3Error::AccessDenied { .. }
        ));
        assert!(matches!(
            classify(None, 412, None),
            S3Error::PreconditionFailed { .. }
        ));
    }

    #[test]
    fn transient_only_for_retryable_failures() {
        assert!(classify(None, 503, None).is_transient());
        assert!(classify(Some("SlowDown"), 503, None).is_transient());
        assert!(classify(None, 500, None).is_transient());
        assert!(!classify(None, 403, None).is_transient());
        assert!(!classify(None, 404, None).is_transient());
        assert!(!classify(Some("BadDigest"), 400, None).is_transient());
        assert!(!classify(None, 412, None).is_transient());
        assert!(!classify(Some("NotImplemented"), 501, None).is_transient());
        assert!(
            S3Error::EndpointUnreachable {
                at: at(),
                detail: "refused".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn messages_name_bucket_key_endpoint_and_a_fix() {
        let variants = [
            classify(Some("NoSuchKey"), 404, None),
            classify(Some("AccessDenied"), 403, None),
            classify(None, 412, None),
            classify(Some("BadDigest"), 400, None),
            classify(None, 404, Some("v2")),
            S3Error::EndpointUnreachable {
                at: at(),
                detail: "connection refused".into(),
            },
            S3Error::NoCredentials {
                at: at(),
                detail: "none".into(),
            },
        ];
        for e in variants {
            let msg = e.to_string();
            assert!(msg.contains("s3://rel-bucket/releases/hello.deb"), "{msg}");
            assert!(msg.contains("http://127.0.0.1:9"), "{msg}");
            assert_eq!(e.location(), Some(&at()));
        }
        let msg = classify(Some("NoSuchBucket"), 404, None).to_string();
        assert!(msg.contains("bucket `rel-bucket` does not exist at http://127.0.0.1:9"));
        assert!(msg.contains("create it"));
    }
}
