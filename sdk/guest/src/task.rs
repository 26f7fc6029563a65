//! The task a run covers, with typed access to the job's parameters.

use serde::de::DeserializeOwned;

use crate::UdfError;
use crate::bindings::trace::udf::types::Task as WitTask;

/// One task: where it sits in its job, the block range it covers and the
/// job's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    job_id: String,
    task_id: String,
    attempt: u32,
    chain_id: u64,
    from_block: u64,
    to_block: u64,
    params: String,
}

impl Task {
    /// A task built by hand, for tests of a UDF's logic outside a component.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job_id: impl Into<String>,
        task_id: impl Into<String>,
        attempt: u32,
        chain_id: u64,
        blocks: std::ops::RangeInclusive<u64>,
        params: impl Into<String>,
    ) -> Self {
        Task {
            job_id: job_id.into(),
            task_id: task_id.into(),
            attempt,
            chain_id,
            from_block: *blocks.start(),
            to_block: *blocks.end(),
            params: params.into(),
        }
    }

    /// The job's id, a UUID in its canonical text form.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// This task's id, a UUID in its canonical text form.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// Which attempt at this task this run is, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The EIP-155 chain id of the data, 1 for Ethereum mainnet.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The first block of the task's range, inclusive.
    pub fn from_block(&self) -> u64 {
        self.from_block
    }

    /// The last block of the task's range, inclusive.
    pub fn to_block(&self) -> u64 {
        self.to_block
    }

    /// The job's parameters as the JSON text given when the job was created.
    pub fn params_json(&self) -> &str {
        &self.params
    }

    /// The job's parameters decoded into a type of the UDF's own.
    ///
    /// Empty parameters read as `{}`. A decoding failure is
    /// [`UdfError::InvalidParams`] with serde's explanation.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, UdfError> {
        let text = if self.params.trim().is_empty() {
            "{}"
        } else {
            self.params.as_str()
        };
        serde_json::from_str(text).map_err(|e| UdfError::InvalidParams(e.to_string()))
    }

    /// One parameter as text: a JSON string, or a JSON number written as is.
    ///
    /// A missing parameter, or one of another JSON type, is
    /// [`UdfError::InvalidParams`] naming it.
    pub fn param_str(&self, name: &str) -> Result<String, UdfError> {
        let params: serde_json::Map<String, serde_json::Value> = self.params()?;
        match params.get(name) {
            Some(serde_json::Value::String(text)) => Ok(text.clone()),
            Some(serde_json::Value::Number(number)) => Ok(number.to_string()),
            Some(_) => Err(UdfError::InvalidParams(format!(
                "parameter `{name}` must be a string"
            ))),
            None => Err(UdfError::InvalidParams(format!(
                "parameter `{name}` is missing"
            ))),
        }
    }
}

impl From<WitTask> for Task {
    fn from(task: WitTask) -> Self {
        Task {
            job_id: task.job_id,
            task_id: task.task_id,
            attempt: task.attempt,
            chain_id: task.chain_id,
            from_block: task.from_block,
            to_block: task.to_block,
            params: task.params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(params: &str) -> Task {
        Task::new("j", "t", 1, 1, 10..=20, params)
    }

    #[test]
    fn param_str_reads_strings_and_numbers() {
        let task = task(r#"{"threshold": "1000", "n": 7}"#);
        assert_eq!(task.param_str("threshold").unwrap(), "1000");
        assert_eq!(task.param_str("n").unwrap(), "7");
    }

    #[test]
    fn param_str_names_a_missing_parameter() {
        let error = task("{}").param_str("threshold").unwrap_err();
        assert_eq!(
            error,
            UdfError::InvalidParams("parameter `threshold` is missing".into())
        );
    }

    #[test]
    fn typed_params_decode_and_report_bad_json() {
        #[derive(serde::Deserialize)]
        struct Params {
            limit: u32,
        }
        assert_eq!(task(r#"{"limit": 3}"#).params::<Params>().unwrap().limit, 3);
        assert!(matches!(
            task("[").params::<Params>(),
            Err(UdfError::InvalidParams(_))
        ));
    }
}
