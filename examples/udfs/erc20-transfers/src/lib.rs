//! An example Trace UDF: ERC-20 transfers of a block range.
//!
//! For its task's blocks it reads the ERC-20 `Transfer(address,address,uint256)`
//! logs from Postgres chain data, decodes them into the dataset
//! `erc20_transfers`, and raises a warning alert for every transfer whose
//! raw amount is strictly above the job parameter `threshold`
//! (`{"threshold": "<decimal>"}`). The decoding lives in [`decode`] and
//! compiles natively too, for unit tests and the benchmark.

pub mod decode;

use trace_udf::prelude::*;

use crate::decode::TRANSFER_TOPIC;

/// The statement reading a task's Transfer logs; `topic3 is null` leaves out
/// ERC-721 transfers, whose token id is a third indexed topic.
pub const TRANSFER_LOGS_SQL: &str = "select address, topic1, topic2, data, block_number, \
     transaction_hash, log_index from logs where chain_id = $1 and block_number between $2 \
     and $3 and topic0 = $4 and topic3 is null order by block_number, log_index";

/// Records per publish call: keeps each host call's payload bounded.
const PUBLISH_CHUNK: usize = 1000;

/// The exported UDF.
pub struct Erc20Transfers;

impl Udf for Erc20Transfers {
    fn run(task: Task) -> Result<Summary, UdfError> {
        let threshold = decode::threshold(&task)?;
        let params = [
            task.chain_id().into(),
            task.from_block().into(),
            task.to_block().into(),
            TRANSFER_TOPIC.into(),
        ];
        let rows = query(TRANSFER_LOGS_SQL, &params)?;
        let transfers = decode::transfers(&rows)?;
        let alerts = decode::alerts(&transfers, threshold);

        let dataset = dataset().define()?;
        for chunk in transfers.chunks(PUBLISH_CHUNK) {
            dataset.publish(chunk)?;
        }
        publish_alerts(&alerts)?;

        info!(
            "decoded {} transfers from {} logs, {} above the threshold",
            transfers.len(),
            rows.len(),
            alerts.len()
        );
        Ok(
            Summary::new(format!("decoded {} ERC-20 transfers", transfers.len()))
                .counter("logs_read", rows.len() as u64)
                .counter("transfers", transfers.len() as u64)
                .counter("alerts", alerts.len() as u64),
        )
    }
}

/// The dataset `erc20_transfers` and its columns, all non-null.
pub fn dataset() -> Dataset {
    Dataset::new("erc20_transfers")
        .column("token", ColumnType::Text, false)
        .column("from_address", ColumnType::Text, false)
        .column("to_address", ColumnType::Text, false)
        .column("amount", ColumnType::Numeric, false)
        .column("block_number", ColumnType::Int64, false)
        .column("transaction_hash", ColumnType::Text, false)
        .column("log_index", ColumnType::Int64, false)
}

trace_udf::export_udf!(Erc20Transfers);
