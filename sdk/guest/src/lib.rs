//! The guest SDK for Trace user-defined functions.
//!
//! A UDF is a Rust crate built into a WebAssembly component for
//! `wasm32-wasip2`. The platform calls it once per task, a chunk of a job's
//! block range; the function reads chain data with [`query()`], writes
//! records into [`Dataset`]s and raises [`Alert`]s, and returns a
//! [`Summary`]. This crate wraps the WIT world `trace:udf/udf` (see
//! `wit/v0.1.0` in the repository) so that an author writes one function:
//!
//! ```ignore
//! use trace_udf::prelude::*;
//!
//! struct CountLogs;
//!
//! impl Udf for CountLogs {
//!     fn run(task: Task) -> Result<Summary, UdfError> {
//!         let rows = query(
//!             "select count(*) as n from logs where chain_id = $1 \
//!              and block_number between $2 and $3",
//!             &[task.chain_id().into(), task.from_block().into(), task.to_block().into()],
//!         )?;
//!         let n = rows.get(0).map(|row| row.i64("n")).transpose()?.unwrap_or(0);
//!         info!("counted {n} logs");
//!         Ok(Summary::new("counted logs").counter("logs", n as u64))
//!     }
//! }
//!
//! trace_udf::export_udf!(CountLogs);
//! ```
//!
//! Where to start: [`Udf`] and [`export_udf!`] for the entry point, [`Task`]
//! for what the run covers, [`query()`] and [`Rows`] for input, [`records`]
//! for output, [`log`] for the job's logs and [`U256`] for token amounts.
//!
//! The crate also compiles for the machine it is built on, so the decoding
//! logic of a UDF can be unit-tested and benchmarked natively; host calls
//! ([`query()`], publishing, logging) are only available inside a component
//! and panic when called natively.

#![deny(missing_docs)]

pub mod error;
pub mod log;
pub mod query;
pub mod records;
pub mod rows;
pub mod summary;
pub mod task;
pub mod u256;

#[doc(hidden)]
pub mod bindings {
    //! The bindings wit-bindgen generates for the `trace:udf/udf` world.
    #![allow(missing_docs)]

    wit_bindgen::generate!({
        world: "trace:udf/udf",
        path: "../../wit/v0.1.0",
        pub_export_macro: true,
        default_bindings_module: "trace_udf::bindings",
    });
}

pub use error::UdfError;
pub use query::{Param, QueryError, Source, query, query_lake, query_on};
pub use records::{Alert, ColumnType, Dataset, RecordsError, Severity, publish_alerts};
pub use rows::{ColumnError, Row, Rows};
pub use summary::Summary;
pub use task::Task;
pub use u256::{ParseU256Error, U256};

/// Everything a UDF usually needs, in one import.
pub mod prelude {
    pub use crate::{
        Alert, ColumnType, Dataset, Param, QueryError, Row, Rows, Severity, Summary, Task, U256,
        Udf, UdfError, debug, error, info, publish_alerts, query, query_lake, warn,
    };
}

/// A user-defined function: the code the platform runs once per task.
///
/// Implement it on a unit struct and export that struct with
/// [`export_udf!`].
pub trait Udf {
    /// Runs the function over one task.
    ///
    /// Returning `Ok` completes the task, and only then do the records and
    /// alerts it published become visible. Returning `Err` fails the task
    /// with the error as its reason; a panic fails it too.
    fn run(task: Task) -> Result<Summary, UdfError>;
}

/// Exports a type implementing [`Udf`] as the component's entry point.
///
/// Write it once, at the top level of the UDF crate's `lib.rs`:
/// `trace_udf::export_udf!(MyUdf);`.
#[macro_export]
macro_rules! export_udf {
    ($udf:ty) => {
        const _: () = {
            struct __TraceUdfEntry;

            impl $crate::bindings::Guest for __TraceUdfEntry {
                fn run(
                    task: $crate::bindings::trace::udf::types::Task,
                ) -> ::core::result::Result<
                    $crate::bindings::trace::udf::types::Summary,
                    $crate::bindings::trace::udf::types::UdfError,
                > {
                    $crate::__run::<$udf>(task)
                }
            }

    $crate::bindings::export!(__TraceUdfEntry with_types_in $crate::bindings);
        };
    };
}

/// Converts the WIT task, runs the UDF and converts its outcome back.
#[doc(hidden)]
pub fn __run<U: Udf>(
    task: bindings::trace::udf::types::Task,
) -> Result<bindings::trace::udf::types::Summary, bindings::trace::udf::types::UdfError> {
    U::run(Task::from(task)).map(Into::into).map_err(Into::into)
}
