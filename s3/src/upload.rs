//! Uploading a file: one PUT with Content-MD5, or multipart above a threshold.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::Length;
use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest as _, Md5};

use crate::client::{PutOutcome, S3};
use crate::digest::file_digests;
use crate::error::{RequestContext, S3Error};
use crate::etag::quoted_etag;
use crate::metadata::ReleaseMetadata;

/// Files up to this size go up in one PUT (S3's own single-PUT limit is 5 GiB), so
/// their ETag is the file's MD5. Larger files use multipart upload; their ETag is then
/// `"<hex>-N"` and the file's MD5 is only in the `hoist-md5` metadata.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 5 * 1024 * 1024 * 1024;

/// Default multipart part size; raised automatically to stay within 10 000 parts.
pub const DEFAULT_PART_SIZE: u64 = 64 * 1024 * 1024;

/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

const MAX_PARTS: u64 = 10_000;

/// Called during an upload with (bytes sent so far, total bytes). A retried request
/// starts its part again, so the count may go back.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How [`S3::put_file`] writes.
#[derive(Clone)]
pub struct PutOptions {
    /// Conditional write: only replace the object if its current ETag is this one
    /// (as returned by HEAD; a bare one is quoted). Fails with
    /// [`S3Error::PreconditionFailed`] otherwise.
    pub if_match: Option<String>,
    /// Conditional write: only create the object if the key has no current version.
    pub if_none_match_any: bool,
    /// Size from which multipart upload is used. Default [`DEFAULT_MULTIPART_THRESHOLD`].
    pub multipart_threshold: u64,
    /// Part size for multipart upload (at least [`MIN_PART_SIZE`]). Default
    /// [`DEFAULT_PART_SIZE`].
    pub part_size: u64,
    /// Progress callback, if any.
    pub progress: Option<ProgressFn>,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            if_match: None,
            if_none_match_any: false,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            progress: None,
        }
    }
}

impl std::fmt::Debug for PutOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutOptions")
            .field("if_match", &self.if_match)
            .field("if_none_match_any", &self.if_none_match_any)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Media type of Debian packages.
pub(crate) const DEB_CONTENT_TYPE: &str = "application/vnd.debian.binary-package";

impl PutOptions {
    fn condition(&self) -> Option<String> {
        match (&self.if_match, self.if_none_match_any) {
            (Some(etag), _) => Some(format!("If-Match: {etag}")),
            (None, true) => Some("If-None-Match: *".to_string()),
            (None, false) => None,
        }
    }
}

impl S3 {
    /// Uploads the file at `path` as the new current version of the key, with `meta` as
    /// user metadata, streamed from disk.
    ///
    /// Up to `opts.multipart_threshold` bytes: one PUT with `Content-MD5`, so the server
    /// verifies the body and the ETag is the file's MD5. `meta.md5` (hex) is sent as that
    /// Content-MD5 when given — it must be the file's MD5, the server rejects the upload
    /// otherwise — and computed from the file when absent. Above the threshold: multipart
    /// upload with a Content-MD5 per part, the whole file's MD5 kept in `hoist-md5`, and
    /// the upload aborted on failure.
    ///
    /// Errors: [`S3Error::PreconditionFailed`] when a condition in `opts` fails (another
    /// writer won), [`S3Error::BadDigest`], [`S3Error::InvalidMetadata`],
    /// [`S3Error::LocalIo`], and the connection/auth errors.
    pub async fn put_file(
        &self,
        path: &Path,
        meta: &ReleaseMetadata,
        opts: &PutOptions,
    ) -> Result<PutOutcome, S3Error> {
        let local_err = |source| S3Error::LocalIo {
            at: self.location().clone(),
            path: path.to_path_buf(),
            source,
        };
        let mut meta = meta.clone();
        let size = tokio::fs::metadata(path).await.map_err(local_err)?.len();
        if meta.md5.is_none() {
            let digests = file_digests(path).await.map_err(local_err)?;
            meta.md5 = Some(hex::encode(digests.md5));
        }
        let md5_hex = meta.md5.clone().unwrap_or_default();
        let mut md5 = [0u8; 16];
        hex::decode_to_slice(&md5_hex, &mut md5).map_err(|_| S3Error::InvalidMetadata {
            field: "hoist-md5".into(),
            reason: format!("{md5_hex:?} is not 32 hex digits"),
        })?;
        let user_metadata = meta.to_user_metadata()?;

        if size >= opts.multipart_threshold {
            return self.put_multipart(path, size, user_metadata, opts).await;
        }

        let condition = opts.condition();
        let body = file_body(path, 0, size, 0, size, opts.progress.clone())
            .await
            .map_err(local_err)?;
        tracing::debug!(path = %path.display(), size, "PutObject");
        let out = self
            .transfer
            .put_object()
            .bucket(&self.settings().bucket)
            .key(&self.settings().key)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
            .content_type(DEB_CONTENT_TYPE)
            .set_metadata(Some(user_metadata))
            .set_if_match(opts.if_match.as_deref().map(quoted_etag))
            .set_if_none_match(opts.if_none_match_any.then(|| "*".to_string()))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    RequestContext {
                        version_id: None,
                        condition: condition.as_deref(),
                    },
                )
            })?;
        Ok(PutOutcome {
            version_id: out.version_id().map(str::to_string),
            etag: out.e_tag().unwrap_or_default().to_string(),
        })
    }

    async fn put_multipart(
        &self,
        path: &Path,
        size: u64,
        user_metadata: std::collections::HashMap<String, String>,
        opts: &PutOptions,
    ) -> Result<PutOutcome, S3Error> {
        let part_size = opts
            .part_size
            .max(MIN_PART_SIZE)
            .max(size.div_ceil(MAX_PARTS));
        let created = self
            .transfer
            .create_multipart_upload()
            .bucket(&self.settings().bucket)
            .key(&self.settings().key)
            .content_type(DEB_CONTENT_TYPE)
            .set_metadata(Some(user_metadata))
            .send()
            .await
            .map_err(|e| self.err(e, RequestContext::default()))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(S3Error::Other {
                at: self.location().clone(),
                detail: "CreateMultipartUpload returned no UploadId".into(),
                transient: true,
            });
        };
        tracing::debug!(%upload_id, size, part_size, "multipart upload");
        let result = self
            .upload_parts_and_complete(path, size, part_size, &upload_id, opts)
            .await;
        if result.is_err() {
            let abort = self
                .transfer
                .abort_multipart_upload()
                .bucket(&self.settings().bucket)
                .key(&self.settings().key)
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = abort {
                tracing::warn!(%upload_id, error = %aws_smithy_types::error::display::DisplayErrorContext(&e),
                    "could not abort the failed multipart upload; a bucket lifecycle rule should clean it up");
            }
        }
        result
    }

    async fn upload_parts_and_complete(
        &self,
        path: &Path,
        size: u64,
        part_size: u64,
        upload_id: &str,
        opts: &PutOptions,
    ) -> Result<PutOutcome, S3Error> {
        let local_err = |source| S3Error::LocalIo {
            at: self.location().clone(),
            path: path.to_path_buf(),
            source,
        };
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < size {
            let len = part_size.min(size - offset);
            let md5 = range_md5(path, offset, len).await.map_err(local_err)?;
            let body = file_body(path, offset, len, offset, size, opts.progress.clone())
                .await
                .map_err(local_err)?;
            let out = self
                .transfer
                .upload_part()
                .bucket(&self.settings().bucket)
                .key(&self.settings().key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
                .body(body)
                .send()
                .await
                .map_err(|e| self.err(e, RequestContext::default()))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build(),
            );
            offset += len;
            number += 1;
        }
        let condition = opts.condition();
        let out = self
            .transfer
            .complete_multipart_upload()
            .bucket(&self.settings().bucket)
            .key(&self.settings().key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_if_match(opts.if_match.as_deref().map(quoted_etag))
            .set_if_none_match(opts.if_none_match_any.then(|| "*".to_string()))
            .send()
            .await
            .map_err(|e| {
                self.err(
                    e,
                    RequestContext {
                        version_id: None,
                        condition: condition.as_deref(),
                    },
                )
            })?;
        Ok(PutOutcome {
            version_id: out.version_id().map(str::to_string),
            etag: out.e_tag().unwrap_or_default().to_string(),
        })
    }
}

/// MD5 of `len` bytes of the file from `offset`, read on a blocking thread.
async fn range_md5(path: &Path, offset: u64, len: u64) -> std::io::Result<[u8; 16]> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut hasher = Md5::new();
        let copied = std::io::copy(&mut file.take(len), &mut HashWriter(&mut hasher))?;
        if copied != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being uploaded",
            ));
        }
        Ok(hasher.finalize().into())
    })
    .await
    .map_err(std::io::Error::other)?
}

struct HashWriter<'a, D>(&'a mut D);

impl<D: md5::Digest> std::io::Write for HashWriter<'_, D> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A retryable body of `len` bytes of the file from `offset`, reporting progress as
/// `base + sent` of `total`.
async fn file_body(
    path: &Path,
    offset: u64,
    len: u64,
    base: u64,
    total: u64,
    progress: Option<ProgressFn>,
) -> std::io::Result<ByteStream> {
    let stream = ByteStream::read_from()
        .path(path)
        .offset(offset)
        .length(Length::Exact(len))
        .buffer_size(256 * 1024)
        .build()
        .await
        .map_err(std::io::Error::other)?;
    let Some(progress) = progress else {
        return Ok(stream);
    };
    Ok(stream.map(move |body| {
        SdkBody::from_body_1_x(ProgressBody {
            inner: body,
            sent: base,
            total,
            progress: progress.clone(),
        })
    }))
}

/// Passes the body through, counting data bytes for the progress callback.
struct ProgressBody {
    inner: SdkBody,
    sent: u64,
    total: u64,
    progress: ProgressFn,
}

impl http_body::Body for ProgressBody {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent += data.len() as u64;
            (self.progress)(self.sent, self.total);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}
