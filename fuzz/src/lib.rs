//! The checks each fuzz target runs; the same files are replayed over `fuzz/corpus/` by the crates' `cargo test`.

#[path = "../checks/domain.rs"]
pub mod domain;
#[path = "../checks/identity.rs"]
pub mod identity;
#[path = "../checks/odata.rs"]
pub mod odata;
