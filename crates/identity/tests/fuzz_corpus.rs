//! The bearer token fuzz target's check over its corpus (see README "Fuzzing").

#[path = "../../../fuzz/checks/identity.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn bearer_token_corpus() {
    replay::replay("bearer_token", checks::bearer_token);
}
