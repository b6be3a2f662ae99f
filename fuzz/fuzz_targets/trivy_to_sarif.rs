//! cargo-fuzz target `trivy_to_sarif`: the property in `dragnet_fuzz::trivy_to_sarif`
//! must hold for every input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dragnet_fuzz::trivy_to_sarif(data));
