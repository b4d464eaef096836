//! Byte sizes (`size` of a storage pool) and durations (token expiries) from the user.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(n) = rxd_api::parse_size(text) {
        assert!(i64::try_from(n).is_ok(), "{text:?} gave {n}");
    }
    if let Ok(seconds) = rxd_api::config_keys::parse_expiry(text) {
        // Every accepted expiry can be added to today's date.
        let now = chrono::Utc::now();
        assert!(
            chrono::TimeDelta::try_seconds(seconds).and_then(|d| now.checked_add_signed(d)).is_some(),
            "{text:?} gave {seconds} s"
        );
    }
});
