//! The S3 client: connect from settings, then head/get/list/copy/versioning on one key.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    ProvideCredentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::types::BucketVersioningStatus;
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use crate::error::{Location, RequestContext, S3Error, from_sdk};
use crate::metadata::ReleaseMetadata;
use crate::settings::{ClientOptions, S3Settings, endpoint_needs_path_style};

/// Region used when neither the settings nor the environment name one. Self-hosted
/// servers usually accept any region; AWS redirects, and the error says to set it.
pub const FALLBACK_REGION: &str = "us-east-1";

/// A client bound to one bucket and key. Cheap to clone (shares connections and the
/// credentials cache).
#[derive(Debug, Clone)]
pub struct S3 {
    settings: S3Settings,
    location: Location,
    /// Short requests, bounded by [`ClientOptions::operation_timeout`].
    pub(crate) client: aws_sdk_s3::Client,
    /// Transfers (GET body, PUT, copy): no whole-operation bound, a read timeout instead.
    pub(crate) transfer: aws_sdk_s3::Client,
    /// The credentials requests are signed with (to tell when they expire).
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

/// Result of [`S3::head`].
// Returned once per poll and matched at once; a Box would only add an allocation
// and change the shape the agent matches on.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// The server answered 304: the ETag sent in `If-None-Match` is still current.
    NotModified,
    /// The current object (it changed, or no ETag was sent).
    Found(ObjectInfo),
}

/// What a HEAD or GET says about one version of the object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    /// ETag exactly as the server returned it (quoted). An MD5 only when
    /// [`crate::etag_md5`] says so.
    pub etag: String,
    /// The version the server answered with; `None` on unversioned buckets. Servers
    /// without versioning (garage) ignore a requested VersionId, so a caller that asked
    /// for one compares it with this.
    pub version_id: Option<String>,
    /// Content length in bytes.
    pub size: u64,
    /// Last-Modified of this version.
    pub last_modified: Option<SystemTime>,
    /// hoist's fields from the user metadata.
    pub metadata: ReleaseMetadata,
    /// Server-side encryption as `x-amz-server-side-encryption` names it: `AES256`
    /// (SSE-S3), `aws:kms` or `aws:kms:dsse` (SSE-KMS); `None` when the server did not say.
    pub encryption: Option<String>,
    /// The SSE-C algorithm (`x-amz-server-side-encryption-customer-algorithm`, e.g.
    /// `AES256`) when the object is encrypted with a customer-provided key.
    pub customer_encryption: Option<String>,
}

impl ObjectInfo {
    /// The MD5 of the body that the ETag stands for, when it can stand for one: a plain
    /// single-part ETag of an object that is neither SSE-KMS nor SSE-C encrypted (their
    /// ETags are not the MD5 of the body). See [`crate::etag_md5_given_encryption`].
    pub fn etag_md5(&self) -> Option<[u8; 16]> {
        crate::etag::etag_md5_given_encryption(
            &self.etag,
            self.encryption.as_deref(),
            self.customer_encryption.is_some(),
        )
    }
}

/// [`ObjectInfo`] from a HeadObject or GetObject output (same accessors, different types).
macro_rules! object_info {
    ($out:expr) => {{
        let out = &$out;
        ObjectInfo {
            etag: out.e_tag().unwrap_or_default().to_string(),
            version_id: out.version_id().map(str::to_string),
            size: to_size(out.content_length()),
            last_modified: to_system_time(out.last_modified()),
            metadata: out
                .metadata()
                .map(ReleaseMetadata::from_user_metadata)
                .unwrap_or_default(),
            encryption: out.server_side_encryption().map(|e| e.as_str().to_string()),
            customer_encryption: out.sse_customer_algorithm().map(str::to_string),
        }
    }};
}

/// One entry of [`S3::list_versions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// VersionId (`"null"` for an object written while versioning was off).
    pub version_id: String,
    /// ETag as returned (quoted); empty for delete markers.
    pub etag: String,
    /// Size in bytes; 0 for delete markers.
    pub size: u64,
    /// When this version was written.
    pub last_modified: Option<SystemTime>,
    /// Whether this is the current version of the key.
    pub is_latest: bool,
    /// Whether this entry is a delete marker (no content).
    pub is_delete_marker: bool,
}

/// Versioning state of the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Every write keeps the previous versions: rollback works.
    Enabled,
    /// Was enabled once; new writes overwrite the `null` version.
    Suspended,
    /// Never enabled (or the server does not support versioning).
    Never,
}

/// Streamed body of [`S3::get`]; read it to the end to get the whole object. Never
/// buffered whole in memory.
pub struct ObjectBody {
    inner: Pin<Box<dyn AsyncBufRead + Send>>,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody").finish_non_exhaustive()
    }
}

impl AsyncRead for ObjectBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_read(cx, buf)
    }
}

impl AsyncBufRead for ObjectBody {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        self.get_mut().inner.as_mut().poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        self.inner.as_mut().consume(amt);
    }
}

pub(crate) fn to_system_time(t: Option<&aws_smithy_types::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

pub(crate) fn to_size(len: Option<i64>) -> u64 {
    len.and_then(|l| u64::try_from(l).ok()).unwrap_or(0)
}

impl S3 {
    /// Builds a client with the default [`ClientOptions`]; see [`S3::connect_with`].
    pub async fn connect(settings: &S3Settings) -> Result<S3, S3Error> {
        S3::connect_with(settings, &ClientOptions::default()).await
    }

    /// Builds a client for `settings` and checks that credentials can be loaded.
    ///
    /// Credentials come from [`ClientOptions::static_credentials`] or else the standard AWS chain (environment, profile files, web
    /// identity, ECS, instance metadata). Unset settings fall back to `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_PROFILE` and the profile's values. Checksums are only
    /// computed when an operation requires them (`WhenRequired`), so uploads are sent as
    /// plain signed bodies that every S3-compatible server accepts.
    ///
    /// Errors: [`S3Error::InvalidSettings`] for an empty bucket or key,
    /// [`S3Error::NoCredentials`] when the chain finds none, [`S3Error::Timeout`] when
    /// a credential provider timed out. Makes no request to S3 itself.
    pub async fn connect_with(
        settings: &S3Settings,
        options: &ClientOptions,
    ) -> Result<S3, S3Error> {
        if settings.bucket.trim().is_empty() {
            return Err(S3Error::InvalidSettings {
                reason: "no bucket given: set the bucket (e.g. --bucket or [s3] bucket)".into(),
            });
        }
        if settings.key.trim().is_empty() || settings.key.starts_with('/') {
            return Err(S3Error::InvalidSettings {
                reason: format!(
                    "key {:?} is empty or starts with `/`: use a key like `releases/hello.deb`",
                    settings.key
                ),
            });
        }
        let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
            .or_default_provider()
            .or_else(Region::from_static(FALLBACK_REGION));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(options.connect_timeout)
                    .operation_timeout(options.operation_timeout)
                    .build(),
            )
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(creds) = &options.static_credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                &creds.access_key_id,
                &creds.secret_access_key,
                creds.session_token.clone(),
                None,
                "hoist-static",
            ));
        }
        let sdk = loader.load().await;

        let region_name = sdk
            .region()
            .map_or_else(|| FALLBACK_REGION.to_string(), |r| r.to_string());
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| sdk.endpoint_url().map(str::to_string));
        let location = Location {
            bucket: settings.bucket.clone(),
            key: settings.key.clone(),
            endpoint: endpoint
                .clone()
                .unwrap_or_else(|| format!("AWS S3 ({region_name})")),
        };

        check_credentials(&sdk, &location).await?;

        let path_style =
            settings.path_style || endpoint.as_deref().is_some_and(endpoint_needs_path_style);
        let base = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        let client = aws_sdk_s3::Client::from_conf(base.clone().build());
        let transfer = aws_sdk_s3::Client::from_conf(
            base.timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(options.connect_timeout)
                    .read_timeout(options.transfer_read_timeout)
                    .build(),
            )
            .build(),
        );
        tracing::debug!(%location, region = %region_name, path_style, "S3 client ready");
        Ok(S3 {
            settings: settings.clone(),
            location,
            client,
            transfer,
            credentials: sdk.credentials_provider(),
        })
    }

    /// The settings this client was built from.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// Bucket, key and endpoint as printed in messages.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub(crate) fn err<E>(
        &self,
        err: aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
        ctx: RequestContext<'_>,
    ) -> S3Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        from_sdk(err, &self.location, ctx)
    }

    /// [`S3::err`] for an unconditional request that named `version_id` (if any).
    fn err_for_version<E>(
        &self,
        err: aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
        version_id: Option<&str>,
    ) -> S3Error
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.err(
            err,
            RequestContext {
                version_id,
                condition: None,
            },
        )
    }

    /// HEAD of the current version. With `if_none_match` (the ETag exactly as S3
    /// returned it, quoted; a bare one is quoted first, since some servers only match
    /// the quoted form) the server answers 304 when unchanged → [`Head::NotModified`].
    ///
    /// Errors: [`S3Error::NoSuchKey`] (also when the latest version is a delete marker),
    /// [`S3Error::NoSuchBucket`], and the connection/auth errors.
    pub async fn head(&self, if_none_match: Option<&str>) -> Result<Head, S3Error> {
        let result = self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(&self.settings.key)
            .set_if_none_match(if_none_match.map(crate::etag::quoted_etag))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Head::Found(object_info!(out))),
            Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(304) => {
                Ok(Head::NotModified)
            }
            Err(err) => {
                let e = self.err(err, RequestContext::default());
                Err(self.refine_not_found(e).await)
            }
        }
    }

    /// HEAD of one version by VersionId (e.g. to show its metadata in a history).
    ///
    /// Errors: [`S3Error::NoSuchVersion`] when the id is not a version of this key,
    /// [`S3Error::DeleteMarker`] when it is a delete marker.
    pub async fn head_version(&self, version_id: &str) -> Result<ObjectInfo, S3Error> {
        let out = self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(&self.settings.key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| self.err_for_version(e, Some(version_id)))?;
        Ok(object_info!(out))
    }

    /// A presigned GET URL for the current version, or for `version_id`, valid for
    /// `expires_in` (S3 allows at most 7 days). Anyone holding the URL can download
    /// the object until it expires, without credentials: hand it only to hosts that
    /// should install the package (e.g. in cloud-init user-data).
    ///
    /// Errors: [`S3Error::InvalidSettings`] for an expiry over 7 days, and the
    /// credential errors of any request (signing needs credentials, not the network).
    pub async fn presign_get(
        &self,
        version_id: Option<&str>,
        expires_in: std::time::Duration,
    ) -> Result<String, S3Error> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in).map_err(
            |e| S3Error::InvalidSettings {
                reason: format!(
                    "presigned URL expiry {expires_in:?} is not allowed ({e}): choose one between 1 second and 7 days"
                ),
            },
        )?;
        let request = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(&self.settings.key)
            .set_version_id(version_id.map(str::to_string))
            .presigned(config)
            .await
            .map_err(|e| self.err_for_version(e, version_id))?;
        Ok(request.uri().to_string())
    }

    /// [`S3::presign_get`] plus when the URL really stops working: at `expires_in`
    /// from now, or earlier when the signing credentials are temporary (STS, SSO, an
    /// instance role) and expire first — S3 refuses a URL once its credentials expired,
    /// whatever `X-Amz-Expires` says.
    ///
    /// Errors as for [`S3::presign_get`].
    pub async fn presign_get_until(
        &self,
        version_id: Option<&str>,
        expires_in: std::time::Duration,
    ) -> Result<PresignedUrl, S3Error> {
        let url = self.presign_get(version_id, expires_in).await?;
        let requested = SystemTime::now() + expires_in;
        let credentials_expire = match &self.credentials {
            Some(provider) => provider
                .provide_credentials()
                .await
                .ok()
                .and_then(|c| c.expiry()),
            None => None,
        };
        Ok(match credentials_expire {
            Some(at) if at < requested => PresignedUrl {
                url,
                expires_at: at,
                limited_by_credentials: true,
            },
            _ => PresignedUrl {
                url,
                expires_at: requested,
                limited_by_credentials: false,
            },
        })
    }

    /// The plain (unsigned) URL of the current version, or of `version_id`, with
    /// exactly the addressing the SDK uses for this client (endpoint, path-style or
    /// virtual-hosted, key encoding): what a host signs itself, e.g. with
    /// `curl --aws-sigv4`. Carries no credentials and never expires.
    ///
    /// Errors: the credential errors of [`S3::presign_get`] (the URL is derived from a
    /// presigned one, whose signing parameters are then removed).
    pub async fn object_url(&self, version_id: Option<&str>) -> Result<String, S3Error> {
        let presigned = self
            .presign_get(version_id, std::time::Duration::from_secs(60))
            .await?;
        Ok(strip_signing_params(&presigned))
    }

    /// The region requests are signed for (from the settings, the environment or the
    /// profile, else [`FALLBACK_REGION`]).
    pub fn region(&self) -> String {
        self.client
            .config()
            .region()
            .map_or_else(|| FALLBACK_REGION.to_string(), |r| r.to_string())
    }

    /// A bodiless 404 on HEAD may mean a missing key or a missing bucket; ask the bucket.
    async fn refine_not_found(&self, err: S3Error) -> S3Error {
        if !matches!(err, S3Error::NoSuchKey { .. }) {
            return err;
        }
        match self
            .client
            .head_bucket()
            .bucket(&self.settings.bucket)
            .send()
            .await
        {
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => {
                S3Error::NoSuchBucket {
                    at: self.location.clone(),
                }
            }
            _ => err,
        }
    }

    /// GET of the current version, or of `version_id`. The body is streamed: nothing
    /// is buffered beyond the socket's read buffer.
    ///
    /// Check [`ObjectInfo::version_id`] when asking for a version: servers without
    /// versioning ignore the request parameter. Errors as for [`S3::head_version`].
    pub async fn get(&self, version_id: Option<&str>) -> Result<(ObjectInfo, ObjectBody), S3Error> {
        let out = self
            .transfer
            .get_object()
            .bucket(&self.settings.bucket)
            .key(&self.settings.key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| self.err_for_version(e, version_id))?;
        let info = object_info!(out);
        let body = ObjectBody {
            inner: Box::pin(out.body.into_async_read()),
        };
        Ok((info, body))
    }

    /// All versions and delete markers of exactly this key (not of other keys that
    /// merely share its prefix), newest first, following every page.
    ///
    /// On an unversioned bucket this is the one current object with VersionId `"null"`
    /// (or empty when the key does not exist); so is it on servers that do not
    /// implement ListObjectVersions (garage), where it comes from a HEAD. Errors: [`S3Error::NoSuchBucket`] and the
    /// connection/auth errors.
    pub async fn list_versions(&self) -> Result<Vec<VersionInfo>, S3Error> {
        let key = self.settings.key.as_str();
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let result = self
                .client
                .list_object_versions()
                .bucket(&self.settings.bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await;
            let page = match result {
                Ok(page) => page,
                Err(e) if is_not_implemented(&e) => return self.current_as_history().await,
                Err(e) => return Err(self.err(e, RequestContext::default())),
            };
            let mut past_key = false;
            for v in page.versions() {
                match v.key() {
                    Some(k) if k == key => versions.push(VersionInfo {
                        version_id: v.version_id().unwrap_or("null").to_string(),
                        etag: v.e_tag().unwrap_or_default().to_string(),
                        size: to_size(v.size()),
                        last_modified: to_system_time(v.last_modified()),
                        is_latest: v.is_latest().unwrap_or(false),
                        is_delete_marker: false,
                    }),
                    Some(k) if k > key => past_key = true,
                    _ => {}
                }
            }
            for m in page.delete_markers() {
                match m.key() {
                    Some(k) if k == key => markers.push(VersionInfo {
                        version_id: m.version_id().unwrap_or("null").to_string(),
                        etag: String::new(),
                        size: 0,
                        last_modified: to_system_time(m.last_modified()),
                        is_latest: m.is_latest().unwrap_or(false),
                        is_delete_marker: true,
                    }),
                    Some(k) if k > key => past_key = true,
                    _ => {}
                }
            }
            // Keys come sorted: once a later key shows up, ours is complete.
            if past_key || page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(merge_newest_first(versions, markers))
    }

    /// For servers without ListObjectVersions: the current object as the only version.
    async fn current_as_history(&self) -> Result<Vec<VersionInfo>, S3Error> {
        tracing::debug!("ListObjectVersions is not implemented; listing the current object only");
        match self.head(None).await {
            Ok(Head::Found(info)) => Ok(vec![VersionInfo {
                version_id: info.version_id.unwrap_or_else(|| "null".to_string()),
                etag: info.etag,
                size: info.size,
                last_modified: info.last_modified,
                is_latest: true,
                is_delete_marker: false,
            }]),
            Ok(Head::NotModified) | Err(S3Error::NoSuchKey { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Makes `version_id` the current version again: CopyObject from
    /// `bucket/key?versionId=…` onto the same key, metadata copied. On a versioned
    /// bucket this creates a new version with the old bytes and metadata.
    ///
    /// Limits: CopyObject copies objects up to 5 GiB. Errors: [`S3Error::NoSuchVersion`],
    /// [`S3Error::DeleteMarker`] (checked by the caller from [`S3::list_versions`] is
    /// clearer; the server's own answer is mapped too) and the connection/auth errors.
    pub async fn copy_version_to_latest(&self, version_id: &str) -> Result<PutOutcome, S3Error> {
        self.copy_version(version_id, None).await
    }

    /// Like [`S3::copy_version_to_latest`], but the copy gets `metadata` instead of the
    /// source's (CopyObject with `MetadataDirective: REPLACE`; the content type is set
    /// again). `hoist rollback` uses it to add its signed rollback statement to the
    /// source's metadata.
    ///
    /// Errors: [`S3Error::InvalidMetadata`] when `metadata` cannot be stored (over 2 KB,
    /// not ASCII), and those of [`S3::copy_version_to_latest`].
    pub async fn copy_version_with_metadata(
        &self,
        version_id: &str,
        metadata: &ReleaseMetadata,
    ) -> Result<PutOutcome, S3Error> {
        self.copy_version(version_id, Some(metadata)).await
    }

    /// CopyObject of `version_id` onto the key: metadata copied (`None`), or replaced by
    /// `metadata` with the content type set again.
    async fn copy_version(
        &self,
        version_id: &str,
        metadata: Option<&ReleaseMetadata>,
    ) -> Result<PutOutcome, S3Error> {
        let user_metadata = metadata
            .map(ReleaseMetadata::to_user_metadata)
            .transpose()?;
        let source = copy_source(&self.settings.bucket, &self.settings.key, version_id);
        let request = self
            .transfer
            .copy_object()
            .bucket(&self.settings.bucket)
            .key(&self.settings.key)
            .copy_source(&source);
        let request = match user_metadata {
            None => {
                tracing::debug!(%source, "CopyObject");
                request.metadata_directive(aws_sdk_s3::types::MetadataDirective::Copy)
            }
            Some(user_metadata) => {
                tracing::debug!(%source, "CopyObject, metadata replaced");
                request
                    .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                    .content_type(crate::upload::DEB_CONTENT_TYPE)
                    .set_metadata(Some(user_metadata))
            }
        };
        let out = request
            .send()
            .await
            .map_err(|e| self.err_for_version(e, Some(version_id)))?;
        Ok(PutOutcome {
            version_id: out.version_id().map(str::to_string),
            etag: out
                .copy_object_result()
                .and_then(|r| r.e_tag())
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// The bucket's versioning state. Servers that do not implement versioning answer
    /// with an empty configuration → [`Versioning::Never`].
    ///
    /// A successful answer whose XML root is not `VersioningConfiguration` (moto 5.x
    /// sends `GetBucketVersioningResponse`) is read leniently: its `<Status>` decides.
    pub async fn versioning(&self) -> Result<Versioning, S3Error> {
        let result = self
            .client
            .get_bucket_versioning()
            .bucket(&self.settings.bucket)
            .send()
            .await;
        match result {
            Ok(out) => Ok(match out.status() {
                Some(BucketVersioningStatus::Enabled) => Versioning::Enabled,
                Some(BucketVersioningStatus::Suspended) => Versioning::Suspended,
                _ => Versioning::Never,
            }),
            Err(err) => {
                let lenient = err
                    .raw_response()
                    .filter(|raw| raw.status().is_success())
                    .and_then(|raw| raw.body().bytes())
                    .map(versioning_from_xml);
                match lenient {
                    Some(state) => {
                        tracing::debug!(?state, "read a non-standard GetBucketVersioning answer");
                        Ok(state)
                    }
                    None => Err(self.err(err, RequestContext::default())),
                }
            }
        }
    }
}

/// A presigned URL and when it stops working ([`S3::presign_get_until`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUrl {
    /// The URL; anyone holding it can download the object until `expires_at`.
    pub url: String,
    /// When S3 starts refusing it.
    pub expires_at: SystemTime,
    /// Whether the signing credentials expire before the requested expiry (and so
    /// decide `expires_at`).
    pub limited_by_credentials: bool,
}

/// `url` without the query parameters that presigning adds (`X-Amz-*`, and the SDK's
/// `x-id=GetObject`); the others (`versionId`) are kept in their order.
pub(crate) fn strip_signing_params(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|param| {
            let name = param.split('=').next().unwrap_or_default();
            !(name.len() >= 6 && name[..6].eq_ignore_ascii_case("X-Amz-")) && name != "x-id"
        })
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// Result of a write (PUT or copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// VersionId of the new version; `None` on unversioned buckets.
    pub version_id: Option<String>,
    /// ETag of the new version as returned (quoted).
    pub etag: String,
}

async fn check_credentials(sdk: &aws_config::SdkConfig, at: &Location) -> Result<(), S3Error> {
    use aws_credential_types::provider::error::CredentialsError;
    let Some(provider) = sdk.credentials_provider() else {
        return Err(S3Error::NoCredentials {
            at: at.clone(),
            detail: "no credentials provider is configured".into(),
        });
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(e @ CredentialsError::ProviderTimedOut(_)) => Err(S3Error::Timeout {
            at: at.clone(),
            detail: format!("loading credentials: {}", DisplayErrorContext(&e)),
        }),
        Err(e) => Err(S3Error::NoCredentials {
            at: at.clone(),
            detail: DisplayErrorContext(&e).to_string(),
        }),
    }
}

/// Whether the server answered that it does not implement the operation (501).
fn is_not_implemented<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    err: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some("NotImplemented")
        || err.raw_response().map(|r| r.status().as_u16()) == Some(501)
}

/// The versioning state named by the `<Status>` element of a GetBucketVersioning body.
fn versioning_from_xml(body: &[u8]) -> Versioning {
    let text = String::from_utf8_lossy(body);
    let status = text
        .split_once("<Status>")
        .and_then(|(_, rest)| rest.split_once("</Status>"))
        .map(|(status, _)| status.trim());
    match status {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => Versioning::Never,
    }
}

/// `CopySource` for a version: `bucket/key?versionId=id`, key and id URL-encoded
/// (`/` kept in the key).
pub(crate) fn copy_source(bucket: &str, key: &str, version_id: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    const PATH: &AsciiSet = &COMPONENT.remove(b'/');
    format!(
        "{bucket}/{}?versionId={}",
        utf8_percent_encode(key, PATH),
        utf8_percent_encode(version_id, COMPONENT)
    )
}

/// Merges versions and delete markers (each newest first, as S3 lists them) into one
/// newest-first list. Timestamps may tie (second resolution): ties keep each list's
/// own order and put the `is_latest` entry first.
fn merge_newest_first(versions: Vec<VersionInfo>, markers: Vec<VersionInfo>) -> Vec<VersionInfo> {
    let mut out = Vec::with_capacity(versions.len() + markers.len());
    let mut v = versions.into_iter().peekable();
    let mut m = markers.into_iter().peekable();
    loop {
        let take_marker = match (v.peek(), m.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => {
                if a.is_latest != b.is_latest {
                    b.is_latest
                } else {
                    b.last_modified > a.last_modified
                }
            }
        };
        let next = if take_marker { m.next() } else { v.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(id: &str, secs: u64, latest: bool, marker: bool) -> VersionInfo {
        VersionInfo {
            version_id: id.into(),
            etag: String::new(),
            size: 0,
            last_modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            is_latest: latest,
            is_delete_marker: marker,
        }
    }

    #[test]
    fn lenient_versioning_reads_the_status_element() {
        let moto = br#"<?xml version="1.0"?><GetBucketVersioningResponse xmlns="x"><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        assert_eq!(versioning_from_xml(moto), Versioning::Enabled);
        assert_eq!(
            versioning_from_xml(
                b"<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>"
            ),
            Versioning::Suspended
        );
        assert_eq!(
            versioning_from_xml(b"<GetBucketVersioningResponse/>"),
            Versioning::Never
        );
    }

    #[test]
    fn signing_params_are_stripped_and_the_version_kept() {
        let url = "http://127.0.0.1:9000/b/releases/hoist-agent.deb?versionId=3%2FL4k&x-id=GetObject&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=abc";
        assert_eq!(
            strip_signing_params(url),
            "http://127.0.0.1:9000/b/releases/hoist-agent.deb?versionId=3%2FL4k"
        );
        assert_eq!(
            strip_signing_params("https://b.s3.amazonaws.com/k?X-Amz-Signature=x&x-id=GetObject"),
            "https://b.s3.amazonaws.com/k"
        );
        assert_eq!(strip_signing_params("https://x/k"), "https://x/k");
    }

    #[test]
    fn copy_source_encodes_key_and_version() {
        assert_eq!(
            copy_source("b", "releases/hello world+1.deb", "3/L4kqtJl+cZ=="),
            "b/releases/hello%20world%2B1.deb?versionId=3%2FL4kqtJl%2BcZ%3D%3D"
        );
    }

    #[test]
    fn merge_interleaves_by_time_and_keeps_list_order_on_ties() {
        let versions = vec![
            entry("v3", 30, false, false),
            entry("v2", 20, false, false),
            entry("v1", 20, false, false),
        ];
        let markers = vec![entry("d1", 40, true, true), entry("d0", 20, false, true)];
        let ids: Vec<_> = merge_newest_first(versions, markers)
            .into_iter()
            .map(|v| v.version_id)
            .collect();
        assert_eq!(ids, ["d1", "v3", "v2", "v1", "d0"]);
    }

    #[test]
    fn merge_puts_the_latest_first_on_equal_times() {
        let versions = vec![entry("v2", 10, true, false), entry("v1", 10, false, false)];
        let markers = vec![entry("d1", 10, false, true)];
        let ids: Vec<_> = merge_newest_first(versions, markers)
            .into_iter()
            .map(|v| v.version_id)
            .collect();
        assert_eq!(ids, ["v2", "v1", "d1"]);
    }
}
