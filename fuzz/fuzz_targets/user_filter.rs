#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guestlist_fuzz::odata::user_filter(data));
