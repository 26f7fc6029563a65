//! Object storage on S3 through aws-sdk-s3, behind the same `ObjectStore`
//! trait as the local directory, so the gateway, the workers, the broker and
//! the query service's DataFusion lake read and write either without
//! knowing which.
//!
//! Keys are the paths' own strings, with no prefix of the store's: one
//! bucket per deployment, laid out as [`super`] describes. Conditional
//! writes map onto S3's own (`If-None-Match: *` for a create, `If-Match`
//! for an update), ranges onto `Range` headers, and a multipart upload onto
//! S3's (parts of at least 5 MiB except the last, which the callers'
//! `BufWriter`/`WriteMultipart` take care of). Copy-if-absent has no S3
//! equivalent and answers `NotSupported`.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, Result, UploadPart,
};

const STORE: &str = "S3";

/// `builder` (a GetObject or HeadObject request, which share these setters
/// but no trait) with the preconditions and version of `options`.
macro_rules! with_conditions {
    ($builder:expr, $options:expr) => {{
        let (mut b, o) = ($builder, &$options);
        if let Some(etag) = &o.if_match {
            b = b.if_match(etag);
        }
        if let Some(etag) = &o.if_none_match {
            b = b.if_none_match(etag);
        }
        if let Some(t) = o.if_modified_since {
            b = b.if_modified_since(to_aws(t));
        }
        if let Some(t) = o.if_unmodified_since {
            b = b.if_unmodified_since(to_aws(t));
        }
        if let Some(version) = &o.version {
            b = b.version_id(version);
        }
        b
    }};
}

/// A bucket as an object store.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: Arc<str>,
}

impl S3Store {
    /// The store over `bucket`, reached with `sdk`'s settings.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        // Path-style addressing: a bucket name with dots, an emulator and
        // a VPC endpoint all work with it.
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        Self::with_client(Client::from_conf(config), bucket)
    }

    /// The store over `bucket` through an existing client (a task's own,
    /// built on credentials from the broker).
    pub fn with_client(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into().into(),
        }
    }

    /// Whether the bucket answers `HeadBucket`; the SDK's error otherwise.
    pub async fn check(&self) -> std::result::Result<(), String> {
        self.client
            .head_bucket()
            .bucket(&*self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DisplayErrorContext(e).to_string())
    }

    /// The bucket this store reads and writes.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .finish()
    }
}

impl fmt::Display for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3Store(s3://{})", self.bucket)
    }
}

/// The HTTP status of a failed call, when it got an answer.
fn status<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// An SDK failure as the store's error for `path`.
fn error<E>(
    path: &Path,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> object_store::Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let path = path.to_string();
    let code = err
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string);
    match (status(&err), code.as_deref()) {
        // A missing bucket is a misconfiguration, never a missing object.
        (_, Some("NoSuchBucket")) => generic(DisplayErrorContext(err).to_string()),
        (Some(404), _) | (_, Some("NoSuchKey" | "NotFound")) => object_store::Error::NotFound {
            path,
            source: Box::new(err),
        },
        (Some(304), _) => object_store::Error::NotModified {
            path,
            source: Box::new(err),
        },
        (Some(412), _) => object_store::Error::Precondition {
            path,
            source: Box::new(err),
        },
        (Some(403), _) | (_, Some("AccessDenied")) => object_store::Error::PermissionDenied {
            path,
            source: Box::new(err),
        },
        (Some(401), _) | (_, Some("ExpiredToken" | "InvalidAccessKeyId" | "InvalidToken")) => {
            object_store::Error::Unauthenticated {
                path,
                source: Box::new(err),
            }
        }
        _ => generic(DisplayErrorContext(err).to_string()),
    }
}

fn generic(message: impl Into<String>) -> object_store::Error {
    let message: String = message.into();
    object_store::Error::Generic {
        store: STORE,
        source: message.into(),
    }
}

fn to_chrono(time: Option<&aws_sdk_s3::primitives::DateTime>) -> chrono::DateTime<chrono::Utc> {
    time.and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_default()
}

fn to_aws(time: chrono::DateTime<chrono::Utc>) -> aws_sdk_s3::primitives::DateTime {
    aws_sdk_s3::primitives::DateTime::from_secs(time.timestamp())
}

/// The `Range` header of a ranged get.
fn range_header(range: &GetRange) -> String {
    match range {
        GetRange::Bounded(r) => format!("bytes={}-{}", r.start, r.end.saturating_sub(1)),
        GetRange::Offset(o) => format!("bytes={o}-"),
        GetRange::Suffix(n) => format!("bytes=-{n}"),
    }
}

/// The byte range and whole size a `Content-Range: bytes a-b/size` names.
fn parse_content_range(value: &str) -> Option<(std::ops::Range<u64>, u64)> {
    let rest = value.strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let start: u64 = start.parse().ok()?;
    let end: u64 = end.parse().ok()?;
    Some((start..end + 1, size.parse().ok()?))
}

/// A key as the store's path; keys this store wrote always parse.
fn path_of(key: &str) -> Result<Path> {
    Path::parse(key).map_err(|e| {
        generic(format!(
            "the bucket holds a key `{key}` that is not a path: {e}"
        ))
    })
}

/// The listing prefix of `prefix`: whole segments only, as the trait says.
fn list_prefix(prefix: Option<&Path>) -> Option<String> {
    prefix
        .map(|p| p.as_ref())
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}/"))
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let body = ByteStream::from(Bytes::from(payload));
        let mut put = self
            .client
            .put_object()
            .bucket(&*self.bucket)
            .key(location.as_ref())
            .body(body);
        let create = matches!(opts.mode, PutMode::Create);
        match opts.mode {
            PutMode::Overwrite => {}
            PutMode::Create => put = put.if_none_match("*"),
            PutMode::Update(version) => {
                let Some(etag) = version.e_tag else {
                    return Err(object_store::Error::NotSupported {
                        source: "an update without an e-tag".into(),
                    });
                };
                put = put.if_match(etag);
            }
        }
        match put.send().await {
            Ok(out) => Ok(PutResult {
                e_tag: out.e_tag().map(str::to_string),
                version: out.version_id().map(str::to_string),
            }),
            Err(err) if create && status(&err) == Some(412) => {
                Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: Box::new(err),
                })
            }
            Err(err) => Err(error(location, err)),
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&*self.bucket)
            .key(location.as_ref())
            .send()
            .await
            .map_err(|e| error(location, e))?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| generic("CreateMultipartUpload answered without an upload id"))?;
        Ok(Box::new(S3Upload {
            store: self.clone(),
            location: location.clone(),
            upload_id: upload_id.to_string(),
            next_part: 1,
            parts: Arc::default(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        if options.head {
            return self.head_opts(location, &options).await;
        }
        let mut get = self
            .client
            .get_object()
            .bucket(&*self.bucket)
            .key(location.as_ref());
        if let Some(range) = &options.range {
            if let GetRange::Bounded(r) = range
                && r.start >= r.end
            {
                return Err(generic(format!("an empty or inverted range {r:?}")));
            }
            get = get.range(range_header(range));
        }
        let get = with_conditions!(get, options);
        let out = get.send().await.map_err(|e| error(location, e))?;
        let length = out.content_length().unwrap_or(0).max(0) as u64;
        let (range, size) = match out.content_range().and_then(parse_content_range) {
            Some(found) => found,
            // S3 answers a range past the end with 416, and one it ignores
            // with the whole object: never hand that out as the range.
            None if options.range.is_some() => {
                return Err(generic(format!(
                    "`{location}` was asked for a range and answered without one"
                )));
            }
            None => (0..length, length),
        };
        let meta = ObjectMeta {
            location: location.clone(),
            last_modified: to_chrono(out.last_modified()),
            size,
            e_tag: out.e_tag().map(str::to_string),
            version: out.version_id().map(str::to_string),
        };
        let body = out.body;
        let stream = futures::stream::try_unfold(body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(generic(format!("reading an object body: {e}"))),
            }
        });
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream.boxed()),
            meta,
            range,
            attributes: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let store = self.clone();
        locations
            .map(move |location| {
                let store = store.clone();
                async move {
                    let location = location?;
                    store
                        .client
                        .delete_object()
                        .bucket(&*store.bucket)
                        .key(location.as_ref())
                        .send()
                        .await
                        .map_err(|e| error(&location, e))?;
                    Ok(location)
                }
            })
            .buffered(8)
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&*self.bucket)
            .set_prefix(list_prefix(prefix))
            .into_paginator()
            .send();
        futures::stream::try_unfold(pages, |mut pages| async move {
            match pages.next().await {
                None => Ok(None),
                Some(Err(err)) => Err(error(&Path::default(), err)),
                Some(Ok(page)) => {
                    let metas: Vec<Result<ObjectMeta>> =
                        page.contents().iter().map(object_meta).collect();
                    Ok(Some((futures::stream::iter(metas), pages)))
                }
            }
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&*self.bucket)
            .set_prefix(list_prefix(prefix))
            .delimiter("/")
            .into_paginator()
            .send();
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error(&Path::default(), e))?;
            for common in page.common_prefixes() {
                if let Some(p) = common.prefix() {
                    result
                        .common_prefixes
                        .push(path_of(p.trim_end_matches('/'))?);
                }
            }
            for object in page.contents() {
                result.objects.push(object_meta(object)?);
            }
        }
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        if matches!(options.mode, CopyMode::Create) {
            return Err(object_store::Error::NotSupported {
                source: "S3 has no copy-if-absent".into(),
            });
        }
        let source = format!(
            "{}/{}",
            self.bucket,
            percent_encoding::utf8_percent_encode(from.as_ref(), KEY_ENCODE)
        );
        self.client
            .copy_object()
            .bucket(&*self.bucket)
            .key(to.as_ref())
            .copy_source(source)
            .send()
            .await
            .map_err(|e| error(from, e))?;
        Ok(())
    }
}

/// What a copy source's key must escape: everything but unreserved
/// characters and the path separator.
const KEY_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl S3Store {
    async fn head_opts(&self, location: &Path, options: &GetOptions) -> Result<GetResult> {
        let head = self
            .client
            .head_object()
            .bucket(&*self.bucket)
            .key(location.as_ref());
        let head = with_conditions!(head, options);
        let out = head.send().await.map_err(|e| error(location, e))?;
        let size = out.content_length().unwrap_or(0).max(0) as u64;
        let meta = ObjectMeta {
            location: location.clone(),
            last_modified: to_chrono(out.last_modified()),
            size,
            e_tag: out.e_tag().map(str::to_string),
            version: out.version_id().map(str::to_string),
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(futures::stream::empty().boxed()),
            meta,
            range: 0..size,
            attributes: Default::default(),
        })
    }
}

fn object_meta(object: &aws_sdk_s3::types::Object) -> Result<ObjectMeta> {
    let key = object
        .key()
        .ok_or_else(|| generic("a listing named an object without a key"))?;
    Ok(ObjectMeta {
        location: path_of(key)?,
        last_modified: to_chrono(object.last_modified()),
        size: object.size().unwrap_or(0).max(0) as u64,
        e_tag: object.e_tag().map(str::to_string),
        version: None,
    })
}

/// One multipart upload in progress. Parts may be sent concurrently; their
/// numbers are fixed when asked for, and completion lists them in order.
#[derive(Debug)]
struct S3Upload {
    store: S3Store,
    location: Path,
    upload_id: String,
    next_part: i32,
    parts: Arc<Mutex<Vec<CompletedPart>>>,
}

#[async_trait]
impl MultipartUpload for S3Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let number = self.next_part;
        self.next_part += 1;
        let store = self.store.clone();
        let location = self.location.clone();
        let upload_id = self.upload_id.clone();
        let parts = self.parts.clone();
        Box::pin(async move {
            let out = store
                .client
                .upload_part()
                .bucket(&*store.bucket)
                .key(location.as_ref())
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(Bytes::from(data)))
                .send()
                .await
                .map_err(|e| error(&location, e))?;
            let part = CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                .build();
            parts.lock().expect("parts lock").push(part);
            Ok(())
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        if self.next_part == 1 {
            // S3 completes no upload without a part; an empty object is
            // one empty part.
            self.put_part(PutPayload::default()).await?;
        }
        let mut parts = std::mem::take(&mut *self.parts.lock().expect("parts lock"));
        parts.sort_by_key(|p| p.part_number());
        // A part whose upload failed or was dropped would leave a hole.
        let numbers: Vec<i32> = parts.iter().filter_map(|p| p.part_number()).collect();
        if numbers != (1..self.next_part).collect::<Vec<_>>() {
            return Err(generic(format!(
                "`{}`: {} of {} parts were uploaded",
                self.location,
                numbers.len(),
                self.next_part - 1
            )));
        }
        let out = self
            .store
            .client
            .complete_multipart_upload()
            .bucket(&*self.store.bucket)
            .key(self.location.as_ref())
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| error(&self.location, e))?;
        Ok(PutResult {
            e_tag: out.e_tag().map(str::to_string),
            version: out.version_id().map(str::to_string),
        })
    }

    async fn abort(&mut self) -> Result<()> {
        self.store
            .client
            .abort_multipart_upload()
            .bucket(&*self.store.bucket)
            .key(self.location.as_ref())
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|e| error(&self.location, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_headers() {
        assert_eq!(range_header(&GetRange::Bounded(0..10)), "bytes=0-9");
        assert_eq!(range_header(&GetRange::Offset(5)), "bytes=5-");
        assert_eq!(range_header(&GetRange::Suffix(8)), "bytes=-8");
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0..10, 100)));
        assert_eq!(parse_content_range("bytes 90-99/100"), Some((90..100, 100)));
        assert_eq!(parse_content_range("bytes */100"), None);
    }

    #[test]
    fn listing_prefixes_are_whole_segments() {
        assert_eq!(list_prefix(None), None);
        assert_eq!(list_prefix(Some(&Path::from(""))), None);
        assert_eq!(
            list_prefix(Some(&Path::from("lake/chain=1"))).as_deref(),
            Some("lake/chain=1/")
        );
    }
}
