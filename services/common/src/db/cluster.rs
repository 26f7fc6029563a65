//! A private Postgres cluster under a data directory, started with the local
//! PostgreSQL server binaries.
//!
//! `trace dev` and the tests use this so that nothing outside the data
//! directory is touched: the cluster listens on loopback only, with its
//! socket inside the directory, and trusts local connections (it is a
//! development database, never a production one).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A failure to find, initialise or start the cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No `initdb`/`pg_ctl` on `PATH` or under `/usr/lib/postgresql/*/bin`.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under \
         /usr/lib/postgresql; run `scripts/install-deps.sh` or install postgresql"
    )]
    BinariesMissing,
    /// A command could not be run or exited with an error.
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    /// Running as root, the cluster runs as `postgres`, which cannot reach it.
    #[error(
        "the `postgres` user cannot reach `{0}` (the server runs as `postgres` when started \
         by root): make every parent directory traversable, e.g. `chmod o+x` on a 0700 \
         temp dir, or choose a home elsewhere"
    )]
    Unreachable(PathBuf),
    /// The server did not accept connections in time.
    #[error("postgres on port {port} did not become ready within {seconds} s")]
    NotReady { port: u16, seconds: u64 },
}

/// A running (or stopped) cluster under `dir`.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    stop_on_drop: bool,
}

impl Cluster {
    /// Initialises the cluster under `dir` if needed and starts it on `port`.
    /// If one is already running there it is reused.
    pub fn start(dir: &Path, port: u16) -> Result<Self, ClusterError> {
        let bin = find_binaries()?;
        let data = dir.join("data");
        std::fs::create_dir_all(dir).map_err(|e| cmd_err("create data directory", e))?;
        if running_as_root() {
            // The server refuses to run as root; it runs as `postgres`, which must own `dir`.
            run(Command::new("chown").arg("postgres:").arg(dir))?;
            let reachable = Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            if !reachable {
                return Err(ClusterError::Unreachable(dir.to_path_buf()));
            }
        }
        if !data.join("PG_VERSION").exists() {
            run(pg_command(&bin, "initdb")
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
                .args(["--locale", "C"]))?;
        }
        let cluster = Self {
            dir: dir.to_path_buf(),
            bin,
            port,
            stop_on_drop: false,
        };
        if !cluster.is_running() {
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c max_connections=200 -c shared_buffers=128MB",
                dir.display()
            );
            run(pg_command(&cluster.bin, "pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("postgres.log"))
                .args(["-o", &opts, "-w", "-t", "60", "start"]))?;
        }
        cluster.wait_ready(Duration::from_secs(60))?;
        Ok(cluster)
    }

    /// Stops the server when this value is dropped (for tests).
    pub fn stop_on_drop(mut self) -> Self {
        self.stop_on_drop = true;
        self
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for `database` as the `postgres` superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `database` unless it exists.
    pub fn create_database(&self, database: &str) -> Result<(), ClusterError> {
        let exists = self
            .databases()
            .is_ok_and(|names| names.iter().any(|n| n == database));
        if !exists {
            run(self.client("createdb").arg(database))?;
        }
        Ok(())
    }

    /// The names of the cluster's databases.
    pub fn databases(&self) -> Result<Vec<String>, ClusterError> {
        let out = self
            .psql()
            .args(["-c", "select datname from pg_database"])
            .output();
        let out = checked("psql", out)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Drops `database` if it exists. A database someone is connected to is
    /// not dropped: that is an error, and the connections are left alone.
    pub fn drop_database(&self, database: &str) -> Result<(), ClusterError> {
        let quoted = database.replace('"', "\"\"");
        let sql = format!("drop database if exists \"{quoted}\"");
        checked("psql", self.psql().arg("-c").arg(sql).output()).map(drop)
    }

    /// `psql` on the `postgres` database, unaligned tuples only, ready for
    /// `-c` arguments.
    fn psql(&self) -> Command {
        let mut cmd = self.client("psql");
        cmd.args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qtA"]);
        cmd
    }

    /// The client program `tool`, connecting to this cluster as `postgres`.
    fn client(&self, tool: &str) -> Command {
        let mut cmd = pg_command(&self.bin, tool);
        let port = self.port.to_string();
        cmd.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres"]);
        cmd
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&self) -> Result<(), ClusterError> {
        run(pg_command(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]))
    }

    fn is_running(&self) -> bool {
        pg_command(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("status")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), ClusterError> {
        let start = Instant::now();
        while start.elapsed() < limit {
            let ok = pg_command(&self.bin, "pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(ClusterError::NotReady {
            port: self.port,
            seconds: limit.as_secs(),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.stop_on_drop {
            let _ = self.stop();
        }
    }
}

/// Finds the directory holding `initdb` and `pg_ctl`.
pub fn find_binaries() -> Result<PathBuf, ClusterError> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|dir| TOOLS.iter().all(|tool| dir.join(tool).is_file()))
        .ok_or(ClusterError::BinariesMissing)
}

/// Picks a free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Every PostgreSQL program the cluster runs; some installs link only a few
/// of them into `/usr/local/bin`, so the search wants them all in one place.
const TOOLS: &[&str] = &["initdb", "pg_ctl", "pg_isready", "psql", "createdb"];

/// A command for the PostgreSQL program `tool`. PostgreSQL refuses to run as
/// root, so as root the program runs as the `postgres` user via `runuser`.
fn pg_command(bin: &Path, tool: &str) -> Command {
    if running_as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        cmd
    } else {
        Command::new(bin.join(tool))
    }
}

/// Whether this process runs as root (uid 0), judged by who owns `/proc/self`.
fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    false
}

fn run(cmd: &mut Command) -> Result<(), ClusterError> {
    let command = format!("{cmd:?}");
    checked(&command, cmd.output()).map(drop)
}

/// The output of `command` if it ran and exited successfully.
fn checked(
    command: &str,
    out: std::io::Result<std::process::Output>,
) -> Result<std::process::Output, ClusterError> {
    let out = out.map_err(|e| ClusterError::Command {
        command: command.to_owned(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(ClusterError::Command {
            command: command.to_owned(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn cmd_err(what: &str, e: std::io::Error) -> ClusterError {
    ClusterError::Command {
        command: what.to_string(),
        detail: e.to_string(),
    }
}
