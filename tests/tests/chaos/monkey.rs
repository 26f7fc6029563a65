//! The chaos of a run: a plan of kills and a Postgres restart drawn from a
//! seeded generator, and the loop that carries it out while the job runs.
//!
//! The plan always holds a kill of a UDF worker while it holds a lease of
//! the job (kept down until the reaper has taken the lease back), at least
//! one SIGKILL of the dispatcher, of a sink and of a UDF worker, and one
//! Postgres restart among them; the rest are kills of random services, done
//! while the job still runs.
//! The same seed gives the same plan; how it meets the job's progress
//! depends on timing, so a replay is close, not identical.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::platform::{DISPATCHER, Platform, SINKS, UDF_WORKERS, worker_id};

/// How often the loop looks at the job and the services.
const TICK: Duration = Duration::from_millis(50);

/// How hard a run is.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: &'static str,
    /// Blocks per task of the job (of the recorded log blocks).
    pub chunk_size: u64,
    /// Chaos jobs run at once, each over all the blocks, so that the work
    /// lasts through the window.
    pub jobs: usize,
    /// `TRACE_QUEUE_FAULTS` for the dispatcher, without the seed.
    pub faults: &'static str,
    /// Kills of random services besides the required ones.
    pub extra_kills: usize,
    /// Pause before each action, in ms.
    pub gap_ms: Range<u64>,
    /// How long a killed service or Postgres stays down, in ms.
    pub down_ms: Range<u64>,
    /// No action starts later than this after the jobs' submission, so
    /// that the run also shows how long the platform takes to recover.
    pub window: Duration,
    /// The chaos jobs must have ended within this.
    pub limit: Duration,
}

impl Profile {
    /// The short form, or the long one when `TRACE_CHAOS=long`.
    pub fn from_env() -> Profile {
        match std::env::var("TRACE_CHAOS").as_deref() {
            Ok("long") => Profile {
                name: "long",
                chunk_size: 2,
                jobs: 3,
                faults: "drop=0.1,duplicate=0.2,delay=0.2,delay_ms=1500,send_error=0.05,\
                         lose_delete=0.2",
                extra_kills: 60,
                gap_ms: 1_500..5_000,
                down_ms: 300..3_000,
                window: Duration::from_secs(150),
                limit: Duration::from_secs(900),
            },
            _ => Profile {
                name: "short",
                chunk_size: 2,
                jobs: 1,
                // No `drop`: the reconciler wakes a task again only after
                // 5 minutes (`RECONCILE_AFTER`), beyond this form's budget.
                faults: "duplicate=0.2,delay=0.2,delay_ms=1500,send_error=0.05,lose_delete=0.2",
                extra_kills: 2,
                gap_ms: 600..1_500,
                down_ms: 300..1_500,
                window: Duration::from_secs(60),
                limit: Duration::from_secs(150),
            },
        }
    }
}

/// `TRACE_CHAOS_SEED`, or a fresh one.
pub fn seed_from_env() -> u64 {
    match std::env::var("TRACE_CHAOS_SEED") {
        Ok(seed) => seed.trim().parse().expect("TRACE_CHAOS_SEED is an integer"),
        Err(_) => rand::random::<u32>() as u64,
    }
}

/// One thing the monkey does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL a UDF worker that holds a lease of the job; start it again
    /// once the reaper has expired that attempt.
    LeaseKill,
    /// SIGKILL `service`; start it again after `down`.
    Kill { service: String, down: Duration },
    /// Stop Postgres, keep it down for `down`, start it again.
    RestartPostgres { down: Duration },
}

/// An action and the pause before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub gap: Duration,
    pub action: Action,
}

/// The plan for `seed`: the lease kill, then the required kills (one each
/// of the dispatcher, a sink and a UDF worker) in random order with the
/// Postgres restart among them, then kills of random services. The required
/// actions come first so that they happen while even a quick job runs.
pub fn plan(seed: u64, profile: &Profile) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut required: Vec<&str> = vec![
        DISPATCHER,
        SINKS.choose(&mut rng).unwrap(),
        UDF_WORKERS.choose(&mut rng).unwrap(),
    ];
    required.shuffle(&mut rng);
    let everyone: Vec<&str> = [DISPATCHER]
        .into_iter()
        .chain(SINKS)
        .chain(UDF_WORKERS)
        .collect();
    let extra: Vec<&str> = (0..profile.extra_kills)
        .map(|_| *everyone.choose(&mut rng).unwrap())
        .collect();

    let mut actions = vec![Action::LeaseKill];
    for service in required.into_iter().chain(extra) {
        let down = ms(&mut rng, &profile.down_ms);
        let service = service.to_string();
        actions.push(Action::Kill { service, down });
    }
    let down = ms(&mut rng, &profile.down_ms);
    let middle = rng.gen_range(2..=4).min(actions.len());
    actions.insert(middle, Action::RestartPostgres { down });
    actions
        .into_iter()
        .map(|action| Step {
            gap: ms(&mut rng, &profile.gap_ms),
            action,
        })
        .collect()
}

fn ms(rng: &mut StdRng, range: &Range<u64>) -> Duration {
    Duration::from_millis(rng.gen_range(range.clone()))
}

/// What the monkey did.
#[derive(Debug, Default)]
pub struct Tally {
    /// SIGKILLs per service, the lease kills included.
    pub kills: BTreeMap<String, u32>,
    pub postgres_restarts: u32,
    /// `(task, attempt, service)` of each lease kill, and whether the reaper
    /// then expired that attempt.
    pub lease_kills: Vec<(Uuid, i32, String, bool)>,
    /// Services that exited by themselves, with how; each was started again.
    pub self_exits: Vec<(String, String)>,
    pub planned: usize,
    pub done: usize,
    /// When the last kill, restart or Postgres stop happened.
    pub last_action: Option<DateTime<Utc>>,
    /// Whether every job had ended when the loop stopped.
    pub jobs_ended: bool,
}

/// A lease victim waiting for the reaper.
struct Victim {
    service: String,
    task: Uuid,
    attempt: i32,
}

/// Carries out `plan` while `jobs` run and the profile's window lasts, and
/// keeps restarting what dies until every job ended or `profile.limit`
/// passed; when it returns, every service it killed is running again.
pub async fn run(
    platform: &mut Platform,
    jobs: &[Uuid],
    plan: &[Step],
    profile: &Profile,
) -> Tally {
    let limit = profile.limit;
    let mut tally = Tally {
        planned: plan.len(),
        ..Tally::default()
    };
    let started = Instant::now();
    let mut next = 0;
    let mut next_at = started + plan.first().map_or(Duration::ZERO, |s| s.gap);
    let mut restarts: Vec<(Instant, String)> = Vec::new();
    let mut victim: Option<Victim> = None;
    let mut lease_again = false;
    let mut looked = Instant::now() - Duration::from_secs(1);

    while started.elapsed() < limit {
        if looked.elapsed() >= Duration::from_millis(250) {
            looked = Instant::now();
            if jobs_ended(platform, jobs).await {
                tally.jobs_ended = true;
                break;
            }
        }
        restart_due(platform, &mut restarts);
        if let Some(v) = &victim
            && let Some(outcome) = attempt_outcome(platform, v).await
        {
            let v = victim.take().unwrap();
            let expired = outcome == "expired";
            eprintln!(
                "chaos: attempt {} of task {} ended {outcome}",
                v.attempt, v.task
            );
            tally
                .lease_kills
                .push((v.task, v.attempt, v.service.clone(), expired));
            platform.start(&v.service);
            // Killed just as it finished: kill another holder of a lease.
            lease_again = !expired && tally.lease_kills.len() < 3;
        }
        for (name, status) in platform.procs.exited() {
            eprintln!("chaos: {name} exited by itself ({status}); starting it again");
            tally.self_exits.push((name.clone(), status.to_string()));
            platform.start(&name);
        }

        if lease_again && victim.is_none() {
            let action = Action::LeaseKill;
            if act(
                platform,
                jobs,
                &action,
                &mut restarts,
                &mut victim,
                &mut tally,
            )
            .await
            {
                lease_again = false;
            }
        } else if next < plan.len()
            && Instant::now() >= next_at
            && started.elapsed() < profile.window
        {
            let action = &plan[next].action;
            if act(
                platform,
                jobs,
                action,
                &mut restarts,
                &mut victim,
                &mut tally,
            )
            .await
            {
                tally.done += 1;
                next += 1;
                next_at = Instant::now() + plan.get(next).map_or(Duration::ZERO, |s| s.gap);
            }
        }
        tokio::time::sleep(TICK).await;
    }

    for (_, name) in restarts.drain(..) {
        platform.start(&name);
    }
    if let Some(v) = victim.take() {
        let expired = attempt_outcome(platform, &v).await.as_deref() == Some("expired");
        tally
            .lease_kills
            .push((v.task, v.attempt, v.service.clone(), expired));
        platform.start(&v.service);
    }
    tally
}

/// Does `action` and counts it; false when it cannot yet (no lease of the
/// job is held by a running worker).
async fn act(
    platform: &mut Platform,
    jobs: &[Uuid],
    action: &Action,
    restarts: &mut Vec<(Instant, String)>,
    victim: &mut Option<Victim>,
    tally: &mut Tally,
) -> bool {
    match action {
        Action::LeaseKill => {
            let Some((task, attempt, service)) = leased(platform, jobs).await else {
                return false;
            };
            platform.procs.kill(&service);
            eprintln!("chaos: killed {service} holding attempt {attempt} of task {task}");
            *tally.kills.entry(service.clone()).or_default() += 1;
            tally.last_action = Some(Utc::now());
            *victim = Some(Victim {
                service,
                task,
                attempt,
            });
            true
        }
        Action::Kill { service, down } => {
            let target = running_sibling(platform, service);
            if let Some(target) = &target {
                platform.procs.kill(target);
                restarts.push((Instant::now() + *down, target.clone()));
                eprintln!("chaos: killed {target} for {down:?}");
                *tally.kills.entry(target.clone()).or_default() += 1;
                tally.last_action = Some(Utc::now());
            }
            true
        }
        Action::RestartPostgres { down } => {
            eprintln!("chaos: restarting Postgres ({down:?} down)");
            platform.restart_postgres(*down).await;
            tally.postgres_restarts += 1;
            tally.last_action = Some(Utc::now());
            true
        }
    }
}

/// `service` if it runs, else another running service of its kind.
fn running_sibling(platform: &Platform, service: &str) -> Option<String> {
    let kind: &[&str] = if SINKS.contains(&service) {
        &SINKS
    } else if UDF_WORKERS.contains(&service) {
        &UDF_WORKERS
    } else {
        &[DISPATCHER]
    };
    std::iter::once(service)
        .chain(kind.iter().copied())
        .find(|name| platform.procs.is_running(name))
        .map(str::to_string)
}

fn restart_due(platform: &mut Platform, restarts: &mut Vec<(Instant, String)>) {
    let now = Instant::now();
    let (due, later): (Vec<_>, Vec<_>) = restarts.drain(..).partition(|(at, _)| *at <= now);
    *restarts = later;
    for (_, name) in due {
        platform.start(&name);
    }
}

/// A running task of `jobs` leased by a running UDF worker, with its
/// attempt and that worker's service name.
async fn leased(platform: &Platform, jobs: &[Uuid]) -> Option<(Uuid, i32, String)> {
    let owners: Vec<String> = UDF_WORKERS
        .iter()
        .filter(|s| platform.procs.is_running(s))
        .map(|s| worker_id(s))
        .collect();
    let row: Option<(Uuid, i32, String)> = sqlx::query_as(
        "select id, attempt, lease_owner from tasks \
         where job_id = any($1) and state = 'running' and lease_owner = any($2) \
         order by lease_expires_at limit 1",
    )
    .bind(jobs)
    .bind(&owners)
    .fetch_optional(&platform.state)
    .await
    .ok()
    .flatten();
    let (task, attempt, owner) = row?;
    let service = UDF_WORKERS.iter().find(|s| worker_id(s) == owner)?;
    Some((task, attempt, service.to_string()))
}

/// How the victim's attempt ended (`expired` when the reaper took the
/// lease back), or `None` while it is open or the database is down.
async fn attempt_outcome(platform: &Platform, victim: &Victim) -> Option<String> {
    let outcome: Option<Option<String>> =
        sqlx::query_scalar("select outcome from task_attempts where task_id = $1 and attempt = $2")
            .bind(victim.task)
            .bind(victim.attempt)
            .fetch_optional(&platform.state)
            .await
            .ok()
            .flatten();
    outcome.flatten()
}

/// Whether none of `jobs` is running (errors while Postgres is down: no).
async fn jobs_ended(platform: &Platform, jobs: &[Uuid]) -> bool {
    let running: Option<i64> =
        sqlx::query_scalar("select count(*) from jobs where id = any($1) and state = 'running'")
            .bind(jobs)
            .fetch_one(&platform.state)
            .await
            .ok();
    running == Some(0)
}
