//! Differential fuzzing of the masking scanner: the prefiltered scan must find exactly what every detector finds unfiltered.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tollgate::policy::mask::check_scan_against_unfiltered(data);
});
