//! Chain ingest into Postgres and the Parquet lake.
