//! The recorded chain data, loaded once from the data directory.
//!
//! Everything is read into memory at start-up: the directory is a few
//! megabytes of gzipped JSON, and answering from memory keeps every request
//! cheap and deterministic. The store knows which blocks have a full block
//! object, which have receipts and which have a complete log set, so that
//! the methods can refuse to answer anything that was not recorded.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use trace_common::api::RecordedBlocks;

/// A failure to load the data directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A directory or file could not be read.
    #[error("cannot read `{path}`")]
    Io {
        /// The path that failed.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not the JSON it should be.
    #[error("`{path}` is not valid recorded JSON: {reason}")]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Recorded blocks, receipts and complete per-block log sets.
#[derive(Debug, Default)]
pub struct Store {
    blocks: BTreeMap<u64, Value>,
    receipts: BTreeMap<u64, Value>,
    logs: BTreeMap<u64, Vec<Value>>,
    by_hash: HashMap<String, u64>,
}

impl Store {
    /// Loads `blocks/`, `receipts/` and `logs/` under `dir`; a missing
    /// subdirectory simply records nothing of that kind.
    pub fn load(dir: &Path) -> Result<Self, LoadError> {
        let mut store = Store::default();
        for (n, value) in read_numbered(&dir.join("blocks"))? {
            store.index_hash(value.get("hash"), n);
            store.blocks.insert(n, value);
        }
        for (n, value) in read_numbered(&dir.join("receipts"))? {
            if let Some(first) = value.as_array().and_then(|r| r.first()) {
                store.index_hash(first.get("blockHash"), n);
            }
            store.receipts.insert(n, value);
        }
        for (n, value) in read_numbered(&dir.join("logs"))? {
            let Value::Array(logs) = value else {
                let path = dir.join("logs").join(format!("{n}.json.gz"));
                return Err(LoadError::Format {
                    path,
                    reason: "not an array".into(),
                });
            };
            if let Some(first) = logs.first() {
                store.index_hash(first.get("blockHash"), n);
            }
            store.logs.insert(n, logs);
        }
        Ok(store)
    }

    fn index_hash(&mut self, hash: Option<&Value>, number: u64) {
        if let Some(hash) = hash.and_then(Value::as_str) {
            self.by_hash.insert(hash.to_ascii_lowercase(), number);
        }
    }

    /// The full block object of `number`, if recorded.
    pub fn block(&self, number: u64) -> Option<&Value> {
        self.blocks.get(&number)
    }

    /// The receipts array of `number`, if recorded.
    pub fn receipts(&self, number: u64) -> Option<&Value> {
        self.receipts.get(&number)
    }

    /// The complete logs of `number`, if recorded.
    pub fn logs(&self, number: u64) -> Option<&[Value]> {
        self.logs.get(&number).map(Vec::as_slice)
    }

    /// The number of the block with `hash` (any case), if any file names it.
    pub fn number_of_hash(&self, hash: &str) -> Option<u64> {
        self.by_hash.get(&hash.to_ascii_lowercase()).copied()
    }

    /// The highest block with a full block object.
    pub fn latest_block(&self) -> Option<u64> {
        self.blocks.keys().next_back().copied()
    }

    /// The highest block recorded in any form: the replayed chain's head.
    pub fn head(&self) -> u64 {
        let highest = |m: Option<&u64>| m.copied().unwrap_or(0);
        highest(self.blocks.keys().next_back())
            .max(highest(self.receipts.keys().next_back()))
            .max(highest(self.logs.keys().next_back()))
    }

    /// What is recorded, as `replay_recordedBlocks` reports it.
    pub fn recorded(&self) -> RecordedBlocks {
        RecordedBlocks {
            blocks: self.blocks.keys().copied().collect(),
            receipts: self.receipts.keys().copied().collect(),
            logs: self.logs.keys().copied().collect(),
        }
    }
}

/// Reads every `<n>.json.gz` directly under `dir` (subdirectories and other
/// names are skipped: `logs/queries/` holds filtered results, not log sets).
fn read_numbered(dir: &Path) -> Result<Vec<(u64, Value)>, LoadError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LoadError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let Some(number) = block_number_of(&path) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        out.push((number, read_gz_json(&path)?));
    }
    Ok(out)
}

fn block_number_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".json.gz")?.parse().ok()
}

fn read_gz_json(path: &Path) -> Result<Value, LoadError> {
    let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.into(),
        source,
    })?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|source| LoadError::Io {
            path: path.into(),
            source,
        })?;
    serde_json::from_str(&text).map_err(|e| LoadError::Format {
        path: path.into(),
        reason: e.to_string(),
    })
}
