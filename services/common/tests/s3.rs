//! The S3 object store against the local AWS emulator, through the real
//! SDK: what the gateway, the workers, the broker and the lake rely on.
//! The bytes stored are the recorded mainnet files.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use trace_common::aws::testing as moto;
use trace_common::objects::s3::S3Store;

mod support;
use support::{block_files, blocks_json};

const BUCKET: &str = "trace-test-objects";

async fn store() -> (moto::Moto, Arc<dyn ObjectStore>) {
    let moto = moto::start().await;
    let sdk = moto::sdk_config(&moto).await;
    aws_sdk_s3::Client::new(&sdk)
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let store = S3Store::new(&sdk, BUCKET);
    store.check().await.expect("the bucket answers");
    (moto, Arc::new(store))
}

#[tokio::test]
async fn objects_go_round_trip_list_by_segment_and_delete() {
    let (_moto, s3) = store().await;
    let files = block_files();
    for (name, bytes) in &files[..3] {
        let key = Path::from(format!("lake/chain=1/blocks/{name}"));
        s3.put(&key, bytes.clone().into()).await.unwrap();
    }
    // A sibling whose name shares the prefix's characters but not its segment.
    s3.put(
        &Path::from("lake/chain=1/blocks-old/x"),
        files[3].1.clone().into(),
    )
    .await
    .unwrap();

    let (name, bytes) = &files[0];
    let key = Path::from(format!("lake/chain=1/blocks/{name}"));
    let got = s3.get(&key).await.unwrap();
    assert_eq!(got.meta.size, bytes.len() as u64);
    assert_eq!(got.bytes().await.unwrap(), Bytes::from(bytes.clone()));
    let head = s3.head(&key).await.unwrap();
    assert_eq!(head.size, bytes.len() as u64);
    assert!(head.e_tag.is_some());

    let mut listed: Vec<String> = s3
        .list(Some(&Path::from("lake/chain=1/blocks")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    listed.sort();
    let wanted: Vec<String> = files[..3]
        .iter()
        .map(|(n, _)| format!("lake/chain=1/blocks/{n}"))
        .collect();
    assert_eq!(listed, wanted);

    let top = s3
        .list_with_delimiter(Some(&Path::from("lake/chain=1")))
        .await
        .unwrap();
    let mut dirs: Vec<String> = top.common_prefixes.iter().map(|p| p.to_string()).collect();
    dirs.sort();
    assert_eq!(dirs, ["lake/chain=1/blocks", "lake/chain=1/blocks-old"]);
    assert!(top.objects.is_empty());

    s3.delete(&key).await.unwrap();
    let err = s3.get(&key).await.unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    let err = s3.head(&key).await.unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn ranged_reads_answer_the_bytes_asked_for() {
    let (_moto, s3) = store().await;
    let (_, bytes) = &block_files()[0];
    let key = Path::from("lake/chain=1/blocks/one.json.gz");
    s3.put(&key, bytes.clone().into()).await.unwrap();

    let middle = s3.get_range(&key, 100..1100).await.unwrap();
    assert_eq!(&middle[..], &bytes[100..1100]);
    let ranges = s3.get_ranges(&key, &[0..10, 5000..5010]).await.unwrap();
    assert_eq!(&ranges[0][..], &bytes[0..10]);
    assert_eq!(&ranges[1][..], &bytes[5000..5010]);
    // The last eight bytes, as a Parquet reader asks for a file's footer.
    let options = object_store::GetOptions {
        range: Some(object_store::GetRange::Suffix(8)),
        ..Default::default()
    };
    let tail = s3.get_opts(&key, options).await.unwrap();
    let n = bytes.len() as u64;
    assert_eq!(tail.range, n - 8..n);
    assert_eq!(tail.meta.size, n);
    assert_eq!(&tail.bytes().await.unwrap()[..], &bytes[bytes.len() - 8..]);
}

#[tokio::test]
async fn a_large_object_goes_up_in_parts_and_reads_back_whole() {
    let (_moto, s3) = store().await;
    let json = blocks_json();
    assert!(
        json.len() > 10 * 1024 * 1024,
        "the recorded blocks are {} bytes",
        json.len()
    );
    let key = Path::from("lake/chain=1/blocks/all.json");
    let upload = s3.put_multipart(&key).await.unwrap();
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * 1024 * 1024);
    for chunk in json.chunks(1 << 20) {
        writer.write(chunk);
    }
    let put = writer.finish().await.unwrap();

    // S3 marks the e-tag of an object made of parts with their count.
    let parts = json.len().div_ceil(5 * 1024 * 1024);
    let etag = put.e_tag.expect("an e-tag");
    assert!(
        etag.trim_matches('"').ends_with(&format!("-{parts}")),
        "{etag}"
    );
    let got = s3.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.len(), json.len());
    assert_eq!(Sha256::digest(&got), Sha256::digest(&json));
}

#[tokio::test]
async fn an_aborted_upload_leaves_nothing_and_an_empty_one_is_empty() {
    let (_moto, s3) = store().await;
    let key = Path::from("scratch/t/aborted");
    let mut upload = s3.put_multipart(&key).await.unwrap();
    upload
        .put_part(PutPayload::from(block_files()[0].1.clone()))
        .await
        .unwrap();
    upload.abort().await.unwrap();
    assert!(matches!(
        s3.head(&key).await.unwrap_err(),
        object_store::Error::NotFound { .. }
    ));

    let key = Path::from("scratch/t/empty");
    let mut upload = s3.put_multipart(&key).await.unwrap();
    upload.complete().await.unwrap();
    assert_eq!(s3.head(&key).await.unwrap().size, 0);
}

#[tokio::test]
async fn a_create_does_not_overwrite_and_an_update_needs_the_current_etag() {
    let (_moto, s3) = store().await;
    let files = block_files();
    let key = Path::from("components/sha256/abc");
    let first = s3
        .put_opts(&key, files[0].1.clone().into(), PutMode::Create.into())
        .await
        .unwrap();
    let err = s3
        .put_opts(&key, files[1].1.clone().into(), PutMode::Create.into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "{err}"
    );
    let stale = object_store::UpdateVersion {
        e_tag: Some("\"0000\"".to_string()),
        version: None,
    };
    let err = s3
        .put_opts(
            &key,
            files[1].1.clone().into(),
            PutMode::Update(stale).into(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{err}"
    );
    let current = object_store::UpdateVersion::from(first);
    s3.put_opts(
        &key,
        files[1].1.clone().into(),
        PutMode::Update(current).into(),
    )
    .await
    .unwrap();
    let got = s3.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(got, Bytes::from(files[1].1.clone()));
}

#[tokio::test]
async fn a_copy_lands_and_a_missing_bucket_is_named_at_start() {
    let (moto, s3) = store().await;
    let (_, bytes) = &block_files()[0];
    let from = Path::from("scratch/t/a b");
    let to = Path::from("scratch/t/copy");
    s3.put(&from, bytes.clone().into()).await.unwrap();
    s3.copy(&from, &to).await.unwrap();
    assert_eq!(
        s3.get(&to).await.unwrap().bytes().await.unwrap(),
        Bytes::from(bytes.clone())
    );

    let sdk = moto::sdk_config(&moto).await;
    let err = S3Store::new(&sdk, "no-such-bucket")
        .check()
        .await
        .unwrap_err();
    assert!(err.contains("404") || err.contains("NotFound"), "{err}");
}
