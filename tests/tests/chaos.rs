//! The chaos test: the erc20-transfers job over the recorded mainnet blocks,
//! once clean and once while UDF workers, sinks and the dispatcher are
//! SIGKILLed and started again, a worker dies holding a lease, Postgres
//! restarts, and the dispatcher's queue duplicates, delays and fails
//! messages and loses deletes. The chaos job must succeed with the very
//! rows of the clean one, as many as the raw files hold transfers, and
//! every one of its alerts must reach the webhook receiver.
//!
//! Short by default (it runs in `make test`); `TRACE_CHAOS=long` (`make
//! chaos`) kills far more over a longer run and drops task wake-ups too.
//! `TRACE_CHAOS_SEED` replays a seed's plan. The service binaries must be
//! built first with `cargo build --workspace --bins`, which gives the
//! dispatcher its fault layer (trace-common's `faults` feature).

#[path = "e2e/client.rs"]
#[allow(dead_code, reason = "shared with the e2e binary, which uses all of it")]
mod client;

mod chaos {
    pub mod monkey;
    pub mod platform;
    pub mod procs;
    pub mod report;
    pub mod run;
    pub mod verify;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_chaos_the_erc20_job_leaves_the_rows_of_a_clean_run_and_every_alert() {
    chaos::run::clean_then_chaos().await;
}

#[test]
fn a_seed_gives_one_chaos_plan_and_every_plan_holds_the_required_actions() {
    use chaos::monkey::{Action, Profile, plan};
    let profile = Profile::from_env();
    assert_eq!(plan(7, &profile), plan(7, &profile));
    assert_ne!(plan(7, &profile), plan(8, &profile));
    for seed in 0..50 {
        let steps = plan(seed, &profile);
        let actions: Vec<&Action> = steps.iter().map(|s| &s.action).collect();
        assert_eq!(actions[0], &Action::LeaseKill);
        let restarts = actions
            .iter()
            .filter(|a| matches!(a, Action::RestartPostgres { .. }))
            .count();
        assert_eq!(restarts, 1, "seed {seed}");
        let first_kills: Vec<&str> = actions[..5]
            .iter()
            .filter_map(|a| match a {
                Action::Kill { service, .. } => Some(service.as_str()),
                _ => None,
            })
            .collect();
        assert!(
            first_kills.contains(&"dispatcher"),
            "seed {seed}: {first_kills:?}"
        );
        assert!(
            first_kills.iter().any(|s| s.starts_with("sinks-")),
            "seed {seed}"
        );
        assert!(
            first_kills.iter().any(|s| s.starts_with("udf-worker-")),
            "seed {seed}"
        );
    }
}
