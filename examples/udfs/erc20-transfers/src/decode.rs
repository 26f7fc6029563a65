//! Decoding ERC-20 Transfer logs into records and alerts.
//!
//! This module holds no host calls, so it compiles natively: the unit tests
//! below and the benchmark in `host/benches/udf.rs` run the same code the
//! component runs.

use serde::Serialize;
use trace_udf::{Alert, Row, Rows, Severity, Task, U256, UdfError};

/// `keccak256("Transfer(address,address,uint256)")`, the event's `topic0`.
pub const TRANSFER_TOPIC: &str =
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";

/// One decoded transfer: a record of the `erc20_transfers` dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// The token contract, the log's address.
    pub token: String,
    /// The sender, the last 20 bytes of `topic1`.
    pub from_address: String,
    /// The recipient, the last 20 bytes of `topic2`.
    pub to_address: String,
    /// The raw amount (not scaled by the token's decimals), from `data`.
    pub amount: U256,
    /// The block the log is in.
    pub block_number: i64,
    /// The transaction that emitted the log.
    pub transaction_hash: String,
    /// The log's index in its block.
    pub log_index: i64,
}

/// Reads the job parameter `threshold`, a decimal uint256.
pub fn threshold(task: &Task) -> Result<U256, UdfError> {
    let text = task.param_str("threshold")?;
    text.parse().map_err(|_| {
        UdfError::InvalidParams(format!(
            "parameter `threshold` must be a decimal number below 2^256, got `{text}`"
        ))
    })
}

/// Decodes every row that is a well-formed ERC-20 transfer: `data` exactly
/// one 32-byte word and `topic1`/`topic2` 32-byte words. Other rows (such as
/// non-standard tokens packing data differently) are skipped.
pub fn transfers(rows: &Rows) -> Result<Vec<Transfer>, UdfError> {
    let mut transfers = Vec::with_capacity(rows.len());
    for row in rows.iter() {
        if let Some(transfer) = transfer(&row)? {
            transfers.push(transfer);
        }
    }
    Ok(transfers)
}

/// Decodes one row, `None` when it is not a well-formed transfer.
pub fn transfer(row: &Row<'_>) -> Result<Option<Transfer>, UdfError> {
    let (Some(topic1), Some(topic2)) = (row.opt_str("topic1")?, row.opt_str("topic2")?) else {
        return Ok(None);
    };
    let (Some(from), Some(to)) = (word_address(topic1), word_address(topic2)) else {
        return Ok(None);
    };
    let Ok(amount) = U256::from_hex_word(row.str("data")?) else {
        return Ok(None);
    };
    Ok(Some(Transfer {
        token: row.str("address")?.to_ascii_lowercase(),
        from_address: from,
        to_address: to,
        amount,
        block_number: row.i64("block_number")?,
        transaction_hash: row.str("transaction_hash")?.to_ascii_lowercase(),
        log_index: row.i64("log_index")?,
    }))
}

/// One warning alert per transfer strictly above the threshold.
pub fn alerts(transfers: &[Transfer], threshold: U256) -> Vec<Alert> {
    transfers
        .iter()
        .filter(|transfer| transfer.amount > threshold)
        .map(|transfer| Alert {
            key: format!("{}:{}", transfer.transaction_hash, transfer.log_index),
            severity: Severity::Warning,
            title: format!(
                "large transfer of {} from {}",
                transfer.amount, transfer.token
            ),
            payload: serde_json::to_string(transfer).unwrap_or_else(|_| "{}".to_string()),
        })
        .collect()
}

/// The address in the last 20 bytes of a 32-byte topic word, lower-case.
fn word_address(word: &str) -> Option<String> {
    let digits = word
        .strip_prefix("0x")
        .filter(|digits| digits.len() == 64)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("0x{}", digits[24..].to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use arrow_array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use num_bigint::BigUint;
    use serde_json::Value;

    use super::*;

    /// One `logs` row as the query returns it.
    struct LogRow {
        address: String,
        topics: [Option<String>; 2],
        data: String,
        block_number: i64,
        transaction_hash: String,
        log_index: i32,
    }

    fn rows(logs: &[LogRow]) -> Rows {
        let text = |f: &dyn Fn(&LogRow) -> Option<String>| -> Arc<dyn Array> {
            Arc::new(StringArray::from(logs.iter().map(f).collect::<Vec<_>>()))
        };
        let schema = Schema::new(vec![
            Field::new("address", DataType::Utf8, false),
            Field::new("topic1", DataType::Utf8, true),
            Field::new("topic2", DataType::Utf8, true),
            Field::new("data", DataType::Utf8, false),
            Field::new("block_number", DataType::Int64, false),
            Field::new("transaction_hash", DataType::Utf8, false),
            Field::new("log_index", DataType::Int32, false),
        ]);
        let columns = vec![
            text(&|l| Some(l.address.clone())),
            text(&|l| l.topics[0].clone()),
            text(&|l| l.topics[1].clone()),
            text(&|l| Some(l.data.clone())),
            Arc::new(Int64Array::from_iter_values(
                logs.iter().map(|l| l.block_number),
            )),
            text(&|l| Some(l.transaction_hash.clone())),
            Arc::new(Int32Array::from_iter_values(
                logs.iter().map(|l| l.log_index),
            )),
        ];
        Rows::from_batches(vec![
            RecordBatch::try_new(Arc::new(schema), columns).unwrap(),
        ])
    }

    fn word(hex: &str) -> String {
        format!("0x{hex:0>64}")
    }

    fn log(data: &str, topics: [Option<String>; 2]) -> LogRow {
        LogRow {
            address: "0x00000000000000000000000000000000000000aa".into(),
            topics,
            data: data.into(),
            block_number: 7,
            transaction_hash: word("ab"),
            log_index: 3,
        }
    }

    fn data_dir() -> PathBuf {
        std::env::var_os("TRACE_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/mainnet")
            })
    }

    /// The recorded Transfer logs the SQL statement selects, read from the
    /// raw files: topic0 is Transfer and there is no topic3.
    fn recorded_transfer_logs() -> Vec<LogRow> {
        let mut logs = Vec::new();
        for entry in std::fs::read_dir(data_dir().join("logs")).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".json.gz") {
                continue;
            }
            let file = std::fs::File::open(path).unwrap();
            let json: Value = serde_json::from_reader(flate2::read::GzDecoder::new(file)).unwrap();
            for log in json.as_array().unwrap() {
                let topics: Vec<&str> = log["topics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap())
                    .collect();
                if topics.first() != Some(&TRANSFER_TOPIC) || topics.len() > 3 {
                    continue;
                }
                let quantity = |key: &str| {
                    let hex = log[key].as_str().unwrap().trim_start_matches("0x");
                    i64::from_str_radix(hex, 16).unwrap()
                };
                logs.push(LogRow {
                    address: log["address"].as_str().unwrap().to_string(),
                    topics: [topics.get(1), topics.get(2)].map(|t| t.map(|t| t.to_string())),
                    data: log["data"].as_str().unwrap().to_string(),
                    block_number: quantity("blockNumber"),
                    transaction_hash: log["transactionHash"].as_str().unwrap().to_string(),
                    log_index: quantity("logIndex") as i32,
                });
            }
        }
        logs
    }

    #[test]
    fn a_transfer_decodes_addresses_and_the_exact_amount() {
        let from = Some(word("1111111111111111111111111111111111111111"));
        let to = Some(word("2222222222222222222222222222222222222222"));
        let data = format!("0x{}", "f".repeat(64));
        let decoded = transfers(&rows(&[log(&data, [from, to])])).unwrap();

        assert_eq!(decoded.len(), 1);
        let transfer = &decoded[0];
        assert_eq!(
            transfer.from_address,
            "0x1111111111111111111111111111111111111111"
        );
        assert_eq!(
            transfer.to_address,
            "0x2222222222222222222222222222222222222222"
        );
        assert_eq!(transfer.amount, U256::MAX);
        assert_eq!((transfer.block_number, transfer.log_index), (7, 3));
        let json: Value = serde_json::to_value(transfer).unwrap();
        assert_eq!(json["amount"], Value::String(U256::MAX.to_string()));
    }

    #[test]
    fn logs_that_are_not_standard_transfers_are_skipped() {
        let topic = Some(word("11"));
        let short_data = log("0x01", [topic.clone(), topic.clone()]);
        let long_data = log(
            &format!("0x{}", "0".repeat(128)),
            [topic.clone(), topic.clone()],
        );
        let missing_topic = log(&word("01"), [topic.clone(), None]);
        let short_topic = log(&word("01"), [topic, Some("0x11".into())]);
        let logs = [short_data, long_data, missing_topic, short_topic];
        assert!(transfers(&rows(&logs)).unwrap().is_empty());
    }

    #[test]
    fn alerts_cover_only_amounts_strictly_above_the_threshold() {
        let topic = Some(word("11"));
        let logs: Vec<LogRow> = ["63", "64", "65"]
            .iter()
            .map(|hex| log(&word(hex), [topic.clone(), topic.clone()]))
            .collect();
        let decoded = transfers(&rows(&logs)).unwrap();
        let alerts = alerts(&decoded, U256::from(100u64));

        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].key, format!("{}:3", word("ab")));
        assert_eq!(alerts[0].severity, Severity::Warning);
        assert_eq!(
            alerts[0].title,
            format!("large transfer of 101 from {}", decoded[2].token)
        );
        let payload: Value = serde_json::from_str(&alerts[0].payload).unwrap();
        assert_eq!(payload["amount"], "101");
        assert_eq!(payload["log_index"], 3);
    }

    #[test]
    fn the_threshold_must_be_a_decimal_number() {
        let task = |params: &str| Task::new("j", "t", 1, 1, 1..=2, params);
        assert_eq!(
            threshold(&task(r#"{"threshold": "1000"}"#)).unwrap(),
            U256::from(1000u64)
        );
        assert_eq!(
            threshold(&task(r#"{"threshold": 5}"#)).unwrap(),
            U256::from(5u64)
        );
        for bad in [r#"{}"#, r#"{"threshold": "ten"}"#, r#"{"threshold": "-1"}"#] {
            let error = threshold(&task(bad)).unwrap_err();
            assert!(matches!(&error, UdfError::InvalidParams(m) if m.contains("threshold")));
        }
    }

    #[test]
    fn every_recorded_transfer_decodes_to_the_amount_read_independently() {
        let logs = recorded_transfer_logs();
        let decoded = transfers(&rows(&logs)).unwrap();

        let expected: Vec<(String, String, String, String)> = logs
            .iter()
            .filter(|l| {
                l.data.len() == 66
                    && l.topics
                        .iter()
                        .all(|t| t.as_ref().is_some_and(|t| t.len() == 66))
            })
            .map(|l| {
                let amount = BigUint::parse_bytes(l.data[2..].as_bytes(), 16).unwrap();
                let address = |t: &Option<String>| format!("0x{}", &t.as_ref().unwrap()[26..]);
                (
                    l.address.clone(),
                    address(&l.topics[0]),
                    address(&l.topics[1]),
                    amount.to_string(),
                )
            })
            .collect();
        let actual: Vec<(String, String, String, String)> = decoded
            .iter()
            .map(|t| {
                (
                    t.token.clone(),
                    t.from_address.clone(),
                    t.to_address.clone(),
                    t.amount.to_string(),
                )
            })
            .collect();

        assert!(
            expected.len() > 10_000,
            "only {} recorded transfers",
            expected.len()
        );
        assert_eq!(actual, expected);
    }
}
