//! S3 access shared by the hoist packager and agent.
//!
//! One [`S3`] client is bound to one object (`s3://bucket/key`): the packager uploads
//! releases to it ([`S3::put_file`]), lists them ([`S3::list_versions`]) and rolls back
//! ([`S3::copy_version_to_latest`]); the agent polls it ([`S3::head`] with a quoted
//! `If-None-Match`) and downloads a change by VersionId ([`S3::get`]).
//!
//! Integrity is not the ETag's job: an ETag is an MD5 only for single-part uploads
//! ([`etag_md5`] tells), so each release carries its SHA-256 (and MD5) as metadata
//! ([`ReleaseMetadata`]); what is signed, and how it travels with the object, is described
//! in [`statement`] (and the `.deb` signature for people in [`signature`]).
//!
//! Every error names the bucket, key and endpoint and says what to do ([`S3Error`]).

pub mod authenticate;
mod client;
mod digest;
mod error;
mod etag;
mod metadata;
mod settings;
pub mod signature;
pub mod statement;
mod upload;

pub use client::{
    FALLBACK_REGION, Head, ObjectBody, ObjectInfo, PresignedUrl, PutOutcome, S3, VersionInfo,
    Versioning,
};
pub use digest::{FileDigests, file_digests, file_digests_blocking};
pub use error::{Location, S3Error};
pub use etag::{etag_md5, etag_md5_given_encryption, quoted_etag};
pub use metadata::{MAX_USER_METADATA_BYTES, META_PREFIX, ReleaseMetadata};
pub use settings::{ClientOptions, S3Settings, StaticCredentials};
pub use upload::{
    DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, MIN_PART_SIZE, ProgressFn, PutOptions,
};
