//! Starting the platform, using it through the gateway, stopping it.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use trace_common::api::{JobState, JobStatus, RecordedBlocks};
use trace_dev::{DevConfig, Ports};

fn data_dir() -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mainnet")
        })
}

/// The recorded block numbers of `dir/<kind>/*.json.gz`, read straight from
/// the file names.
fn recorded(kind: &str) -> Vec<u64> {
    let mut blocks: Vec<u64> = std::fs::read_dir(data_dir().join(kind))
        .expect("data dir")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json.gz")?
                .parse()
                .ok()
        })
        .collect();
    blocks.sort_unstable();
    blocks
}

/// The number of logs in the raw `logs/<n>.json.gz`.
fn raw_log_count(block: u64) -> u64 {
    let path = data_dir().join(format!("logs/{block}.json.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let logs: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    logs.len() as u64
}

#[tokio::test]
async fn the_platform_starts_ingests_through_the_gateway_and_stops() {
    let home = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    {
        // Run as root, the cluster runs as `postgres`, which must reach the home.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = DevConfig {
        home: home.path().to_path_buf(),
        data_dir: data_dir(),
        rpc_url: None,
        database_url: None,
        ports: Ports::Ephemeral,
    };
    let dev = trace_dev::start(config).await.expect("trace dev starts");
    let http = reqwest::Client::new();
    let gateway = dev.urls.gateway.clone();

    // The CLI's credentials: the gateway and the key, readable by the owner only.
    let creds = std::fs::read_to_string(&dev.credentials_path).unwrap();
    assert!(
        creds.contains(&format!("gateway = \"{gateway}\"")),
        "{creds}"
    );
    assert!(
        creds.contains(&format!("api_key = \"{}\"", dev.api_key)),
        "{creds}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&dev.credentials_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The receiver is the dev tenant's one webhook endpoint.
    let hooks: Vec<serde_json::Value> = http
        .get(format!("{gateway}/v1/webhooks"))
        .bearer_auth(&dev.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["url"], dev.receiver_url.as_str());

    // The replay provider serves exactly what the data directory holds.
    let listed: RecordedBlocks = http
        .get(format!("{gateway}/v1/chains/1/recorded"))
        .bearer_auth(&dev.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.blocks, recorded("blocks"));
    assert_eq!(listed.logs, recorded("logs"));

    // The dispatcher's validation reaches the client through the gateway.
    let reversed = serde_json::json!({
        "kind": "ingest", "from_block": 10, "to_block": 5, "chunk_size": 1,
    });
    let refused = http
        .post(format!("{gateway}/v1/jobs"))
        .bearer_auth(&dev.api_key)
        .json(&reversed)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_ne!(body["error"]["code"], "unavailable", "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());

    // Ingest the logs of the first two recorded blocks and count them.
    let blocks: Vec<u64> = recorded("logs").into_iter().take(2).collect();
    let submit = serde_json::json!({
        "kind": "ingest",
        "params": { "tables": ["logs"] },
        "from_block": blocks[0], "to_block": blocks[1], "chunk_size": 1,
        "blocks": blocks,
    });
    let job: serde_json::Value = http
        .post(format!("{gateway}/v1/jobs"))
        .bearer_auth(&dev.api_key)
        .json(&submit)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().expect("a job id").to_string();
    let start = Instant::now();
    let status = loop {
        let status: JobStatus = http
            .get(format!("{gateway}/v1/jobs/{id}"))
            .bearer_auth(&dev.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status.job.state != JobState::Running || start.elapsed() > Duration::from_secs(120) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status.job.state, JobState::Succeeded, "{:?}", status.tasks);
    assert_eq!(status.tasks.len(), 2);

    let pool = trace_common::db::connect(&dev.data_database_url, 2)
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("select count(*) from chain.logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let expected = raw_log_count(blocks[0]) + raw_log_count(blocks[1]);
    assert_eq!(stored as u64, expected);

    dev.shutdown().await;
    let after = http.get(format!("{gateway}/healthz")).send().await;
    assert!(after.is_err(), "the gateway still answers after shutdown");
}
