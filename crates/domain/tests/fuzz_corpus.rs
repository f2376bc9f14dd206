//! The domain fuzz targets' checks over their corpora (see README "Fuzzing").

#[path = "../../../fuzz/checks/domain.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn email_upn_corpus() {
    replay::replay("email_upn", checks::email_and_upn);
}

#[test]
fn bulk_csv_corpus() {
    replay::replay("bulk_csv", checks::bulk_csv);
}
