//! Deterministic execution: the same task run twice publishes the same
//! bytes, clocks and random bytes are the task's, NaNs are canonical, and
//! fuel bounds a run by name while epochs still cancel it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use trace_common::api::FailureClass;
use trace_host::{Execution, Host, HostConfig, Limits, Loaded, RunError, RunOutput, TaskInput};

use super::caps::recording;
use super::guests::guest;

/// A task of the determinism guest: 50 blocks from 18 000 000.
fn task(attempt: u32) -> TaskInput {
    TaskInput {
        job_id: "0191e0a4-7c2e-7000-8000-0000000000d1".into(),
        task_id: "0191e0a4-7c2e-7000-8000-0000000000d2".into(),
        attempt,
        chain_id: 1,
        from_block: 18_000_000,
        to_block: 18_000_049,
        params: "{}".into(),
    }
}

fn new_host() -> Host {
    Host::new(HostConfig::default()).expect("host builds")
}

fn load(host: &Host, name: &str, execution: Execution) -> Loaded {
    let guest = guest(name);
    host.load_for(&guest.digest, &guest.bytes, execution)
        .expect("guest loads")
}

/// What one run of the determinism guest gave: its output, its
/// observations by name, and a SHA-256 of everything it returned,
/// published and logged.
struct Observed {
    out: RunOutput,
    values: BTreeMap<String, String>,
    digest: String,
}

fn observe(host: &Host, loaded: &Loaded, task: TaskInput) -> Observed {
    let (caps, calls) = recording();
    let out = host
        .run(loaded, task, caps, &Limits::default())
        .unwrap_or_else(|e| panic!("the determinism guest failed: {e}"));
    let calls = calls.lock().unwrap();
    let mut hash = Sha256::new();
    hash.update(format!("{}|{:?}|", out.message, out.counters));
    hash.update(format!("{:?}|", calls.datasets));
    for (dataset, records) in &calls.records {
        hash.update(format!("{dataset}|{records:?}|"));
    }
    hash.update(format!("{:?}|{:?}", calls.alerts, calls.logs));

    let (_, records) = &calls.records[0];
    let values = records
        .iter()
        .map(|record| {
            let row: serde_json::Value = serde_json::from_str(record).unwrap();
            let field = |name: &str| row[name].as_str().unwrap().to_string();
            (field("what"), field("value"))
        })
        .collect();
    Observed {
        out,
        values,
        digest: hex::encode(hash.finalize()),
    }
}

#[test]
fn the_same_task_run_twice_deterministically_publishes_the_same_bytes() {
    let host = new_host();
    let loaded = load(&host, "determinism", Execution::Deterministic);
    assert_eq!(loaded.execution(), Execution::Deterministic);

    let first = observe(&host, &loaded, task(1));
    let retry = observe(&host, &loaded, task(2));
    // Another worker, and another job over the same range.
    let elsewhere = new_host();
    let loaded_elsewhere = load(&elsewhere, "determinism", Execution::Deterministic);
    let other_job = TaskInput {
        job_id: "0191e0a4-7c2e-7000-8000-0000000000e1".into(),
        task_id: "0191e0a4-7c2e-7000-8000-0000000000e2".into(),
        ..task(1)
    };
    let again = observe(&elsewhere, &loaded_elsewhere, other_job);

    assert_eq!(first.values.len(), 22, "{:?}", first.values);
    assert_eq!(retry.digest, first.digest);
    assert_eq!(again.digest, first.digest);
    assert_eq!(again.values, first.values);
    let fuel = first
        .out
        .fuel_consumed
        .expect("a deterministic run counts its fuel");
    assert!(fuel > 0);
    assert_eq!(retry.out.fuel_consumed, Some(fuel));
    assert_eq!(again.out.fuel_consumed, Some(fuel));

    // Another range is another task: other bytes.
    let later = TaskInput {
        from_block: 18_000_050,
        to_block: 18_000_099,
        ..task(1)
    };
    let later = observe(&host, &loaded, later);
    assert_ne!(later.values["random.bytes"], first.values["random.bytes"]);
    assert_eq!(later.values["wall_clock.0"], "18000050.000000000");
}

#[test]
fn a_normal_run_of_the_same_task_sees_the_hosts_clock_and_random_bytes() {
    let host = new_host();
    let loaded = load(&host, "determinism", Execution::Normal);

    let first = observe(&host, &loaded, task(1));
    let second = observe(&host, &loaded, task(1));

    assert_eq!(first.out.fuel_consumed, None);
    assert_ne!(first.digest, second.digest);
    // A std HashMap's order comes from its random keys: the same order of
    // 16 keys twice by chance is one in 16!.
    let random = [
        "random.bytes",
        "random.u64",
        "insecure.bytes",
        "insecure_seed",
    ];
    for what in random.into_iter().chain(["hashmap.order"]) {
        assert_ne!(first.values[what], second.values[what], "{what}");
    }
    assert_ne!(
        first.values["monotonic_clock.0"],
        second.values["monotonic_clock.0"]
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let wall: f64 = first.values["wall_clock.0"].parse().unwrap();
    assert!(
        (wall as u64).abs_diff(now) < 60,
        "wall clock {wall}, now {now}"
    );
}

#[test]
fn a_deterministic_run_sees_the_clocks_and_random_bytes_its_task_fixes() {
    let host = new_host();
    let loaded = load(&host, "determinism", Execution::Deterministic);
    let task = task(1);

    let seen = observe(&host, &loaded, task.clone()).values;

    // Wall clock from the first block's number, monotonic from one day; each
    // read moves its clock by 1 ms.
    assert_eq!(seen["wall_clock.0"], "18000000.000000000");
    assert_eq!(seen["wall_clock.1"], "18000000.001000000");
    assert_eq!(seen["wall_clock.resolution"], "0.001000000");
    assert_eq!(seen["monotonic_clock.0"], "86400000000000");
    assert_eq!(seen["monotonic_clock.1"], "86400001000000");
    assert_eq!(seen["monotonic_clock.resolution"], "1000000");
    assert_eq!(seen["std.system_time"], "18000000.002s");

    // The streams as docs/security.md defines them, computed here.
    let seed = seed_of(&task);
    let secure = stream(&seed, b"random", 48);
    assert_eq!(seen["random.bytes"], hex::encode(&secure[..40]));
    let word = u64::from_le_bytes(secure[40..48].try_into().unwrap());
    assert_eq!(seen["random.u64"], word.to_string());
    let insecure = stream(&seed, b"insecure", 24);
    assert_eq!(seen["insecure.bytes"], hex::encode(&insecure[..16]));
    let word = u64::from_le_bytes(insecure[16..24].try_into().unwrap());
    assert_eq!(seen["insecure.u64"], word.to_string());
    let digest = Sha256::digest([&seed[..], b"insecure-seed"].concat());
    let half = |i: usize| u64::from_le_bytes(digest[i..i + 8].try_into().unwrap());
    let expected_seed = format!("{:016x}{:016x}", half(0), half(8));
    assert_eq!(seen["insecure_seed"], expected_seed);
}

/// SHA-256 of the tag, the chain id, the range and the parameters.
fn seed_of(task: &TaskInput) -> Vec<u8> {
    let mut input = b"trace:determinism:v1\0".to_vec();
    input.extend(task.chain_id.to_be_bytes());
    input.extend(task.from_block.to_be_bytes());
    input.extend(task.to_block.to_be_bytes());
    input.extend((task.params.len() as u64).to_be_bytes());
    input.extend(task.params.as_bytes());
    Sha256::digest(&input).to_vec()
}

/// The first `len` bytes of the stream `label` of `seed`.
fn stream(seed: &[u8], label: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for block in 0u64.. {
        if out.len() >= len {
            break;
        }
        out.extend(Sha256::digest([seed, label, &block.to_be_bytes()].concat()));
    }
    out.truncate(len);
    out
}

#[test]
fn nans_with_payloads_come_out_canonical_in_a_deterministic_run() {
    let host = new_host();
    let deterministic = load(&host, "determinism", Execution::Deterministic);
    let normal = load(&host, "determinism", Execution::Normal);

    let seen = observe(&host, &deterministic, task(1)).values;
    let as_is = observe(&host, &normal, task(1)).values;

    let nans: Vec<_> = seen
        .iter()
        .filter(|(what, _)| what.starts_with("nan."))
        .collect();
    assert_eq!(nans.len(), 9);
    for (what, bits) in nans {
        let canonical = if what.starts_with("nan.f64") {
            "7ff8000000000000"
        } else {
            "7fc00000"
        };
        assert_eq!(bits, canonical, "{what}");
    }
    // Without canonicalisation x86-64 keeps the payloads and the sign of
    // its default NaN, which a guest can read.
    if cfg!(target_arch = "x86_64") {
        assert_eq!(as_is["nan.f64.quiet_plus_one"], "7ff800000000beef");
        assert_eq!(as_is["nan.f64.zero_over_zero"], "fff8000000000000");
        assert_eq!(as_is["nan.f32.quiet_times_one"], "7fc0beef");
    }
}

#[test]
fn an_endless_loop_in_a_deterministic_run_fails_by_fuel_and_the_host_goes_on() {
    let host = new_host();
    let spin = load(&host, "spin", Execution::Deterministic);
    let limits = Limits {
        fuel: 200_000_000,
        ..Limits::default()
    };

    for _ in 0..2 {
        let started = Instant::now();
        let (caps, _) = recording();
        let err = host.run(&spin, task(1), caps, &limits).unwrap_err();

        assert!(
            matches!(err, RunError::Fuel { limit: 200_000_000 }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "component ran out of fuel: a call may use at most 200000000 units (fuel)"
        );
        assert_eq!(err.class(), FailureClass::Deterministic);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    for execution in [Execution::Normal, Execution::Deterministic] {
        let echo = load(&host, "echo", execution);
        let (caps, _) = recording();
        let out = host.run(&echo, task(1), caps, &limits).unwrap();
        assert_eq!(out.message, "echoed 50 blocks");
    }
}

#[test]
fn cancelling_a_deterministic_run_interrupts_it_at_the_next_epoch_tick() {
    let host = new_host();
    let spin = load(&host, "spin", Execution::Deterministic);
    let limits = Limits {
        fuel: u64::MAX,
        ..Limits::default()
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let raise = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::Relaxed);
        })
    };

    let started = Instant::now();
    let (caps, _) = recording();
    let err = host
        .run_cancellable(&spin, task(1), caps, &limits, &cancel)
        .unwrap_err();
    raise.join().unwrap();

    assert!(matches!(err, RunError::Cancelled), "{err:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn a_limit_broken_through_a_capability_still_ends_a_deterministic_run() {
    let host = new_host();
    let hostile = load(&host, "hostile", Execution::Deterministic);
    let task = TaskInput {
        params: r#"{"case":"log-flood"}"#.into(),
        ..task(1)
    };

    let started = Instant::now();
    let (caps, _) = recording();
    let err = host
        .run(&hostile, task, caps, &Limits::default())
        .unwrap_err();

    let reason = "component broke a limit: a task may write at most 1000 log lines (max_log_lines)";
    assert_eq!(err.to_string(), reason);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_component_is_compiled_once_per_engine_and_cached_apart() {
    let cache = tempfile::tempdir().unwrap();
    let config = HostConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..HostConfig::default()
    };
    let echo = guest("echo");
    let host = Host::new(config.clone()).unwrap();
    for execution in [
        Execution::Normal,
        Execution::Deterministic,
        Execution::Normal,
    ] {
        let loaded = host.load_for(&echo.digest, &echo.bytes, execution).unwrap();
        assert_eq!(loaded.execution(), execution);
    }
    host.load_for(&echo.digest, &echo.bytes, Execution::Deterministic)
        .unwrap();

    let artifacts = || -> Vec<(String, SystemTime)> {
        let mut found = Vec::new();
        for dir in std::fs::read_dir(cache.path()).unwrap() {
            for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let file = file.unwrap();
                let name = file.path().display().to_string();
                found.push((name, file.metadata().unwrap().modified().unwrap()));
            }
        }
        found.sort();
        found
    };
    let written = artifacts();
    assert_eq!(written.len(), 2, "{written:?}");
    assert_ne!(
        std::path::Path::new(&written[0].0).parent(),
        std::path::Path::new(&written[1].0).parent()
    );

    // A restarted worker reads both back instead of compiling again, and
    // each runs on its own engine.
    let restarted = Host::new(config).unwrap();
    for execution in [Execution::Normal, Execution::Deterministic] {
        let loaded = restarted
            .load_for(&echo.digest, &echo.bytes, execution)
            .unwrap();
        let (caps, _) = recording();
        let out = restarted
            .run(&loaded, task(1), caps, &Limits::default())
            .unwrap();
        assert_eq!(
            out.fuel_consumed.is_some(),
            execution == Execution::Deterministic
        );
    }
    assert_eq!(artifacts(), written);
}
