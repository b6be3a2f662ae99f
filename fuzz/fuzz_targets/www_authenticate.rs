//! cargo-fuzz target `www_authenticate`: the property in `dragnet_fuzz::www_authenticate`
//! must hold for every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dragnet_fuzz::www_authenticate(data));
