//! The JSON-RPC methods the replay provider answers, over the [`Store`].
//!
//! Each method answers exactly what a mainnet node would have answered for
//! the recorded blocks and refuses, with [`NOT_RECORDED`], anything it
//! cannot answer completely.

use serde_json::Value;

use crate::filter::LogFilter;
use crate::jsonrpc::{Call, METHOD_NOT_FOUND, RpcError};
use crate::store::Store;

/// Mainnet's chain id, as `eth_chainId` answers it.
pub const CHAIN_ID: &str = "0x1";

/// Answers one call.
pub fn answer(store: &Store, call: &Call) -> Result<Value, RpcError> {
    let params = positional(&call.params)?;
    match call.method.as_str() {
        "eth_chainId" => Ok(Value::String(CHAIN_ID.into())),
        "eth_blockNumber" => Ok(Value::String(quantity(store.head()))),
        "eth_getBlockByNumber" => get_block_by_number(store, params),
        "eth_getBlockReceipts" => get_block_receipts(store, params),
        "eth_getLogs" => get_logs(store, params),
        "replay_recordedBlocks" => {
            Ok(serde_json::to_value(store.recorded())
                .expect("recorded block lists always serialise"))
        }
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method `{other}` not found"),
        )),
    }
}

fn positional(params: &Value) -> Result<&[Value], RpcError> {
    params
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| RpcError::invalid_params("parameters must be positional (an array)"))
}

fn get_block_by_number(store: &Store, params: &[Value]) -> Result<Value, RpcError> {
    let [tag, full] = params else {
        return Err(RpcError::invalid_params(
            "expected [block, fullTransactions]",
        ));
    };
    let Some(full) = full.as_bool() else {
        return Err(RpcError::invalid_params(
            "fullTransactions must be a boolean",
        ));
    };
    let number = match tag.as_str() {
        Some("latest" | "safe" | "finalized" | "pending") => store
            .latest_block()
            .ok_or_else(|| RpcError::not_recorded("no block was recorded"))?,
        _ => parse_block_number(tag, store.head())?,
    };
    let block = store
        .block(number)
        .ok_or_else(|| RpcError::not_recorded(format!("block `{number}` was not recorded")))?;
    if full {
        return Ok(block.clone());
    }
    let mut block = block.clone();
    if let Some(Value::Array(txs)) = block.get_mut("transactions") {
        for tx in txs.iter_mut() {
            *tx = tx.get("hash").cloned().unwrap_or(Value::Null);
        }
    }
    Ok(block)
}

fn get_block_receipts(store: &Store, params: &[Value]) -> Result<Value, RpcError> {
    let [tag] = params else {
        return Err(RpcError::invalid_params("expected [block]"));
    };
    let number = match tag.as_str() {
        Some(hash) if hash.len() == 66 => store.number_of_hash(hash).ok_or_else(|| {
            RpcError::not_recorded(format!("block hash `{hash}` was not recorded"))
        })?,
        Some("latest" | "safe" | "finalized" | "pending") => store
            .latest_block()
            .ok_or_else(|| RpcError::not_recorded("no block was recorded"))?,
        _ => parse_block_number(tag, store.head())?,
    };
    store.receipts(number).cloned().ok_or_else(|| {
        RpcError::not_recorded(format!("receipts of block `{number}` were not recorded"))
    })
}

fn get_logs(store: &Store, params: &[Value]) -> Result<Value, RpcError> {
    let [filter] = params else {
        return Err(RpcError::invalid_params("expected [filter]"));
    };
    let filter = LogFilter::parse(filter, store)?;
    let mut out = Vec::new();
    for number in filter.from_block..=filter.to_block {
        let logs = store.logs(number).ok_or_else(|| {
            RpcError::not_recorded(format!("logs of block `{number}` were not recorded"))
        })?;
        out.extend(logs.iter().filter(|log| filter.matches(log)).cloned());
    }
    Ok(Value::Array(out))
}

/// A block number from a hex quantity or the tags `earliest` (0) and
/// `latest`/`safe`/`finalized`/`pending` (`head`).
pub fn parse_block_number(tag: &Value, head: u64) -> Result<u64, RpcError> {
    let Some(text) = tag.as_str() else {
        return Err(RpcError::invalid_params(
            "a block must be a hex quantity or a tag",
        ));
    };
    match text {
        "earliest" => Ok(0),
        "latest" | "safe" | "finalized" | "pending" => Ok(head),
        _ => parse_quantity(text)
            .ok_or_else(|| RpcError::invalid_params(format!("invalid block `{text}`"))),
    }
}

/// A `0x`-prefixed hex quantity without leading zeros.
pub fn parse_quantity(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// `n` as a JSON-RPC quantity.
pub fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_round_trip_and_leading_zeros_are_refused() {
        assert_eq!(parse_quantity("0x0"), Some(0));
        assert_eq!(parse_quantity("0xed14f2"), Some(15_537_394));
        assert_eq!(quantity(15_537_394), "0xed14f2");
        assert_eq!(parse_quantity("0x01"), None);
        assert_eq!(parse_quantity("12"), None);
        assert_eq!(parse_quantity("0x"), None);
    }
}
