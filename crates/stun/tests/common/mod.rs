//! Helpers shared by the STUN client's tests.

pub mod coturn;
