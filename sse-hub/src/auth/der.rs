//! Just enough PEM (RFC 7468) and DER (X.690) to find a public key: the
//! blocks of a PEM file, and in them a SubjectPublicKeyInfo (RFC 5280), a
//! PKCS#1 `RSAPublicKey` (RFC 8017) or the SubjectPublicKeyInfo inside an
//! X.509 certificate. Every read is bounded by the input and checked: a
//! malformed file is an error, never a panic.

use base64::Engine as _;

/// The tag of a DER SEQUENCE.
const SEQUENCE: u8 = 0x30;
/// INTEGER.
const INTEGER: u8 = 0x02;
/// BIT STRING.
const BIT_STRING: u8 = 0x03;
/// OBJECT IDENTIFIER.
const OID: u8 = 0x06;
/// The explicit `[0]` tag of a certificate's version.
const VERSION_TAG: u8 = 0xa0;

/// `rsaEncryption` (1.2.840.113549.1.1.1).
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-RSASSA-PSS` (1.2.840.113549.1.1.10): an RSA key for PSS only.
const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `prime256v1` / P-256 (1.2.840.10045.3.1.7).
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `secp384r1` / P-384 (1.3.132.0.34).
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// `id-Ed25519` (1.3.101.112).
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// The structure is not valid DER of the expected shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Reads the elements of a DER sequence one after the other.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// The next element's tag and content. Multi-byte tags, indefinite
    /// lengths and lengths over 4 bytes are refused (no key needs them).
    fn next(&mut self) -> Result<(u8, &'a [u8]), Malformed> {
        let (&tag, rest) = self.rest.split_first().ok_or(Malformed)?;
        if tag & 0x1f == 0x1f {
            return Err(Malformed);
        }
        let (&first, mut rest) = rest.split_first().ok_or(Malformed)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(Malformed);
            }
            let (bytes, after) = rest.split_at_checked(count).ok_or(Malformed)?;
            rest = after;
            bytes
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b))
        };
        let (content, rest) = rest.split_at_checked(len).ok_or(Malformed)?;
        self.rest = rest;
        Ok((tag, content))
    }

    /// The next element's content, which must have tag `tag`.
    fn expect(&mut self, tag: u8) -> Result<&'a [u8], Malformed> {
        match self.next()? {
            (found, content) if found == tag => Ok(content),
            _ => Err(Malformed),
        }
    }

    /// The tag of the next element, without reading it.
    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// A public key as a file or a certificate gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// RSA: the modulus and the public exponent (big-endian, as encoded).
    /// `pss_only` for an `id-RSASSA-PSS` key.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        pss_only: bool,
    },
    /// An EC point on P-256 (SEC1 encoding).
    P256(Vec<u8>),
    /// An EC point on P-384 (SEC1 encoding).
    P384(Vec<u8>),
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// Why a DER structure holds no key this hub takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyShapeError {
    /// Not valid DER of the expected shape.
    Malformed,
    /// A well-formed key of a type or curve no JWT algorithm here uses:
    /// what it is (an algorithm or curve identifier, dotted).
    Unsupported(String),
}

impl From<Malformed> for KeyShapeError {
    fn from(_: Malformed) -> KeyShapeError {
        KeyShapeError::Malformed
    }
}

/// Reads a SubjectPublicKeyInfo (a `PUBLIC KEY` PEM block).
pub(crate) fn spki(der: &[u8]) -> Result<PublicKey, KeyShapeError> {
    let mut outer = Reader::new(der);
    let content = outer.expect(SEQUENCE)?;
    if !outer.is_empty() {
        return Err(KeyShapeError::Malformed);
    }
    spki_fields(content)
}

/// The fields of a SubjectPublicKeyInfo: the algorithm, then the key.
fn spki_fields(content: &[u8]) -> Result<PublicKey, KeyShapeError> {
    let mut fields = Reader::new(content);
    let mut algorithm = Reader::new(fields.expect(SEQUENCE)?);
    let key = fields.expect(BIT_STRING)?;
    let oid = algorithm.expect(OID)?;
    // A BIT STRING's first byte counts the unused bits of its last: a key
    // is whole bytes.
    let key = match key.split_first() {
        Some((0, key)) => key,
        _ => return Err(KeyShapeError::Malformed),
    };
    if oid == RSA_ENCRYPTION || oid == RSASSA_PSS {
        let (n, e) = rsa_public_key(key)?;
        return Ok(PublicKey::Rsa {
            n,
            e,
            pss_only: oid == RSASSA_PSS,
        });
    }
    if oid == EC_PUBLIC_KEY {
        // The curve is a named one (RFC 5480): explicit parameters are
        // refused.
        let curve = algorithm.expect(OID)?;
        return if curve == P256 {
            Ok(PublicKey::P256(key.to_vec()))
        } else if curve == P384 {
            Ok(PublicKey::P384(key.to_vec()))
        } else {
            Err(KeyShapeError::Unsupported(format!(
                "an EC key on the curve {} (ES256 needs P-256, ES384 P-384)",
                dotted(curve)
            )))
        };
    }
    if oid == ED25519 {
        return Ok(PublicKey::Ed25519(key.to_vec()));
    }
    Err(KeyShapeError::Unsupported(format!(
        "a key of the algorithm {}",
        dotted(oid)
    )))
}

/// Reads a PKCS#1 `RSAPublicKey` (an `RSA PUBLIC KEY` PEM block, or the
/// key of an `rsaEncryption` SubjectPublicKeyInfo): the modulus and the
/// exponent, without leading zero bytes.
pub(crate) fn rsa_public_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Malformed> {
    let mut outer = Reader::new(der);
    let mut fields = Reader::new(outer.expect(SEQUENCE)?);
    let n = fields.expect(INTEGER)?;
    let e = fields.expect(INTEGER)?;
    if !fields.is_empty() || !outer.is_empty() {
        return Err(Malformed);
    }
    Ok((unsigned(n)?, unsigned(e)?))
}

/// A positive INTEGER's magnitude, without leading zero bytes.
fn unsigned(integer: &[u8]) -> Result<Vec<u8>, Malformed> {
    if integer.first().is_none_or(|&b| b & 0x80 != 0) {
        // Empty, or negative.
        return Err(Malformed);
    }
    let start = integer
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(integer.len());
    Ok(integer[start..].to_vec())
}

/// Reads the public key of an X.509 certificate (a `CERTIFICATE` PEM
/// block). The certificate's signature and dates are not checked: it only
/// carries the key.
pub(crate) fn certificate_key(der: &[u8]) -> Result<PublicKey, KeyShapeError> {
    let mut outer = Reader::new(der);
    let mut certificate = Reader::new(outer.expect(SEQUENCE)?);
    let mut tbs = Reader::new(certificate.expect(SEQUENCE)?);
    if tbs.peek() == Some(VERSION_TAG) {
        tbs.next()?;
    }
    // serialNumber, signature, issuer, validity, subject.
    tbs.expect(INTEGER)?;
    for _ in 0..4 {
        tbs.expect(SEQUENCE)?;
    }
    spki_fields(tbs.expect(SEQUENCE)?)
}

/// An OBJECT IDENTIFIER's content in dotted form (`1.3.101.113`), for
/// messages; `?` for an unreadable one.
fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        if value > u64::MAX >> 7 {
            return "?".to_owned();
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() {
        return "?".to_owned();
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A PEM block: its label (`PUBLIC KEY`, `CERTIFICATE`, ...) and its
/// decoded content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PemBlock {
    /// The label between `-----BEGIN ` and `-----`.
    pub(crate) label: String,
    /// The base64 content, decoded.
    pub(crate) der: Vec<u8>,
}

/// Why a text is not PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PemError {
    /// A `-----BEGIN` line has no matching `-----END` line.
    Unterminated(String),
    /// A block's content is not base64.
    Base64(String),
}

/// The PEM blocks of `text`, in order (text around them is ignored, as
/// RFC 7468 allows).
pub(crate) fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, PemError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let label: String = label.chars().take(64).collect();
        let end = format!("-----END {label}-----");
        let mut base64 = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            let line = line.trim();
            if line == end {
                closed = true;
                break;
            }
            // RFC 1421 headers (`Proc-Type: ...`) mean an encrypted key,
            // which decodes to something that is no key here anyway.
            base64.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
        }
        if !closed {
            return Err(PemError::Unterminated(label));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(base64.as_bytes())
            .map_err(|_| PemError::Base64(label.clone()))?;
        blocks.push(PemBlock { label, der });
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(file: &str) -> PemBlock {
        let text = std::fs::read_to_string(format!(
            "{}/testdata/jwt/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut blocks = pem_blocks(&text).unwrap();
        assert_eq!(blocks.len(), 1, "{file}");
        blocks.remove(0)
    }

    #[test]
    fn reads_every_kind_of_public_key() {
        let rsa = block("rsa-2048.pub.pem");
        assert_eq!(rsa.label, "PUBLIC KEY");
        let PublicKey::Rsa { n, e, pss_only } = spki(&rsa.der).unwrap() else {
            panic!("not RSA");
        };
        assert_eq!(
            (n.len(), e.as_slice(), pss_only),
            (256, &[1, 0, 1][..], false)
        );
        // The same key as PKCS#1 and in a certificate.
        let pkcs1 = block("rsa-2048.pkcs1.pub.pem");
        assert_eq!(pkcs1.label, "RSA PUBLIC KEY");
        assert_eq!(rsa_public_key(&pkcs1.der).unwrap(), (n.clone(), e.clone()));
        let cert = block("rsa-2048.cert.pem");
        assert_eq!(
            certificate_key(&cert.der).unwrap(),
            PublicKey::Rsa {
                n,
                e,
                pss_only: false
            }
        );

        let PublicKey::P256(point) = spki(&block("ec-p256.pub.pem").der).unwrap() else {
            panic!("not P-256");
        };
        assert_eq!((point.len(), point[0]), (65, 4));
        assert_eq!(
            certificate_key(&block("ec-p256.cert.pem").der).unwrap(),
            PublicKey::P256(point)
        );
        let PublicKey::P384(point) = spki(&block("ec-p384.pub.pem").der).unwrap() else {
            panic!("not P-384");
        };
        assert_eq!(point.len(), 97);
        let PublicKey::Ed25519(key) = spki(&block("ed25519.pub.pem").der).unwrap() else {
            panic!("not Ed25519");
        };
        assert_eq!(key.len(), 32);
        assert_eq!(
            spki(&block("ec-p521.pub.pem").der),
            Err(KeyShapeError::Unsupported(
                "an EC key on the curve 1.3.132.0.35 (ES256 needs P-256, ES384 P-384)".into()
            ))
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = block("rsa-2048.pub.pem").der;
        // Every truncation, and every single-byte change at the start.
        for len in 0..good.len() {
            assert!(spki(&good[..len]).is_err(), "{len}");
            let _ = certificate_key(&good[..len]);
        }
        for at in 0..good.len().min(64) {
            for byte in [0x00, 0x7f, 0x80, 0x84, 0x85, 0xff] {
                let mut bad = good.clone();
                bad[at] = byte;
                let _ = spki(&bad);
                let _ = certificate_key(&bad);
                let _ = rsa_public_key(&bad);
            }
        }
        // Lengths that point past the end, indefinite lengths, long tags.
        for bad in [
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x1f, 0x01, 0x00],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[],
        ] {
            assert!(spki(bad).is_err());
            assert!(certificate_key(bad).is_err());
            assert!(rsa_public_key(bad).is_err());
        }
        // A negative modulus.
        assert_eq!(
            rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x03]),
            Err(Malformed)
        );
    }

    #[test]
    fn pem_blocks_are_found_among_text() {
        let text = "comment\n-----BEGIN A-----\nAAEC\nAw==\n-----END A-----\n\
                    between\n-----BEGIN B B-----\n-----END B B-----\n";
        assert_eq!(
            pem_blocks(text).unwrap(),
            [
                PemBlock {
                    label: "A".into(),
                    der: vec![0, 1, 2, 3]
                },
                PemBlock {
                    label: "B B".into(),
                    der: vec![]
                }
            ]
        );
        assert_eq!(
            pem_blocks("-----BEGIN A-----\nAAEC\n"),
            Err(PemError::Unterminated("A".into()))
        );
        assert_eq!(
            pem_blocks("-----BEGIN A-----\n!!\n-----END A-----"),
            Err(PemError::Base64("A".into()))
        );
        assert_eq!(pem_blocks("no pem here"), Ok(vec![]));
    }

    #[test]
    fn object_identifiers_are_shown_dotted() {
        assert_eq!(dotted(ED25519), "1.3.101.112");
        assert_eq!(dotted(RSA_ENCRYPTION), "1.2.840.113549.1.1.1");
        assert_eq!(dotted(&[]), "?");
        assert_eq!(dotted(&[0xff; 20]), "?");
    }
}
