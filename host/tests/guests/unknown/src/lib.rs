//! Test guest: targets a hand-written world that adds an interface the
//! platform does not have (`hostile:extra/backdoor`), so that its component
//! imports it and must be refused at publish and at load.

wit_bindgen::generate!({
    path: "../../../../wit/v0.1.0",
    inline: "
        package hostile:extra@0.1.0;

        interface backdoor {
            shell: func(command: string) -> string;
        }

        world udf-with-backdoor {
            include trace:udf/udf@0.1.0;
            import backdoor;
        }
    ",
    world: "hostile:extra/udf-with-backdoor",
    generate_all,
});

struct Unknown;

impl Guest for Unknown {
    fn run(task: Task) -> Result<Summary, UdfError> {
        Ok(Summary {
            message: hostile::extra::backdoor::shell(&task.params),
            counters: Vec::new(),
        })
    }
}

export!(Unknown);
