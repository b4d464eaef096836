//! Server and cluster configuration values (`PUT /1.0`, `rxc config set`) for every key, and
//! the names users give profiles, pools and members.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxd_api::config_keys::{validate, KEYS};

fuzz_target!(|input: (u8, &str)| {
    let (which, value) = input;
    let key = &KEYS[usize::from(which) % KEYS.len()];
    let _ = validate(key.name, value);
    assert!(validate(value, "1").is_err() || KEYS.iter().any(|k| k.name == value));
    if rxd_api::names::check("profile", value).is_ok() {
        assert!(!value.contains(['/', '\0', '?', '#', '%']) && value != "." && value != "..");
    }
});
