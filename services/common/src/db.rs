//! Connecting to Postgres and applying the embedded migrations.

use sqlx::postgres::{PgPool, PgPoolOptions};

/// Opens a pool on `url` with up to `max` connections.
pub async fn connect(url: &str, max: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(std::time::Duration::from_secs(30))
        .connect(url)
        .await
}

/// Applies the state database's migrations (`migrations/state`).
pub async fn migrate_state(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("../../migrations/state").run(pool).await
}

/// Applies the data database's migrations (`migrations/data`).
pub async fn migrate_data(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("../../migrations/data").run(pool).await
}

pub mod cluster;
pub mod testing;
