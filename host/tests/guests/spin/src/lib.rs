//! Test guest: loops forever, so that the epoch deadline must stop it.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "trace:udf/udf" });

struct Spin;

impl Guest for Spin {
    fn run(task: Task) -> Result<Summary, UdfError> {
        let mut n = task.from_block;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
            if n == 0 && std::hint::black_box(false) {
                return Ok(Summary {
                    message: String::new(),
                    counters: Vec::new(),
                });
            }
        }
    }
}

export!(Spin);
