//! The fault layer against a real [`PgQueue`]: each fault's effect, the log
//! line and count of each, and the same faults from the same seed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

use super::{Fault, FaultConfig, FaultyQueue, InvalidFaults};
use crate::queue::Queue;
use crate::queue::pg::PgQueue;

const NOW: Duration = Duration::ZERO;
const LONG: Duration = Duration::from_secs(30);

async fn faulty(spec: &str) -> (PgPool, PgQueue, FaultyQueue) {
    let (pool, _) = crate::db::testing::fresh_pools().await;
    let inner = PgQueue::new(pool.clone());
    let config: FaultConfig = spec.parse().unwrap();
    let queue = FaultyQueue::new(Arc::new(inner.clone()), config);
    (pool, inner, queue)
}

/// Every body waiting in `queue`, in send order, without receiving it.
async fn stored(pool: &PgPool, queue: &str) -> Vec<Value> {
    sqlx::query_scalar("select body from queue_messages where queue = $1 order by id")
        .bind(queue)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[test]
fn a_spec_sets_each_knob_and_anything_else_is_refused() {
    let spec = "seed=7, drop=0.1,duplicate=0.2,delay=0.2,delay_ms=1500,send_error=0.05,\
                lose_delete=0.2";
    let config: FaultConfig = spec.parse().unwrap();
    let expected = FaultConfig {
        seed: 7,
        drop: 0.1,
        duplicate: 0.2,
        delay: 0.2,
        delay_for: Duration::from_millis(1500),
        send_error: 0.05,
        lose_delete: 0.2,
    };
    assert_eq!(config, expected);
    assert_eq!(config.to_string().parse::<FaultConfig>().unwrap(), expected);
    assert_eq!("".parse::<FaultConfig>().unwrap(), FaultConfig::default());

    let refused = |spec: &str| spec.parse::<FaultConfig>().unwrap_err();
    assert_eq!(
        refused("dorp=0.1"),
        InvalidFaults("unknown key `dorp`".into())
    );
    assert!(refused("drop=1.5").to_string().contains("0..=1"));
    assert!(refused("seed=x").to_string().contains("`seed`"));
    assert!(refused("drop").to_string().contains("key=value"));
}

#[tokio::test]
async fn drop_discards_task_wake_ups_and_never_other_messages() {
    let (pool, _, queue) = faulty("drop=1").await;
    let bodies = [json!(1), json!(2), json!(3)];
    queue.send("tasks-udf", &bodies).await.unwrap();
    queue.send("buffer-records", &bodies).await.unwrap();

    assert_eq!(stored(&pool, "tasks-udf").await, Vec::<Value>::new());
    assert_eq!(stored(&pool, "buffer-records").await, bodies.to_vec());
    assert_eq!(queue.counts().get(Fault::Drop), 3);
    assert_eq!(queue.counts().total(), 3);
}

#[tokio::test]
async fn send_error_fails_the_send_before_anything_is_sent() {
    let (pool, _, queue) = faulty("send_error=1").await;
    let err = queue
        .send("buffer-records", &[json!("a")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!(stored(&pool, "buffer-records").await, Vec::<Value>::new());
    assert_eq!(queue.counts().get(Fault::SendError), 1);
}

#[tokio::test]
async fn duplicate_sends_each_message_twice() {
    let (_, inner, queue) = faulty("duplicate=1").await;
    queue.send("q", &[json!("a"), json!("b")]).await.unwrap();
    let got = inner.receive("q", 10, NOW, LONG).await.unwrap();
    let bodies: Vec<Value> = got.into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, [json!("a"), json!("a"), json!("b"), json!("b")]);
    assert_eq!(queue.counts().get(Fault::Duplicate), 2);
}

#[tokio::test]
async fn delay_holds_the_send_call_before_sending() {
    let (pool, _, queue) = faulty("delay=1,delay_ms=400").await;
    let queue = Arc::new(queue);
    let sender = queue.clone();
    let started = Instant::now();
    let send = tokio::spawn(async move { sender.send("q", &[json!("late")]).await });

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        stored(&pool, "q").await,
        Vec::<Value>::new(),
        "not sent yet"
    );
    send.await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(stored(&pool, "q").await, [json!("late")]);
    assert_eq!(queue.counts().get(Fault::Delay), 1);
}

#[tokio::test]
async fn a_lost_delete_answers_success_and_the_message_comes_back_after_its_visibility() {
    let (_, inner, queue) = faulty("lose_delete=1").await;
    queue.send("q", &[json!("again")]).await.unwrap();
    let visibility = Duration::from_millis(200);
    let first = queue.receive("q", 10, NOW, visibility).await.unwrap();
    queue
        .delete("q", &[first[0].receipt.clone()])
        .await
        .unwrap();
    assert!(queue.receive("q", 10, NOW, LONG).await.unwrap().is_empty());

    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = queue.receive("q", 10, NOW, LONG).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        (&second[0].body, second[0].receive_count),
        (&json!("again"), 2)
    );
    assert_eq!(queue.counts().get(Fault::LoseDelete), 1);

    inner
        .delete("q", &[second[0].receipt.clone()])
        .await
        .unwrap();
    assert!(inner.receive("q", 10, NOW, LONG).await.unwrap().is_empty());
}

/// What a fixed script of calls did: per send whether it failed, what the
/// queues then held, what was left after deleting all of it once, and the
/// faults logged.
#[derive(Debug, PartialEq)]
struct Run {
    send_failed: Vec<bool>,
    stored: Vec<Value>,
    left_after_delete: usize,
    logged: Vec<String>,
}

async fn script(spec: &str) -> Run {
    let logged = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(FaultLog(logged.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let (pool, _, queue) = faulty(spec).await;
    let mut send_failed = Vec::new();
    for n in 0..30 {
        let name = if n % 3 == 0 {
            "buffer-records"
        } else {
            "tasks-udf"
        };
        let bodies = [json!({ "n": n }), json!({ "n": n, "second": true })];
        send_failed.push(queue.send(name, &bodies).await.is_err());
    }
    let mut stored_bodies = stored(&pool, "tasks-udf").await;
    stored_bodies.extend(stored(&pool, "buffer-records").await);
    for name in ["tasks-udf", "buffer-records"] {
        let got = queue.receive(name, 100, NOW, LONG).await.unwrap();
        let receipts: Vec<String> = got.into_iter().map(|m| m.receipt).collect();
        queue.delete(name, &receipts).await.unwrap();
    }
    let left: i64 = sqlx::query_scalar("select count(*) from queue_messages")
        .fetch_one(&pool)
        .await
        .unwrap();

    let logged = logged.lock().unwrap().clone();
    let counts = queue.counts();
    for fault in Fault::ALL {
        let lines = logged.iter().filter(|f| *f == fault.name()).count() as u64;
        assert_eq!(lines, counts.get(fault), "log lines of `{}`", fault.name());
    }
    Run {
        send_failed,
        stored: stored_bodies,
        left_after_delete: left as usize,
        logged,
    }
}

#[tokio::test]
async fn a_fixed_seed_gives_the_same_faults_and_each_is_logged_by_kind() {
    let spec = "drop=0.3,duplicate=0.3,delay=0.2,delay_ms=1,send_error=0.2,lose_delete=0.3";
    let first = script(&format!("seed=7,{spec}")).await;
    let again = script(&format!("seed=7,{spec}")).await;
    let other = script(&format!("seed=8,{spec}")).await;

    assert_eq!(first, again);
    assert_ne!(first, other);
    for fault in Fault::ALL {
        assert!(
            first.logged.iter().any(|f| f == fault.name()),
            "seed 7 injects `{}`: {:?}",
            fault.name(),
            first.logged
        );
    }
    assert!(first.left_after_delete > 0, "some deletes were lost");
    let sent_ok = first.send_failed.iter().filter(|failed| !**failed).count();
    assert!(
        first.stored.len() != 2 * sent_ok,
        "drops and duplicates change what is stored"
    );
}

/// Collects the `fault` field of every event.
struct FaultLog(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FaultLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut visit = FaultField(None);
        event.record(&mut visit);
        if let Some(fault) = visit.0 {
            self.0.lock().unwrap().push(fault);
        }
    }
}

struct FaultField(Option<String>);

impl Visit for FaultField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "fault" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}
