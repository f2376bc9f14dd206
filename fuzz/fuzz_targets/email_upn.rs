#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guestlist_fuzz::domain::email_and_upn(data));
