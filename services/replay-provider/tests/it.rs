//! Integration tests of the replay provider: real HTTP on loopback, answers
//! compared with the recorded files read independently here.

mod it {
    pub mod support;

    mod blocks;
    mod envelope;
    mod logs;
}
