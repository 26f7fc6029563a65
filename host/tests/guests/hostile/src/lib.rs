//! Test guest: one hostile behaviour per task, chosen by `{"case": "..."}`.
//!
//! Every case tries to break out of the sandbox or past a limit. Cases that
//! meet a capability's refusal fail with the refusal's text, as a
//! `udf-error`, so that a test can assert exactly what the guest was told;
//! a case that is not refused returns `ok` with what it got instead, so a
//! missing fence shows as a success. Some cases take a second parameter,
//! `"way"`, that picks the variant (which key, which statement, which
//! malformed record). The cases:
//!
//! - `recurse`: unbounded recursion with small frames (the wasm stack);
//! - `recurse-frames`: unbounded recursion with 4 KiB frames (the shadow
//!   stack in linear memory);
//! - `log-flood`: writes log lines without end;
//! - `stdout-flood`: prints lines to standard output without end;
//! - `stdout-one-line`: prints to standard output without end, never a
//!   newline;
//! - `handles`: opens WASI resource handles without end and never drops them;
//! - `panic`: panics with the message `hostile panic`;
//! - `files`: reads, writes and lists files;
//! - `env`: reads environment variables and arguments;
//! - `object-key`: every object operation on the key named by `way`;
//! - `records`: publishes the malformed record named by `way`;
//! - `records-flood` / `alerts-flood`: publishes until refused;
//! - `record-giant`: publishes one 16 MiB record;
//! - `objects-flood`: writes small objects under new keys until refused;
//! - `object-giant`: writes one 32 MiB object;
//! - `sql`: runs the statement named by `way`.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "trace:udf/udf" });

mod caps;
mod sandbox;

struct Hostile;

impl Guest for Hostile {
    fn run(task: Task) -> Result<Summary, UdfError> {
        let case = param(&task.params, "case").unwrap_or_default();
        let way = param(&task.params, "way").unwrap_or_default();
        match case.as_str() {
            "recurse" => sandbox::recurse(),
            "recurse-frames" => sandbox::recurse_frames(),
            "log-flood" => sandbox::log_flood(),
            "stdout-flood" => sandbox::stdout_flood(),
            "stdout-one-line" => sandbox::stdout_one_line(),
            "handles" => sandbox::handles(),
            "sleep" => sandbox::sleep(),
            "panic" => panic!("hostile panic"),
            "files" => sandbox::files(),
            "env" => sandbox::env(),
            "object-key" => caps::object_key(&way),
            "records" => caps::malformed_record(&way),
            "records-flood" => caps::records_flood(),
            "alerts-flood" => caps::alerts_flood(),
            "record-giant" => caps::giant_record(),
            "objects-flood" => caps::objects_flood(),
            "object-giant" => caps::giant_object(),
            "sql" => caps::sql(&way),
            other => Err(UdfError::InvalidParams(format!("unknown case `{other}`"))),
        }
    }
}

/// A summary with only a message.
fn summary(message: impl Into<String>) -> Result<Summary, UdfError> {
    Ok(Summary {
        message: message.into(),
        counters: Vec::new(),
    })
}

/// The string value of `"key":"value"` in the params JSON, found by hand to
/// keep the guest free of dependencies (values hold no quotes).
fn param(params: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":\"");
    let start = params.find(&needle)? + needle.len();
    let end = params[start..].find('"')? + start;
    Some(params[start..end].to_string())
}

export!(Hostile);
