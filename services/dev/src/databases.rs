//! The two databases of the platform: on the private cluster under the home,
//! or on an external server named by a URL. Both are created if missing and
//! migrated before any service starts.

use sqlx::Connection as _;
use trace_common::db::cluster::{Cluster, free_port};

use crate::{DevConfig, Error, Ports};

/// The state database's name.
pub const STATE_DB: &str = "trace_state";
/// The data database's name.
pub const DATA_DB: &str = "trace_data";

/// URLs of the migrated databases.
#[derive(Debug, Clone)]
pub(crate) struct Databases {
    pub state_url: String,
    pub data_url: String,
}

/// Starts the cluster (unless a URL was given), creates and migrates both
/// databases.
pub(crate) async fn prepare(config: &DevConfig) -> Result<(Option<Cluster>, Databases), Error> {
    let (cluster, db) = match &config.database_url {
        Some(url) => (None, on_server(url).await?),
        None => {
            let (cluster, db) = on_cluster(config).await?;
            (Some(cluster), db)
        }
    };
    migrate(&db).await?;
    Ok((cluster, db))
}

async fn on_cluster(config: &DevConfig) -> Result<(Cluster, Databases), Error> {
    let dir = config.home.join("postgres");
    let port = match config.ports {
        Ports::Base(base) => base + 32,
        Ports::Ephemeral => free_port(),
    };
    let start = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let cluster = Cluster::start(&dir, port)?;
            cluster.create_database(STATE_DB)?;
            cluster.create_database(DATA_DB)?;
            Ok(cluster)
        })
    };
    let joined = start.await.map_err(|e| Error::Service {
        service: "postgres cluster",
        message: e.to_string(),
    })?;
    let cluster = joined.map_err(|source| Error::Cluster { dir, source })?;
    let db = Databases {
        state_url: cluster.url(STATE_DB),
        data_url: cluster.url(DATA_DB),
    };
    Ok((cluster, db))
}

async fn on_server(url: &str) -> Result<Databases, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|_| Error::DatabaseUrl(url.to_string()))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(Error::DatabaseUrl(url.to_string()));
    }
    let named = |database: &str| {
        let mut u = parsed.clone();
        u.set_path(&format!("/{database}"));
        u.to_string()
    };
    let db_err = |database: &str| {
        let database = database.to_string();
        move |e: sqlx::Error| Error::Database {
            database,
            source: e.into(),
        }
    };
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(db_err("postgres"))?;
    for database in [STATE_DB, DATA_DB] {
        let exists: Option<i32> =
            sqlx::query_scalar("select 1 from pg_database where datname = $1")
                .bind(database)
                .fetch_optional(&mut conn)
                .await
                .map_err(db_err(database))?;
        if exists.is_none() {
            // The name is one of our constants, never user input.
            sqlx::query(&format!("create database {database}"))
                .execute(&mut conn)
                .await
                .map_err(db_err(database))?;
        }
    }
    conn.close().await.ok();
    Ok(Databases {
        state_url: named(STATE_DB),
        data_url: named(DATA_DB),
    })
}

async fn migrate(db: &Databases) -> Result<(), Error> {
    let err = |database: &str| {
        let database = database.to_string();
        move |e: Box<dyn std::error::Error + Send + Sync>| Error::Database {
            database,
            source: e,
        }
    };
    let state = trace_common::db::connect(&db.state_url, 2)
        .await
        .map_err(|e| err(STATE_DB)(e.into()))?;
    trace_common::db::migrate_state(&state)
        .await
        .map_err(|e| err(STATE_DB)(e.into()))?;
    state.close().await;
    let data = trace_common::db::connect(&db.data_url, 2)
        .await
        .map_err(|e| err(DATA_DB)(e.into()))?;
    trace_common::db::migrate_data(&data)
        .await
        .map_err(|e| err(DATA_DB)(e.into()))?;
    data.close().await;
    Ok(())
}
