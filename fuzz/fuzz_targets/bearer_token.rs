#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guestlist_fuzz::identity::bearer_token(data));
