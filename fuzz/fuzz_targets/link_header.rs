//! cargo-fuzz target `link_header`: the property in `dragnet_fuzz::link_header`
//! must hold for every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dragnet_fuzz::link_header(data));
