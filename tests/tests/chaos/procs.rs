//! The service processes of a chaos run: started from the target
//! directory's binaries, killed with SIGKILL and started again with the same
//! flags on the same port, each with one log file that every incarnation
//! appends to.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a service may take to answer `/healthz` after a start.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);
/// Lines of each log shown when the run fails.
const TAIL_LINES: usize = 25;

/// How to run one service.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Its name in the run (`udf-worker-2`); also its log file's name.
    pub name: String,
    pub binary: &'static str,
    pub port: u16,
    /// Flags after `--listen`; an empty value is a bare flag.
    pub args: Vec<(String, String)>,
    /// Environment variables besides `RUST_LOG`.
    pub env: Vec<(String, String)>,
}

impl Spec {
    pub fn new(name: &str, binary: &'static str, port: u16, args: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_string(),
            binary,
            port,
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: Vec::new(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

struct Slot {
    spec: Spec,
    child: Option<Child>,
    starts: u32,
}

/// Every service process of the run; dropping it kills and reaps them all,
/// also when the test panics.
pub struct Supervisor {
    bin_dir: PathBuf,
    logs_dir: PathBuf,
    slots: Vec<Slot>,
}

impl Supervisor {
    /// Services from the binaries in `bin_dir` as they are now: they are
    /// hard-linked into `snapshot_dir` (on the same file system) so that a
    /// rebuild during the run cannot change what a restart starts.
    pub fn new(bin_dir: &Path, snapshot_dir: PathBuf, logs_dir: PathBuf) -> Self {
        std::fs::create_dir_all(&logs_dir).unwrap();
        std::fs::create_dir_all(&snapshot_dir).unwrap();
        for entry in std::fs::read_dir(bin_dir).unwrap().flatten() {
            let name = entry.file_name();
            let is_service = name.to_string_lossy().starts_with("trace-")
                && entry.file_type().is_ok_and(|t| t.is_file());
            if is_service {
                let _ = std::fs::hard_link(entry.path(), snapshot_dir.join(&name));
            }
        }
        Self {
            bin_dir: snapshot_dir,
            logs_dir,
            slots: Vec::new(),
        }
    }

    /// Adds a service and starts it.
    pub fn add(&mut self, spec: Spec) {
        let exe = self.bin_dir.join(spec.binary);
        assert!(
            exe.is_file(),
            "`{}` is missing: run `cargo build --workspace --bins` first",
            exe.display()
        );
        let name = spec.name.clone();
        self.slots.push(Slot {
            spec,
            child: None,
            starts: 0,
        });
        self.start(&name);
    }

    /// The spec of `name`, to change before its next start.
    pub fn spec_mut(&mut self, name: &str) -> &mut Spec {
        &mut self.slot(name).spec
    }

    pub fn url(&self, name: &str) -> String {
        self.slots
            .iter()
            .find(|s| s.spec.name == name)
            .unwrap_or_else(|| panic!("no service `{name}`"))
            .spec
            .url()
    }

    /// Starts `name` unless it runs.
    pub fn start(&mut self, name: &str) {
        let (bin_dir, logs_dir) = (self.bin_dir.clone(), self.logs_dir.clone());
        let slot = self.slot(name);
        if slot.child.is_some() {
            return;
        }
        slot.starts += 1;
        slot.child = Some(spawn(&bin_dir, &logs_dir, &slot.spec, slot.starts));
    }

    /// SIGKILLs `name` and reaps it; false when it was not running.
    pub fn kill(&mut self, name: &str) -> bool {
        let Some(mut child) = self.slot(name).child.take() else {
            return false;
        };
        let _ = child.kill();
        let _ = child.wait();
        true
    }

    /// How many times `name` was started.
    pub fn starts(&self, name: &str) -> u32 {
        self.slots
            .iter()
            .find(|s| s.spec.name == name)
            .map_or(0, |s| s.starts)
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.slots
            .iter()
            .any(|s| s.spec.name == name && s.child.is_some())
    }

    /// The services that exited by themselves since the last look, with how;
    /// they count as stopped and can be started again.
    pub fn exited(&mut self) -> Vec<(String, ExitStatus)> {
        let mut out = Vec::new();
        for slot in &mut self.slots {
            let status = slot
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = status {
                slot.child = None;
                out.push((slot.spec.name.clone(), status));
            }
        }
        out
    }

    /// Waits until `name` answers `/healthz`; panics with its log tail when
    /// it exits first or takes too long.
    pub async fn wait_healthy(&mut self, name: &str) {
        let health = format!("{}/healthz", self.url(name));
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            let exited = self.slot(name).child.as_mut().map(|c| c.try_wait());
            if let Some(Ok(Some(status))) = exited {
                panic!("{name} exited ({status}):\n{}", self.tail(name));
            }
            let answer = client
                .get(&health)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if start.elapsed() > HEALTHY_WITHIN {
                panic!("{name} not healthy at {health}:\n{}", self.tail(name));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every running service answers `/healthz`.
    pub async fn wait_all_healthy(&mut self) {
        let names: Vec<String> = self.slots.iter().map(|s| s.spec.name.clone()).collect();
        for name in names {
            if self.is_running(&name) {
                self.wait_healthy(&name).await;
            }
        }
    }

    /// The log file of `name`, every incarnation in turn.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs_dir.join(format!("{name}.log"))
    }

    /// The last lines of `name`'s log.
    pub fn tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// The tail of every service's log, for a failed run.
    pub fn tails(&self) -> String {
        let mut out = String::new();
        for slot in &self.slots {
            let name = &slot.spec.name;
            out.push_str(&format!("\n===== {name} (last {TAIL_LINES} lines) =====\n"));
            out.push_str(&self.tail(name));
            out.push('\n');
        }
        out
    }

    fn slot(&mut self, name: &str) -> &mut Slot {
        self.slots
            .iter_mut()
            .find(|s| s.spec.name == name)
            .unwrap_or_else(|| panic!("no service `{name}`"))
    }
}

impl Drop for Supervisor {
    /// Kills and reaps every service; first shows their logs' tails when
    /// the test is failing.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.tails());
        }
        for slot in &mut self.slots {
            if let Some(child) = slot.child.as_mut() {
                let _ = child.kill();
            }
        }
        for slot in &mut self.slots {
            if let Some(mut child) = slot.child.take() {
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.bin_dir);
    }
}

/// Starts incarnation `n` of `spec`, its output appended to its log after a
/// marker line. Only the spec configures the service: the caller's `TRACE_*`
/// variables are not passed on.
fn spawn(bin_dir: &Path, logs_dir: &Path, spec: &Spec, n: u32) -> Child {
    let path = logs_dir.join(format!("{}.log", spec.name));
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(log, "----- start {n} of {} -----", spec.name).unwrap();

    let exe = bin_dir.join(spec.binary);
    let mut command = Command::new(&exe);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TRACE_") {
            command.env_remove(name);
        }
    }
    command
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", spec.port));
    for (flag, value) in &spec.args {
        command.arg(flag);
        if !value.is_empty() {
            command.arg(value);
        }
    }
    command.envs(spec.env.iter().map(|(k, v)| (k, v)));
    command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", exe.display()))
}
