//! Test guest: sends an HTTP request through `wasi:http`, so that its
//! component imports `wasi:http` and must be refused at publish and at load.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "trace:udf/udf" });

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingRequest};

struct Http;

impl Guest for Http {
    fn run(_task: Task) -> Result<Summary, UdfError> {
        let request = OutgoingRequest::new(Fields::new());
        match outgoing_handler::handle(request, None) {
            Ok(_) => Ok(Summary {
                message: "request sent".into(),
                counters: Vec::new(),
            }),
            Err(e) => Err(UdfError::Other(format!("{e:?}"))),
        }
    }
}

export!(Http);
