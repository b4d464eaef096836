//! The `certificate` field of `POST /1.0/certificates`: base64 of a DER certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(der) = rxd_api::decode_base64(text) {
        if let Ok(info) = rxd_tls::CertInfo::from_der(&der) {
            assert_eq!(info.fingerprint, rxd_tls::fingerprint_der(&der));
        }
    }
});
