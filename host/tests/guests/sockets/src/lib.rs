//! Test guest: opens a TCP connection, so that its component imports
//! `wasi:sockets` and the host must refuse it at load.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "trace:udf/udf" });

struct Sockets;

impl Guest for Sockets {
    fn run(_task: Task) -> Result<Summary, UdfError> {
        match std::net::TcpStream::connect("127.0.0.1:80") {
            Ok(_) => Ok(Summary {
                message: "connected".into(),
                counters: Vec::new(),
            }),
            Err(e) => Err(UdfError::Other(e.to_string())),
        }
    }
}

export!(Sockets);
