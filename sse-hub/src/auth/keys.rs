//! The keys that verify tokens: HMAC secrets, public keys from PEM files
//! (RSA, EC P-256 and P-384, Ed25519; bare or in a certificate) and JSON
//! Web Keys. Each key carries the algorithms it may verify, derived from
//! its type alone (an HMAC secret verifies HS256/384/512 and nothing else,
//! an RSA key RS* and PS*, a P-256 key ES256, ...): a token cannot make
//! the hub use a key with another algorithm than the key's own (no
//! algorithm confusion).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::der::{self, KeyShapeError, PemError, PublicKey};

/// HMAC secrets verify these.
const HMAC: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
/// RSA keys verify these.
const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
/// `id-RSASSA-PSS` keys verify these.
const RSA_PSS: &[Algorithm] = &[Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];

/// The smallest RSA modulus taken, in bits (RFC 7518, section 3.3).
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// The largest (the verifier's own bound).
pub(crate) const MAX_RSA_BITS: usize = 4096;
/// The largest key file read.
pub(crate) const MAX_KEY_FILE: u64 = 1 << 20;
/// The longest `kid` kept.
pub(crate) const MAX_KID: usize = 256;

/// Every algorithm some key may verify, in the order messages list them.
pub(crate) const ALL: &[Algorithm] = &[
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The algorithm named `name` in a JOSE header (`alg`), among those
/// verified here; `None` for any other name (`none` included).
pub(crate) fn algorithm(name: &str) -> Option<Algorithm> {
    ALL.iter().copied().find(|a| name_of(*a) == name)
}

/// The JOSE name of `alg`.
pub(crate) fn name_of(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
    }
}

/// One key that verifies tokens, with the algorithms it may verify.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    /// Its key id (JWKS keys); a key without one may verify a token that
    /// names any.
    kid: Option<String>,
    key: DecodingKey,
    algorithms: &'static [Algorithm],
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material.
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why a key file, a public key or a JSON Web Key cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The file cannot be read (the reason).
    Read(String),
    /// The file is larger than [`MAX_KEY_FILE`].
    TooLarge,
    /// The file holds no PEM block.
    NotPem,
    /// A PEM block is unterminated or not base64.
    Pem(PemError),
    /// The file holds a private key (its PEM label).
    PrivateKey(String),
    /// The file's PEM blocks hold no public key or certificate (their
    /// labels).
    NoPublicKey(Vec<String>),
    /// The file holds more than one public key.
    SeveralKeys,
    /// The key's DER structure is malformed (the PEM label or JWK type).
    Malformed(String),
    /// A well-formed key of a type no algorithm here uses.
    Unsupported(String),
    /// An RSA modulus of this many bits.
    RsaSize(usize),
    /// An RSA public exponent that is even, below 3 or above 2³².
    RsaExponent,
    /// An EC point of the wrong length for its curve (the curve).
    EcPoint(&'static str),
    /// An Ed25519 key that is not 32 bytes.
    Ed25519Length(usize),
    /// A JSON Web Key member is missing or malformed (which, and how).
    Jwk(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Read(e) => write!(f, "cannot be read: {e}"),
            KeyError::TooLarge => write!(
                f,
                "is larger than {} KiB: give a file with one public key (PEM)",
                MAX_KEY_FILE >> 10
            ),
            KeyError::NotPem => f.write_str(
                "holds no PEM block: give a public key (-----BEGIN PUBLIC KEY-----) or a \
                 certificate (-----BEGIN CERTIFICATE-----)",
            ),
            KeyError::Pem(PemError::Unterminated(label)) => write!(
                f,
                "has a `-----BEGIN {label}-----` line without its `-----END {label}-----` line"
            ),
            KeyError::Pem(PemError::Base64(label)) => {
                write!(f, "has a {label} block that is not valid base64")
            }
            KeyError::PrivateKey(label) => write!(
                f,
                "holds a private key ({label}), which the hub must not have: give its public key \
                 (`openssl pkey -in KEY.pem -pubout` prints it) or its certificate"
            ),
            KeyError::NoPublicKey(labels) => write!(
                f,
                "holds no public key or certificate (found {}): give a PUBLIC KEY, RSA PUBLIC \
                 KEY or CERTIFICATE block",
                labels.join(", ")
            ),
            KeyError::SeveralKeys => f.write_str(
                "holds more than one public key: give one per file (a certificate may be \
                 followed by its chain, which is ignored)",
            ),
            KeyError::Malformed(what) => write!(f, "holds a malformed {what}"),
            KeyError::Unsupported(what) => write!(
                f,
                "holds {what}, which no JWT algorithm this hub verifies uses (RSA, EC P-256 or \
                 P-384, and Ed25519 keys are taken)"
            ),
            KeyError::RsaSize(bits) => write!(
                f,
                "holds a {bits}-bit RSA key: RSA keys of {MIN_RSA_BITS} to {MAX_RSA_BITS} bits \
                 are taken"
            ),
            KeyError::RsaExponent => f.write_str(
                "holds an RSA key whose public exponent is unusable (it must be odd, from 3 to \
                 2^32; 65537 is the usual one)",
            ),
            KeyError::EcPoint(curve) => {
                write!(f, "holds a {curve} point of the wrong length")
            }
            KeyError::Ed25519Length(len) => {
                write!(f, "holds an Ed25519 key of {len} bytes instead of 32")
            }
            KeyError::Jwk(why) => f.write_str(why),
        }
    }
}

impl VerifyKey {
    /// An HMAC secret: HS256, HS384 and HS512.
    pub(crate) fn secret(secret: &[u8]) -> VerifyKey {
        VerifyKey {
            kid: None,
            key: DecodingKey::from_secret(secret),
            algorithms: HMAC,
        }
    }

    /// A public key, checked: RSA of 2048 to 4096 bits with a usable
    /// exponent, an EC point of its curve's length, a 32-byte Ed25519 key.
    pub(crate) fn public(key: PublicKey) -> Result<VerifyKey, KeyError> {
        let (key, algorithms) = match key {
            PublicKey::Rsa { n, e, pss_only } => {
                let bits = bit_len(&n);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(KeyError::RsaSize(bits));
                }
                let odd = e.last().is_some_and(|b| b & 1 == 1);
                if !odd || e.len() > 4 || bit_len(&e) < 2 {
                    return Err(KeyError::RsaExponent);
                }
                let algorithms = if pss_only { RSA_PSS } else { RSA };
                (DecodingKey::from_rsa_raw_components(&n, &e), algorithms)
            }
            PublicKey::P256(point) => {
                check_point(&point, 32, "P-256")?;
                (DecodingKey::from_ec_der(&point), &[Algorithm::ES256][..])
            }
            PublicKey::P384(point) => {
                check_point(&point, 48, "P-384")?;
                (DecodingKey::from_ec_der(&point), &[Algorithm::ES384][..])
            }
            PublicKey::Ed25519(key) => {
                // The verifier reads exactly 32 bytes.
                if key.len() != 32 {
                    return Err(KeyError::Ed25519Length(key.len()));
                }
                (DecodingKey::from_ed_der(&key), &[Algorithm::EdDSA][..])
            }
        };
        Ok(VerifyKey {
            kid: None,
            key,
            algorithms,
        })
    }

    /// The public key of a PEM text: one `PUBLIC KEY` (RSA, EC P-256 or
    /// P-384, Ed25519), `RSA PUBLIC KEY` or `CERTIFICATE` block (a
    /// certificate may be followed by more: its chain, ignored).
    pub(crate) fn from_pem(text: &str) -> Result<VerifyKey, KeyError> {
        let blocks = der::pem_blocks(text).map_err(KeyError::Pem)?;
        if blocks.is_empty() {
            return Err(KeyError::NotPem);
        }
        if let Some(private) = blocks.iter().find(|b| b.label.contains("PRIVATE KEY")) {
            return Err(KeyError::PrivateKey(private.label.clone()));
        }
        let keys: Vec<_> = blocks
            .iter()
            .filter(|b| matches!(b.label.as_str(), "PUBLIC KEY" | "RSA PUBLIC KEY"))
            .collect();
        let certificate = blocks.iter().find(|b| b.label == "CERTIFICATE");
        let shape = |e: KeyShapeError, label: &str| match e {
            KeyShapeError::Malformed => KeyError::Malformed(label.to_owned()),
            KeyShapeError::Unsupported(what) => KeyError::Unsupported(what),
        };
        let key = match (keys.as_slice(), certificate) {
            ([key], None) if key.label == "RSA PUBLIC KEY" => {
                let (n, e) = der::rsa_public_key(&key.der)
                    .map_err(|_| KeyError::Malformed(key.label.clone()))?;
                PublicKey::Rsa {
                    n,
                    e,
                    pss_only: false,
                }
            }
            ([key], None) => der::spki(&key.der).map_err(|e| shape(e, &key.label))?,
            ([], Some(certificate)) => {
                der::certificate_key(&certificate.der).map_err(|e| shape(e, "CERTIFICATE"))?
            }
            ([], None) => {
                return Err(KeyError::NoPublicKey(
                    blocks.iter().map(|b| b.label.clone()).collect(),
                ));
            }
            _ => return Err(KeyError::SeveralKeys),
        };
        VerifyKey::public(key)
    }

    /// A JSON Web Key (RFC 7517, 7518, 8037): `RSA` (`n`, `e`), `EC`
    /// (`crv` P-256 or P-384, `x`, `y`) or `OKP` (`crv` Ed25519, `x`). A
    /// key whose `use` is not `sig`, whose `key_ops` lack `verify`, or
    /// whose `alg` is not its type's is refused; with an `alg`, the key
    /// verifies that algorithm only. Symmetric (`oct`) keys are refused:
    /// a key set is meant to be public.
    pub(crate) fn from_jwk(jwk: &Value) -> Result<VerifyKey, KeyError> {
        let jwk = jwk
            .as_object()
            .ok_or_else(|| KeyError::Jwk("an entry of `keys` is not a JSON object".into()))?;
        let text = |name: &str| -> Result<Option<&str>, KeyError> {
            match jwk.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(KeyError::Jwk(format!("its `{name}` is not a string"))),
            }
        };
        let bytes = |name: &str| -> Result<Vec<u8>, KeyError> {
            let value =
                text(name)?.ok_or_else(|| KeyError::Jwk(format!("it has no `{name}` member")))?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(value.trim_end_matches('=').as_bytes())
                .map_err(|_| KeyError::Jwk(format!("its `{name}` is not base64url")))
        };
        let kid = text("kid")?;
        if kid.is_some_and(|k| k.len() > MAX_KID) {
            return Err(KeyError::Jwk(format!(
                "its `kid` is longer than {MAX_KID} bytes"
            )));
        }
        if text("use")?.is_some_and(|usage| usage != "sig") {
            return Err(KeyError::Jwk(
                "its `use` is not `sig` (an encryption key)".into(),
            ));
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verifies = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
            if !verifies {
                return Err(KeyError::Jwk(
                    "its `key_ops` do not include `verify`".into(),
                ));
            }
        }
        let kty = text("kty")?.ok_or_else(|| KeyError::Jwk("it has no `kty` member".into()))?;
        let public = match kty {
            "RSA" => {
                let (n, e) = (bytes("n")?, bytes("e")?);
                let strip = |v: Vec<u8>| {
                    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
                    v[start..].to_vec()
                };
                PublicKey::Rsa {
                    n: strip(n),
                    e: strip(e),
                    pss_only: false,
                }
            }
            "EC" => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                let (curve, size) = match text("crv")? {
                    Some("P-256") => ("P-256", 32),
                    Some("P-384") => ("P-384", 48),
                    Some(_) => {
                        return Err(KeyError::Jwk(
                            "its curve (`crv`) is not P-256 or P-384".into(),
                        ));
                    }
                    None => return Err(KeyError::Jwk("it has no `crv` member".into())),
                };
                if x.len() != size || y.len() != size {
                    return Err(KeyError::EcPoint(curve));
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                if curve == "P-256" {
                    PublicKey::P256(point)
                } else {
                    PublicKey::P384(point)
                }
            }
            "OKP" => {
                if text("crv")? != Some("Ed25519") {
                    return Err(KeyError::Jwk("its curve (`crv`) is not Ed25519".into()));
                }
                PublicKey::Ed25519(bytes("x")?)
            }
            "oct" => {
                return Err(KeyError::Jwk(
                    "it is a symmetric (`oct`) key: HMAC secrets are given with --jwt-key, \
                     never in a key set"
                        .into(),
                ));
            }
            _ => {
                return Err(KeyError::Jwk("its `kty` is not RSA, EC or OKP".into()));
            }
        };
        let mut key = VerifyKey::public(public)?;
        if let Some(alg) = text("alg")? {
            let alg = algorithm(alg)
                .filter(|a| key.algorithms.contains(a))
                .ok_or_else(|| {
                    KeyError::Jwk(format!(
                        "its `alg` is not one its type verifies ({})",
                        key.algorithms
                            .iter()
                            .map(|a| name_of(*a))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            key.algorithms = ALL
                .iter()
                .position(|a| *a == alg)
                .and_then(|i| ALL.get(i..=i))
                .unwrap_or_default();
        }
        key.kid = kid.map(str::to_owned);
        Ok(key)
    }

    /// Whether this key may verify a token signed with `alg` that names
    /// the key `kid` (a key without an id may verify any; a token without
    /// one may be verified by any).
    pub(crate) fn accepts(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        self.algorithms.contains(&alg)
            && match (&self.kid, kid) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }

    /// The key, for `jsonwebtoken`.
    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// The algorithms it verifies.
    pub(crate) fn algorithms(&self) -> &'static [Algorithm] {
        self.algorithms
    }

    /// Its key id, if any.
    pub(crate) fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// Reads a key file (at most [`MAX_KEY_FILE`] bytes) and its public key.
pub(crate) fn read_pem_file(path: &Path) -> Result<VerifyKey, KeyError> {
    let text = read_bounded(path, MAX_KEY_FILE)?;
    VerifyKey::from_pem(&text)
}

/// Reads a text file of at most `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<String, KeyError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| KeyError::Read(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| KeyError::Read(e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(KeyError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|_| KeyError::Read("it is not UTF-8 text".into()))
}

/// The number of significant bits of a big-endian unsigned integer.
fn bit_len(bytes: &[u8]) -> usize {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    match bytes.get(start) {
        Some(&first) => (bytes.len() - start) * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Checks a SEC1 point's encoding and length for a curve whose
/// coordinates are `size` bytes.
fn check_point(point: &[u8], size: usize, curve: &'static str) -> Result<(), KeyError> {
    match point.first() {
        Some(4) if point.len() == 1 + 2 * size => Ok(()),
        Some(2 | 3) if point.len() == 1 + size => Ok(()),
        _ => Err(KeyError::EcPoint(curve)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A test key file's text.
    pub(crate) fn testdata(file: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/testdata/jwt/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn each_key_type_gets_its_own_algorithms_only() {
        let secret = VerifyKey::secret(b"k");
        assert_eq!(secret.algorithms(), HMAC);
        for (file, algorithms) in [
            ("rsa-2048.pub.pem", RSA),
            ("rsa-2048.pkcs1.pub.pem", RSA),
            ("rsa-2048.cert.pem", RSA),
            ("ec-p256.pub.pem", &[Algorithm::ES256][..]),
            ("ec-p256.cert.pem", &[Algorithm::ES256][..]),
            ("ec-p384.pub.pem", &[Algorithm::ES384][..]),
            ("ed25519.pub.pem", &[Algorithm::EdDSA][..]),
        ] {
            let key = VerifyKey::from_pem(&testdata(file)).unwrap();
            assert_eq!(key.algorithms(), algorithms, "{file}");
            assert!(!key.accepts(Algorithm::HS256, None), "{file}");
        }
    }

    #[test]
    fn bad_key_files_say_what_is_wrong() {
        let err = |text: &str| VerifyKey::from_pem(text).unwrap_err().to_string();
        assert!(
            err(&testdata("rsa-2048.key.pem")).contains("holds a private key (RSA PRIVATE KEY)")
        );
        assert!(err(&testdata("ec-p256.key.pem")).contains("holds a private key (PRIVATE KEY)"));
        assert_eq!(
            VerifyKey::from_pem(&testdata("rsa-1024.pub.pem")).unwrap_err(),
            KeyError::RsaSize(1024)
        );
        assert!(err(&testdata("ec-p521.pub.pem")).contains("1.3.132.0.35"));
        assert_eq!(
            VerifyKey::from_pem("not a key").unwrap_err(),
            KeyError::NotPem
        );
        let two = testdata("rsa-2048.pub.pem") + &testdata("ec-p256.pub.pem");
        assert_eq!(
            VerifyKey::from_pem(&two).unwrap_err(),
            KeyError::SeveralKeys
        );
        // A certificate followed by its chain: the first one's key.
        let chain = testdata("ec-p256.cert.pem") + &testdata("rsa-2048.cert.pem");
        assert_eq!(
            VerifyKey::from_pem(&chain).unwrap().algorithms(),
            [Algorithm::ES256]
        );
        assert_eq!(
            VerifyKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .unwrap_err(),
            KeyError::Malformed("PUBLIC KEY".into())
        );
        assert_eq!(
            VerifyKey::from_pem("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n").unwrap_err(),
            KeyError::NoPublicKey(vec!["FOO".into()])
        );
        // Every message is one sentence that names no key material.
        for e in [
            KeyError::TooLarge,
            KeyError::RsaExponent,
            KeyError::EcPoint("P-256"),
            KeyError::Ed25519Length(3),
        ] {
            let text = e.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn json_web_keys_of_each_type() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let Ok(PublicKey::Rsa { n, e, .. }) =
            der::spki(&der::pem_blocks(&testdata("rsa-2048.pub.pem")).unwrap()[0].der)
        else {
            panic!("not RSA")
        };
        let rsa = json!({"kty": "RSA", "kid": "r1", "n": b64(&n), "e": b64(&e)});
        let key = VerifyKey::from_jwk(&rsa).unwrap();
        assert_eq!((key.kid(), key.algorithms()), (Some("r1"), RSA));
        assert!(key.accepts(Algorithm::PS256, Some("r1")));
        assert!(!key.accepts(Algorithm::PS256, Some("r2")));
        assert!(key.accepts(Algorithm::RS256, None));

        let mut pinned = rsa.clone();
        pinned["alg"] = json!("RS384");
        assert_eq!(
            VerifyKey::from_jwk(&pinned).unwrap().algorithms(),
            [Algorithm::RS384]
        );
        for (member, value, why) in [
            (
                "alg",
                json!("HS256"),
                "its `alg` is not one its type verifies",
            ),
            (
                "alg",
                json!("none"),
                "its `alg` is not one its type verifies",
            ),
            ("use", json!("enc"), "its `use` is not `sig`"),
            (
                "key_ops",
                json!(["encrypt"]),
                "its `key_ops` do not include `verify`",
            ),
            ("n", json!("AQAB"), "2048 to 4096 bits"),
            ("n", json!(5), "its `n` is not a string"),
            ("e", json!("!!"), "its `e` is not base64url"),
            ("e", json!("AAAC"), "public exponent"),
            ("kid", json!("k".repeat(300)), "longer than 256 bytes"),
            ("kty", json!("oct"), "symmetric"),
            ("kty", json!("XYZ"), "its `kty` is not RSA, EC or OKP"),
        ] {
            let mut jwk = rsa.clone();
            jwk[member] = value;
            let e = VerifyKey::from_jwk(&jwk).unwrap_err().to_string();
            assert!(e.contains(why), "{member}: {e}");
        }

        let x = vec![7u8; 32];
        let ec = json!({"kty": "EC", "crv": "P-256", "x": b64(&x), "y": b64(&x)});
        assert_eq!(
            VerifyKey::from_jwk(&ec).unwrap().algorithms(),
            [Algorithm::ES256]
        );
        let short = json!({"kty": "EC", "crv": "P-384", "x": b64(&x), "y": b64(&x)});
        assert_eq!(
            VerifyKey::from_jwk(&short).unwrap_err(),
            KeyError::EcPoint("P-384")
        );
        let p521 = json!({"kty": "EC", "crv": "P-521", "x": b64(&x), "y": b64(&x)});
        assert!(VerifyKey::from_jwk(&p521).is_err());
        let ed = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x)});
        assert_eq!(
            VerifyKey::from_jwk(&ed).unwrap().algorithms(),
            [Algorithm::EdDSA]
        );
        let ed_short = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x[..31])});
        assert_eq!(
            VerifyKey::from_jwk(&ed_short).unwrap_err(),
            KeyError::Ed25519Length(31)
        );
        assert!(VerifyKey::from_jwk(&json!("a string")).is_err());
        assert!(VerifyKey::from_jwk(&json!({})).is_err());
    }

    #[test]
    fn algorithm_names_round_trip() {
        for alg in ALL {
            assert_eq!(algorithm(name_of(*alg)), Some(*alg));
        }
        assert_eq!(algorithm("none"), None);
        assert_eq!(algorithm("hs256"), None);
        assert_eq!(bit_len(&[0, 0x01, 0]), 9);
        assert_eq!(bit_len(&[]), 0);
    }
}
