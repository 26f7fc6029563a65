//! The local AWS emulator for tests: moto's server mode on a loopback port,
//! one per test, installed by `scripts/install-deps.sh`. It speaks the real
//! wire protocols, so the code under test is the SDK code that runs on AWS.
//! A test that needs it fails when it is missing, saying how to install it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server; killed when dropped.
pub struct Moto {
    pub url: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where install-deps.sh puts `moto_server`, unless `TRACE_MOTO_SERVER`
/// names it.
fn server_path() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("TRACE_MOTO_SERVER") {
        return path.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME is set");
    cache.join("trace/moto/bin/moto_server")
}

/// Starts moto on a free loopback port and waits until it answers.
pub async fn start() -> Moto {
    let path = server_path();
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-deps.sh (or set TRACE_MOTO_SERVER)",
        path.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&path)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
    let moto = Moto {
        url: format!("http://127.0.0.1:{port}"),
        child,
    };
    let started = Instant::now();
    let http = reqwest::Client::new();
    while http
        .get(format!("{}/moto-api/", moto.url))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "moto did not answer on port {port} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    moto
}

/// SDK settings that reach `moto` with its test credentials.
pub async fn sdk_config(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// The Python of the emulator's virtualenv, for fixtures that drive it
/// with its own libraries (boto3, joserfc).
pub fn python() -> std::path::PathBuf {
    server_path().with_file_name("python")
}

/// A Cognito user pool on `moto` whose users belong to `tenant`, made by
/// `cognito.py` beside this file: the pool, its client and issuer, a
/// member's and an admin's tokens, and tokens the pool would not issue.
pub async fn cognito_pool(moto: &Moto, tenant: &str) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/src/aws/cognito.py");
    let out = tokio::process::Command::new(python())
        .arg(script)
        .arg(&moto.url)
        .arg(tenant)
        .output()
        .await
        .expect("the emulator's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cognito.py answers JSON")
}
