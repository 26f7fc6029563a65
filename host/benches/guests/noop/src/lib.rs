//! The trivial guest of the `udf` benchmark: returns at once, so that a run
//! measures instantiation and the call boundary only.

use trace_udf::prelude::*;

struct Noop;

impl Udf for Noop {
    fn run(task: Task) -> Result<Summary, UdfError> {
        Ok(Summary::new("noop").counter("blocks", task.to_block() - task.from_block() + 1))
    }
}

trace_udf::export_udf!(Noop);
