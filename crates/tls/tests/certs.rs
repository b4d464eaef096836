//! Certificate generation, fingerprints, PEM handling and the key files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use rxd_tls::{
    der_to_pem, fingerprint_der, fingerprint_pem, generate, generate_client, load_or_generate,
    pem_to_der, write_atomic, CertInfo, CertKey, TlsError, CERT_MODE, KEY_MODE,
};
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ECDSA_WITH_SHA384,
};
use x509_parser::prelude::{FromDer, X509Certificate};

const FIXTURE_CERT: &str = include_str!("fixtures/cert.pem");
const FIXTURE_KEY_PKCS8: &str = include_str!("fixtures/pkcs8.key");
const FIXTURE_KEY_SEC1: &str = include_str!("fixtures/sec1.key");
/// `openssl x509 -in fixtures/cert.pem -outform der | sha256sum`
const FIXTURE_FINGERPRINT: &str =
    "de7e0312522bb21cbcb4afc0b6a66f10445beeef5ff1624363b1735d6ab63b01";

/// DER of the secp384r1 OID, which SEC1 keys must carry as parameters.
const SECP384R1_OID: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn generated_certificate_has_lxd_layout() {
    let ck = generate("node1").unwrap();
    let der = ck.cert_der().to_vec();
    let (rest, cert) = X509Certificate::from_der(&der).unwrap();
    assert!(rest.is_empty());

    // Key and signature.
    let spki = cert.public_key();
    assert_eq!(spki.algorithm.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY);
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .unwrap()
        .as_oid()
        .unwrap();
    assert_eq!(curve, OID_NIST_EC_P384);
    assert_eq!(
        cert.signature_algorithm.algorithm,
        OID_SIG_ECDSA_WITH_SHA384
    );
    cert.verify_signature(None)
        .expect("self-signed signature verifies");

    // Names.
    assert_eq!(
        cert.subject().to_string(),
        "O=linuxcontainers.org, CN=root@node1"
    );
    assert_eq!(cert.issuer().to_string(), cert.subject().to_string());
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(!san.critical);
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(b) => format!("IP:{b:?}"),
            other => format!("other:{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "DNS:node1".to_string(),
            format!("IP:{:?}", [127u8, 0, 0, 1]),
            format!("IP:{:?}", Ipv6Addr::LOCALHOST.octets()),
        ]
    );

    // Usages and constraints.
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert_eq!(
        ku.value.flags, 0b101,
        "digitalSignature + keyEncipherment only"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.server_auth);
    assert!(!eku.value.client_auth);
    assert!(!eku.value.any && eku.value.other.is_empty());
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca);
    assert!(!cert.is_ca());

    // Ten years of validity, starting now (give or take a minute's backdating).
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    let now = unix_now();
    assert!(
        not_before <= now && now - not_before <= 120,
        "{not_before} vs {now}"
    );
    let ten_years = 10 * 365 * 24 * 3600;
    assert!(
        (not_after - now - ten_years).abs() <= 120,
        "{not_after} vs {now}"
    );

    // Key in LXD's format: SEC1 with the named curve present.
    assert!(ck
        .key_pem
        .as_str()
        .starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    let key = rustls_pemfile::private_key(&mut ck.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let rustls::pki_types::PrivateKeyDer::Sec1(sec1) = &key else {
        panic!("expected a SEC1 key, got {key:?}");
    };
    let sec1 = sec1.secret_sec1_der();
    assert!(sec1
        .windows(SECP384R1_OID.len())
        .any(|w| w == SECP384R1_OID));

    assert_eq!(ck.fingerprint(), fingerprint_der(&der));
    assert_eq!(ck.cert_pem.as_str(), der_to_pem(&der));
}

#[test]
fn generated_certificates_differ_per_call() {
    let a = generate("node1").unwrap();
    let b = generate("node1").unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.key_pem.as_str(), b.key_pem.as_str());
}

#[test]
fn host_names_land_in_the_right_san_entries() {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let cases: &[(&str, &[&str], &[IpAddr])] = &[
        (
            "node1",
            &["node1"],
            &[v4(127, 0, 0, 1), IpAddr::V6(Ipv6Addr::LOCALHOST)],
        ),
        (
            "vm.example.org",
            &["vm.example.org"],
            &[v4(127, 0, 0, 1), IpAddr::V6(Ipv6Addr::LOCALHOST)],
        ),
        (
            "10.1.2.3",
            &[],
            &[
                v4(10, 1, 2, 3),
                v4(127, 0, 0, 1),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
        ),
    ];
    for (host, dns, ips) in cases {
        let info = CertInfo::from_pem(generate(host).unwrap().cert_pem.as_str()).unwrap();
        assert_eq!(info.subject_common_name, format!("root@{host}"));
        assert_eq!(info.issuer_common_name, format!("root@{host}"));
        assert_eq!(&info.dns_names, dns, "{host}");
        assert_eq!(&info.ip_addresses, ips, "{host}");
    }
}

#[test]
fn client_certificate_uses_client_auth_only() {
    let ck = generate_client("alice", "laptop").unwrap();
    let (_, cert) = X509Certificate::from_der(ck.cert_der()).unwrap();
    assert_eq!(
        cert.subject().to_string(),
        "O=linuxcontainers.org, CN=alice@laptop"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.client_auth && !eku.value.server_auth);
}

#[test]
fn fingerprints_match_sha256sum() {
    // `printf abc | sha256sum`
    assert_eq!(
        fingerprint_der(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let der = pem_to_der(FIXTURE_CERT).unwrap();
    assert_eq!(fingerprint_der(&der), FIXTURE_FINGERPRINT);
    assert_eq!(fingerprint_pem(FIXTURE_CERT).unwrap(), FIXTURE_FINGERPRINT);
}

#[test]
fn pem_round_trips_byte_for_byte() {
    // openssl writes PEM exactly as Go's pem.Encode does.
    let der = pem_to_der(FIXTURE_CERT).unwrap();
    assert_eq!(der_to_pem(&der), FIXTURE_CERT);
    let ck = generate("node1").unwrap();
    assert_eq!(
        pem_to_der(&der_to_pem(ck.cert_der())).unwrap(),
        ck.cert_der()
    );
}

#[test]
fn pem_errors_are_specific() {
    assert!(matches!(pem_to_der(""), Err(TlsError::NoCertificate)));
    assert!(matches!(
        pem_to_der(FIXTURE_KEY_SEC1),
        Err(TlsError::NoCertificate)
    ));
    assert!(matches!(
        CertKey::from_pem(FIXTURE_CERT, "not a key"),
        Err(TlsError::NoPrivateKey)
    ));
    assert!(matches!(
        CertKey::from_pem("", FIXTURE_KEY_SEC1),
        Err(TlsError::NoCertificate)
    ));
    let garbage = der_to_pem(b"not a certificate");
    assert!(matches!(
        CertKey::from_pem(garbage, FIXTURE_KEY_SEC1),
        Err(TlsError::Certificate { .. })
    ));
}

#[test]
fn keys_load_from_sec1_and_pkcs8() {
    for key in [FIXTURE_KEY_SEC1, FIXTURE_KEY_PKCS8] {
        let ck = CertKey::from_pem(FIXTURE_CERT, key).unwrap();
        assert_eq!(ck.fingerprint(), FIXTURE_FINGERPRINT);
        assert_eq!(ck.cert_pem.as_str(), FIXTURE_CERT);
        assert_eq!(ck.key_pem.as_str(), key);
    }
}

#[test]
fn mismatched_key_is_refused() {
    let a = generate("a").unwrap();
    let b = generate("b").unwrap();
    match CertKey::from_pem(a.cert_pem.as_str(), b.key_pem.as_str()) {
        Err(TlsError::KeyMismatch { fingerprint }) => assert_eq!(fingerprint, a.fingerprint()),
        other => panic!("expected KeyMismatch, got {other:?}"),
    }
}

#[test]
fn debug_output_hides_the_key() {
    let ck = generate("node1").unwrap();
    let debug = format!("{ck:?}");
    assert!(debug.contains(&ck.fingerprint()));
    assert!(!debug.contains("PRIVATE"));
}

#[test]
fn cert_info_describes_fixture() {
    let info = CertInfo::from_pem(FIXTURE_CERT).unwrap();
    assert_eq!(
        info,
        CertInfo {
            fingerprint: FIXTURE_FINGERPRINT.to_string(),
            subject_common_name: "root@fixture".to_string(),
            issuer_common_name: "root@fixture".to_string(),
            not_before: "2026-11-26T15:20:06Z".to_string(),
            not_after: "2036-11-23T15:20:06Z".to_string(),
            dns_names: vec!["fixture".to_string()],
            ip_addresses: vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ],
        }
    );
    assert_eq!(
        CertInfo::from_der(&pem_to_der(FIXTURE_CERT).unwrap()).unwrap(),
        info
    );
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn load_or_generate_writes_then_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("server.crt");
    let key_path = dir.path().join("server.key");

    let first = load_or_generate(&cert_path, &key_path, "node1").unwrap();
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&cert_path), 0o644);
    assert_eq!(
        std::fs::read_to_string(&cert_path).unwrap(),
        first.cert_pem.as_str()
    );
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        first.key_pem.as_str()
    );

    let second = load_or_generate(&cert_path, &key_path, "other-name").unwrap();
    assert_eq!(second, first);

    // Only the two files remain: no temporary files left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["server.crt", "server.key"]);

    // A lone certificate without its key is replaced, as LXD does.
    std::fs::remove_file(&key_path).unwrap();
    let third = load_or_generate(&cert_path, &key_path, "node1").unwrap();
    assert_ne!(third.fingerprint(), first.fingerprint());
    assert_eq!(mode(&key_path), 0o600);
}

#[test]
fn load_or_generate_reports_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("server.crt");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, FIXTURE_CERT).unwrap();
    std::fs::write(&key_path, "garbage").unwrap();
    assert!(matches!(
        load_or_generate(&cert_path, &key_path, "node1"),
        Err(TlsError::NoPrivateKey)
    ));
}

#[test]
fn write_atomic_replaces_content_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.key");
    let cases: &[(&[u8], u32)] = &[(b"one", CERT_MODE), (b"two", KEY_MODE), (b"", 0o640)];
    for (bytes, file_mode) in cases {
        write_atomic(&path, bytes, *file_mode).unwrap();
        assert_eq!(&std::fs::read(&path).unwrap(), bytes);
        assert_eq!(mode(&path), *file_mode);
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let missing = dir.path().join("no-such-dir").join("f");
    match write_atomic(&missing, b"x", KEY_MODE) {
        Err(TlsError::Write { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Write error, got {other:?}"),
    }
}
