//! Expected values from the raw recorded logs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use num_bigint::BigUint;
use serde_json::Value;

/// topic0 of `Transfer(address,address,uint256)`.
pub const TRANSFER_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// One ERC-20 transfer as the raw log says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTransfer {
    pub token: String,
    pub block: u64,
    pub log_index: u64,
    pub amount: BigUint,
}

/// The blocks whose logs are recorded completely (`logs/<n>.json.gz`).
pub fn recorded_log_blocks(data: &Path) -> Vec<u64> {
    let mut blocks: Vec<u64> = std::fs::read_dir(data.join("logs"))
        .expect("read logs dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".json.gz")?.parse().ok()
        })
        .collect();
    blocks.sort_unstable();
    blocks
}

/// Reads a gzipped JSON file.
pub fn read_gz_json(path: &Path) -> Value {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("gunzip");
    serde_json::from_str(&text).expect("json")
}

fn hex_u64(v: &Value) -> u64 {
    let s = v.as_str().expect("hex string");
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex quantity")
}

/// Every ERC-20 Transfer log (topic0 Transfer, exactly three topics, 32 bytes
/// of data) in the recorded blocks within `from..=to`.
pub fn transfers(data: &Path, from: u64, to: u64) -> Vec<RawTransfer> {
    let mut out = Vec::new();
    for block in recorded_log_blocks(data)
        .into_iter()
        .filter(|b| (from..=to).contains(b))
    {
        let logs = read_gz_json(&data.join(format!("logs/{block}.json.gz")));
        for log in logs.as_array().expect("log array") {
            let topics = log["topics"].as_array().expect("topics");
            let data_hex = log["data"].as_str().expect("data");
            let is_transfer = topics.len() == 3
                && topics[0].as_str() == Some(TRANSFER_TOPIC)
                && data_hex.len() == 2 + 64;
            if !is_transfer {
                continue;
            }
            let amount = BigUint::parse_bytes(&data_hex.as_bytes()[2..], 16).expect("amount");
            out.push(RawTransfer {
                token: log["address"].as_str().expect("address").to_lowercase(),
                block: hex_u64(&log["blockNumber"]),
                log_index: hex_u64(&log["logIndex"]),
                amount,
            });
        }
    }
    out
}

/// Exact sums of amounts per token.
pub fn sums_by_token(transfers: &[RawTransfer]) -> BTreeMap<String, (u64, BigUint)> {
    let mut sums: BTreeMap<String, (u64, BigUint)> = BTreeMap::new();
    for t in transfers {
        let entry = sums.entry(t.token.clone()).or_default();
        entry.0 += 1;
        entry.1 += &t.amount;
    }
    sums
}

/// How many transfers have a raw amount strictly above `threshold`.
pub fn above(transfers: &[RawTransfer], threshold: &BigUint) -> usize {
    transfers.iter().filter(|t| &t.amount > threshold).count()
}

/// Number of transactions in the recorded full blocks, and their count.
pub fn recorded_blocks_and_transactions(data: &Path) -> (usize, usize) {
    let mut blocks = 0;
    let mut txs = 0;
    for entry in std::fs::read_dir(data.join("blocks"))
        .expect("blocks dir")
        .flatten()
    {
        let block = read_gz_json(&entry.path());
        blocks += 1;
        txs += block["transactions"].as_array().map_or(0, Vec::len);
    }
    (blocks, txs)
}

/// Number of logs in the recorded complete log sets.
pub fn recorded_logs(data: &Path) -> usize {
    recorded_log_blocks(data)
        .iter()
        .map(|b| {
            read_gz_json(&data.join(format!("logs/{b}.json.gz")))
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recording_holds_the_transfer_count_its_sources_state() {
        // SOURCES.md states 10228 ERC-20 Transfer logs across the complete log sets.
        let all = transfers(&crate::data_dir(), 0, u64::MAX);
        assert_eq!(all.len(), 10228);
    }
}
