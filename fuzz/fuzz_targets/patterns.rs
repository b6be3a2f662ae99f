//! cargo-fuzz target `patterns`: the property in `dragnet_fuzz::patterns`
//! must hold for every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dragnet_fuzz::patterns(data));
