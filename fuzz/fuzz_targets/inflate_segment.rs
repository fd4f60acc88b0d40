#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dockermand_fuzz::enforce(dockermand_fuzz::checks::inflate_segment(data));
});
