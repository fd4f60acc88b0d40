//! The names a client certificate carries (subject CN and subjectAltName),
//! read from its DER: what `auth.certs` maps to roles.
//!
//! rustls has verified the certificate before we read it; this module only
//! finds the names, with its own small DER reader so that no ASN.1 crate is
//! needed. The reader walks the fixed layout of RFC 5280 §4.1 and skips
//! every field it does not need by its length, so it never recurses and
//! never looks inside a skipped value: nesting depth costs nothing.
//!
//! DER is read strictly, with the rules of webpki, which verifies the
//! certificate for rustls: single-byte tags only, no indefinite lengths, no
//! length past the end of its container, lengths in their shortest form,
//! and subjectAltName at most once; and no bytes may be left over after any
//! structure we walk. Size constraints such as "at least one attribute per
//! RDN" are not checked: an empty list holds no name to misread.
//!
//! A certificate is read whole or not at all. A name that is empty, not
//! valid in its string type, or that holds a character able to corrupt a
//! log line rejects the whole certificate rather than being skipped: the
//! names are the identity a CA issued, and matching `auth.certs` against
//! only some of them would be a different identity (a rule further down the
//! list could match instead). No honest CA issues such names. The same goes
//! for more than [`MAX_NAMES`] names of one kind, which bounds what a
//! hostile certificate can make us allocate.
//!
//! How string types become text:
//! - UTF8String as it is (invalid UTF-8 rejects);
//! - PrintableString and IA5String as ASCII. PrintableString's alphabet is
//!   narrower, but CAs put `*`, `@` and `_` in it; ASCII is what matters here;
//! - TeletexString as Latin-1, one byte per character, as OpenSSL shows it
//!   (real T.61 is a different, stateful encoding no CA uses);
//! - BMPString as UCS-2 and UniversalString as UCS-4, big-endian; a
//!   surrogate code unit rejects (UCS-2 has no surrogate pairs);
//! - any other type in a commonName rejects.
//!
//! subjectAltName entries: dNSName, rfc822Name and URI (all IA5String) as
//! their ASCII text; iPAddress as `std::net::IpAddr` writes it (`10.0.0.1`,
//! `::1`); otherName, x400Address, directoryName, ediPartyName and
//! registeredID have no text form `auth.certs` can match and are skipped.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most common names, and most alt names, one certificate may carry.
pub const MAX_NAMES: usize = 32;

/// The names read from one certificate, in the order it encodes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertNames {
    /// Subject commonName values (usually one), in RDN order; within one
    /// multi-valued RDN in DER's sorted SET order.
    pub common_names: Vec<String>,
    /// subjectAltName dNSName, rfc822Name, URI and iPAddress entries as text.
    pub alt_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Not a DER certificate: a bad tag or length, a field out of place,
    /// bytes left over, or a second subjectAltName extension.
    Malformed,
    /// A name that is empty, invalid in its type (text encoding, IP address
    /// length), or holds a character that could corrupt a log line.
    BadName,
    /// More than [`MAX_NAMES`] common names or alt names.
    TooManyNames,
}

impl NameError {
    pub fn message(self) -> &'static str {
        match self {
            NameError::Malformed => "client certificate is not well-formed DER",
            NameError::BadName => "client certificate name is not printable text",
            NameError::TooManyNames => "client certificate carries too many names",
        }
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for NameError {}

// Tags of the universal types a certificate's skeleton uses.
const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

// Tags of the string types a commonName may use.
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const TELETEX_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const UNIVERSAL_STRING: u8 = 0x1c;
const BMP_STRING: u8 = 0x1e;

// TBSCertificate's context-specific fields.
const VERSION: u8 = 0xa0;
const ISSUER_UNIQUE_ID: u8 = 0x81;
const SUBJECT_UNIQUE_ID: u8 = 0x82;
const EXTENSIONS: u8 = 0xa3;

// GeneralName's choices (RFC 5280 §4.2.1.6). The string and address forms
// are IMPLICIT and so primitive; the others are constructed.
const OTHER_NAME: u8 = 0xa0;
const RFC822_NAME: u8 = 0x81;
const DNS_NAME: u8 = 0x82;
const X400_ADDRESS: u8 = 0xa3;
const DIRECTORY_NAME: u8 = 0xa4;
const EDI_PARTY_NAME: u8 = 0xa5;
const URI: u8 = 0x86;
const IP_ADDRESS: u8 = 0x87;
const REGISTERED_ID: u8 = 0x88;

/// 2.5.4.3, id-at-commonName, as its DER contents.
const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.29.17, id-ce-subjectAltName, as its DER contents.
const SUBJECT_ALT_NAME_OID: &[u8] = &[0x55, 0x1d, 0x11];

/// Reads the subject's common names and the subjectAltName entries of a
/// certificate given as DER. Never panics, whatever the input.
pub fn cert_names(der: &[u8]) -> Result<CertNames, NameError> {
    let mut whole = Elements::new(der);
    let mut certificate = Elements::new(whole.expect(SEQUENCE)?);
    whole.finish()?;
    let tbs = certificate.expect(SEQUENCE)?;
    // The signature is rustls' business; only its place is checked.
    certificate.expect(SEQUENCE)?;
    certificate.expect(BIT_STRING)?;
    certificate.finish()?;

    let mut tbs = Elements::new(tbs);
    tbs.optional(VERSION)?;
    tbs.expect(INTEGER)?; // serialNumber
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    tbs.expect(SEQUENCE)?; // validity
    let subject = tbs.expect(SEQUENCE)?;
    tbs.expect(SEQUENCE)?; // subjectPublicKeyInfo
    tbs.optional(ISSUER_UNIQUE_ID)?;
    tbs.optional(SUBJECT_UNIQUE_ID)?;
    let extensions = tbs.optional(EXTENSIONS)?;
    tbs.finish()?;

    let mut names = CertNames::default();
    read_common_names(subject, &mut names.common_names)?;
    if let Some(extensions) = extensions {
        read_alt_names(extensions, &mut names.alt_names)?;
    }
    Ok(names)
}

/// The commonName values of a Name (a SEQUENCE OF RelativeDistinguishedName,
/// each a SET OF AttributeTypeAndValue).
fn read_common_names(rdn_sequence: &[u8], out: &mut Vec<String>) -> Result<(), NameError> {
    let mut rdns = Elements::new(rdn_sequence);
    while !rdns.is_empty() {
        let mut attributes = Elements::new(rdns.expect(SET)?);
        while !attributes.is_empty() {
            let mut attribute = Elements::new(attributes.expect(SEQUENCE)?);
            let kind = attribute.expect(OID)?;
            let value = attribute.element()?;
            attribute.finish()?;
            if kind == COMMON_NAME_OID {
                // A DirectoryString choice, or IA5String, which some CAs use.
                add(out, || text(value.tag, value.value))?;
            }
        }
    }
    Ok(())
}

/// The text entries of the subjectAltName extension, found among the
/// contents of the `[3]` extensions field.
fn read_alt_names(explicit: &[u8], out: &mut Vec<String>) -> Result<(), NameError> {
    let mut wrapper = Elements::new(explicit);
    let mut extensions = Elements::new(wrapper.expect(SEQUENCE)?);
    wrapper.finish()?;
    let mut seen = false;
    while !extensions.is_empty() {
        let mut extension = Elements::new(extensions.expect(SEQUENCE)?);
        let id = extension.expect(OID)?;
        extension.optional(BOOLEAN)?; // critical
        let value = extension.expect(OCTET_STRING)?;
        extension.finish()?;
        if id != SUBJECT_ALT_NAME_OID {
            continue;
        }
        // RFC 5280 §4.2 allows each extension once; with two lists of names
        // we would have to pick one, and the other reading would be as good.
        if seen {
            return Err(NameError::Malformed);
        }
        seen = true;
        let mut octets = Elements::new(value);
        let mut general_names = Elements::new(octets.expect(SEQUENCE)?);
        octets.finish()?;
        while !general_names.is_empty() {
            let name = general_names.element()?;
            match name.tag {
                RFC822_NAME | DNS_NAME | URI => add(out, || text(IA5_STRING, name.value))?,
                IP_ADDRESS => add(out, || ip_address(name.value))?,
                OTHER_NAME | X400_ADDRESS | DIRECTORY_NAME | EDI_PARTY_NAME | REGISTERED_ID => {}
                // Not a GeneralName, or a string form in constructed encoding,
                // which DER does not allow.
                _ => return Err(NameError::Malformed),
            }
        }
    }
    Ok(())
}

/// Adds a name unless `out` is full; the name is only made once there is room
/// for it, so a hostile list costs at most `MAX_NAMES` strings.
fn add(out: &mut Vec<String>, name: impl FnOnce() -> Result<String, NameError>) -> Result<(), NameError> {
    if out.len() >= MAX_NAMES {
        return Err(NameError::TooManyNames);
    }
    out.push(name()?);
    Ok(())
}

/// The text of a string of type `tag`, if it is printable (see the module
/// doc for how each type is read).
fn text(tag: u8, bytes: &[u8]) -> Result<String, NameError> {
    let text: String = match tag {
        UTF8_STRING => std::str::from_utf8(bytes)
            .map_err(|_| NameError::BadName)?
            .to_owned(),
        // Not ASCII falls through to the rejection below.
        PRINTABLE_STRING | IA5_STRING if bytes.is_ascii() => bytes.iter().map(|&b| char::from(b)).collect(),
        TELETEX_STRING => bytes.iter().map(|&b| char::from(b)).collect(),
        BMP_STRING => code_points(bytes, 2)?,
        UNIVERSAL_STRING => code_points(bytes, 4)?,
        _ => return Err(NameError::BadName),
    };
    if text.is_empty() || text.chars().any(corrupts_a_log_line) {
        return Err(NameError::BadName);
    }
    Ok(text)
}

/// Big-endian code points of `width` bytes each (UCS-2 or UCS-4).
fn code_points(bytes: &[u8], width: usize) -> Result<String, NameError> {
    if !bytes.len().is_multiple_of(width) {
        return Err(NameError::BadName);
    }
    bytes
        .chunks_exact(width)
        .map(|unit| {
            let point = unit.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
            char::from_u32(point).ok_or(NameError::BadName)
        })
        .collect()
}

/// Characters that would let a name break, rewrite or disguise the log line
/// it is written into: C0 and C1 controls and DEL (newlines, terminal escape
/// sequences), the Unicode line and paragraph separators, and the bidi
/// overrides, embeddings and isolates that make a line display in another
/// order than it reads.
fn corrupts_a_log_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// An iPAddress entry: four bytes for IPv4, sixteen for IPv6. Eight and 32
/// (address and mask) belong to name constraints, not to a certificate's
/// own names.
fn ip_address(octets: &[u8]) -> Result<String, NameError> {
    let ip = if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        IpAddr::V4(Ipv4Addr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(octets) {
        IpAddr::V6(Ipv6Addr::from(v6))
    } else {
        return Err(NameError::BadName);
    };
    Ok(ip.to_string())
}

/// One DER element: its tag byte and its contents.
#[derive(Clone, Copy)]
struct Element<'a> {
    tag: u8,
    value: &'a [u8],
}

/// The elements of a constructed value, read one after another.
struct Elements<'a> {
    rest: &'a [u8],
}

impl<'a> Elements<'a> {
    fn new(contents: &'a [u8]) -> Self {
        Elements { rest: contents }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, whatever its tag.
    fn element(&mut self) -> Result<Element<'a>, NameError> {
        let [tag, first, rest @ ..] = self.rest else {
            return Err(NameError::Malformed);
        };
        // Tag numbers above 30 take more bytes; no field we walk uses one.
        if tag & 0x1f == 0x1f {
            return Err(NameError::Malformed);
        }
        let (len, rest) = match *first {
            short @ 0..=0x7f => (usize::from(short), rest),
            // 0x80 is BER's indefinite length, which DER forbids. Four length
            // bytes already allow 4 GiB, more than any certificate.
            long @ 0x81..=0x84 => {
                let count = usize::from(long & 0x7f);
                let (bytes, rest) = rest.split_at_checked(count).ok_or(NameError::Malformed)?;
                let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                // DER's shortest form: no leading zero byte, and the long form
                // only for lengths the short form cannot hold.
                if bytes.first() == Some(&0) || len < 0x80 {
                    return Err(NameError::Malformed);
                }
                (len, rest)
            }
            _ => return Err(NameError::Malformed),
        };
        let (value, rest) = rest.split_at_checked(len).ok_or(NameError::Malformed)?;
        self.rest = rest;
        Ok(Element { tag: *tag, value })
    }

    /// The contents of the next element, which must have tag `tag`.
    fn expect(&mut self, tag: u8) -> Result<&'a [u8], NameError> {
        match self.element()? {
            e if e.tag == tag => Ok(e.value),
            _ => Err(NameError::Malformed),
        }
    }

    /// The contents of the next element if it has tag `tag`; otherwise
    /// nothing is consumed.
    fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, NameError> {
        if self.rest.first() == Some(&tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Checks that nothing follows the elements read.
    fn finish(self) -> Result<(), NameError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(NameError::Malformed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Certificates made by OpenSSL 3.0, all with one P-256 key
    // (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem`)
    // and `-days 3650 -outform DER`. They are also the fuzzer's seeds.

    /// `openssl req -x509 -key key.pem -subj "/CN=laptop"`
    const CN_ONLY: &[u8] = include_bytes!("../../fuzz/corpus/cert_names/accept-cn-only.der");
    /// `openssl req -x509 -key key.pem -subj "/" -addext "subjectAltName=DNS:ci.example.net"`
    const SAN_ONLY: &[u8] = include_bytes!("../../fuzz/corpus/cert_names/accept-san-only.der");
    /// `openssl req -x509 -key key.pem -subj "/CN=laptop" -addext
    /// "subjectAltName=DNS:a.example,IP:10.0.0.1,IP:::1,email:x@y.z,URI:https://u.example/"`
    const CN_AND_SAN: &[u8] = include_bytes!("../../fuzz/corpus/cert_names/accept-cn-and-san.der");
    /// `openssl req -x509 -key key.pem -multivalue-rdn
    /// -subj "/O=Example/CN=first/OU=Ops/CN=second+CN=third"`
    const MANY_CNS: &[u8] = include_bytes!("../../fuzz/corpus/cert_names/accept-many-cns.der");
    /// `openssl req -x509 -key key.pem -utf8 -subj "/CN=Zoë 日本"`
    const UTF8_CN: &[u8] = include_bytes!("../../fuzz/corpus/cert_names/accept-utf8-cn.der");
    /// `openssl req -x509 -key key.pem -config mask.cnf -utf8
    /// -subj "/CN=printable/CN=日本/CN=Zoë/emailAddress=x@y.z"`, where mask.cnf
    /// holds `[req]`, `distinguished_name = dn`, `string_mask = default` and
    /// an empty `[dn]`: OpenSSL then picks PrintableString, BMPString and
    /// TeletexString for the three CNs (and, without extensions, version 1).
    const STRING_TYPES: &[u8] = include_bytes!("../../fuzz/corpus/cert_names/accept-string-types.der");
    /// `openssl req -new -key key.pem -subj "/CN=v1-client" -out v1.csr`, then
    /// `openssl x509 -req -in v1.csr -CA ca.pem -CAkey key.pem -set_serial 7`
    /// with ca.pem from `openssl req -x509 -key key.pem -subj "/CN=Test CA"`:
    /// version 1, no extensions, an issuer that differs from the subject.
    const V1: &[u8] = include_bytes!("../../fuzz/corpus/cert_names/accept-v1-no-extensions.der");
    /// `openssl req -x509 -key key.pem -subj "/CN=crowded"
    /// -addext "subjectAltName=DNS:n1.example,...,DNS:n32.example"`
    const MOST_ALT_NAMES: &[u8] = include_bytes!("../../fuzz/corpus/cert_names/accept-most-alt-names.der");
    /// The same with `DNS:n33.example` too.
    const TOO_MANY_ALT_NAMES: &[u8] =
        include_bytes!("../../fuzz/corpus/cert_names/reject-too-many-alt-names.der");

    const ACCEPTED: [&[u8]; 8] = [
        CN_ONLY,
        SAN_ONLY,
        CN_AND_SAN,
        MANY_CNS,
        UTF8_CN,
        STRING_TYPES,
        V1,
        MOST_ALT_NAMES,
    ];

    fn names(common: &[&str], alt: &[&str]) -> CertNames {
        CertNames {
            common_names: common.iter().map(|s| s.to_string()).collect(),
            alt_names: alt.iter().map(|s| s.to_string()).collect(),
        }
    }

    // The expected names below are what `openssl x509 -inform DER -noout
    // -subject -ext subjectAltName -nameopt sep_multiline,sname,utf8` prints
    // for each file (IPv6 rewritten from OpenSSL's 0:0:0:0:0:0:0:1 to ::1);
    // `names_agree_with_openssl` checks that again wherever openssl is
    // installed.

    #[test]
    fn common_name_only() {
        assert_eq!(cert_names(CN_ONLY), Ok(names(&["laptop"], &[])));
    }

    #[test]
    fn alt_name_only_with_an_empty_subject() {
        assert_eq!(cert_names(SAN_ONLY), Ok(names(&[], &["ci.example.net"])));
    }

    #[test]
    fn every_kind_of_alt_name_in_certificate_order() {
        assert_eq!(
            cert_names(CN_AND_SAN),
            Ok(names(
                &["laptop"],
                &["a.example", "10.0.0.1", "::1", "x@y.z", "https://u.example/"]
            ))
        );
    }

    #[test]
    fn several_common_names_in_encoding_order() {
        // DER sorts the multi-valued RDN's SET: "third" encodes shorter.
        assert_eq!(
            cert_names(MANY_CNS),
            Ok(names(&["first", "third", "second"], &[]))
        );
    }

    #[test]
    fn utf8_common_name() {
        assert_eq!(cert_names(UTF8_CN), Ok(names(&["Zoë 日本"], &[])));
    }

    #[test]
    fn printable_bmp_and_teletex_common_names() {
        // emailAddress is an IA5String attribute, not a common name.
        assert_eq!(
            cert_names(STRING_TYPES),
            Ok(names(&["printable", "日本", "Zoë"], &[]))
        );
    }

    #[test]
    fn version_1_without_extensions_and_the_issuer_unread() {
        assert_eq!(cert_names(V1), Ok(names(&["v1-client"], &[])));
    }

    #[test]
    fn at_most_max_names_alt_names() {
        let expected: Vec<String> = (1..=MAX_NAMES).map(|i| format!("n{i}.example")).collect();
        let read = cert_names(MOST_ALT_NAMES).unwrap();
        assert_eq!(read.common_names, ["crowded"]);
        assert_eq!(read.alt_names, expected);
        assert_eq!(cert_names(TOO_MANY_ALT_NAMES), Err(NameError::TooManyNames));
    }

    /// Reads the names the way OpenSSL prints them, or `None` without openssl.
    fn openssl_names(der: &[u8]) -> Option<CertNames> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("openssl")
            .args([
                "x509",
                "-inform",
                "DER",
                "-noout",
                "-subject",
                "-ext",
                "subjectAltName",
            ])
            .args(["-nameopt", "sep_multiline,sname,utf8"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take().unwrap().write_all(der).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "openssl failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut read = CertNames::default();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            if line.starts_with("subject=") {
                // One RDN per indented line, its attributes joined by " + ".
                while let Some(rdn) = lines.next_if(|l| l.starts_with("    ")) {
                    for attribute in rdn.trim().split(" + ") {
                        if let Some(cn) = attribute.strip_prefix("CN=") {
                            read.common_names.push(cn.to_string());
                        }
                    }
                }
            } else if line.starts_with("X509v3 Subject Alternative Name") {
                for entry in lines.next().unwrap().trim().split(", ") {
                    let (kind, value) = entry.split_once(':').unwrap();
                    read.alt_names.push(match kind {
                        "IP Address" => value.parse::<IpAddr>().unwrap().to_string(),
                        _ => value.to_string(),
                    });
                }
            }
        }
        Some(read)
    }

    #[test]
    fn names_agree_with_openssl() {
        for der in ACCEPTED {
            let Some(expected) = openssl_names(der) else {
                eprintln!("openssl not found; names not compared with it");
                return;
            };
            assert_eq!(cert_names(der), Ok(expected));
        }
    }

    // Synthetic certificates: the skeleton of RFC 5280 with empty issuer,
    // validity and key, around the subject and extensions a test needs.

    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match u8::try_from(contents.len()) {
            Ok(short) if short < 0x80 => out.push(short),
            _ => {
                let len = contents.len().to_be_bytes();
                let significant = &len[len.iter().take_while(|&&b| b == 0).count()..];
                out.push(0x80 | significant.len() as u8);
                out.extend_from_slice(significant);
            }
        }
        out.extend_from_slice(contents);
        out
    }

    /// A certificate around `subject` (a whole Name element) and `after_key`,
    /// the raw fields after subjectPublicKeyInfo.
    fn certificate_with(subject: &[u8], after_key: &[u8]) -> Vec<u8> {
        let algorithm = der(
            SEQUENCE,
            &der(OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
        );
        let tbs = [
            &der(VERSION, &der(INTEGER, &[2]))[..],
            &der(INTEGER, &[1]),
            &algorithm,
            &der(SEQUENCE, &[]), // issuer
            &der(SEQUENCE, &[]), // validity
            subject,
            &der(SEQUENCE, &[]), // subjectPublicKeyInfo
            after_key,
        ]
        .concat();
        der(
            SEQUENCE,
            &[der(SEQUENCE, &tbs), algorithm, der(BIT_STRING, &[0])].concat(),
        )
    }

    /// A certificate with `subject` and the given Extension elements.
    fn certificate(subject: &[u8], extensions: &[Vec<u8>]) -> Vec<u8> {
        let after_key = if extensions.is_empty() {
            Vec::new()
        } else {
            der(EXTENSIONS, &der(SEQUENCE, &extensions.concat()))
        };
        certificate_with(subject, &after_key)
    }

    fn attribute(oid: &[u8], value: &[u8]) -> Vec<u8> {
        der(SEQUENCE, &[der(OID, oid), value.to_vec()].concat())
    }

    /// A Name with one RDN per commonName value element.
    fn subject(values: &[Vec<u8>]) -> Vec<u8> {
        let rdns: Vec<u8> = values
            .iter()
            .flat_map(|v| der(SET, &attribute(COMMON_NAME_OID, v)))
            .collect();
        der(SEQUENCE, &rdns)
    }

    fn no_subject() -> Vec<u8> {
        der(SEQUENCE, &[])
    }

    /// A subjectAltName Extension element holding the GeneralName elements.
    fn alt_names(entries: &[Vec<u8>]) -> Vec<u8> {
        let names = der(SEQUENCE, &entries.concat());
        der(
            SEQUENCE,
            &[der(OID, SUBJECT_ALT_NAME_OID), der(OCTET_STRING, &names)].concat(),
        )
    }

    fn common_name(tag: u8, bytes: &[u8]) -> Result<CertNames, NameError> {
        cert_names(&certificate(&subject(&[der(tag, bytes)]), &[]))
    }

    fn alt_name(tag: u8, bytes: &[u8]) -> Result<CertNames, NameError> {
        cert_names(&certificate(&no_subject(), &[alt_names(&[der(tag, bytes)])]))
    }

    #[test]
    fn synthetic_certificates_read_back() {
        let cert = certificate(
            &subject(&[der(UTF8_STRING, b"laptop")]),
            &[alt_names(&[der(DNS_NAME, b"a.example")])],
        );
        assert_eq!(cert_names(&cert), Ok(names(&["laptop"], &["a.example"])));
        // A critical flag, and unique identifiers before the extensions.
        let critical = der(
            SEQUENCE,
            &[
                der(OID, SUBJECT_ALT_NAME_OID),
                der(BOOLEAN, &[0xff]),
                der(OCTET_STRING, &der(SEQUENCE, &der(DNS_NAME, b"b.example"))),
            ]
            .concat(),
        );
        let after_key = [
            der(ISSUER_UNIQUE_ID, &[0, 1]),
            der(SUBJECT_UNIQUE_ID, &[0, 2]),
            der(EXTENSIONS, &der(SEQUENCE, &critical)),
        ]
        .concat();
        assert_eq!(
            cert_names(&certificate_with(&no_subject(), &after_key)),
            Ok(names(&[], &["b.example"]))
        );
        // Out of order, they are not a certificate.
        let swapped = [der(SUBJECT_UNIQUE_ID, &[0, 2]), der(ISSUER_UNIQUE_ID, &[0, 1])].concat();
        assert_eq!(
            cert_names(&certificate_with(&no_subject(), &swapped)),
            Err(NameError::Malformed)
        );
    }

    #[test]
    fn string_types_become_text() {
        assert_eq!(common_name(IA5_STRING, b"x@y").unwrap().common_names, ["x@y"]);
        // Latin-1, as OpenSSL shows TeletexString.
        assert_eq!(
            common_name(TELETEX_STRING, b"Zo\xeb").unwrap().common_names,
            ["Zoë"]
        );
        assert_eq!(
            common_name(BMP_STRING, &[0x65, 0xe5, 0x67, 0x2c])
                .unwrap()
                .common_names,
            ["日本"]
        );
        assert_eq!(
            common_name(UNIVERSAL_STRING, &[0, 1, 0xf6, 0])
                .unwrap()
                .common_names,
            ["\u{1f600}"]
        );
        // PrintableString is read as ASCII, not its narrower alphabet.
        assert_eq!(
            common_name(PRINTABLE_STRING, b"*.a_b@c").unwrap().common_names,
            ["*.a_b@c"]
        );
    }

    #[test]
    fn text_that_is_not_printable_rejects_the_certificate() {
        for (tag, bytes) in [
            (UTF8_STRING, &b"\xff"[..]),
            (UTF8_STRING, b"a\xc3"),
            (UTF8_STRING, b""),
            (PRINTABLE_STRING, b"Zo\xeb"),
            (IA5_STRING, b"Zo\xeb"),
            (BMP_STRING, &[0x00, 0x41, 0x00]),
            (BMP_STRING, &[0xd8, 0x3d, 0xde, 0x00]), // a surrogate pair: not UCS-2
            (UNIVERSAL_STRING, &[0x00, 0x11, 0x00, 0x00]),
            (TELETEX_STRING, b"a\x85b"), // NEL, a C1 control in Latin-1
            (0x12, b"123"),              // NumericString is no DirectoryString
        ] {
            assert_eq!(
                common_name(tag, bytes),
                Err(NameError::BadName),
                "{tag:#x} {bytes:?}"
            );
        }
        for tag in [DNS_NAME, RFC822_NAME, URI] {
            assert_eq!(alt_name(tag, b""), Err(NameError::BadName));
            assert_eq!(alt_name(tag, b"caf\xc3\xa9.example"), Err(NameError::BadName));
        }
    }

    #[test]
    fn characters_that_corrupt_a_log_line_reject_the_certificate() {
        for bad in [
            "a\nb",
            "a\rb",
            "\0",
            "a\tb",
            "\u{1b}[31mred",
            "\u{7f}",
            "\u{85}",
            "a\u{2028}b",
            "a\u{2029}b",
            "\u{202e}evil",
            "\u{2066}x",
        ] {
            assert_eq!(
                common_name(UTF8_STRING, bad.as_bytes()),
                Err(NameError::BadName),
                "{bad:?}"
            );
            assert_eq!(
                alt_name(DNS_NAME, bad.as_bytes()),
                Err(NameError::BadName),
                "{bad:?}"
            );
        }
        // A real certificate with a newline written over its subject CN.
        let mut cert = CN_ONLY.to_vec();
        let at = cert.windows(6).rposition(|w| w == b"laptop").unwrap();
        cert[at + 3] = b'\n';
        assert_eq!(cert_names(&cert), Err(NameError::BadName));
        // Joiners and other format characters are ordinary text.
        assert!(common_name(UTF8_STRING, "می\u{200c}خواهم".as_bytes()).is_ok());
    }

    #[test]
    fn ip_addresses_as_text() {
        assert_eq!(
            alt_name(IP_ADDRESS, &[192, 168, 1, 1]).unwrap().alt_names,
            ["192.168.1.1"]
        );
        let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4];
        assert_eq!(
            alt_name(IP_ADDRESS, &mapped).unwrap().alt_names,
            ["::ffff:1.2.3.4"]
        );
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(alt_name(IP_ADDRESS, &v6).unwrap().alt_names, ["2001:db8::1"]);
        // Address and mask, as name constraints write them, and other sizes.
        for len in [0, 3, 5, 8, 15, 17, 32] {
            assert_eq!(
                alt_name(IP_ADDRESS, &vec![1; len]),
                Err(NameError::BadName),
                "{len}"
            );
        }
    }

    #[test]
    fn names_without_text_are_skipped() {
        let hidden = der(
            SEQUENCE,
            &der(SET, &attribute(COMMON_NAME_OID, &der(UTF8_STRING, b"hidden"))),
        );
        let entries = [
            der(
                OTHER_NAME,
                &[der(OID, &[0x2b, 0x06, 0x01]), der(0xa0, &der(UTF8_STRING, b"x"))].concat(),
            ),
            der(X400_ADDRESS, &der(SEQUENCE, &[])),
            der(DIRECTORY_NAME, &hidden),
            der(EDI_PARTY_NAME, &der(0xa1, &der(UTF8_STRING, b"x"))),
            der(REGISTERED_ID, &[0x2b, 0x06, 0x01]),
            der(DNS_NAME, b"kept.example"),
        ];
        let cert = certificate(&no_subject(), &[alt_names(&entries)]);
        assert_eq!(cert_names(&cert), Ok(names(&[], &["kept.example"])));
        // Skipped names do not count towards the limit.
        let many = vec![der(REGISTERED_ID, &[0x2b]); 3 * MAX_NAMES];
        assert!(cert_names(&certificate(&no_subject(), &[alt_names(&many)])).is_ok());
        // A constructed dNSName is not DER, and 0x89 is no GeneralName.
        assert_eq!(
            alt_name(0xa2, &der(IA5_STRING, b"a.example")),
            Err(NameError::Malformed)
        );
        assert_eq!(alt_name(0x89, b"x"), Err(NameError::Malformed));
    }

    #[test]
    fn a_second_alt_name_extension_rejects() {
        let one = alt_names(&[der(DNS_NAME, b"a.example")]);
        let two = alt_names(&[der(DNS_NAME, b"b.example")]);
        assert_eq!(
            cert_names(&certificate(&no_subject(), &[one, two])),
            Err(NameError::Malformed)
        );
    }

    #[test]
    fn at_most_max_names_common_names() {
        let cns = |n: usize| {
            (0..n)
                .map(|i| der(UTF8_STRING, format!("cn{i}").as_bytes()))
                .collect::<Vec<_>>()
        };
        let read = cert_names(&certificate(&subject(&cns(MAX_NAMES)), &[])).unwrap();
        assert_eq!(read.common_names.len(), MAX_NAMES);
        assert_eq!(
            cert_names(&certificate(&subject(&cns(MAX_NAMES + 1)), &[])),
            Err(NameError::TooManyNames)
        );
    }

    #[test]
    fn every_truncation_is_rejected() {
        for cert in ACCEPTED {
            for len in 0..cert.len() {
                assert!(cert_names(&cert[..len]).is_err(), "{len} of {}", cert.len());
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        for cert in ACCEPTED {
            assert_eq!(cert_names(&[cert, &[0]].concat()), Err(NameError::Malformed));
            assert_eq!(cert_names(&[cert, cert].concat()), Err(NameError::Malformed));
        }
    }

    #[test]
    fn lengths_past_their_end_are_rejected() {
        // The whole certificate's length (30 82 01 77), one more than there is.
        let mut cert = CN_ONLY.to_vec();
        assert_eq!(cert[..4], [0x30, 0x82, 0x01, 0x77]);
        cert[3] = 0x78;
        assert_eq!(cert_names(&cert), Err(NameError::Malformed));
        // The subject CN's length, past the end of its attribute.
        let mut cert = CN_ONLY.to_vec();
        let at = cert.windows(6).rposition(|w| w == b"laptop").unwrap();
        assert_eq!(cert[at - 1], 6);
        cert[at - 1] = 7;
        assert_eq!(cert_names(&cert), Err(NameError::Malformed));
        // A length of 4 GiB - 1.
        assert_eq!(
            cert_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0]),
            Err(NameError::Malformed)
        );
    }

    #[test]
    fn indefinite_lengths_are_rejected() {
        let mut cert = vec![0x30, 0x80];
        cert.extend_from_slice(&CN_ONLY[4..]);
        cert.extend_from_slice(&[0, 0]);
        assert_eq!(cert_names(&cert), Err(NameError::Malformed));
    }

    #[test]
    fn lengths_must_be_minimal() {
        let with_cn_header = |header: &[u8]| {
            let value = [header, b"laptop"].concat();
            let name = der(SEQUENCE, &der(SET, &attribute(COMMON_NAME_OID, &value)));
            cert_names(&certificate(&name, &[]))
        };
        assert_eq!(with_cn_header(&[UTF8_STRING, 6]), Ok(names(&["laptop"], &[])));
        for header in [
            &[UTF8_STRING, 0x81, 6][..],
            &[UTF8_STRING, 0x82, 0, 6],
            &[UTF8_STRING, 0x84, 0, 0, 0, 6],
            &[UTF8_STRING, 0x85, 0, 0, 0, 0, 6],
        ] {
            assert_eq!(with_cn_header(header), Err(NameError::Malformed), "{header:x?}");
        }
        // The long form where it is needed.
        let long = "x".repeat(200);
        assert_eq!(
            common_name(UTF8_STRING, long.as_bytes()).unwrap().common_names,
            [long]
        );
    }

    #[test]
    fn high_tag_numbers_are_rejected() {
        let name = der(
            SEQUENCE,
            &der(SET, &attribute(&[0x55, 0x04, 0x0a], &[0x1f, 0x20, 0x01, b'x'])),
        );
        assert_eq!(cert_names(&certificate(&name, &[])), Err(NameError::Malformed));
    }

    #[test]
    fn deep_nesting_is_skipped_not_followed() {
        let mut nested = Vec::new();
        for _ in 0..3000 {
            nested = der(SEQUENCE, &nested);
        }
        // As an organizationName value, an unknown extension and an otherName.
        let name = der(
            SEQUENCE,
            &[
                der(SET, &attribute(&[0x55, 0x04, 0x0a], &nested)),
                der(SET, &attribute(COMMON_NAME_OID, &der(UTF8_STRING, b"deep"))),
            ]
            .concat(),
        );
        let unknown = der(
            SEQUENCE,
            &[der(OID, &[0x2b, 0x06, 0x01]), der(OCTET_STRING, &nested)].concat(),
        );
        let other = der(
            OTHER_NAME,
            &[der(OID, &[0x2b, 0x06, 0x01]), der(0xa0, &nested)].concat(),
        );
        let cert = certificate(
            &name,
            &[unknown, alt_names(&[other, der(DNS_NAME, b"d.example")])],
        );
        assert_eq!(cert_names(&cert), Ok(names(&["deep"], &["d.example"])));
        // In the subject's place it is no Name.
        assert_eq!(cert_names(&certificate(&nested, &[])), Err(NameError::Malformed));
    }

    /// Whatever comes back from arbitrary input keeps the promises a log
    /// line and the role mapping rely on.
    fn check_promises(input: &[u8]) {
        if let Ok(read) = cert_names(input) {
            assert!(read.common_names.len() <= MAX_NAMES && read.alt_names.len() <= MAX_NAMES);
            for name in read.common_names.iter().chain(&read.alt_names) {
                assert!(
                    !name.is_empty() && !name.chars().any(corrupts_a_log_line),
                    "{name:?}"
                );
            }
        }
    }

    #[test]
    fn random_bytes_and_mutations_never_panic() {
        // xorshift64: reproducible without a crate.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for cert in ACCEPTED {
            for _ in 0..2000 {
                let mut mutated = cert.to_vec();
                for _ in 0..=next() % 3 {
                    let at = next() as usize % mutated.len();
                    mutated[at] = next() as u8;
                }
                check_promises(&mutated);
            }
        }
        for _ in 0..2000 {
            let len = next() as usize % 64;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            check_promises(&bytes);
            bytes.insert(0, 0x30);
            check_promises(&bytes);
        }
    }
}
