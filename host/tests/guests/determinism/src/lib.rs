//! Test guest: observes everything that deterministic execution fixes and
//! publishes it.
//!
//! It reads the wall and monotonic clocks (through WASI and through std),
//! draws secure and insecure random bytes and the insecure seed, iterates a
//! std `HashMap` (whose order comes from a random seed), and computes NaNs
//! from operands with payloads, recording each result's bits. Every
//! observation is published as one record of the dataset `observations`
//! (`what`, `value`), logged, and summed up in the summary's counters, so
//! that a host can compare two runs byte for byte.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "trace:udf/udf" });

use trace::udf::log::{self, Level};
use trace::udf::records::{self, Column, ColumnType};
use wasip2::clocks::{monotonic_clock, wall_clock};
use wasip2::random::{insecure, insecure_seed, random};

struct Determinism;

impl Guest for Determinism {
    fn run(task: Task) -> Result<Summary, UdfError> {
        let mut seen = Vec::new();
        clocks(&mut seen);
        randomness(&mut seen);
        nans(&task, &mut seen);

        let column = |name: &str| Column {
            name: name.into(),
            kind: ColumnType::Text,
            nullable: false,
        };
        records::define_dataset("observations", &[column("what"), column("value")])
            .map_err(|e| UdfError::Host(format!("{e:?}")))?;
        let rows: Vec<String> = seen
            .iter()
            .map(|(what, value)| format!("{{\"what\":\"{what}\",\"value\":\"{value}\"}}"))
            .collect();
        records::publish("observations", &rows).map_err(|e| UdfError::Host(format!("{e:?}")))?;
        for (what, value) in &seen {
            log::write(Level::Info, what, &[("value".into(), value.clone())]);
        }

        let canonical = seen
            .iter()
            .filter(|(what, value)| what.starts_with("nan") && is_canonical(value))
            .count();
        Ok(Summary {
            message: format!("observed {} values", seen.len()),
            counters: vec![
                ("observations".into(), seen.len() as u64),
                ("canonical_nans".into(), canonical as u64),
            ],
        })
    }
}

/// Two reads of each clock, their resolutions, and std's view of the time.
fn clocks(seen: &mut Vec<(String, String)>) {
    for read in 0..2 {
        let now = wall_clock::now();
        seen.push((
            format!("wall_clock.{read}"),
            format!("{}.{:09}", now.seconds, now.nanoseconds),
        ));
    }
    let res = wall_clock::resolution();
    seen.push((
        "wall_clock.resolution".into(),
        format!("{}.{:09}", res.seconds, res.nanoseconds),
    ));
    for read in 0..2 {
        seen.push((
            format!("monotonic_clock.{read}"),
            monotonic_clock::now().to_string(),
        ));
    }
    seen.push((
        "monotonic_clock.resolution".into(),
        monotonic_clock::resolution().to_string(),
    ));
    let std_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    seen.push(("std.system_time".into(), format!("{:?}", std_now)));
}

/// Secure and insecure bytes and words, the insecure seed, and the order of
/// a std `HashMap`.
fn randomness(seen: &mut Vec<(String, String)>) {
    seen.push(("random.bytes".into(), hex(&random::get_random_bytes(40))));
    seen.push(("random.u64".into(), random::get_random_u64().to_string()));
    seen.push((
        "insecure.bytes".into(),
        hex(&insecure::get_insecure_random_bytes(16)),
    ));
    seen.push((
        "insecure.u64".into(),
        insecure::get_insecure_random_u64().to_string(),
    ));
    let (low, high) = insecure_seed::insecure_seed();
    seen.push(("insecure_seed".into(), format!("{low:016x}{high:016x}")));
    let map: HashMap<String, u32> = (0..16).map(|i| (format!("k{i}"), i)).collect();
    let order: Vec<String> = map.values().map(u32::to_string).collect();
    seen.push(("hashmap.order".into(), order.join(",")));
}

/// NaNs from operands the compiler cannot see: quiet NaNs with payloads,
/// a signalling one, and NaNs made from numbers. Each result's bits.
fn nans(task: &Task, seen: &mut Vec<(String, String)>) {
    let one = black_box(task.chain_id as f64);
    let zero = black_box(one - one);
    let quiet = black_box(f64::from_bits(0x7ff8_0000_0000_beef));
    let signalling = black_box(f64::from_bits(0x7ff4_0000_0000_beef));
    let negative = black_box(f64::from_bits(0xfff8_0000_dead_0001));
    let f64s = [
        ("nan.f64.quiet_plus_one", quiet + one),
        ("nan.f64.signalling_times_one", signalling * one),
        ("nan.f64.negative_minus_one", negative - one),
        ("nan.f64.quiet_plus_negative", quiet + negative),
        ("nan.f64.zero_over_zero", zero / zero),
        ("nan.f64.sqrt_minus_one", black_box(-one).sqrt()),
    ];
    for (what, value) in f64s {
        seen.push((what.into(), format!("{:016x}", black_box(value).to_bits())));
    }
    let one = black_box(one as f32);
    let quiet = black_box(f32::from_bits(0x7fc0_beef));
    let negative = black_box(f32::from_bits(0xffc0_0001));
    let f32s = [
        ("nan.f32.quiet_times_one", quiet * one),
        ("nan.f32.negative_plus_one", negative + one),
        ("nan.f32.zero_over_zero", (one - one) / (one - one)),
    ];
    for (what, value) in f32s {
        seen.push((what.into(), format!("{:08x}", black_box(value).to_bits())));
    }
}

/// Whether NaN bits in hex are the canonical NaN of their width.
fn is_canonical(bits: &str) -> bool {
    bits == "7ff8000000000000" || bits == "7fc00000"
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

export!(Determinism);
