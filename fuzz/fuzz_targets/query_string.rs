#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guestlist_fuzz::odata::query_string(data));
