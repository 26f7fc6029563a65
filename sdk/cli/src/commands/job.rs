//! `trace job ...`: create a UDF job, follow it, show it, cancel it and
//! retry what failed in it.

use std::time::Duration;

use trace_common::api::{Job, JobKind, JobLimits, JobState, JobStatus, RetryOutcome, SubmitJob};
use uuid::Uuid;

use crate::{Cli, Client, Error};

mod render;

use render::{kind_name, state_name};

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
        /// A limit below the deployment's, `name=value` (repeatable), such as
        /// `memory_mib=16` or `max_records=1000`; see docs/security.md.
        #[arg(long = "limit")]
        limits: Vec<String>,
        /// Run every task reproducibly: bounded by fuel, clocks and random
        /// bytes fixed by the task, NaNs canonical; see docs/security.md.
        #[arg(long)]
        deterministic: bool,
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
    /// Show a job, its data-plane progress, and each task's state, attempt
    /// count and last error.
    Status {
        /// The job id.
        id: Uuid,
        /// Also list every attempt of each task: worker, outcome, class,
        /// duration and reason.
        #[arg(long)]
        attempts: bool,
    },
    /// Cancel a running job: queued tasks are cancelled, running ones stop
    /// at their next heartbeat.
    Cancel {
        /// The job id.
        id: Uuid,
    },
    /// Queue a job's dead, failed and cancelled tasks again, each with a
    /// fresh budget of attempts.
    Retry {
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
            limits,
            deterministic,
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
                limits: parse_limits(limits)?,
                deterministic: *deterministic,
            };
            let job: Job = client.post("/v1/jobs", &submit).await?;
            if *quiet {
                crate::outln!("{}", job.id);
            } else {
                crate::outln!("job {} created: {} tasks", job.id, job.progress.total);
            }
            if *w {
                wait(&client, job.id).await?;
            }
            Ok(())
        }
        JobCommand::Wait { id } => wait(&client, *id).await,
        JobCommand::Status { id, attempts } => {
            let status: JobStatus = client.get(&format!("/v1/jobs/{id}")).await?;
            crate::out!("{}", render::status(&status, *attempts));
            Ok(())
        }
        JobCommand::Cancel { id } => {
            let job: Job = client.post_action(&format!("/v1/jobs/{id}/cancel")).await?;
            crate::outln!("{}", render::cancelled(&job));
            Ok(())
        }
        JobCommand::Retry { id } => {
            let path = format!("/v1/jobs/{id}/retry");
            let outcome: RetryOutcome = client.post_action(&path).await?;
            crate::outln!("{}", render::retried(&outcome));
            Ok(())
        }
        JobCommand::List => {
            let jobs: Vec<Job> = client.get("/v1/jobs").await?;
            if jobs.is_empty() {
                crate::outln!("no jobs");
                return Ok(());
            }
            let ranges: Vec<String> = jobs
                .iter()
                .map(|job| format!("{}..={}", job.from_block, job.to_block))
                .collect();
            let width = ranges.iter().map(String::len).max().unwrap_or(0);
            crate::outln!(
                "{:<36}  {:<9} {:<7} {:<width$}  COMPONENT",
                "JOB",
                "STATE",
                "KIND",
                "BLOCKS"
            );
            for (job, range) in jobs.iter().zip(&ranges) {
                let what = job
                    .component
                    .as_ref()
                    .map(|c| format!("{}@{}", c.name, c.version));
                crate::outln!(
                    "{}  {:<9} {:<7} {range:<width$}  {}",
                    job.id,
                    state_name(job.state),
                    kind_name(job.kind),
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
        // Ingest writes blocks itself; only UDF jobs publish through the sinks.
        let line = match job.kind {
            JobKind::Ingest => format!("job {id}: tasks {done}/{}", p.total),
            JobKind::Udf => format!(
                "job {id}: tasks {done}/{}, records sunk {}/{}, alerts {}/{}",
                p.total, sunk.records, job.records_published, sunk.alerts, job.alerts_published
            ),
        };
        if line != last {
            crate::outln!("{line}");
            last = line;
        }
        let all_sunk = sunk.records >= job.records_published && sunk.alerts >= job.alerts_published;
        match job.state {
            JobState::Running => {}
            JobState::Succeeded if all_sunk => {
                crate::outln!("job {id} succeeded");
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
                crate::out!("{}", render::failures(&status));
                return Err(Error::JobFailed {
                    id: id.to_string(),
                    state: state_name(other),
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `name=value` limits as the job's [`JobLimits`], refusing unknown names
/// and values that are not whole numbers.
fn parse_limits(pairs: &[String]) -> Result<JobLimits, Error> {
    JobLimits::from_pairs(pairs).map_err(|err| Error::Usage(format!("--limit: {err}")))
}
