//! Test guest: allocates without bound, so that the memory cap must stop it.

wit_bindgen::generate!({ path: "../../../../wit/v0.1.0", world: "trace:udf/udf" });

struct Hog;

impl Guest for Hog {
    fn run(_task: Task) -> Result<Summary, UdfError> {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            chunks.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&chunks);
        }
    }
}

export!(Hog);
