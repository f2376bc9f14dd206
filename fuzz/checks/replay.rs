//! Runs one fuzz target's check over every file of its corpus, `fuzz/corpus/<target>/`, so `cargo test`
//! keeps every seed and every input fuzzing ever found passing without nightly or libFuzzer.

use std::path::Path;

pub fn replay(target: &str, check: fn(&[u8])) {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{} holds only {} inputs", folder.display(), files.len());
    for file in files {
        let data = std::fs::read(&file).expect("a corpus file");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("fuzz target {target} fails on {}", file.display());
        }
    }
}
