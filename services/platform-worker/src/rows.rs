//! Chain rows parsed from JSON-RPC objects, typed like the Postgres columns.
//!
//! Quantities are parsed exactly: `bigint`/`integer` columns from hex into
//! `i64`/`i32` (refusing values that do not fit), `numeric(78,0)` columns
//! from hex into decimal text through a big integer. Hashes, addresses and
//! data stay `0x` text, lower-cased.

use chrono::{DateTime, Utc};
use num_bigint::BigUint;
use serde_json::Value;

/// A JSON-RPC object that is not what a node answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// A required field is absent or null.
    #[error("field `{0}` is missing")]
    Missing(&'static str),
    /// A field is not the hex it should be, or does not fit its column.
    #[error("field `{field}` has invalid value `{value}`")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The value found, shortened.
        value: String,
    },
}

/// A row of `chain.blocks`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRow {
    pub number: i64,
    pub hash: String,
    pub parent_hash: String,
    pub timestamp: DateTime<Utc>,
    pub miner: String,
    pub gas_used: i64,
    pub gas_limit: i64,
    /// Decimal text; absent before London.
    pub base_fee_per_gas: Option<String>,
    pub transaction_count: i32,
}

/// A row of `chain.transactions`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRow {
    pub block_number: i64,
    pub transaction_index: i32,
    pub hash: String,
    pub from_address: String,
    /// Absent for contract creations.
    pub to_address: Option<String>,
    /// Decimal text (wei).
    pub value: String,
    pub gas: i64,
    /// Decimal text (wei).
    pub gas_price: Option<String>,
    pub nonce: i64,
    pub input: String,
    /// The EIP-2718 type; 0 for legacy transactions that carry none.
    pub tx_type: i32,
}

/// A row of `chain.logs`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub block_number: i64,
    pub block_hash: String,
    pub transaction_hash: String,
    pub transaction_index: i32,
    pub log_index: i32,
    pub address: String,
    pub topics: [Option<String>; 4],
    pub data: String,
}

/// A full block object: its row and its transactions' rows.
pub fn block_rows(block: &Value) -> Result<(BlockRow, Vec<TransactionRow>), RowError> {
    let number = int(block, "number")?;
    let txs = match block.get("transactions") {
        Some(Value::Array(txs)) => txs.as_slice(),
        _ => return Err(RowError::Missing("transactions")),
    };
    let seconds = int(block, "timestamp")?;
    let timestamp =
        DateTime::from_timestamp(seconds, 0).ok_or_else(|| invalid(block, "timestamp"))?;
    let row = BlockRow {
        number,
        hash: text(block, "hash")?,
        parent_hash: text(block, "parentHash")?,
        timestamp,
        miner: text(block, "miner")?,
        gas_used: int(block, "gasUsed")?,
        gas_limit: int(block, "gasLimit")?,
        base_fee_per_gas: opt(block, "baseFeePerGas", decimal)?,
        transaction_count: i32::try_from(txs.len()).map_err(|_| invalid(block, "transactions"))?,
    };
    let txs = txs
        .iter()
        .map(|tx| transaction_row(tx, number))
        .collect::<Result<_, _>>()?;
    Ok((row, txs))
}

fn transaction_row(tx: &Value, block_number: i64) -> Result<TransactionRow, RowError> {
    Ok(TransactionRow {
        block_number,
        transaction_index: int32(tx, "transactionIndex")?,
        hash: text(tx, "hash")?,
        from_address: text(tx, "from")?,
        to_address: opt(tx, "to", text)?,
        value: decimal(tx, "value")?,
        gas: int(tx, "gas")?,
        gas_price: opt(tx, "gasPrice", decimal)?,
        nonce: int(tx, "nonce")?,
        input: text(tx, "input")?,
        tx_type: opt(tx, "type", int32)?.unwrap_or(0),
    })
}

/// A log object of `eth_getLogs`.
pub fn log_row(log: &Value) -> Result<LogRow, RowError> {
    let topics = match log.get("topics") {
        Some(Value::Array(t)) if t.len() <= 4 => t,
        _ => return Err(invalid(log, "topics")),
    };
    let mut slots: [Option<String>; 4] = Default::default();
    for (slot, topic) in slots.iter_mut().zip(topics) {
        let topic = topic.as_str().ok_or_else(|| invalid(log, "topics"))?;
        *slot = Some(topic.to_ascii_lowercase());
    }
    Ok(LogRow {
        block_number: int(log, "blockNumber")?,
        block_hash: text(log, "blockHash")?,
        transaction_hash: text(log, "transactionHash")?,
        transaction_index: int32(log, "transactionIndex")?,
        log_index: int32(log, "logIndex")?,
        address: text(log, "address")?,
        topics: slots,
        data: text(log, "data")?,
    })
}

fn field<'a>(obj: &'a Value, name: &'static str) -> Result<&'a str, RowError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(RowError::Missing(name)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(obj, name)),
    }
}

fn invalid(obj: &Value, name: &'static str) -> RowError {
    let value: String = obj.get(name).map(Value::to_string).unwrap_or_default();
    RowError::Invalid {
        field: name,
        value: value.chars().take(80).collect(),
    }
}

fn opt<T>(
    obj: &Value,
    name: &'static str,
    parse: fn(&Value, &'static str) -> Result<T, RowError>,
) -> Result<Option<T>, RowError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => parse(obj, name).map(Some),
    }
}

fn hex_digits<'a>(obj: &'a Value, name: &'static str) -> Result<&'a str, RowError> {
    let s = field(obj, name)?;
    match s.strip_prefix("0x") {
        Some(d) if !d.is_empty() && d.chars().all(|c| c.is_ascii_hexdigit()) => Ok(d),
        _ => Err(invalid(obj, name)),
    }
}

fn text(obj: &Value, name: &'static str) -> Result<String, RowError> {
    let s = field(obj, name)?;
    let hex = s.strip_prefix("0x").ok_or_else(|| invalid(obj, name))?;
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid(obj, name));
    }
    Ok(s.to_ascii_lowercase())
}

fn int(obj: &Value, name: &'static str) -> Result<i64, RowError> {
    let digits = hex_digits(obj, name)?;
    u64::from_str_radix(digits, 16)
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| invalid(obj, name))
}

fn int32(obj: &Value, name: &'static str) -> Result<i32, RowError> {
    i32::try_from(int(obj, name)?).map_err(|_| invalid(obj, name))
}

/// A hex quantity as exact decimal text, for `numeric(78,0)` columns.
fn decimal(obj: &Value, name: &'static str) -> Result<String, RowError> {
    let digits = hex_digits(obj, name)?;
    let n = BigUint::parse_bytes(digits.as_bytes(), 16).ok_or_else(|| invalid(obj, name))?;
    Ok(n.to_str_radix(10))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_beyond_u64_become_exact_decimals() {
        let tx = json!({"value": "0x1bc16d674ec800000000"});
        assert_eq!(decimal(&tx, "value").unwrap(), "131072000000000000000000");
        assert_eq!(decimal(&json!({"value": "0x0"}), "value").unwrap(), "0");
    }

    #[test]
    fn malformed_hex_and_overflowing_ints_are_refused() {
        assert!(int(&json!({"gas": "12"}), "gas").is_err());
        assert!(int(&json!({"gas": "0xffffffffffffffff"}), "gas").is_err());
        assert!(int32(&json!({"logIndex": "0x80000000"}), "logIndex").is_err());
        assert!(matches!(
            int(&json!({}), "gas"),
            Err(RowError::Missing("gas"))
        ));
    }

    #[test]
    fn log_topics_fill_their_positions_and_leave_the_rest_empty() {
        let log = json!({
            "blockNumber": "0x10", "blockHash": "0xAB", "transactionHash": "0xcd",
            "transactionIndex": "0x1", "logIndex": "0x2", "address": "0xEF",
            "topics": ["0xAA", "0xbb"], "data": "0x"
        });
        let row = log_row(&log).unwrap();
        assert_eq!(
            row.topics,
            [Some("0xaa".into()), Some("0xbb".into()), None, None]
        );
        assert_eq!(row.address, "0xef");
        assert_eq!(row.block_hash, "0xab");
        assert_eq!((row.block_number, row.log_index), (16, 2));
    }
}
