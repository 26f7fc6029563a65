//! Fresh databases for tests: one private cluster shared by every test
//! process of a run, one new database per test, migrated.
//!
//! The cluster lives under `$TRACE_TEST_PG_DIR` (default: a `trace-test-pg`
//! folder in the system temp directory) on `$TRACE_TEST_PG_PORT` (default
//! 7532). It is started by the first test that needs it, under a file lock so
//! that parallel test processes agree, and left running for the next ones;
//! `scripts/test.sh` stops it at the end.
//!
//! Each database is about 8 MB, and a run makes hundreds; they are named for
//! the test process that made them, and each process's first use drops those
//! of processes that have exited, so the cluster holds only the databases of
//! tests still running.

use std::sync::OnceLock;

use sqlx::PgPool;

use super::cluster::Cluster;

struct Shared {
    cluster: Cluster,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let dir = std::env::var_os("TRACE_TEST_PG_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("trace-test-pg"));
        let port = std::env::var("TRACE_TEST_PG_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(7532);
        std::fs::create_dir_all(&dir).expect("create the test cluster directory");
        let lock = std::fs::File::create(dir.join(".lock")).expect("create the lock file");
        lock.lock().expect("lock the test cluster directory");
        let cluster = Cluster::start(&dir, port)
            .unwrap_or_else(|e| panic!("cannot start the test Postgres cluster: {e}"));
        drop_abandoned(&cluster);
        drop(lock);
        Shared { cluster }
    })
}

/// Drops the databases of test processes that are no longer running. One
/// that still has a connection is left (its owner may live where this
/// process cannot see it, in another PID namespace say), as is any whose
/// drop fails: a later process tries again.
fn drop_abandoned(cluster: &Cluster) {
    // Liveness is read from /proc; without it nothing is known to be dead.
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(databases) = cluster.databases() else {
        return;
    };
    for database in databases {
        if owner(&database).is_some_and(|pid| !is_alive(pid)) {
            let _ = cluster.drop_database(&database);
        }
    }
}

/// The process that made a test database, from its `<kind>_p<pid>_<id>` name.
fn owner(database: &str) -> Option<u32> {
    let rest = database
        .strip_prefix("state_p")
        .or_else(|| database.strip_prefix("data_p"))?;
    rest.split_once('_')?.0.parse().ok()
}

/// Whether process `pid` runs (in this PID namespace).
fn is_alive(pid: u32) -> bool {
    pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A new, empty, migrated pair of state and data databases on the shared
/// test cluster. Returns `(state_url, data_url)`.
pub async fn fresh_databases() -> (String, String) {
    let shared = shared();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let pid = std::process::id();
    let state = format!("state_p{pid}_{id}");
    let data = format!("data_p{pid}_{id}");
    shared
        .cluster
        .create_database(&state)
        .expect("create state database");
    shared
        .cluster
        .create_database(&data)
        .expect("create data database");
    let (state_url, data_url) = (shared.cluster.url(&state), shared.cluster.url(&data));
    let pool = super::connect(&state_url, 2).await.expect("connect state");
    super::migrate_state(&pool).await.expect("migrate state");
    pool.close().await;
    let pool = super::connect(&data_url, 2).await.expect("connect data");
    super::migrate_data(&pool).await.expect("migrate data");
    pool.close().await;
    (state_url, data_url)
}

/// Like [`fresh_databases`], but opened as pools.
pub async fn fresh_pools() -> (PgPool, PgPool) {
    let (s, d) = fresh_databases().await;
    let state = super::connect(&s, 5).await.expect("connect state");
    let data = super::connect(&d, 5).await.expect("connect data");
    (state, data)
}

#[cfg(test)]
mod tests {
    use super::{drop_abandoned, owner, shared};

    /// A finished process's databases go, a live one's stay, and so does a
    /// finished one's database that still has a connection.
    #[tokio::test]
    async fn the_databases_of_finished_processes_are_dropped_unless_in_use() {
        let (own, _) = super::fresh_databases().await;
        let cluster = &shared().cluster;
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead = child.id();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (gone, kept, busy) = (
            format!("state_p{dead}_{id}"),
            format!("data_p{}_{id}", std::process::id()),
            format!("data_p{dead}_{id}"),
        );
        for database in [&gone, &kept, &busy] {
            cluster.create_database(database).unwrap();
        }
        let holder = crate::db::connect(&cluster.url(&busy), 1).await.unwrap();
        sqlx::query("select 1").execute(&holder).await.unwrap();

        drop_abandoned(cluster);
        let names = cluster.databases().unwrap();
        assert!(!names.contains(&gone), "{names:?}");
        assert!(names.contains(&kept) && names.contains(&busy), "{names:?}");
        let own = own.rsplit('/').next().unwrap();
        assert!(
            names.iter().any(|n| n == own),
            "this process's own: {names:?}"
        );

        holder.close().await;
        for database in [&kept, &busy] {
            cluster.drop_database(database).unwrap();
        }
    }

    #[test]
    fn owner_reads_the_pid_from_a_test_database_name() {
        assert_eq!(owner("state_p4242_0a1b"), Some(4242));
        assert_eq!(owner("data_p7_ff"), Some(7));
        assert_eq!(owner("state_0a1b2c"), None);
        assert_eq!(owner("trace_state"), None);
        assert_eq!(owner("postgres"), None);
        assert_eq!(owner("data_px_1"), None);
    }
}
