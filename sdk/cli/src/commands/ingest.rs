//! `trace ingest`: chain ingest jobs, over a block range or over exactly the
//! blocks the replay provider recorded.

use trace_common::api::{Job, JobKind, RecordedBlocks, SubmitJob};

use crate::{Cli, Error};

/// Arguments of `trace ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Ingest every block the replay provider recorded: the logs of the
    /// blocks with complete logs, and the blocks and transactions of the
    /// blocks recorded in full.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub recorded: bool,
    /// First block of the range.
    #[arg(long, requires = "to")]
    pub from: Option<u64>,
    /// Last block of the range (inclusive).
    #[arg(long, requires = "from")]
    pub to: Option<u64>,
    /// Tables to fill: any of blocks, transactions, logs (default: all).
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Blocks per task.
    #[arg(long, default_value_t = 100)]
    pub chunk_size: u64,
    /// The chain.
    #[arg(long, default_value_t = 1)]
    pub chain: u64,
    /// Wait until the jobs end.
    #[arg(long)]
    pub wait: bool,
}

pub(super) async fn run(cli: &Cli, args: &IngestArgs) -> Result<(), Error> {
    let client = cli.client()?;
    let jobs = if args.recorded {
        let path = format!("/v1/chains/{}/recorded", args.chain);
        let recorded: RecordedBlocks = client.get(&path).await?;
        let mut jobs = Vec::new();
        if let Some(job) = listed(args, recorded.logs, &["logs"]) {
            jobs.push(job);
        }
        if let Some(job) = listed(args, recorded.blocks, &["blocks", "transactions"]) {
            jobs.push(job);
        }
        if jobs.is_empty() {
            return Err(Error::Usage("the provider recorded no blocks".into()));
        }
        jobs
    } else {
        let (Some(from), Some(to)) = (args.from, args.to) else {
            return Err(Error::Usage(
                "give either --recorded or --from N --to M".into(),
            ));
        };
        let mut params = serde_json::json!({});
        if !args.tables.is_empty() {
            params["tables"] = serde_json::json!(args.tables);
        }
        vec![SubmitJob {
            component: None,
            kind: JobKind::Ingest,
            params,
            chain_id: args.chain,
            from_block: from,
            to_block: to,
            chunk_size: args.chunk_size,
            blocks: None,
            limits: Default::default(),
            deterministic: false,
        }]
    };

    let mut created = Vec::new();
    for submit in jobs {
        let job: Job = client.post("/v1/jobs", &submit).await?;
        let tables = submit.params.get("tables").cloned().unwrap_or_default();
        crate::outln!(
            "ingest job {} blocks {}..={} ({} tasks) tables {}",
            job.id,
            job.from_block,
            job.to_block,
            job.progress.total,
            tables
        );
        created.push(job.id);
    }
    if args.wait {
        for id in created {
            super::job::wait(&client, id).await?;
        }
    }
    Ok(())
}

/// One job over exactly `blocks`, filling `tables`.
fn listed(args: &IngestArgs, mut blocks: Vec<u64>, tables: &[&str]) -> Option<SubmitJob> {
    blocks.sort_unstable();
    blocks.dedup();
    let (first, last) = (*blocks.first()?, *blocks.last()?);
    Some(SubmitJob {
        component: None,
        kind: JobKind::Ingest,
        params: serde_json::json!({ "tables": tables }),
        chain_id: args.chain,
        from_block: first,
        to_block: last,
        chunk_size: args.chunk_size,
        blocks: Some(blocks),
        limits: Default::default(),
        deterministic: false,
    })
}
