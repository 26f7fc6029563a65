//! `trace query`: SQL through the gateway, the Arrow answer printed as a
//! table or as CSV.

use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;
use trace_common::api::{QueryRequest, QuerySource};

use crate::{Cli, Error};

/// Arguments of `trace query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// One read-only SQL statement; `$1`, `$2`, ... are bound to --param.
    pub sql: String,
    /// Run over the Parquet lake instead of Postgres.
    #[arg(long)]
    pub lake: bool,
    /// A value for the next `$n` placeholder (repeatable).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// Comma-separated values with a header.
    Csv,
}

pub(super) async fn run(cli: &Cli, args: &QueryArgs) -> Result<(), Error> {
    let client = cli.client()?;
    let batches = fetch(&client, &args.sql, &args.params, args.lake).await?;
    match args.format {
        Format::Table => {
            crate::outln!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            crate::outln!("({rows} rows)");
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(Vec::new());
            for batch in &batches {
                writer.write(batch)?;
            }
            crate::out!("{}", String::from_utf8_lossy(&writer.into_inner()));
        }
    }
    Ok(())
}

/// Runs `sql` and decodes the Arrow IPC stream.
pub(crate) async fn fetch(
    client: &crate::Client,
    sql: &str,
    params: &[String],
    lake: bool,
) -> Result<Vec<RecordBatch>, Error> {
    let request = QueryRequest {
        sql: sql.to_string(),
        params: params.iter().map(|p| crate::params::value_of(p)).collect(),
        source: if lake {
            QuerySource::Lake
        } else {
            QuerySource::Postgres
        },
        limits: Default::default(),
    };
    let bytes = client.post_raw("/v1/query", &request).await?;
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}
