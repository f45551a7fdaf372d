//! Stored records read back from a damaged or hostile database: decoding
//! must return an error, never panic, and whatever decodes must encode to
//! bytes that decode to the same record.
//!
//! Input: the first byte selects the record kind, the rest are the stored
//! bytes (version byte, then bincode).

#![no_main]

use hookbus::fuzz_api;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    if let Some(again) = fuzz_api::reencode_record(kind, bytes) {
        assert_eq!(
            fuzz_api::reencode_record(kind, &again).as_deref(),
            Some(again.as_slice()),
            "a decoded record does not survive encode -> decode"
        );
    }
});
