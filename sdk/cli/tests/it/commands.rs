//! Commands against a running platform, checked in the databases and
//! against the raw recorded files.

use std::io::Read as _;

use trace_cli::{ClientError, Error};

use super::support::{cli, data_dir, start_dev, trace};

/// Logs in the raw `logs/<n>.json.gz`, counted here.
fn raw_log_count(block: u64) -> i64 {
    let path = data_dir().join(format!("logs/{block}.json.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str::<Vec<serde_json::Value>>(&text)
        .unwrap()
        .len() as i64
}

#[tokio::test]
async fn commands_use_the_dev_credentials_and_report_gateway_errors() {
    let home = tempfile::tempdir().unwrap();
    let dev = start_dev(home.path()).await;

    let empty = trace(home.path(), &["job", "list"]).await;
    assert!(empty.success, "{empty:?}");
    assert_eq!(empty.stdout, "no jobs\n");

    // 10000000 is a recorded block with complete logs (but no full block).
    let ingest = trace(
        home.path(),
        &[
            "ingest", "--from", "10000000", "--to", "10000000", "--tables", "logs", "--wait",
        ],
    )
    .await;
    assert!(ingest.success, "ingest succeeds: {ingest:?}");
    let lines: Vec<&str> = ingest.stdout.lines().collect();
    let job = lines[0].split_whitespace().nth(2).unwrap();
    // An ingest job's progress names tasks only: it publishes nothing to the sinks.
    assert!(
        lines.contains(&format!("job {job}: tasks 1/1").as_str()),
        "{lines:?}"
    );
    assert_eq!(lines.last(), Some(&format!("job {job} succeeded").as_str()));
    assert!(!ingest.stdout.contains("sunk"), "{lines:?}");

    let listed = trace(home.path(), &["job", "list"]).await;
    let rows: Vec<Vec<&str>> = listed
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "a header and the job: {listed:?}");
    assert_eq!(rows[0], ["JOB", "STATE", "KIND", "BLOCKS", "COMPONENT"]);
    assert_eq!(rows[1], [job, "succeeded", "ingest", "10000000..=10000000"]);
    let pool = trace_common::db::connect(&dev.data_database_url, 2)
        .await
        .unwrap();
    let logs: i64 = sqlx::query_scalar("select count(*) from chain.logs where block_number = $1")
        .bind(10_000_000i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logs, raw_log_count(10_000_000));

    cli(
        home.path(),
        &["webhook", "create", "https://example.com/hooks"],
    )
    .await
    .unwrap();
    let state = trace_common::db::connect(&dev.state_database_url, 2)
        .await
        .unwrap();
    let urls: Vec<String> =
        sqlx::query_scalar("select url from webhook_endpoints order by created_at")
            .fetch_all(&state)
            .await
            .unwrap();
    assert_eq!(
        urls,
        vec![
            dev.receiver_url.clone(),
            "https://example.com/hooks".to_string()
        ]
    );

    let missing = cli(
        home.path(),
        &["job", "create", "nope@1.0.0", "--from", "1", "--to", "2"],
    )
    .await
    .unwrap_err();
    match missing {
        Error::Client(ClientError::Api {
            status,
            code,
            message,
        }) => {
            assert_eq!((status, code.as_str()), (404, "unknown_component"));
            assert!(message.contains("`nope@1.0.0`"), "{message}");
        }
        other => panic!("expected the gateway's 404, got {other}"),
    }

    let bad_key = cli(home.path(), &["--api-key", "trk_wrong", "job", "list"])
        .await
        .unwrap_err();
    assert!(
        matches!(bad_key, Error::Client(ClientError::Api { status: 401, .. })),
        "{bad_key}"
    );

    pool.close().await;
    state.close().await;
    dev.shutdown().await;
}

#[tokio::test]
async fn output_into_a_closed_pipe_ends_quietly() {
    let home = tempfile::tempdir().unwrap();
    let _dev = start_dev(home.path()).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trace"))
        .arg("--home")
        .arg(home.path())
        .args(["query", "select generate_series(1, 200000) as n"])
        .env_remove("TRACE_GATEWAY")
        .env_remove("TRACE_API_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away at once, as `| head -0` would.
    drop(child.stdout.take());

    let output = child.wait_with_output().await.unwrap();

    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
