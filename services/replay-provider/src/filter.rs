//! `eth_getLogs` filters: parsing them as a node does and matching logs.
//!
//! A filter names a block range (`fromBlock`/`toBlock`, default `latest`)
//! or one block by `blockHash`, optionally addresses (one or many, compared
//! case-insensitively) and topics by position, where `null` matches anything
//! and an array matches any of its members.

use serde_json::Value;

use crate::jsonrpc::RpcError;
use crate::methods::parse_block_number;
use crate::store::Store;

/// The widest block range one `eth_getLogs` call may span.
pub const MAX_RANGE: u64 = 10_000;

/// A parsed `eth_getLogs` filter.
#[derive(Debug)]
pub struct LogFilter {
    /// First block, inclusive.
    pub from_block: u64,
    /// Last block, inclusive.
    pub to_block: u64,
    /// Lower-case addresses; empty matches every address.
    pub addresses: Vec<String>,
    /// Lower-case topics by position; an empty set matches anything.
    pub topics: Vec<Vec<String>>,
}

impl LogFilter {
    /// Parses a filter object; block tags resolve against the store's head.
    pub fn parse(filter: &Value, store: &Store) -> Result<Self, RpcError> {
        let Some(obj) = filter.as_object() else {
            return Err(RpcError::invalid_params("the filter must be an object"));
        };
        let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
        let (from_block, to_block) = match field("blockHash") {
            Some(hash) => {
                if field("fromBlock").is_some() || field("toBlock").is_some() {
                    let msg = "`blockHash` cannot be combined with `fromBlock`/`toBlock`";
                    return Err(RpcError::invalid_params(msg));
                }
                let number = block_of_hash(hash, store)?;
                (number, number)
            }
            None => {
                let head = store.head();
                let bound = |v: Option<&Value>| match v {
                    Some(v) => parse_block_number(v, head),
                    None => Ok(head),
                };
                (bound(field("fromBlock"))?, bound(field("toBlock"))?)
            }
        };
        if from_block > to_block {
            let msg = format!("invalid block range `{from_block}`..`{to_block}`");
            return Err(RpcError::invalid_params(msg));
        }
        if to_block - from_block >= MAX_RANGE {
            let msg =
                format!("block range `{from_block}`..`{to_block}` exceeds {MAX_RANGE} blocks");
            return Err(RpcError::invalid_params(msg));
        }
        let addresses = match field("address") {
            None => Vec::new(),
            Some(v) => hex_set(v, "address")?,
        };
        let topics = match field("topics") {
            None => Vec::new(),
            Some(Value::Array(positions)) if positions.len() <= 4 => positions
                .iter()
                .map(|p| {
                    if p.is_null() {
                        Ok(Vec::new())
                    } else {
                        hex_set(p, "topic")
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "`topics` must be an array of up to 4",
                ));
            }
        };
        Ok(Self {
            from_block,
            to_block,
            addresses,
            topics,
        })
    }

    /// Whether `log` passes the address and topic conditions.
    pub fn matches(&self, log: &Value) -> bool {
        let lower = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_ascii_lowercase);
        if !self.addresses.is_empty() {
            let Some(address) = lower(log.get("address")) else {
                return false;
            };
            if !self.addresses.contains(&address) {
                return false;
            }
        }
        let topics = log.get("topics").and_then(Value::as_array);
        self.topics.iter().enumerate().all(|(i, wanted)| {
            if wanted.is_empty() {
                return true;
            }
            match lower(topics.and_then(|t| t.get(i))) {
                Some(topic) => wanted.contains(&topic),
                None => false,
            }
        })
    }
}

fn block_of_hash(hash: &Value, store: &Store) -> Result<u64, RpcError> {
    let Some(hash) = hash.as_str() else {
        return Err(RpcError::invalid_params("`blockHash` must be a string"));
    };
    store
        .number_of_hash(hash)
        .ok_or_else(|| RpcError::not_recorded(format!("block hash `{hash}` was not recorded")))
}

/// One hex string or an array of them, lower-cased.
fn hex_set(value: &Value, what: &str) -> Result<Vec<String>, RpcError> {
    let one = |v: &Value| match v.as_str() {
        Some(s) if s.starts_with("0x") && s[2..].chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(s.to_ascii_lowercase())
        }
        _ => Err(RpcError::invalid_params(format!("invalid {what} `{v}`"))),
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        single => Ok(vec![one(single)?]),
    }
}
