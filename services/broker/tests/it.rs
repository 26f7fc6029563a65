//! Integration tests of the broker with the real dispatcher in-process:
//! real Postgres, real HTTP on loopback, a real object directory.

mod it {
    pub mod credentials;
    pub mod objects;
    pub mod sts;
    pub mod support;
}
