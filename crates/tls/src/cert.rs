//! Key pairs, fingerprints, PEM/DER conversions and the on-disk files.
//!
//! Certificates are made the way LXD makes them, so that LXD's own tools
//! (and anyone comparing `openssl x509 -text` output) see the same layout.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine;
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::TlsError;

/// File mode for private keys (`server.key`, `cluster.key`).
pub const KEY_MODE: u32 = 0o600;

/// File mode for certificates (`server.crt`, `cluster.crt`).
pub const CERT_MODE: u32 = 0o644;

/// How long a generated certificate is valid: LXD's ten years of 365 days.
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// How far `not_before` is moved into the past, so that a peer whose clock
/// runs slightly behind still accepts a certificate made a moment ago.
const BACKDATE: Duration = Duration::from_secs(60);

/// The organisation LXD writes into every certificate it generates.
const ORGANIZATION: &str = "linuxcontainers.org";

/// A certificate (chain) and its private key, both known to be well formed and
/// to belong together.
///
/// The PEM text is kept exactly as read or generated, so that files copied
/// between members (the cluster certificate) stay byte-identical. The only way
/// to make one is [`CertKey::from_pem`] (or [`generate`] and
/// [`load_or_generate`]), so every value has been checked.
pub struct CertKey {
    /// The certificate PEM exactly as read or generated (end-entity first).
    ///
    /// Public for reading; do not assign to it, since the parsed copies
    /// below would no longer match. Build a new value with
    /// [`CertKey::from_pem`] instead.
    pub cert_pem: String,
    /// The private key PEM exactly as read or generated. LXD's format is SEC1
    /// (`EC PRIVATE KEY`); PKCS#8 (`PRIVATE KEY`) is accepted too. The same
    /// caveat as for `cert_pem` applies.
    pub key_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    fingerprint: String,
}

impl CertKey {
    /// Parses and checks a certificate PEM (end-entity first, optionally
    /// followed by its chain) and a private key PEM (`EC PRIVATE KEY`,
    /// `PRIVATE KEY` or `RSA PRIVATE KEY`).
    ///
    /// Fails if either cannot be parsed or if the key does not match the
    /// end-entity certificate.
    pub fn from_pem(
        cert_pem: impl Into<String>,
        key_pem: impl Into<String>,
    ) -> Result<Self, TlsError> {
        let cert_pem = cert_pem.into();
        let key_pem = key_pem.into();
        let chain = pem_to_chain(&cert_pem)?;
        let end_entity = chain.first().ok_or(TlsError::NoCertificate)?;
        // Parse with x509-parser first so a broken certificate is reported as
        // such rather than as a key mismatch.
        crate::info::parse_x509(end_entity)?;
        let fingerprint = fingerprint_der(end_entity);
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
            .map_err(|source| TlsError::Pem { cause: source })?
            .ok_or(TlsError::NoPrivateKey)?;
        check_key_matches(&chain, &key, &fingerprint)?;
        Ok(Self {
            cert_pem,
            key_pem,
            chain,
            key,
            fingerprint,
        })
    }

    /// DER of the end-entity certificate (the first one in the PEM).
    pub fn cert_der(&self) -> &[u8] {
        // `from_pem` refuses a PEM without certificates, so the chain is never empty.
        self.chain.first().map(|c| c.as_ref()).unwrap_or_default()
    }

    /// Every certificate in the PEM, end-entity first, as rustls wants them.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key, as rustls wants it.
    pub fn key_der(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }

    /// Fingerprint of the end-entity certificate (see [`fingerprint_der`]).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

impl Clone for CertKey {
    fn clone(&self) -> Self {
        Self {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

impl PartialEq for CertKey {
    fn eq(&self, other: &Self) -> bool {
        self.cert_pem == other.cert_pem && self.key_pem == other.key_pem
    }
}

impl Eq for CertKey {}

impl std::fmt::Debug for CertKey {
    // The key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKey")
            .field("fingerprint", &self.fingerprint)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Checks that `key` is the private half of the end-entity certificate.
fn check_key_matches(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    fingerprint: &str,
) -> Result<(), TlsError> {
    let provider = crate::config::provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|source| TlsError::PrivateKey { cause: source })?;
    let certified = rustls::sign::CertifiedKey::new(chain.to_vec(), signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                fingerprint: fingerprint.to_string(),
            })
        }
        Err(source) => Err(TlsError::PrivateKey { cause: source }),
    }
}

/// What a generated certificate is for; the two differ only in the extended
/// key usage, as in LXD.
#[derive(Clone, Copy)]
enum Purpose {
    Server,
    Client,
}

/// Generates a member certificate exactly as LXD does for `server.crt` and
/// `cluster.crt`.
///
/// Self-signed ECDSA P-384 with ecdsa-with-SHA384, valid ten years, subject
/// `O=linuxcontainers.org, CN=root@<hostname>`, SAN `DNS:<hostname>,
/// IP:127.0.0.1, IP:::1` (a host name that is itself an IP address goes into
/// the IP entries, as Go's template does), KeyUsage digitalSignature and
/// keyEncipherment (critical), ExtKeyUsage serverAuth only, CA:FALSE. The key
/// is written as SEC1 (`EC PRIVATE KEY`), LXD's format.
pub fn generate(hostname: &str) -> Result<CertKey, TlsError> {
    generate_for(Purpose::Server, "root", hostname)
}

/// Generates a client certificate as `lxc` does for its `client.crt`: the same
/// layout as [`generate`], but with subject `CN=<username>@<hostname>` and
/// ExtKeyUsage clientAuth only.
pub fn generate_client(username: &str, hostname: &str) -> Result<CertKey, TlsError> {
    generate_for(Purpose::Client, username, hostname)
}

fn generate_for(purpose: Purpose, username: &str, hostname: &str) -> Result<CertKey, TlsError> {
    let gen_err = |source| TlsError::Generate {
        hostname: hostname.to_string(),
        cause: source,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(gen_err)?;

    let mut params = CertificateParams::default();
    let now = SystemTime::now();
    params.not_before = now.checked_sub(BACKDATE).unwrap_or(now).into();
    params.not_after = now.checked_add(VALIDITY).unwrap_or(now).into();

    // Go writes the organisation as a PrintableString and `root@host` (the
    // `@` is not printable) as a UTF8String; match it.
    let mut dn = DistinguishedName::new();
    let organization = PrintableString::try_from(ORGANIZATION).map_err(gen_err)?;
    dn.push(
        DnType::OrganizationName,
        DnValue::PrintableString(organization),
    );
    dn.push(
        DnType::CommonName,
        DnValue::Utf8String(format!("{username}@{hostname}")),
    );
    params.distinguished_name = dn;

    let host_san = match hostname.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(Ia5String::try_from(hostname).map_err(gen_err)?),
    };
    params.subject_alt_names = vec![
        host_san,
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![match purpose {
        Purpose::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Purpose::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.is_ca = IsCa::ExplicitNoCa;

    let cert = params.self_signed(&key).map_err(gen_err)?;
    let sec1 = pkcs8_p384_to_sec1(key.serialized_der())?;
    CertKey::from_pem(der_to_pem(cert.der()), pem_encode("EC PRIVATE KEY", &sec1))
}

/// Loads the certificate and key at the given paths, or, if either file is
/// missing, generates a new pair with [`generate`] and writes both (key 0600,
/// certificate 0644, each atomically). Like LXD, a lone certificate or key
/// without its partner is replaced.
pub fn load_or_generate(
    cert_path: &Path,
    key_path: &Path,
    hostname: &str,
) -> Result<CertKey, TlsError> {
    if cert_path.exists() && key_path.exists() {
        let cert_pem = read_to_string(cert_path)?;
        let key_pem = read_to_string(key_path)?;
        return CertKey::from_pem(cert_pem, key_pem);
    }
    let cert_key = generate(hostname)?;
    write_atomic(key_path, cert_key.key_pem.as_bytes(), KEY_MODE)?;
    write_atomic(cert_path, cert_key.cert_pem.as_bytes(), CERT_MODE)?;
    Ok(cert_key)
}

fn read_to_string(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        cause: source,
    })
}

/// Distinguishes temporary files of concurrent writers within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` so that readers see either the old file or the
/// whole new one: a temporary file in the same directory is created with
/// `mode`, written, fsynced and renamed over `path`, then the directory is
/// fsynced. `mode` is applied exactly, whatever the umask.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let write_err = |source| TlsError::Write {
        path: path.to_path_buf(),
        cause: source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        write_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "path has no file name",
        ))
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temp: PathBuf = dir.join(temp_name);

    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: the temporary file may not even exist.
        let _ = fs::remove_file(&temp);
    }
    result.map_err(write_err)
}

/// Lower-case hex SHA-256 of a DER certificate, without colons: LXD's
/// certificate fingerprint (64 characters).
pub fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Fingerprint of the first certificate in a PEM text.
pub fn fingerprint_pem(pem: &str) -> Result<String, TlsError> {
    Ok(fingerprint_der(&pem_to_der(pem)?))
}

/// DER of the first `CERTIFICATE` block in a PEM text.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, TlsError> {
    let mut chain = pem_to_chain(pem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(chain.swap_remove(0).to_vec())
}

/// Every `CERTIFICATE` block in a PEM text, in order (possibly none).
fn pem_to_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { cause: source })
}

/// PEM text of a DER certificate, as Go's `pem.Encode` writes it:
/// `-----BEGIN CERTIFICATE-----`, base64 in 64-column lines, a trailing newline.
pub fn der_to_pem(der: &[u8]) -> String {
    pem_encode("CERTIFICATE", der)
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 output is ASCII, so splitting at byte offsets never cuts a character.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// DER of the named-curve OID secp384r1 (1.3.132.0.34), tag and length included.
const SECP384R1_OID: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

/// Re-encodes ring's PKCS#8 P-384 key as SEC1 `ECPrivateKey` with the curve
/// parameters present, which is what Go's `x509.MarshalECPrivateKey` writes and
/// what `x509.ParseECPrivateKey` needs.
fn pkcs8_p384_to_sec1(pkcs8: &[u8]) -> Result<Vec<u8>, TlsError> {
    let (private, public) = split_pkcs8_p384(pkcs8).ok_or(TlsError::Sec1Encoding)?;
    let mut body = vec![0x02, 0x01, 0x01]; // version 1
    body.extend(der_tlv(0x04, private));
    body.extend(der_tlv(0xa0, &SECP384R1_OID));
    body.extend(der_tlv(0xa1, &der_tlv(0x03, public)));
    Ok(der_tlv(0x30, &body))
}

/// Returns the private scalar and the public key BIT STRING contents from a
/// PKCS#8 P-384 key.
fn split_pkcs8_p384(pkcs8: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, info, _) = der_read(pkcs8)? else {
        return None;
    };
    let (0x02, _version, rest) = der_read(info)? else {
        return None;
    };
    let (0x30, algorithm, rest) = der_read(rest)? else {
        return None;
    };
    if !algorithm.ends_with(&SECP384R1_OID) {
        return None;
    }
    let (0x04, wrapped, _) = der_read(rest)? else {
        return None;
    };
    let (0x30, ec_key, _) = der_read(wrapped)? else {
        return None;
    };
    let (0x02, _version, rest) = der_read(ec_key)? else {
        return None;
    };
    let (0x04, private, mut rest) = der_read(rest)? else {
        return None;
    };
    let mut public = None;
    while !rest.is_empty() {
        let (tag, content, next) = der_read(rest)?;
        if tag == 0xa1 {
            let (0x03, bits, _) = der_read(content)? else {
                return None;
            };
            public = Some(bits);
        }
        rest = next;
    }
    Some((private, public?))
}

/// Reads one DER element: (tag, contents, remaining input).
fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (len_bytes, rest) = rest.split_at_checked(count)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// Encodes one DER element with a definite length.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_length_encoding_round_trips() {
        for len in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0x1234] {
            let content = vec![0xab; len];
            let encoded = der_tlv(0x04, &content);
            let (tag, read, rest) = der_read(&encoded).unwrap();
            assert_eq!(
                (tag, read, rest),
                (0x04, &content[..], &[][..]),
                "len {len}"
            );
        }
    }

    #[test]
    fn der_read_rejects_truncated_input() {
        let cases: &[&[u8]] = &[
            &[],
            &[0x30],
            &[0x30, 0x02, 0x01],
            &[0x30, 0x81],
            &[0x30, 0x80],
        ];
        for case in cases {
            assert!(der_read(case).is_none(), "{case:?}");
        }
    }

    #[test]
    fn pem_encoding_wraps_at_64_columns() {
        let cases: &[(usize, &[usize])] = &[
            (0, &[]),
            (3, &[4]),
            (48, &[64]),
            (49, &[64, 4]),
            (100, &[64, 64, 8]),
        ];
        for (len, widths) in cases {
            let pem = pem_encode("CERTIFICATE", &vec![7u8; *len]);
            let lines: Vec<&str> = pem.lines().collect();
            assert_eq!(lines.first(), Some(&"-----BEGIN CERTIFICATE-----"));
            assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
            let body: Vec<usize> = lines[1..lines.len() - 1].iter().map(|l| l.len()).collect();
            assert_eq!(&body, widths, "len {len}");
            assert!(pem.ends_with("-----\n"));
        }
    }
}
