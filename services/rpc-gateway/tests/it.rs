//! Integration tests of the rpc-gateway in front of the real replay
//! provider, both on loopback.

mod it {
    mod forwarding;
}
