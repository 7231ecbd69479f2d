//! Fuzz the Hayes / 27.007 result-code line parser. Properties: parsing is idempotent on its
//! canonical text (`parse(render(parse(x))) == parse(x)`); an error is always a final; a
//! numeric form maps back to the same result; a named cause never loses the code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masqdial_at::{ErrorValue, ResultCode};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let code = ResultCode::parse(&line);
    assert_eq!(ResultCode::parse(&code.to_string()), code, "{line:?}");
    assert!(!code.is_error() || code.is_final());
    if let Some(n) = code.numeric() {
        if !matches!(code, ResultCode::Connect { .. }) {
            assert_eq!(ResultCode::from_numeric(n), Some(code.clone()));
        }
    }
    if let ResultCode::CmeError(ErrorValue::Code(n)) | ResultCode::CmsError(ErrorValue::Code(n)) =
        &code
    {
        assert!(code.cause().contains(&n.to_string()));
    }
});
