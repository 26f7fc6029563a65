//! The platform of a chaos run: a private Postgres cluster that can be
//! restarted, and every service as its own process on its own loopback
//! port, three UDF workers and two sinks among them, with a short lease.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use trace_common::db::cluster::{Cluster, free_port};

use super::procs::{Spec, Supervisor};
use crate::client::Gateway;

pub const DISPATCHER: &str = "dispatcher";
pub const UDF_WORKERS: [&str; 3] = ["udf-worker-1", "udf-worker-2", "udf-worker-3"];
pub const SINKS: [&str; 2] = ["sinks-1", "sinks-2"];

/// Seconds a claim or heartbeat holds a task: short, so a lease held by a
/// killed worker lapses within the run. Workers heartbeat every 5 s.
pub const LEASE_SECS: u64 = 6;
/// Attempts per task: every kill of a worker, every lapsed lease and every
/// injected send error that fails a task spends one.
pub const MAX_ATTEMPTS: u32 = 12;
/// A fixed Standard Webhooks secret: the test's own, never a real one.
const SECRET: &str = "whsec_dHJhY2UgY2hhb3MgdGVzdCB3ZWJob29rIHNlY3JldCEh";

/// The running platform; dropping it kills the services, then stops
/// Postgres, then removes the run's directory.
pub struct Platform {
    pub procs: Supervisor,
    pub gw: Gateway,
    /// The test's own look at the state and data databases.
    pub state: PgPool,
    pub data: PgPool,
    /// The webhook receiver's base URL.
    pub receiver: String,
    /// The fault spec (without its seed) the dispatcher runs with, if any.
    faults: Option<(u64, String)>,
    pg: Postgres,
    _home: tempfile::TempDir,
}

impl Platform {
    /// Starts Postgres, migrates, starts every service and waits for them,
    /// bootstraps a tenant and registers the receiver as its webhook.
    pub async fn up() -> Platform {
        let home = tempfile::tempdir().unwrap();
        open_to_postgres(home.path());
        let objects = home.path().join("objects");
        std::fs::create_dir_all(&objects).unwrap();
        let pg = Postgres::start(home.path().join("postgres")).await;
        let (state_url, data_url) = (pg.url("trace_state"), pg.url("trace_data"));

        let bin_dir = bin_dir();
        let snapshot = bin_dir.join(format!("chaos-bin-{}", std::process::id()));
        let mut procs = Supervisor::new(&bin_dir, snapshot, home.path().join("logs"));
        let dirs = Dirs {
            objects: path(&objects).to_string(),
            artifacts: path(&home.path().join("artifacts")).to_string(),
            data: path(&trace_tests::data_dir()).to_string(),
        };
        for spec in specs(&state_url, &data_url, &dirs) {
            procs.add(spec);
        }
        procs.wait_all_healthy().await;

        let state = trace_common::db::connect(&state_url, 3).await.unwrap();
        let data = trace_common::db::connect(&data_url, 3).await.unwrap();
        let key = trace_gateway::bootstrap_tenant(&state, "chaos", "admin")
            .await
            .expect("tenant bootstrapped");
        let gw = Gateway::new(&procs.url("gateway"), &key);
        let receiver = procs.url("webhook-receiver");
        let hooks = format!("{receiver}/hooks");
        gw.post("/v1/webhooks", &json!({"url": hooks, "secret": SECRET}))
            .await
            .expect("webhook registered");
        Platform {
            procs,
            gw,
            state,
            data,
            receiver,
            faults: None,
            pg,
            _home: home,
        }
    }

    /// From now on the dispatcher starts with `TRACE_QUEUE_FAULTS` set to
    /// `spec`, seeded with `seed` plus its incarnation number; restarts it
    /// now and checks that the fault layer is on.
    pub async fn inject_faults(&mut self, seed: u64, spec: &str) {
        self.faults = Some((seed, spec.to_string()));
        self.procs.kill(DISPATCHER);
        self.start(DISPATCHER);
        self.procs.wait_healthy(DISPATCHER).await;
        let log = std::fs::read_to_string(self.procs.log_path(DISPATCHER)).unwrap();
        let this_start = log.rsplit("----- start ").next().unwrap_or_default();
        assert!(
            this_start.contains("queue fault injection is on"),
            "the dispatcher did not turn its fault layer on; was it built by \
             `cargo build --workspace --bins` (trace-common's `faults` feature)?\n{}",
            self.procs.tail(DISPATCHER)
        );
    }

    /// Starts `name` unless it runs; the dispatcher gets its fault spec
    /// with the seed of this incarnation.
    pub fn start(&mut self, name: &str) {
        if name == DISPATCHER
            && let Some((seed, spec)) = &self.faults
        {
            let incarnation = self.procs.starts(DISPATCHER) as u64 + 1;
            let value = format!("seed={},{spec}", seed.wrapping_add(incarnation));
            self.procs.spec_mut(DISPATCHER).env = vec![("TRACE_QUEUE_FAULTS".into(), value)];
        }
        self.procs.start(name);
    }

    /// Stops Postgres (fast shutdown: every connection is cut), keeps it
    /// down for `down`, and starts it again on the same port and data.
    pub async fn restart_postgres(&mut self, down: Duration) {
        self.pg.restart(down).await;
    }
}

/// Where the services keep their files.
struct Dirs {
    objects: String,
    artifacts: String,
    data: String,
}

/// Every service of the run, in an order in which each finds what it needs.
fn specs(state_url: &str, data_url: &str, dirs: &Dirs) -> Vec<Spec> {
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let (replay, rpc, dispatcher) = (free_port(), free_port(), free_port());
    let (query, broker, delivery) = (free_port(), free_port(), free_port());
    let sinks = SINKS.map(|_| free_port());
    let provider = format!("1={}/", url(replay));
    let (lease, attempts) = (LEASE_SECS.to_string(), MAX_ATTEMPTS.to_string());
    let mut specs = vec![
        Spec::new(
            "replay-provider",
            "trace-replay-provider",
            replay,
            &[("--data-dir", &dirs.data)],
        ),
        Spec::new(
            "rpc-gateway",
            "trace-rpc-gateway",
            rpc,
            &[("--provider", &provider)],
        ),
        Spec::new(
            DISPATCHER,
            "trace-dispatcher",
            dispatcher,
            &[
                ("--state-database-url", state_url),
                ("--migrate", "false"),
                ("--lease-secs", &lease),
                ("--max-attempts", &attempts),
                ("--retry-backoff-ms", "300"),
                ("--relay-interval-ms", "200"),
                ("--reaper-interval-ms", "500"),
                ("--log-json", ""),
            ],
        ),
        Spec::new(
            "query",
            "trace-query",
            query,
            &[
                ("--data-database-url", data_url),
                ("--objects-dir", &dirs.objects),
            ],
        ),
        Spec::new(
            "broker",
            "trace-broker",
            broker,
            &[
                ("--dispatcher-url", &url(dispatcher)),
                ("--objects-dir", &dirs.objects),
            ],
        ),
    ];
    for (name, port) in SINKS.into_iter().zip(sinks) {
        let args = [
            ("--data-database-url", data_url),
            ("--queue-url", &url(dispatcher)),
            // Short, so a batch whose sink was killed comes back soon.
            ("--visibility-ms", "4000"),
        ];
        specs.push(Spec::new(name, "trace-sinks", port, &args));
    }
    specs.push(Spec::new(
        "delivery",
        "trace-delivery",
        delivery,
        &[
            ("--state-database-url", state_url),
            ("--data-database-url", data_url),
            ("--allow-private-targets", ""),
            ("--poll-interval-ms", "200"),
        ],
    ));
    specs.push(Spec::new(
        "webhook-receiver",
        "trace-webhook-receiver",
        free_port(),
        &[("--secret", SECRET)],
    ));
    specs.push(Spec::new(
        "gateway",
        "trace-gateway",
        free_port(),
        &[
            ("--state-database-url", state_url),
            ("--objects-dir", &dirs.objects),
            ("--dispatcher-url", &url(dispatcher)),
            ("--query-url", &url(query)),
            // Either sink answers progress for the whole data database.
            ("--sinks-url", &url(sinks[0])),
            ("--delivery-url", &url(delivery)),
            ("--rpc-gateway-url", &url(rpc)),
        ],
    ));
    specs.push(Spec::new(
        "platform-worker",
        "trace-platform-worker",
        free_port(),
        &[
            ("--rpc-url", &url(rpc)),
            ("--dispatcher-url", &url(dispatcher)),
            ("--data-database-url", data_url),
            ("--objects-dir", &dirs.objects),
            ("--worker-id", "chaos-platform-worker"),
        ],
    ));
    for name in UDF_WORKERS {
        specs.push(Spec::new(
            name,
            "trace-udf-worker",
            free_port(),
            &[
                ("--dispatcher-url", &url(dispatcher)),
                ("--query-url", &url(query)),
                ("--broker-url", &url(broker)),
                ("--objects-dir", &dirs.objects),
                ("--artifact-cache-dir", &dirs.artifacts),
                ("--worker-id", &worker_id(name)),
            ],
        ));
    }
    specs
}

/// The lease owner a UDF worker service claims as.
pub fn worker_id(service: &str) -> String {
    format!("chaos-{service}")
}

/// The private cluster, which survives restarts of its server.
struct Postgres {
    cluster: Option<Cluster>,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    /// Starts it under `dir` on a free port with migrated state and data
    /// databases.
    async fn start(dir: PathBuf) -> Postgres {
        let port = free_port();
        let at = dir.clone();
        let cluster = tokio::task::spawn_blocking(move || {
            let cluster = Cluster::start(&at, port)?;
            cluster.create_database("trace_state")?;
            cluster.create_database("trace_data")?;
            Ok::<_, trace_common::db::cluster::ClusterError>(cluster)
        })
        .await
        .unwrap()
        .expect("the private cluster starts");
        let pg = Postgres {
            cluster: Some(cluster),
            dir,
            port,
        };
        let state = trace_common::db::connect(&pg.url("trace_state"), 2)
            .await
            .unwrap();
        trace_common::db::migrate_state(&state).await.unwrap();
        state.close().await;
        let data = trace_common::db::connect(&pg.url("trace_data"), 2)
            .await
            .unwrap();
        trace_common::db::migrate_data(&data).await.unwrap();
        data.close().await;
        pg
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    async fn restart(&mut self, down: Duration) {
        let cluster = self.cluster.take().expect("the cluster is running");
        let (dir, port) = (self.dir.clone(), self.port);
        let started = tokio::task::spawn_blocking(move || {
            cluster.stop()?;
            std::thread::sleep(down);
            Cluster::start(&dir, port)
        })
        .await
        .unwrap()
        .expect("the cluster restarts");
        self.cluster = Some(started);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            let _ = cluster.stop();
        }
    }
}

/// The directory of the service binaries: the test runs as
/// `<target>/<profile>/deps/chaos-<hash>`, the binaries are in `<target>/<profile>`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Lets the `postgres` user reach the cluster directory under a temp dir
/// that is otherwise private to its owner (the cluster runs as `postgres`
/// when the test runs as root).
fn open_to_postgres(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}
