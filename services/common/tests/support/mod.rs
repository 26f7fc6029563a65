//! What the AWS backend tests share: the recorded mainnet files they store
//! and send.

#![allow(dead_code)]

use std::io::Read as _;
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mainnet")
        })
}

/// The recorded block files, sorted by name, as (name, compressed bytes).
pub fn block_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir().join("blocks"))
        .expect("the recorded blocks")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// The recorded blocks' JSON, decompressed and concatenated.
pub fn blocks_json() -> Vec<u8> {
    let mut all = Vec::new();
    for (_, gz) in block_files() {
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut all)
            .unwrap();
    }
    all
}

/// One recorded block's JSON, decompressed: `name` of `blocks/`.
pub fn block_json(name: &str) -> serde_json::Value {
    let gz = std::fs::read(data_dir().join("blocks").join(name)).expect("a recorded block");
    serde_json::from_reader(flate2::read::GzDecoder::new(&gz[..])).expect("block JSON")
}
