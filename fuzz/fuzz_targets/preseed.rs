//! `rxd init --preseed`: YAML from the user.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxd_api::InitPreseed;

fuzz_target!(|text: &str| {
    if let Ok(p) = InitPreseed::from_yaml(text) {
        // What `--dump` prints reads back as the same preseed.
        assert_eq!(InitPreseed::from_yaml(&p.to_yaml()).unwrap(), p);
    }
});
