//! The scoped object endpoint: tokens, keys, scope and size.

use std::path::Path;
use std::time::Duration;

use trace_broker::Signer;
use trace_broker::token::Claims;

use super::support::start;

const MIB: u64 = 1024 * 1024;

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn objects_are_stored_under_the_tasks_prefix_and_deleted() {
    let stack = start(Duration::from_secs(30), 900, MIB).await;
    let lease = stack.claimed(1).await.remove(0);
    let token = stack.credentials(&lease).await.token;

    stack
        .broker
        .put(&token, "state/cursor.json", b"{\"n\":1}".to_vec())
        .await
        .unwrap();
    let stored = stack.objects.join(format!(
        "scratch/acme/{}/{}/state/cursor.json",
        lease.job_id, lease.task_id
    ));
    assert_eq!(std::fs::read(&stored).unwrap(), b"{\"n\":1}");
    let got = stack.broker.get(&token, "state/cursor.json").await.unwrap();
    assert_eq!(got, Some(b"{\"n\":1}".to_vec()));

    stack
        .broker
        .delete(&token, "state/cursor.json")
        .await
        .unwrap();
    assert!(!stored.exists());
    assert_eq!(
        stack.broker.get(&token, "state/cursor.json").await.unwrap(),
        None
    );
    stack
        .broker
        .delete(&token, "state/cursor.json")
        .await
        .unwrap();
}

#[tokio::test]
async fn forged_tampered_and_missing_tokens_are_refused() {
    let stack = start(Duration::from_secs(30), 900, MIB).await;
    let lease = stack.claimed(1).await.remove(0);
    let token = stack.credentials(&lease).await.token;

    let forged = Signer::new(b"not the broker's key at all".to_vec()).sign(&Claims {
        tenant: "acme".into(),
        job: lease.job_id,
        task: lease.task_id,
        attempt: lease.attempt,
        prefix: "scratch/".into(),
        exp: chrono::Utc::now().timestamp() + 600,
        renew_until: chrono::Utc::now().timestamp() + 600,
    });
    let tampered = format!("{}x", token);
    for bad in [forged.as_str(), tampered.as_str(), "", "abc.def"] {
        let err = stack.broker.put(bad, "k", b"v".to_vec()).await.unwrap_err();
        assert_eq!(err.status(), Some(401), "token {bad:?}");
        let err = stack.broker.list(bad, "").await.unwrap_err();
        assert_eq!(err.status(), Some(401), "token {bad:?}");
    }
    let resp = reqwest::get(format!("{}/v1/objects/k", stack.broker_base))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(files(&stack.objects).is_empty());
}

#[tokio::test]
async fn keys_that_could_escape_the_scope_are_refused() {
    let stack = start(Duration::from_secs(30), 900, MIB).await;
    let lease = stack.claimed(1).await.remove(0);
    let token = stack.credentials(&lease).await.token;

    let long = "k".repeat(513);
    let bad = [
        "../escape",
        "a/../../../escape",
        "a\\..\\b",
        "a//b",
        "/etc/passwd",
        "a\nb",
        &long,
    ];
    for key in bad {
        let err = stack
            .broker
            .put(&token, key, b"x".to_vec())
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(400), Some("invalid_key")),
            "key {key:?}"
        );
        let err = stack.broker.get(&token, key).await.unwrap_err();
        assert_eq!(err.code(), Some("invalid_key"), "key {key:?}");
    }
    let err = stack.broker.list(&token, "../").await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_key"));
    assert!(
        files(&stack.objects).is_empty(),
        "nothing was written anywhere"
    );
}

#[tokio::test]
async fn a_list_shows_only_the_tasks_own_keys() {
    let stack = start(Duration::from_secs(30), 900, MIB).await;
    let leases = stack.claimed(2).await;
    let mine = stack.credentials(&leases[0]).await.token;
    let theirs = stack.credentials(&leases[1]).await.token;

    for key in ["b.txt", "logs/2024-01", "logs/2024-02", "a.txt"] {
        stack
            .broker
            .put(&mine, key, key.as_bytes().to_vec())
            .await
            .unwrap();
    }
    stack
        .broker
        .put(&theirs, "secret", b"other task".to_vec())
        .await
        .unwrap();

    let all = stack.broker.list(&mine, "").await.unwrap();
    assert_eq!(all, vec!["a.txt", "b.txt", "logs/2024-01", "logs/2024-02"]);
    assert_eq!(
        stack.broker.list(&mine, "logs/").await.unwrap(),
        vec!["logs/2024-01", "logs/2024-02"]
    );
    assert_eq!(
        stack.broker.list(&mine, "logs/2024-0").await.unwrap().len(),
        2
    );
    assert_eq!(
        stack.broker.list(&theirs, "").await.unwrap(),
        vec!["secret"]
    );
    assert_eq!(stack.broker.get(&mine, "secret").await.unwrap(), None);
}

#[tokio::test]
async fn an_object_over_the_size_cap_is_refused() {
    let stack = start(Duration::from_secs(30), 900, 1024).await;
    let lease = stack.claimed(1).await.remove(0);
    let token = stack.credentials(&lease).await.token;

    stack
        .broker
        .put(&token, "fits", vec![7; 1024])
        .await
        .unwrap();
    let err = stack
        .broker
        .put(&token, "too-big", vec![7; 1025])
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(413), Some("object_too_large"))
    );
    assert_eq!(stack.broker.list(&token, "").await.unwrap(), vec!["fits"]);
}
