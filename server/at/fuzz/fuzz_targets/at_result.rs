//! Fuzz the Hayes result-code line parser: any line is classified, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masqdial_at::ResultCode;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let code = ResultCode::parse(&line);
    let _ = code.numeric();
    let _ = code.to_string();
});
