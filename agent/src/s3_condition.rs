//! A short, stable name for each kind of S3 failure, so that the poll loop logs a failing
//! condition when it starts or changes, not on every poll (the full error message carries
//! volatile details such as the underlying socket error).

use hoist_s3::S3Error;

/// E.g. `unreachable`, `access denied`, `object missing`.
pub fn describe(err: &S3Error) -> &'static str {
    match err {
        S3Error::NoCredentials { .. } => "credentials missing",
        S3Error::AccessDenied { .. } => "access denied",
        S3Error::NoSuchBucket { .. } => "bucket missing",
        S3Error::NoSuchKey { .. } => "object missing",
        S3Error::NoSuchVersion { .. } | S3Error::DeleteMarker { .. } => "version missing",
        S3Error::EndpointUnreachable { .. } => "unreachable",
        S3Error::Timeout { .. } => "slow (timed out)",
        S3Error::Other {
            transient: true, ..
        } => "server error",
        _ => "request failed",
    }
}
