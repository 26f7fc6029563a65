//! Validating a job request and cutting it into tasks.
//!
//! Kept free of I/O so every rule is a unit test: a job is refused with a
//! clear 400 before anything is written, and an accepted job becomes one
//! [`TaskPlan`] per chunk of `chunk_size` blocks (of the range, or of the
//! listed `blocks`).

use trace_common::ApiError;
use trace_common::api::{CreateJob, JobKind};

/// The most tasks one job may have.
pub const MAX_TASKS: u64 = 100_000;

/// One task of a job as it will be written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskPlan {
    pub seq: u32,
    pub from_block: u64,
    pub to_block: u64,
    /// The exact blocks, for jobs over a listed set.
    pub blocks: Option<Vec<u64>>,
}

/// Checks `req` and plans its tasks, or says what is wrong with it.
pub fn plan(req: &CreateJob) -> Result<Vec<TaskPlan>, ApiError> {
    check_job(req)?;
    match &req.blocks {
        Some(blocks) => plan_listed(req, blocks),
        None => plan_range(req),
    }
}

fn check_job(req: &CreateJob) -> Result<(), ApiError> {
    if req.tenant_id.is_empty() {
        return Err(bad("invalid_tenant", "`tenant_id` is empty".to_string()));
    }
    if req.to_block < req.from_block {
        let msg = format!(
            "block range `{}..={}` is reversed",
            req.from_block, req.to_block
        );
        return Err(bad("invalid_range", msg));
    }
    if i64::try_from(req.to_block).is_err() || i64::try_from(req.chain_id).is_err() {
        let msg = format!(
            "block `{}` or chain `{}` is too large",
            req.to_block, req.chain_id
        );
        return Err(bad("invalid_range", msg));
    }
    if req.chunk_size == 0 {
        return Err(bad(
            "invalid_chunk_size",
            "`chunk_size` must be at least 1".to_string(),
        ));
    }
    if i64::try_from(req.chunk_size).is_err() {
        let msg = format!("`chunk_size` `{}` is too large", req.chunk_size);
        return Err(bad("invalid_chunk_size", msg));
    }
    if !req.params.is_object() {
        return Err(bad(
            "invalid_params",
            "`params` must be a JSON object".to_string(),
        ));
    }
    check_component(req)
}

fn check_component(req: &CreateJob) -> Result<(), ApiError> {
    match (req.kind, &req.component) {
        (JobKind::Udf, None) => Err(bad(
            "missing_component",
            "a udf job must name a component".to_string(),
        )),
        (JobKind::Ingest, Some(_)) => Err(bad(
            "unexpected_component",
            "an ingest job runs no component".to_string(),
        )),
        (JobKind::Udf, Some(component)) => {
            let hex = component.digest.strip_prefix("sha256:").unwrap_or("");
            let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            if valid && !component.name.is_empty() && !component.version.is_empty() {
                Ok(())
            } else {
                let msg = format!(
                    "component digest `{}` is not `sha256:<hex>`",
                    component.digest
                );
                Err(bad("invalid_component", msg))
            }
        }
        (JobKind::Ingest, None) => Ok(()),
    }
}

fn plan_range(req: &CreateJob) -> Result<Vec<TaskPlan>, ApiError> {
    let span = u128::from(req.to_block - req.from_block) + 1;
    let tasks = span.div_ceil(u128::from(req.chunk_size));
    too_many(tasks)?;

    let mut plans = Vec::with_capacity(tasks as usize);
    let mut from = req.from_block;
    for seq in 0..tasks as u32 {
        let to = from.saturating_add(req.chunk_size - 1).min(req.to_block);
        plans.push(TaskPlan {
            seq,
            from_block: from,
            to_block: to,
            blocks: None,
        });
        from = to.saturating_add(1);
    }
    Ok(plans)
}

fn plan_listed(req: &CreateJob, blocks: &[u64]) -> Result<Vec<TaskPlan>, ApiError> {
    if blocks.is_empty() {
        return Err(bad("invalid_blocks", "`blocks` is empty".to_string()));
    }
    if let Some(b) = blocks
        .iter()
        .find(|b| **b < req.from_block || **b > req.to_block)
    {
        let msg = format!(
            "block `{b}` is outside `{}..={}`",
            req.from_block, req.to_block
        );
        return Err(bad("invalid_blocks", msg));
    }
    if let Some(pair) = blocks.windows(2).find(|pair| pair[0] >= pair[1]) {
        let msg = format!("`blocks` is not strictly increasing at `{}`", pair[1]);
        return Err(bad("invalid_blocks", msg));
    }
    let chunk = usize::try_from(req.chunk_size).unwrap_or(usize::MAX);
    too_many((blocks.len() as u128).div_ceil(chunk as u128))?;

    let plans = blocks
        .chunks(chunk)
        .enumerate()
        .map(|(seq, chunk)| TaskPlan {
            seq: seq as u32,
            from_block: chunk[0],
            to_block: chunk[chunk.len() - 1],
            blocks: Some(chunk.to_vec()),
        })
        .collect();
    Ok(plans)
}

fn too_many(tasks: u128) -> Result<(), ApiError> {
    if tasks > u128::from(MAX_TASKS) {
        let msg = format!("the job would have `{tasks}` tasks; at most {MAX_TASKS} are allowed");
        return Err(bad("too_many_tasks", msg));
    }
    Ok(())
}

fn bad(code: &'static str, message: String) -> ApiError {
    ApiError::bad_request(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(from: u64, to: u64, chunk: u64, blocks: Option<Vec<u64>>) -> CreateJob {
        CreateJob {
            tenant_id: "acme".into(),
            kind: JobKind::Ingest,
            component: None,
            params: serde_json::json!({}),
            chain_id: 1,
            from_block: from,
            to_block: to,
            chunk_size: chunk,
            blocks,
            limits: Default::default(),
            deterministic: false,
        }
    }

    fn code(req: &CreateJob) -> &'static str {
        plan(req).unwrap_err().code
    }

    #[test]
    fn a_range_is_cut_into_chunks_with_a_short_last_one() {
        let plans = plan(&ingest(10, 34, 10, None)).unwrap();
        let spans: Vec<_> = plans
            .iter()
            .map(|p| (p.seq, p.from_block, p.to_block))
            .collect();
        assert_eq!(spans, vec![(0, 10, 19), (1, 20, 29), (2, 30, 34)]);
    }

    #[test]
    fn a_single_block_range_is_one_task() {
        let plans = plan(&ingest(7, 7, 100, None)).unwrap();
        assert_eq!(
            plans,
            vec![TaskPlan {
                seq: 0,
                from_block: 7,
                to_block: 7,
                blocks: None
            }]
        );
    }

    #[test]
    fn listed_blocks_are_chunked_by_count() {
        let plans = plan(&ingest(1, 100, 2, Some(vec![3, 5, 50, 99, 100]))).unwrap();
        let got: Vec<_> = plans
            .iter()
            .map(|p| (p.from_block, p.to_block, p.blocks.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, 5, Some(vec![3, 5])),
                (50, 99, Some(vec![50, 99])),
                (100, 100, Some(vec![100]))
            ]
        );
    }

    #[test]
    fn invalid_requests_are_refused_with_their_codes() {
        assert_eq!(code(&ingest(5, 4, 1, None)), "invalid_range");
        assert_eq!(code(&ingest(1, 4, 0, None)), "invalid_chunk_size");
        assert_eq!(code(&ingest(1, 4, 1, Some(vec![]))), "invalid_blocks");
        assert_eq!(code(&ingest(1, 4, 1, Some(vec![5]))), "invalid_blocks");
        assert_eq!(code(&ingest(1, 4, 1, Some(vec![3, 2]))), "invalid_blocks");
        assert_eq!(code(&ingest(1, 4, 1, Some(vec![2, 2]))), "invalid_blocks");
        assert_eq!(code(&ingest(0, 100_000, 1, None)), "too_many_tasks");
        let mut udf = ingest(1, 4, 1, None);
        udf.kind = JobKind::Udf;
        assert_eq!(code(&udf), "missing_component");
    }

    #[test]
    fn exactly_the_task_limit_is_accepted() {
        assert_eq!(plan(&ingest(0, 99_999, 1, None)).unwrap().len(), 100_000);
    }
}
