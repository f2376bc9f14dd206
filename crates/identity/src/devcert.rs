//! Development TLS certificates: a local CA and a server certificate for 127.0.0.1, ::1 and
//! localhost. MSAL, azure-identity and the Graph JS client refuse http authorities, so a local
//! server needs TLS that a user can trust once (the CA) across server certificate renewals.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{Datelike, Duration, Utc};
use rand::RngCore;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType, SerialNumber,
};

use crate::IdentityError;

pub const DEV_CA_COMMON_NAME: &str = "guestlist Development CA";
const DEV_ORGANIZATION: &str = "guestlist";
/// The names the default server certificate covers.
pub const DEV_SERVER_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];
const CA_VALIDITY_DAYS: i64 = 3650;
/// Two years: under the 825 days Apple platforms accept for TLS server certificates even from a
/// private CA (Chrome's 398-day limit applies to public CAs only).
const SERVER_VALIDITY_DAYS: i64 = 730;

/// A development CA and a server certificate it signed, all PEM.
#[derive(Clone)]
pub struct DevCertificates {
    pub ca_cert_pem: String,
    /// PKCS#8.
    pub ca_key_pem: String,
    pub server_cert_pem: String,
    /// PKCS#8.
    pub server_key_pem: String,
}

/// A server certificate and its key, PEM.
#[derive(Clone)]
pub struct ServerCertificate {
    pub cert_pem: String,
    /// PKCS#8.
    pub key_pem: String,
}

impl fmt::Debug for DevCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCertificates")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("server_cert_pem", &self.server_cert_pem)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificate").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

fn cert_error(e: impl fmt::Display) -> IdentityError {
    IdentityError::Certificate(e.to_string())
}

/// A new development CA (ECDSA P-256, 10 years) and a server certificate for 127.0.0.1, ::1 and
/// localhost signed by it.
pub fn generate_dev_ca_and_server_cert() -> Result<DevCertificates, IdentityError> {
    let ca_key = KeyPair::generate().map_err(cert_error)?;
    let ca_cert = ca_params()?.self_signed(&ca_key).map_err(cert_error)?;
    let server = issue_server_cert(&ca_cert, &ca_key, &DEV_SERVER_NAMES)?;
    Ok(DevCertificates {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        server_cert_pem: server.cert_pem,
        server_key_pem: server.key_pem,
    })
}

/// A fresh server certificate for 127.0.0.1, ::1 and localhost from an existing development CA,
/// so a CA the user already trusts stays trusted across renewals.
pub fn server_cert_from_ca(ca_cert_pem: &str, ca_key_pem: &str) -> Result<ServerCertificate, IdentityError> {
    server_cert_for_names(ca_cert_pem, ca_key_pem, &DEV_SERVER_NAMES)
}

/// Like [`server_cert_from_ca`], for other names too (IP addresses or DNS names).
pub fn server_cert_for_names(ca_cert_pem: &str, ca_key_pem: &str, names: &[&str]) -> Result<ServerCertificate, IdentityError> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(cert_error)?;
    let given_der = pem_to_der(ca_cert_pem, "CERTIFICATE")?;
    let given = der::certificate_parts(&given_der).ok_or_else(|| cert_error("the CA certificate is not X.509 DER"))?;
    if given.issuer != given.subject {
        return Err(cert_error("the CA certificate is not a self-signed root"));
    }
    if given.spki != ca_key.public_key_der().as_slice() {
        return Err(cert_error("the CA key does not belong to the CA certificate"));
    }
    // rcgen (without its x509-parser feature) cannot load a certificate, so rebuild our CA from its
    // key: same subject and key, so what it signs chains to the certificate the user trusts.
    let rebuilt = ca_params()?.self_signed(&ca_key).map_err(cert_error)?;
    let rebuilt_subject = der::certificate_parts(rebuilt.der()).map(|p| p.subject.to_vec()).ok_or_else(|| cert_error("rcgen output"))?;
    if given.subject != rebuilt_subject.as_slice() {
        return Err(cert_error(format!("the CA certificate is not a {DEV_CA_COMMON_NAME}")));
    }
    issue_server_cert(&rebuilt, &ca_key, names)
}

fn ca_params() -> Result<CertificateParams, IdentityError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, DEV_CA_COMMON_NAME);
    params.distinguished_name.push(DnType::OrganizationName, DEV_ORGANIZATION);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, CA_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    Ok(params)
}

fn issue_server_cert(ca_cert: &Certificate, ca_key: &KeyPair, names: &[&str]) -> Result<ServerCertificate, IdentityError> {
    let key = KeyPair::generate().map_err(cert_error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    params.subject_alt_names = names
        .iter()
        .map(|name| match name.trim_matches(['[', ']']).parse() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => name.to_string().try_into().map(SanType::DnsName).map_err(cert_error),
        })
        .collect::<Result<_, _>>()?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("localhost"));
    params.distinguished_name.push(DnType::OrganizationName, DEV_ORGANIZATION);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Python's ssl (VERIFY_X509_STRICT since 3.13) wants the authority key identifier.
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVER_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    let cert = params.signed_by(&key, ca_cert, ca_key).map_err(cert_error)?;
    Ok(ServerCertificate { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// From yesterday (clock skew between the machine that made it and the client) for `days`.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let start = Utc::now() - Duration::days(1);
    let end = start + Duration::days(days);
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // Positive and without a leading zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn pem_to_der(pem: &str, label: &str) -> Result<Vec<u8>, IdentityError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or_else(|| cert_error(format!("no {begin}")))? + begin.len();
    let stop = pem[start..].find(&end).ok_or_else(|| cert_error(format!("no {end}")))? + start;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(body).map_err(cert_error)
}

/// Just enough DER to find a certificate's names and key.
mod der {
    pub struct CertificateParts<'a> {
        pub issuer: &'a [u8],
        pub subject: &'a [u8],
        pub spki: &'a [u8],
    }

    struct Tlv<'a> {
        tag: u8,
        /// The whole element, header included.
        whole: &'a [u8],
        content: &'a [u8],
        rest: &'a [u8],
    }

    fn element(input: &[u8]) -> Option<Tlv<'_>> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let header = input.len() - rest.len();
        Some(Tlv { tag, whole: &input[..header + len], content: &rest[..len], rest: &rest[len..] })
    }

    fn sequence(input: &[u8]) -> Option<Tlv<'_>> {
        element(input).filter(|t| t.tag == 0x30)
    }

    pub fn certificate_parts(der: &[u8]) -> Option<CertificateParts<'_>> {
        let certificate = sequence(der)?;
        let tbs = sequence(certificate.content)?;
        let first = element(tbs.content)?;
        // An explicit version ([0]) comes before the serial number.
        let serial = if first.tag == 0xa0 { element(first.rest)? } else { first };
        let signature_algorithm = sequence(serial.rest)?;
        let issuer = sequence(signature_algorithm.rest)?;
        let validity = sequence(issuer.rest)?;
        let subject = sequence(validity.rest)?;
        let spki = sequence(subject.rest)?;
        Some(CertificateParts { issuer: issuer.whole, subject: subject.whole, spki: spki.whole })
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    use super::*;

    fn verify_server(ca_pem: &str, server_pem: &str, name: &str) -> Result<(), webpki::Error> {
        let ca_der = CertificateDer::from(pem_to_der(ca_pem, "CERTIFICATE").unwrap());
        let server_der = CertificateDer::from(pem_to_der(server_pem, "CERTIFICATE").unwrap());
        let anchor = webpki::anchor_from_trusted_cert(&ca_der)?;
        let cert = webpki::EndEntityCert::try_from(&server_der)?;
        cert.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &[anchor], &[], UnixTime::now(), webpki::KeyUsage::server_auth(), None, None)?;
        cert.verify_is_valid_for_subject_name(&ServerName::try_from(name.to_owned()).unwrap())
    }

    #[test]
    fn dev_ca_signs_a_server_cert_for_loopback_names() {
        let certs = generate_dev_ca_and_server_cert().unwrap();
        assert!(certs.ca_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(certs.server_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(certs.ca_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(certs.server_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{certs:?}").contains("PRIVATE KEY"));

        for name in ["127.0.0.1", "::1", "localhost"] {
            verify_server(&certs.ca_cert_pem, &certs.server_cert_pem, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        assert!(verify_server(&certs.ca_cert_pem, &certs.server_cert_pem, "127.0.0.2").is_err());
        assert!(verify_server(&certs.ca_cert_pem, &certs.server_cert_pem, "example.com").is_err());

        let other = generate_dev_ca_and_server_cert().unwrap();
        assert!(verify_server(&other.ca_cert_pem, &certs.server_cert_pem, "localhost").is_err());

        let ca = pem_to_der(&certs.ca_cert_pem, "CERTIFICATE").unwrap();
        let server = pem_to_der(&certs.server_cert_pem, "CERTIFICATE").unwrap();
        let (ca, server) = (der::certificate_parts(&ca).unwrap(), der::certificate_parts(&server).unwrap());
        assert_eq!(server.issuer, ca.subject);
        assert_eq!(ca.issuer, ca.subject);
        assert!(ca.subject.windows(DEV_CA_COMMON_NAME.len()).any(|w| w == DEV_CA_COMMON_NAME.as_bytes()));
    }

    #[test]
    fn the_ca_is_not_usable_as_a_server_cert() {
        let certs = generate_dev_ca_and_server_cert().unwrap();
        assert!(verify_server(&certs.ca_cert_pem, &certs.ca_cert_pem, "localhost").is_err());
    }

    #[test]
    fn renewed_server_certs_chain_to_the_trusted_ca() {
        let certs = generate_dev_ca_and_server_cert().unwrap();
        let renewed = server_cert_from_ca(&certs.ca_cert_pem, &certs.ca_key_pem).unwrap();
        assert_ne!(renewed.cert_pem, certs.server_cert_pem);
        assert_ne!(renewed.key_pem, certs.server_key_pem);
        for name in DEV_SERVER_NAMES {
            verify_server(&certs.ca_cert_pem, &renewed.cert_pem, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }

        let named = server_cert_for_names(&certs.ca_cert_pem, &certs.ca_key_pem, &["guestlist.test", "10.0.0.5"]).unwrap();
        verify_server(&certs.ca_cert_pem, &named.cert_pem, "guestlist.test").unwrap();
        verify_server(&certs.ca_cert_pem, &named.cert_pem, "10.0.0.5").unwrap();
        assert!(verify_server(&certs.ca_cert_pem, &named.cert_pem, "localhost").is_err());
    }

    #[test]
    fn renewal_refuses_a_key_of_another_ca_or_a_foreign_ca() {
        let certs = generate_dev_ca_and_server_cert().unwrap();
        let other = generate_dev_ca_and_server_cert().unwrap();
        assert!(matches!(server_cert_from_ca(&certs.ca_cert_pem, &other.ca_key_pem), Err(IdentityError::Certificate(_))));
        assert!(matches!(server_cert_from_ca("not pem", &certs.ca_key_pem), Err(IdentityError::Certificate(_))));
        assert!(matches!(server_cert_from_ca(&certs.ca_cert_pem, "not pem"), Err(IdentityError::Certificate(_))));

        // A CA with the same key but another subject (say, made by another tool) is refused
        // rather than producing certificates that would not chain.
        let key = KeyPair::from_pem(&certs.ca_key_pem).unwrap();
        let mut params = ca_params().unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "Someone Else's CA");
        let foreign = params.self_signed(&key).unwrap();
        assert!(matches!(server_cert_from_ca(&foreign.pem(), &certs.ca_key_pem), Err(IdentityError::Certificate(_))));
    }
}
