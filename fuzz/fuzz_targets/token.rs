//! Join and trust tokens, as `rxd init`, `rxc remote add` and the daemon decode them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rxd_api::{CertificateAddToken, JoinToken};

fuzz_target!(|text: &str| {
    if let Ok(t) = JoinToken::decode(text) {
        assert_eq!(JoinToken::decode(&t.encode()).unwrap(), t);
    }
    if let Ok(t) = CertificateAddToken::decode(text) {
        assert_eq!(CertificateAddToken::decode(&t.encode()).unwrap(), t);
    }
});
