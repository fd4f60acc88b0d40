#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dockermand_fuzz::enforce(dockermand_fuzz::checks::auth_header(data));
    if data.first().is_some_and(|b| b % 7 == 6) {
        dockermand_fuzz::enforce(dockermand_fuzz::digests::check(&data[1..]));
    }
});
