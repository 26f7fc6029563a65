//! `trace job ...`: create a UDF job, follow it, show it.

use std::time::Duration;

use trace_common::api::{Job, JobKind, JobState, JobStatus, SubmitJob, TaskState};
use uuid::Uuid;

use crate::{Cli, Client, Error};

/// `trace job ...`.
#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Run a published component over a block range.
    Create {
        /// The component, `name@version`.
        component: String,
        /// First block.
        #[arg(long)]
        from: u64,
        /// Last block (inclusive).
        #[arg(long)]
        to: u64,
        /// Blocks per task.
        #[arg(long, default_value_t = 10_000)]
        chunk_size: u64,
        /// A job parameter `key=value` (repeatable).
        #[arg(long = "param")]
        params: Vec<String>,
        /// The chain.
        #[arg(long, default_value_t = 1)]
        chain: u64,
        /// Print only the job id.
        #[arg(long)]
        quiet: bool,
        /// Wait until the job ends and its records are sunk.
        #[arg(long)]
        wait: bool,
    },
    /// Wait until a job ends and the sinks applied everything it published.
    Wait {
        /// The job id.
        id: Uuid,
    },
    /// Show a job, its tasks and its data-plane progress.
    Status {
        /// The job id.
        id: Uuid,
    },
    /// List your jobs.
    List,
}

pub(super) async fn run(cli: &Cli, command: &JobCommand) -> Result<(), Error> {
    let client = cli.client()?;
    match command {
        JobCommand::Create {
            component,
            from,
            to,
            chunk_size,
            params,
            chain,
            quiet,
            wait: w,
        } => {
            let submit = SubmitJob {
                component: Some(component.clone()),
                kind: JobKind::Udf,
                params: crate::params::parse(params)?,
                chain_id: *chain,
                from_block: *from,
                to_block: *to,
                chunk_size: *chunk_size,
                blocks: None,
            };
            let job: Job = client.post("/v1/jobs", &submit).await?;
            if *quiet {
                println!("{}", job.id);
            } else {
                println!("job {} created: {} tasks", job.id, job.progress.total);
            }
            if *w {
                wait(&client, job.id).await?;
            }
            Ok(())
        }
        JobCommand::Wait { id } => wait(&client, *id).await,
        JobCommand::Status { id } => {
            let status: JobStatus = client.get(&format!("/v1/jobs/{id}")).await?;
            print_status(&status);
            Ok(())
        }
        JobCommand::List => {
            let jobs: Vec<Job> = client.get("/v1/jobs").await?;
            for job in jobs {
                let what = job
                    .component
                    .as_ref()
                    .map(|c| format!("{}@{}", c.name, c.version));
                println!(
                    "{}  {:<9} {:<7} {}..={}  {}",
                    job.id,
                    state_name(job.state),
                    kind_name(job.kind),
                    job.from_block,
                    job.to_block,
                    what.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

/// Polls the job until it has ended and the sinks have applied as many
/// records and alerts as its tasks published; prints a progress line on
/// every change. A job that did not succeed is an error.
pub(crate) async fn wait(client: &Client, id: Uuid) -> Result<(), Error> {
    let mut last = String::new();
    loop {
        let status: JobStatus = client.get(&format!("/v1/jobs/{id}")).await?;
        let (job, sunk) = (&status.job, &status.sunk);
        let p = &job.progress;
        let done = p.succeeded + p.failed + p.dead + p.cancelled;
        let line = format!(
            "job {id}: tasks {done}/{}, records sunk {}/{}, alerts {}/{}",
            p.total, sunk.records, job.records_published, sunk.alerts, job.alerts_published
        );
        if line != last {
            println!("{line}");
            last = line;
        }
        let all_sunk = sunk.records >= job.records_published && sunk.alerts >= job.alerts_published;
        match job.state {
            JobState::Running => {}
            JobState::Succeeded if all_sunk => {
                println!("job {id} succeeded");
                return Ok(());
            }
            JobState::Succeeded if sunk.rejected_batches > 0 => {
                return Err(Error::JobFailed {
                    id: id.to_string(),
                    state: format!(
                        "succeeded, but the sinks rejected {} batches",
                        sunk.rejected_batches
                    ),
                });
            }
            JobState::Succeeded => {}
            other => {
                print_failures(&status);
                return Err(Error::JobFailed {
                    id: id.to_string(),
                    state: state_name(other),
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_status(status: &JobStatus) {
    let job = &status.job;
    let p = &job.progress;
    println!("job        {}", job.id);
    println!("kind       {}", kind_name(job.kind));
    if let Some(c) = &job.component {
        println!("component  {}@{} ({})", c.name, c.version, c.digest);
    }
    println!("state      {}", state_name(job.state));
    println!(
        "blocks     {}..={} (chain {})",
        job.from_block, job.to_block, job.chain_id
    );
    println!(
        "tasks      {} total: {} queued, {} running, {} succeeded, {} failed, {} dead",
        p.total, p.queued, p.running, p.succeeded, p.failed, p.dead
    );
    println!(
        "published  {} records, {} alerts",
        job.records_published, job.alerts_published
    );
    println!(
        "sunk       {} records, {} alerts, {} rejected batches",
        status.sunk.records, status.sunk.alerts, status.sunk.rejected_batches
    );
    println!(
        "webhooks   {} delivered, {} pending, {} failed",
        status.delivery.delivered, status.delivery.pending, status.delivery.failed
    );
    print_failures(status);
}

fn print_failures(status: &JobStatus) {
    for task in &status.tasks {
        if matches!(task.state, TaskState::Failed | TaskState::Dead) {
            println!(
                "  task {} ({}..={}) {}: {}",
                task.seq,
                task.from_block,
                task.to_block,
                task_state_name(task.state),
                task.error.as_deref().unwrap_or("no reason recorded")
            );
        }
    }
}

fn state_name(state: JobState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn task_state_name(state: TaskState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Udf => "udf",
        JobKind::Ingest => "ingest",
    }
}
