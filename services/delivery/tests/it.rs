//! Integration tests of delivery: real Postgres, the real webhook receiver,
//! real HTTP on loopback.

mod it {
    pub mod deliver;
}
