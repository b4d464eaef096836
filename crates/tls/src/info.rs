//! Human-facing facts about a certificate, for `rxc` and the trust store.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::{fingerprint_der, pem_to_der, TlsError};

/// What a user is shown about a certificate: who it names, who signed it,
/// when it is valid and which names it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// See [`fingerprint_der`].
    pub fingerprint: String,
    /// The subject's first common name, empty if there is none (as Go reports it).
    pub subject_common_name: String,
    /// The issuer's first common name, empty if there is none.
    pub issuer_common_name: String,
    /// Start of validity, RFC 3339 in UTC, e.g. `2024-05-01T12:00:00Z`.
    pub not_before: String,
    /// End of validity, RFC 3339 in UTC.
    pub not_after: String,
    /// The DNS names of the subject alternative name extension, in order.
    pub dns_names: Vec<String>,
    /// The IP addresses of the subject alternative name extension, in order.
    pub ip_addresses: Vec<IpAddr>,
}

impl CertInfo {
    /// Describes a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, TlsError> {
        let cert = parse_x509(der)?;
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        let san = cert
            .subject_alternative_name()
            .map_err(|source| TlsError::Certificate { cause: source })?;
        for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
            match name {
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
        let validity = cert.validity();
        Ok(Self {
            fingerprint: fingerprint_der(der),
            subject_common_name: common_name(cert.subject()),
            issuer_common_name: common_name(cert.issuer()),
            not_before: rfc3339(validity.not_before.timestamp()),
            not_after: rfc3339(validity.not_after.timestamp()),
            dns_names,
            ip_addresses,
        })
    }

    /// Describes the first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self, TlsError> {
        Self::from_der(&pem_to_der(pem)?)
    }
}

/// Parses a DER certificate with x509-parser, ignoring trailing bytes.
pub(crate) fn parse_x509(der: &[u8]) -> Result<X509Certificate<'_>, TlsError> {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => Ok(cert),
        Err(x509_parser::nom::Err::Error(source) | x509_parser::nom::Err::Failure(source)) => {
            Err(TlsError::Certificate { cause: source })
        }
        Err(x509_parser::nom::Err::Incomplete(_)) => Err(TlsError::Certificate {
            cause: X509Error::InvalidCertificate,
        }),
    }
}

fn common_name(name: &X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    <[u8; 16]>::try_from(bytes)
        .ok()
        .map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC, to the second.
fn rfc3339(timestamp: i64) -> String {
    match chrono::DateTime::from_timestamp(timestamp, 0) {
        Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        // Only reachable for years chrono cannot represent; show the raw value.
        None => timestamp.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_seconds() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (2_524_608_000, "2050-01-01T00:00:00Z"),
        ];
        for (ts, want) in cases {
            assert_eq!(rfc3339(ts), want);
        }
    }

    #[test]
    fn ip_bytes_of_both_families() {
        let cases: &[(&[u8], Option<IpAddr>)] = &[
            (&[127, 0, 0, 1], Some(IpAddr::V4(Ipv4Addr::LOCALHOST))),
            (
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ),
            (&[1, 2, 3], None),
        ];
        for (bytes, want) in cases {
            assert_eq!(ip_from_bytes(bytes), *want);
        }
    }
}
