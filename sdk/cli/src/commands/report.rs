//! `trace demo-report`: what the demo's job did, in a few lines: the job,
//! the dataset's top tokens named from the token list, and the webhooks the
//! local receiver verified.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::Array;
use trace_common::api::JobStatus;
use uuid::Uuid;

use crate::{Cli, Credentials, Error};

/// Arguments of `trace demo-report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The job to report on.
    pub job: Uuid,
    /// The token list (`address,symbol,name,decimals`) to name tokens with.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
}

pub(super) async fn run(cli: &Cli, args: &ReportArgs) -> Result<(), Error> {
    let client = cli.client()?;
    let status: JobStatus = client.get(&format!("/v1/jobs/{}", args.job)).await?;
    let job = &status.job;
    let blocks = count(&client, "select count(*) from blocks").await?;
    let transactions = count(&client, "select count(*) from transactions").await?;
    let logs = count(&client, "select count(*) from logs").await?;
    crate::outln!("blocks ingested:        {blocks}");
    crate::outln!("transactions ingested:  {transactions}");
    crate::outln!("logs ingested:          {logs}");
    crate::outln!(
        "tasks run:              {} ({} succeeded)",
        job.progress.total,
        job.progress.succeeded
    );
    crate::outln!("transfers published:    {}", job.records_published);
    crate::outln!("transfers in dataset:   {}", status.sunk.records);
    crate::outln!("alerts published:       {}", job.alerts_published);
    crate::outln!(
        "alerts delivered:       {} ({} pending, {} failed)",
        status.delivery.delivered,
        status.delivery.pending,
        status.delivery.failed
    );

    let symbols = match &args.tokens {
        Some(path) => read_symbols(path)?,
        None => HashMap::new(),
    };
    let sql = "select token, count(*) as transfers from erc20_transfers \
               group by token order by transfers desc, token limit 5";
    let batches = super::query::fetch(&client, sql, &[], false).await?;
    crate::outln!("top tokens by transfers:");
    for batch in &batches {
        let tokens = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        let counts = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Int64)?;
        let tokens = tokens.as_any().downcast_ref::<arrow::array::StringArray>();
        let counts = counts.as_any().downcast_ref::<arrow::array::Int64Array>();
        let (Some(tokens), Some(counts)) = (tokens, counts) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            let token = tokens.value(row);
            let symbol = symbols
                .get(&token.to_lowercase())
                .map(String::as_str)
                .unwrap_or("?");
            crate::outln!("  {symbol:<8} {token}  {}", counts.value(row));
        }
    }

    if let Some(receiver) = Credentials::read(&cli.home()).ok().and_then(|c| c.receiver) {
        let stats = reqwest::get(format!("{receiver}/stats")).await;
        if let Ok(resp) = stats
            && let Ok(stats) = resp.json::<serde_json::Value>().await
        {
            crate::outln!(
                "alerts verified by the receiver: {} ({} unique ids, {} rejected)",
                stats["verified"],
                stats["unique_ids"],
                stats["rejected"]
            );
        }
    }
    Ok(())
}

/// The single integer a `select count(*) ...` answers.
async fn count(client: &crate::Client, sql: &str) -> Result<i64, Error> {
    let batches = super::query::fetch(client, sql, &[], false).await?;
    let value = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Int64))
        .transpose()?
        .and_then(|c| {
            c.as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.value(0))
        });
    value.ok_or_else(|| Error::Usage(format!("`{sql}` answered no rows")))
}

/// Lower-case address -> symbol, from the token list.
fn read_symbols(path: &Path) -> Result<HashMap<String, String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let symbols = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            Some((
                fields.next()?.trim().to_lowercase(),
                fields.next()?.trim().to_string(),
            ))
        })
        .collect();
    Ok(symbols)
}
