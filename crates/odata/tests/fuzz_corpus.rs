//! The OData fuzz targets' checks over their corpora (see README "Fuzzing").

#[path = "../../../fuzz/checks/odata.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn user_filter_corpus() {
    replay::replay("user_filter", checks::user_filter);
}

#[test]
fn group_filter_corpus() {
    replay::replay("group_filter", checks::group_filter);
}

#[test]
fn audit_filter_corpus() {
    replay::replay("audit_filter", checks::audit_filter);
}

#[test]
fn search_corpus() {
    replay::replay("search", checks::search);
}

#[test]
fn query_string_corpus() {
    replay::replay("query_string", checks::query_string);
}

#[test]
fn percent_decoding_corpus() {
    replay::replay("percent_decoding", checks::percent_decoding);
}
