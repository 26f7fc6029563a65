//! Integration tests of the query service: real Postgres, real Parquet files
//! in a temporary lake, real HTTP on loopback, rows from the recorded logs.

mod it {
    pub mod isolation;
    pub mod parity;
    pub mod refusals;
    pub mod support;
}
