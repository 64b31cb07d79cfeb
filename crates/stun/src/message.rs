//! STUN messages (RFC 8489 §5, §14): the total parser [`parse`] and the encoder [`Message::encode`].
//!
//! The parser never panics and allocates at most what the input holds. It checks the header
//! (zero top bits, magic cookie, length), every attribute's bounds and padding, verifies
//! FINGERPRINT when present, and rejects unknown comprehension-required attributes
//! (RFC 8489 §6.3.1 and §7.3.3) listing them all so an agent could answer 420.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::checksum::{crc32, hmac_sha1, hmac_sha256, macs_equal};
use crate::Error;

/// The fixed value in every RFC 5389/8489 header; it also keys the XOR of XOR-MAPPED-ADDRESS.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The size of the message header, which every STUN message starts with.
pub const HEADER_LEN: usize = 20;
/// XORed into the CRC-32 of FINGERPRINT so a STUN CRC never equals another protocol's (§14.7).
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Attribute type codes this crate understands (RFC 8489 §18.3, RFC 8445 §16.1, RFC 8656 §18).
pub mod attr {
    /// CHANNEL-NUMBER: the channel a ChannelBind binds (TURN).
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    /// LIFETIME: seconds an allocation is asked for or granted (TURN).
    pub const LIFETIME: u16 = 0x000D;
    /// XOR-PEER-ADDRESS: a peer's address as the relay sees it (TURN).
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// DATA: application bytes in a Send or Data indication (TURN).
    pub const DATA: u16 = 0x0013;
    /// XOR-RELAYED-ADDRESS: the address the server allocated for us (TURN).
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// REQUESTED-ADDRESS-FAMILY: IPv4 or IPv6 relayed address wanted (TURN).
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    /// EVEN-PORT: asks for an even relayed port (TURN).
    pub const EVEN_PORT: u16 = 0x0018;
    /// REQUESTED-TRANSPORT: the relayed protocol, 17 for UDP (TURN).
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// DONT-FRAGMENT: asks the relay to set DF on relayed packets (TURN).
    pub const DONT_FRAGMENT: u16 = 0x001A;
    /// RESERVATION-TOKEN: names a port reserved by EVEN-PORT (TURN).
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    /// ADDITIONAL-ADDRESS-FAMILY: asks for a second, IPv6 relayed address (RFC 8656).
    pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
    /// ADDRESS-ERROR-CODE: why one of two address families failed (RFC 8656).
    pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
    /// ICMP: an ICMP error the relay received from a peer (RFC 8656).
    pub const ICMP: u16 = 0x8004;
    /// MAPPED-ADDRESS: the reflexive address, unobfuscated (RFC 3489 servers).
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME: short- or long-term credential user name.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY: HMAC-SHA1 over the message.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE: class, number and reason phrase of an error response.
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES: the types a 420 response did not understand.
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// REALM: long-term credential realm.
    pub const REALM: u16 = 0x0014;
    /// NONCE: long-term credential nonce.
    pub const NONCE: u16 = 0x0015;
    /// MESSAGE-INTEGRITY-SHA256: HMAC-SHA256 over the message (RFC 8489).
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// PASSWORD-ALGORITHM: the hash chosen for long-term credentials (RFC 8489).
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    /// USERHASH: hashed user name (RFC 8489).
    pub const USERHASH: u16 = 0x001E;
    /// XOR-MAPPED-ADDRESS: the reflexive address, XORed with the cookie and transaction id.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY: ICE candidate priority (RFC 8445), seen in connectivity checks.
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE: ICE nomination flag (RFC 8445).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// PASSWORD-ALGORITHMS: the hashes a server offers (RFC 8489).
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    /// ALTERNATE-DOMAIN: the domain of an ALTERNATE-SERVER (RFC 8489).
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    /// SOFTWARE: the sender's product name and version.
    pub const SOFTWARE: u16 = 0x8022;
    /// ALTERNATE-SERVER: where a 300 response redirects to.
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    /// FINGERPRINT: CRC-32 of the message, to tell STUN from other protocols on one port.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED: ICE role and tie breaker (RFC 8445).
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING: ICE role and tie breaker (RFC 8445).
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

/// The Binding method, the only one a plain STUN client needs (RFC 8489 §18.2).
pub const METHOD_BINDING: u16 = 0x001;

/// Method numbers (RFC 8489 §18.2, RFC 8656 §17), so TURN traffic can be told from ICE checks.
pub mod method {
    /// Binding: what is my address (STUN, ICE connectivity checks).
    pub const BINDING: u16 = 0x001;
    /// Allocate: create a relayed address (TURN request).
    pub const ALLOCATE: u16 = 0x003;
    /// Refresh: keep or release an allocation (TURN request).
    pub const REFRESH: u16 = 0x004;
    /// Send: data to a peer through the relay (TURN indication).
    pub const SEND: u16 = 0x006;
    /// Data: data from a peer through the relay (TURN indication).
    pub const DATA: u16 = 0x007;
    /// CreatePermission: let a peer's packets through the relay (TURN request).
    pub const CREATE_PERMISSION: u16 = 0x008;
    /// ChannelBind: bind a peer to a 4-byte-header channel (TURN request).
    pub const CHANNEL_BIND: u16 = 0x009;

    /// Whether `method` is one of TURN's (RFC 8656 §17).
    pub fn is_turn(method: u16) -> bool {
        matches!(
            method,
            ALLOCATE | REFRESH | SEND | DATA | CREATE_PERMISSION | CHANNEL_BIND
        )
    }
}

/// PASSWORD-ALGORITHM's number for MD5 (RFC 8489 §18.5), the RFC 5389 long-term key.
pub const PASSWORD_ALGORITHM_MD5: u16 = 0x0001;
/// PASSWORD-ALGORITHM's number for SHA-256 (RFC 8489 §18.5).
pub const PASSWORD_ALGORITHM_SHA256: u16 = 0x0002;

/// One entry of PASSWORD-ALGORITHMS, or the PASSWORD-ALGORITHM a client chose (RFC 8489 §14.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordAlgorithm {
    /// [`PASSWORD_ALGORITHM_MD5`], [`PASSWORD_ALGORITHM_SHA256`] or an unknown number.
    pub algorithm: u16,
    /// Algorithm parameters, without padding (none for MD5 and SHA-256).
    pub parameters: Vec<u8>,
}

/// The four kinds of message (RFC 8489 §5): a request gets exactly one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Asks for a response.
    Request,
    /// Expects none.
    Indication,
    /// A request succeeded.
    SuccessResponse,
    /// A request failed; the message carries ERROR-CODE.
    ErrorResponse,
}

/// The 96-bit id that ties a response to its request; random so responses cannot be forged blind.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// A fresh id from the operating system's CSPRNG (RFC 8489 §6: "uniformly and randomly").
    pub fn random() -> Result<Self, Error> {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// ERROR-CODE's content: a number 300..=699 and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCode {
    /// Class × 100 + number, e.g. 420 for "unknown attribute".
    pub code: u16,
    /// The reason phrase, UTF-8, for logs only.
    pub reason: String,
}

/// One attribute, decoded. Attributes this crate does not interpret keep their raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribute {
    /// The reflexive transport address, de-obfuscated.
    XorMappedAddress(SocketAddr),
    /// The reflexive transport address from an old-style server.
    MappedAddress(SocketAddr),
    /// Why a request failed.
    ErrorCode(ErrorCode),
    /// Which attribute types a 420 response did not understand.
    UnknownAttributes(Vec<u16>),
    /// The sender's product name.
    Software(String),
    /// A credential's user name.
    Username(String),
    /// A long-term credential realm.
    Realm(String),
    /// A long-term credential nonce.
    Nonce(String),
    /// HMAC-SHA1 over the message up to here; check with [`verify_message_integrity`].
    MessageIntegrity([u8; 20]),
    /// ICE candidate priority.
    Priority(u32),
    /// ICE nomination.
    UseCandidate,
    /// ICE controlled role with its tie breaker.
    IceControlled(u64),
    /// ICE controlling role with its tie breaker.
    IceControlling(u64),
    /// The CRC-32 (already verified by the parser).
    Fingerprint(u32),
    /// HMAC-SHA256 over the message up to here, 16 to 32 bytes (RFC 8489 §14.6); check with
    /// [`verify_message_integrity_sha256`].
    MessageIntegritySha256(Vec<u8>),
    /// The long-term password hashes a server offers, in its order of preference.
    PasswordAlgorithms(Vec<PasswordAlgorithm>),
    /// The long-term password hash a client chose from PASSWORD-ALGORITHMS.
    PasswordAlgorithm(PasswordAlgorithm),
    /// The address the TURN server relays for us, de-obfuscated.
    XorRelayedAddress(SocketAddr),
    /// A peer's address on the relay's side, de-obfuscated.
    XorPeerAddress(SocketAddr),
    /// An allocation's lifetime in seconds; 0 in a Refresh releases it.
    Lifetime(u32),
    /// Application bytes carried by a Send or Data indication.
    Data(Vec<u8>),
    /// A TURN channel number, 0x4000..=0x4FFF.
    ChannelNumber(u16),
    /// The IP protocol number to relay (17: UDP).
    RequestedTransport(u8),
    /// Asks the relay to set the DF bit.
    DontFragment,
    /// Any other known or comprehension-optional attribute, kept raw.
    Other {
        /// The attribute type.
        kind: u16,
        /// The value, without padding.
        value: Vec<u8>,
    },
}

/// A decoded STUN message: header fields and attributes in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request, indication or response.
    pub class: Class,
    /// The method (12 bits); [`METHOD_BINDING`] for binding.
    pub method: u16,
    /// Ties responses to requests.
    pub transaction_id: TransactionId,
    /// Attributes in the order they appeared; those after MESSAGE-INTEGRITY other than
    /// FINGERPRINT are dropped, as RFC 8489 §14.5 requires.
    pub attributes: Vec<Attribute>,
}

impl Message {
    /// A Binding request with a fresh random transaction id and no attributes.
    pub fn binding_request() -> Result<Self, Error> {
        Ok(Self {
            class: Class::Request,
            method: METHOD_BINDING,
            transaction_id: TransactionId::random()?,
            attributes: Vec::new(),
        })
    }

    /// The reflexive address: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from an RFC 3489 server.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        let xor = self.attributes.iter().find_map(|a| match a {
            Attribute::XorMappedAddress(addr) => Some(*addr),
            _ => None,
        });
        xor.or_else(|| {
            self.attributes.iter().find_map(|a| match a {
                Attribute::MappedAddress(addr) => Some(*addr),
                _ => None,
            })
        })
    }

    /// ERROR-CODE, if the message carries one.
    pub fn error_code(&self) -> Option<&ErrorCode> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::ErrorCode(code) => Some(code),
            _ => None,
        })
    }

    /// SOFTWARE, if the message carries one.
    pub fn software(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Software(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// XOR-RELAYED-ADDRESS: the relayed address of a TURN Allocate success.
    pub fn relayed_address(&self) -> Option<SocketAddr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::XorRelayedAddress(addr) => Some(*addr),
            _ => None,
        })
    }

    /// XOR-PEER-ADDRESS: the peer of a TURN Data indication or request.
    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::XorPeerAddress(addr) => Some(*addr),
            _ => None,
        })
    }

    /// LIFETIME in seconds.
    pub fn lifetime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Lifetime(seconds) => Some(*seconds),
            _ => None,
        })
    }

    /// DATA: the application bytes of a Send or Data indication.
    pub fn data(&self) -> Option<&[u8]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Data(bytes) => Some(bytes.as_slice()),
            _ => None,
        })
    }

    /// REALM, if the message carries one.
    pub fn realm(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Realm(realm) => Some(realm.as_str()),
            _ => None,
        })
    }

    /// NONCE, if the message carries one.
    pub fn nonce(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Nonce(nonce) => Some(nonce.as_str()),
            _ => None,
        })
    }

    /// PASSWORD-ALGORITHMS a server offered, if any.
    pub fn password_algorithms(&self) -> Option<&[PasswordAlgorithm]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::PasswordAlgorithms(list) => Some(list.as_slice()),
            _ => None,
        })
    }

    /// Whether MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 is present (not yet verified).
    pub fn has_integrity(&self) -> bool {
        self.attributes.iter().any(|a| {
            matches!(
                a,
                Attribute::MessageIntegrity(_) | Attribute::MessageIntegritySha256(_)
            )
        })
    }

    /// Whether a verified FINGERPRINT was present.
    pub fn has_fingerprint(&self) -> bool {
        self.attributes
            .iter()
            .any(|a| matches!(a, Attribute::Fingerprint(_)))
    }

    /// Serializes the message. MESSAGE-INTEGRITY and FINGERPRINT in `attributes` are
    /// computed here (their stored values are ignored): MESSAGE-INTEGRITY with `integrity_key`
    /// (skipped when it is `None`), FINGERPRINT over everything before it.
    pub fn encode(&self, integrity_key: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        let kind = message_type(self.class, self.method);
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0);
        for attribute in &self.attributes {
            match attribute {
                Attribute::MessageIntegrity(_) => {
                    let Some(key) = integrity_key else { continue };
                    set_length(&mut out, 24);
                    let mac = hmac_sha1(key, &[&out]);
                    push_attribute(&mut out, attr::MESSAGE_INTEGRITY, &mac);
                }
                Attribute::MessageIntegritySha256(_) => {
                    let Some(key) = integrity_key else { continue };
                    set_length(&mut out, 36);
                    let mac = hmac_sha256(key, &[&out]);
                    push_attribute(&mut out, attr::MESSAGE_INTEGRITY_SHA256, &mac);
                }
                Attribute::Fingerprint(_) => {
                    set_length(&mut out, 8);
                    let crc = crc32(&out) ^ FINGERPRINT_XOR;
                    push_attribute(&mut out, attr::FINGERPRINT, &crc.to_be_bytes());
                }
                other => {
                    let (kind, value) = encode_value(other, &self.transaction_id);
                    push_attribute(&mut out, kind, &value);
                }
            }
        }
        set_length(&mut out, 0);
        out
    }
}

/// Sets the header length to the attributes so far plus `extra` bytes still to come.
fn set_length(out: &mut [u8], extra: usize) {
    let length = (out.len() - HEADER_LEN + extra) as u16;
    out[2..4].copy_from_slice(&length.to_be_bytes());
}

fn push_attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + padding(value.len()), 0);
}

fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

fn encode_value(attribute: &Attribute, transaction_id: &TransactionId) -> (u16, Vec<u8>) {
    match attribute {
        Attribute::XorMappedAddress(addr) => (
            attr::XOR_MAPPED_ADDRESS,
            encode_address(xor_address(*addr, transaction_id)),
        ),
        Attribute::MappedAddress(addr) => (attr::MAPPED_ADDRESS, encode_address(*addr)),
        Attribute::ErrorCode(ErrorCode { code, reason }) => {
            let mut value = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
            value.extend_from_slice(reason.as_bytes());
            (attr::ERROR_CODE, value)
        }
        Attribute::UnknownAttributes(kinds) => (
            attr::UNKNOWN_ATTRIBUTES,
            kinds.iter().flat_map(|k| k.to_be_bytes()).collect(),
        ),
        Attribute::Software(s) => (attr::SOFTWARE, s.as_bytes().to_vec()),
        Attribute::Username(s) => (attr::USERNAME, s.as_bytes().to_vec()),
        Attribute::Realm(s) => (attr::REALM, s.as_bytes().to_vec()),
        Attribute::Nonce(s) => (attr::NONCE, s.as_bytes().to_vec()),
        Attribute::Priority(p) => (attr::PRIORITY, p.to_be_bytes().to_vec()),
        Attribute::UseCandidate => (attr::USE_CANDIDATE, Vec::new()),
        Attribute::IceControlled(t) => (attr::ICE_CONTROLLED, t.to_be_bytes().to_vec()),
        Attribute::IceControlling(t) => (attr::ICE_CONTROLLING, t.to_be_bytes().to_vec()),
        Attribute::Other { kind, value } => (*kind, value.clone()),
        Attribute::PasswordAlgorithms(list) => {
            let mut value = Vec::new();
            for algorithm in list {
                push_password_algorithm(&mut value, algorithm);
            }
            (attr::PASSWORD_ALGORITHMS, value)
        }
        Attribute::PasswordAlgorithm(algorithm) => {
            let mut value = Vec::new();
            push_password_algorithm(&mut value, algorithm);
            (attr::PASSWORD_ALGORITHM, value)
        }
        Attribute::XorRelayedAddress(addr) => (
            attr::XOR_RELAYED_ADDRESS,
            encode_address(xor_address(*addr, transaction_id)),
        ),
        Attribute::XorPeerAddress(addr) => (
            attr::XOR_PEER_ADDRESS,
            encode_address(xor_address(*addr, transaction_id)),
        ),
        Attribute::Lifetime(seconds) => (attr::LIFETIME, seconds.to_be_bytes().to_vec()),
        Attribute::Data(bytes) => (attr::DATA, bytes.clone()),
        Attribute::ChannelNumber(number) => {
            let [high, low] = number.to_be_bytes();
            (attr::CHANNEL_NUMBER, vec![high, low, 0, 0])
        }
        Attribute::RequestedTransport(protocol) => {
            (attr::REQUESTED_TRANSPORT, vec![*protocol, 0, 0, 0])
        }
        Attribute::DontFragment => (attr::DONT_FRAGMENT, Vec::new()),
        Attribute::MessageIntegritySha256(mac) => (attr::MESSAGE_INTEGRITY_SHA256, mac.clone()),
        // Computed by `Message::encode` itself.
        Attribute::MessageIntegrity(mac) => (attr::MESSAGE_INTEGRITY, mac.to_vec()),
        Attribute::Fingerprint(crc) => (attr::FINGERPRINT, crc.to_be_bytes().to_vec()),
    }
}

fn push_password_algorithm(out: &mut Vec<u8>, algorithm: &PasswordAlgorithm) {
    out.extend_from_slice(&algorithm.algorithm.to_be_bytes());
    out.extend_from_slice(&(algorithm.parameters.len() as u16).to_be_bytes());
    out.extend_from_slice(&algorithm.parameters);
    out.resize(out.len() + padding(algorithm.parameters.len()), 0);
}

fn encode_address(addr: SocketAddr) -> Vec<u8> {
    let mut value = Vec::with_capacity(20);
    match addr.ip() {
        IpAddr::V4(ip) => {
            value.extend_from_slice(&[0, 1]);
            value.extend_from_slice(&addr.port().to_be_bytes());
            value.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            value.extend_from_slice(&[0, 2]);
            value.extend_from_slice(&addr.port().to_be_bytes());
            value.extend_from_slice(&ip.octets());
        }
    }
    value
}

/// XOR-MAPPED-ADDRESS obfuscation (RFC 8489 §14.2); it is its own inverse.
fn xor_address(addr: SocketAddr, transaction_id: &TransactionId) -> SocketAddr {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match addr.ip() {
        IpAddr::V4(ip) => {
            let mut octets = ip.octets();
            for (o, c) in octets.iter_mut().zip(cookie) {
                *o ^= c;
            }
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        IpAddr::V6(ip) => {
            let mut octets = ip.octets();
            let key = cookie.iter().chain(transaction_id.0.iter());
            for (o, k) in octets.iter_mut().zip(key) {
                *o ^= k;
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
    };
    SocketAddr::new(ip, port)
}

fn message_type(class: Class, method: u16) -> u16 {
    let class_bits: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::SuccessResponse => 0b10,
        Class::ErrorResponse => 0b11,
    };
    let m = method & 0x0FFF;
    (m & 0x000F)
        | ((m & 0x0070) << 1)
        | ((m & 0x0F80) << 2)
        | ((class_bits & 0b01) << 4)
        | ((class_bits & 0b10) << 7)
}

fn split_message_type(kind: u16) -> (Class, u16) {
    let class = match ((kind >> 7) & 0b10) | ((kind >> 4) & 0b01) {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    };
    let method = (kind & 0x000F) | ((kind >> 1) & 0x0070) | ((kind >> 2) & 0x0F80);
    (class, method)
}

/// Quick check whether a datagram could be STUN, to demultiplex a socket shared with DTLS/RTP
/// (RFC 7983: first byte 0..=3) before parsing it fully.
pub fn looks_like_stun(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN
        && bytes[0] < 4
        && bytes[4..8] == MAGIC_COOKIE.to_be_bytes()
        && bytes.len().is_multiple_of(4)
}

/// Parses one STUN message from exactly the bytes of one datagram.
///
/// This is the entry point of the `stun_message` fuzz target: it must return for every input.
pub fn parse(bytes: &[u8]) -> Result<Message, Error> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::TooShort { len: bytes.len() });
    }
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    if kind & 0xC000 != 0 {
        return Err(Error::NotStun);
    }
    let cookie = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if cookie != MAGIC_COOKIE {
        return Err(Error::BadMagicCookie(cookie));
    }
    let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if !length.is_multiple_of(4) {
        return Err(Error::UnalignedLength(length));
    }
    if HEADER_LEN + length != bytes.len() {
        return Err(Error::LengthMismatch {
            header: length,
            actual: bytes.len() - HEADER_LEN,
        });
    }
    let (class, method) = split_message_type(kind);
    let mut transaction_id = [0u8; 12];
    transaction_id.copy_from_slice(&bytes[8..20]);
    let transaction_id = TransactionId(transaction_id);

    let mut attributes = Vec::new();
    let mut unknown_required = Vec::new();
    // RFC 8489 §14.5, §14.6: after MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and
    // FINGERPRINT count; after MESSAGE-INTEGRITY-SHA256 only FINGERPRINT.
    let mut integrity = Integrity::None;
    let mut offset = HEADER_LEN;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < 4 {
            return Err(Error::TruncatedAttribute { offset });
        }
        let attr_kind = u16::from_be_bytes([rest[0], rest[1]]);
        let value_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let padded = value_len + padding(value_len);
        if rest.len() < 4 + padded {
            return Err(Error::TruncatedAttribute { offset });
        }
        let value = &rest[4..4 + value_len];
        if attr_kind == attr::FINGERPRINT {
            if offset + 4 + padded != bytes.len() {
                return Err(Error::AttributeAfterFingerprint);
            }
            let crc = fixed::<4>(attr_kind, value).map(u32::from_be_bytes)?;
            let expected = crc32(&bytes[..offset]) ^ FINGERPRINT_XOR;
            if crc != expected {
                return Err(Error::FingerprintMismatch {
                    expected,
                    actual: crc,
                });
            }
            attributes.push(Attribute::Fingerprint(crc));
        } else if integrity == Integrity::None
            || (integrity == Integrity::Sha1 && attr_kind == attr::MESSAGE_INTEGRITY_SHA256)
        {
            match decode_value(attr_kind, value, &transaction_id)? {
                Some(attribute) => {
                    match attribute {
                        Attribute::MessageIntegrity(_) => integrity = Integrity::Sha1,
                        Attribute::MessageIntegritySha256(_) => integrity = Integrity::Sha256,
                        _ => {}
                    }
                    attributes.push(attribute);
                }
                None => unknown_required.push(attr_kind),
            }
        }
        offset += 4 + padded;
    }
    if !unknown_required.is_empty() {
        return Err(Error::UnknownRequiredAttributes(unknown_required));
    }
    Ok(Message {
        class,
        method,
        transaction_id,
        attributes,
    })
}

/// Which integrity attribute the parser has passed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Integrity {
    None,
    Sha1,
    Sha256,
}

/// Decodes one attribute value; `Ok(None)` for an unknown comprehension-required type.
fn decode_value(
    kind: u16,
    value: &[u8],
    transaction_id: &TransactionId,
) -> Result<Option<Attribute>, Error> {
    let attribute = match kind {
        attr::XOR_MAPPED_ADDRESS => {
            Attribute::XorMappedAddress(xor_address(decode_address(kind, value)?, transaction_id))
        }
        attr::MAPPED_ADDRESS => Attribute::MappedAddress(decode_address(kind, value)?),
        attr::ERROR_CODE => Attribute::ErrorCode(decode_error_code(value)?),
        attr::UNKNOWN_ATTRIBUTES => {
            if !value.len().is_multiple_of(2) {
                return Err(Error::BadAttribute {
                    kind,
                    reason: "odd length",
                });
            }
            Attribute::UnknownAttributes(
                value
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            )
        }
        attr::SOFTWARE => Attribute::Software(text(kind, value, 763)?),
        attr::USERNAME => Attribute::Username(text(kind, value, 513)?),
        attr::REALM => Attribute::Realm(text(kind, value, 763)?),
        attr::NONCE => Attribute::Nonce(text(kind, value, 763)?),
        attr::MESSAGE_INTEGRITY => Attribute::MessageIntegrity(fixed::<20>(kind, value)?),
        attr::PRIORITY => Attribute::Priority(u32::from_be_bytes(fixed::<4>(kind, value)?)),
        attr::USE_CANDIDATE => {
            fixed::<0>(kind, value)?;
            Attribute::UseCandidate
        }
        attr::ICE_CONTROLLED => {
            Attribute::IceControlled(u64::from_be_bytes(fixed::<8>(kind, value)?))
        }
        attr::ICE_CONTROLLING => {
            Attribute::IceControlling(u64::from_be_bytes(fixed::<8>(kind, value)?))
        }
        // A length RFC 8489 §14.6 does not allow (16..=32 in steps of 4) cannot be a MAC: kept
        // raw, so the message parses but never counts as integrity-protected.
        attr::MESSAGE_INTEGRITY_SHA256 if !valid_sha256_mac_len(value.len()) => Attribute::Other {
            kind,
            value: value.to_vec(),
        },
        attr::MESSAGE_INTEGRITY_SHA256 => Attribute::MessageIntegritySha256(value.to_vec()),
        attr::PASSWORD_ALGORITHMS => {
            Attribute::PasswordAlgorithms(decode_password_algorithms(kind, value)?)
        }
        attr::PASSWORD_ALGORITHM => {
            let mut list = decode_password_algorithms(kind, value)?;
            if list.len() != 1 {
                return Err(Error::BadAttribute {
                    kind,
                    reason: "not exactly one algorithm",
                });
            }
            Attribute::PasswordAlgorithm(list.remove(0))
        }
        attr::XOR_RELAYED_ADDRESS => {
            Attribute::XorRelayedAddress(xor_address(decode_address(kind, value)?, transaction_id))
        }
        attr::XOR_PEER_ADDRESS => {
            Attribute::XorPeerAddress(xor_address(decode_address(kind, value)?, transaction_id))
        }
        attr::LIFETIME => Attribute::Lifetime(u32::from_be_bytes(fixed::<4>(kind, value)?)),
        attr::DATA => Attribute::Data(value.to_vec()),
        attr::CHANNEL_NUMBER => {
            let [high, low, _, _] = fixed::<4>(kind, value)?;
            Attribute::ChannelNumber(u16::from_be_bytes([high, low]))
        }
        attr::REQUESTED_TRANSPORT => {
            let [protocol, _, _, _] = fixed::<4>(kind, value)?;
            Attribute::RequestedTransport(protocol)
        }
        attr::DONT_FRAGMENT => {
            fixed::<0>(kind, value)?;
            Attribute::DontFragment
        }
        attr::USERHASH
        | attr::ALTERNATE_DOMAIN
        | attr::ALTERNATE_SERVER
        | attr::REQUESTED_ADDRESS_FAMILY
        | attr::EVEN_PORT
        | attr::RESERVATION_TOKEN => Attribute::Other {
            kind,
            value: value.to_vec(),
        },
        // 0x0000..=0x7FFF are comprehension-required (RFC 8489 §14).
        unknown if unknown < 0x8000 => return Ok(None),
        _ => Attribute::Other {
            kind,
            value: value.to_vec(),
        },
    };
    Ok(Some(attribute))
}

fn valid_sha256_mac_len(len: usize) -> bool {
    (16..=32).contains(&len) && len.is_multiple_of(4)
}

fn decode_password_algorithms(kind: u16, value: &[u8]) -> Result<Vec<PasswordAlgorithm>, Error> {
    let mut list = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(Error::BadAttribute {
                kind,
                reason: "truncated algorithm",
            });
        }
        let algorithm = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let padded = len + padding(len);
        if rest.len() < 4 + padded {
            return Err(Error::BadAttribute {
                kind,
                reason: "algorithm parameters run past the end",
            });
        }
        list.push(PasswordAlgorithm {
            algorithm,
            parameters: rest[4..4 + len].to_vec(),
        });
        rest = &rest[4 + padded..];
    }
    Ok(list)
}

fn fixed<const N: usize>(kind: u16, value: &[u8]) -> Result<[u8; N], Error> {
    value.try_into().map_err(|_| Error::BadAttribute {
        kind,
        reason: "wrong length",
    })
}

fn text(kind: u16, value: &[u8], max_len: usize) -> Result<String, Error> {
    if value.len() > max_len {
        return Err(Error::BadAttribute {
            kind,
            reason: "too long",
        });
    }
    String::from_utf8(value.to_vec()).map_err(|_| Error::BadAttribute {
        kind,
        reason: "not UTF-8",
    })
}

fn decode_address(kind: u16, value: &[u8]) -> Result<SocketAddr, Error> {
    let bad = |reason| Error::BadAttribute { kind, reason };
    if value.len() < 4 {
        return Err(bad("too short"));
    }
    let port = u16::from_be_bytes([value[2], value[3]]);
    let ip = match (value[1], value.len()) {
        (0x01, 8) => IpAddr::V4(Ipv4Addr::new(value[4], value[5], value[6], value[7])),
        (0x02, 20) => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&value[4..20]);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        (0x01 | 0x02, _) => return Err(bad("wrong length for the family")),
        _ => return Err(bad("unknown address family")),
    };
    Ok(SocketAddr::new(ip, port))
}

fn decode_error_code(value: &[u8]) -> Result<ErrorCode, Error> {
    let bad = |reason| Error::BadAttribute {
        kind: attr::ERROR_CODE,
        reason,
    };
    if value.len() < 4 {
        return Err(bad("too short"));
    }
    let class = u16::from(value[2] & 0x07);
    let number = u16::from(value[3]);
    if !(3..=6).contains(&class) || number > 99 {
        return Err(bad("code out of range"));
    }
    let reason = text(attr::ERROR_CODE, &value[4..], 763)?;
    Ok(ErrorCode {
        code: class * 100 + number,
        reason,
    })
}

/// Checks MESSAGE-INTEGRITY of a raw message with `key` (the short-term password, or the
/// long-term key MD5(username:realm:password)). `Ok(false)` when the HMAC differs, an error when
/// the message does not parse or has no MESSAGE-INTEGRITY. The MAC is compared in constant time.
pub fn verify_message_integrity(bytes: &[u8], key: &[u8]) -> Result<bool, Error> {
    parse(bytes)?;
    let (offset, len) =
        find_attribute(bytes, attr::MESSAGE_INTEGRITY).ok_or(Error::NoMessageIntegrity)?;
    if len != 20 {
        return Err(Error::NoMessageIntegrity);
    }
    let header = header_covering(bytes, offset + 4 + len);
    let mac = hmac_sha1(key, &[&header, &bytes[HEADER_LEN..offset]]);
    Ok(macs_equal(&mac, &bytes[offset + 4..offset + 4 + len]))
}

/// Checks MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6) of a raw message with `key`, accepting the
/// truncated forms (16..=32 bytes) the RFC allows. Like [`verify_message_integrity`] otherwise.
pub fn verify_message_integrity_sha256(bytes: &[u8], key: &[u8]) -> Result<bool, Error> {
    parse(bytes)?;
    let (offset, len) =
        find_attribute(bytes, attr::MESSAGE_INTEGRITY_SHA256).ok_or(Error::NoMessageIntegrity)?;
    if !valid_sha256_mac_len(len) {
        return Err(Error::NoMessageIntegrity);
    }
    let header = header_covering(bytes, offset + 4 + len);
    let mac = hmac_sha256(key, &[&header, &bytes[HEADER_LEN..offset]]);
    Ok(mac
        .get(..len)
        .is_some_and(|mac| macs_equal(mac, &bytes[offset + 4..offset + 4 + len])))
}

/// The offset and value length of the first attribute of type `kind` in a message that parsed.
fn find_attribute(bytes: &[u8], kind: u16) -> Option<(usize, usize)> {
    let mut offset = HEADER_LEN;
    while offset + 4 <= bytes.len() {
        let found = u16::from_be_bytes([bytes[offset], bytes[offset + 1]]);
        let len = usize::from(u16::from_be_bytes([bytes[offset + 2], bytes[offset + 3]]));
        if offset + 4 + len > bytes.len() {
            return None;
        }
        if found == kind {
            return Some((offset, len));
        }
        offset += 4 + len + padding(len);
    }
    None
}

/// The header with its length set to cover the attributes up to `end`, as the MAC saw it.
fn header_covering(bytes: &[u8], end: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&bytes[..HEADER_LEN]);
    let covered = (end - HEADER_LEN) as u16;
    header[2..4].copy_from_slice(&covered.to_be_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_round_trips_for_every_class() {
        for class in [
            Class::Request,
            Class::Indication,
            Class::SuccessResponse,
            Class::ErrorResponse,
        ] {
            for method in [0x001, 0x003, 0x0FFF, 0x0A5A] {
                assert_eq!(
                    split_message_type(message_type(class, method)),
                    (class, method)
                );
            }
        }
        assert_eq!(message_type(Class::SuccessResponse, METHOD_BINDING), 0x0101);
        assert_eq!(message_type(Class::ErrorResponse, METHOD_BINDING), 0x0111);
    }

    #[test]
    fn encoded_binding_response_parses_back() {
        let tid = TransactionId([7; 12]);
        for addr in ["198.51.100.7:40000", "[2001:db8::42]:1234"] {
            let message = Message {
                class: Class::SuccessResponse,
                method: METHOD_BINDING,
                transaction_id: tid,
                attributes: vec![
                    Attribute::XorMappedAddress(addr.parse().unwrap()),
                    Attribute::Software("rtcdesk".into()),
                    Attribute::Fingerprint(0),
                ],
            };
            let parsed = parse(&message.encode(None)).unwrap();
            assert_eq!(parsed.mapped_address(), Some(addr.parse().unwrap()));
            assert_eq!(parsed.software(), Some("rtcdesk"));
            assert!(parsed.has_fingerprint());
        }
    }

    #[test]
    fn mapped_address_is_the_fallback() {
        let message = Message {
            class: Class::SuccessResponse,
            method: METHOD_BINDING,
            transaction_id: TransactionId([1; 12]),
            attributes: vec![Attribute::MappedAddress("192.0.2.9:9".parse().unwrap())],
        };
        let parsed = parse(&message.encode(None)).unwrap();
        assert_eq!(
            parsed.mapped_address(),
            Some("192.0.2.9:9".parse().unwrap())
        );
    }

    #[test]
    fn error_code_is_decoded() {
        let message = Message {
            class: Class::ErrorResponse,
            method: METHOD_BINDING,
            transaction_id: TransactionId([1; 12]),
            attributes: vec![Attribute::ErrorCode(ErrorCode {
                code: 420,
                reason: "Unknown Attribute".into(),
            })],
        };
        let parsed = parse(&message.encode(None)).unwrap();
        assert_eq!(parsed.class, Class::ErrorResponse);
        assert_eq!(parsed.error_code().unwrap().code, 420);
    }

    #[test]
    fn unknown_required_attributes_are_listed_and_optional_ones_kept() {
        let message = Message {
            class: Class::SuccessResponse,
            method: METHOD_BINDING,
            transaction_id: TransactionId([1; 12]),
            attributes: vec![
                Attribute::Other {
                    kind: 0x7F01,
                    value: vec![1],
                },
                Attribute::Other {
                    kind: 0xC001,
                    value: vec![2, 3],
                },
                Attribute::Other {
                    kind: 0x0042,
                    value: vec![],
                },
            ],
        };
        assert_eq!(
            parse(&message.encode(None)),
            Err(Error::UnknownRequiredAttributes(vec![0x7F01, 0x0042]))
        );
        let optional_only = Message {
            attributes: vec![Attribute::Other {
                kind: 0xC001,
                value: vec![2, 3],
            }],
            ..message
        };
        assert_eq!(parse(&optional_only.encode(None)), Ok(optional_only));
    }

    #[test]
    fn turn_attributes_round_trip_and_both_integrities_verify() {
        let key = [9u8; 16];
        let message = Message {
            class: Class::SuccessResponse,
            method: method::ALLOCATE,
            transaction_id: TransactionId([5; 12]),
            attributes: vec![
                Attribute::XorRelayedAddress("203.0.113.9:49152".parse().unwrap()),
                Attribute::XorPeerAddress("[2001:db8::7]:5000".parse().unwrap()),
                Attribute::Lifetime(600),
                Attribute::Data(vec![1, 2, 3, 4, 5]),
                Attribute::ChannelNumber(0x4001),
                Attribute::RequestedTransport(17),
                Attribute::DontFragment,
                Attribute::PasswordAlgorithms(vec![
                    PasswordAlgorithm {
                        algorithm: PASSWORD_ALGORITHM_SHA256,
                        parameters: vec![],
                    },
                    PasswordAlgorithm {
                        algorithm: 0x7777,
                        parameters: vec![1, 2, 3],
                    },
                ]),
                Attribute::PasswordAlgorithm(PasswordAlgorithm {
                    algorithm: PASSWORD_ALGORITHM_MD5,
                    parameters: vec![],
                }),
                Attribute::MessageIntegrity([0; 20]),
                Attribute::MessageIntegritySha256(vec![0; 32]),
                Attribute::Fingerprint(0),
            ],
        };
        let bytes = message.encode(Some(&key));
        let parsed = parse(&bytes).unwrap();
        // Everything but the MACs and the CRC, which encode computes, comes back as it was.
        assert_eq!(
            parsed.attributes[..9],
            message.attributes[..9],
            "decoded attributes"
        );
        assert_eq!(parsed.relayed_address(), message.relayed_address());
        assert_eq!(parsed.lifetime(), Some(600));
        assert_eq!(parsed.data(), Some(&[1, 2, 3, 4, 5][..]));
        assert!(parsed.has_integrity() && parsed.has_fingerprint());
        assert_eq!(verify_message_integrity(&bytes, &key), Ok(true));
        assert_eq!(verify_message_integrity_sha256(&bytes, &key), Ok(true));
        assert_eq!(verify_message_integrity_sha256(&bytes, b"other"), Ok(false));
    }

    #[test]
    fn attributes_after_message_integrity_sha256_are_ignored() {
        let message = Message {
            class: Class::Request,
            method: method::REFRESH,
            transaction_id: TransactionId([6; 12]),
            attributes: vec![
                Attribute::MessageIntegritySha256(vec![0; 32]),
                Attribute::Lifetime(0),
            ],
        };
        let parsed = parse(&message.encode(Some(b"k"))).unwrap();
        assert_eq!(parsed.lifetime(), None);
    }

    #[test]
    fn a_message_integrity_sha256_of_impossible_length_is_no_integrity() {
        let message = Message {
            class: Class::SuccessResponse,
            method: method::ALLOCATE,
            transaction_id: TransactionId([1; 12]),
            attributes: vec![Attribute::Other {
                kind: attr::MESSAGE_INTEGRITY_SHA256,
                value: vec![0, 0x77],
            }],
        };
        let bytes = message.encode(None);
        let parsed = parse(&bytes).unwrap();
        assert!(!parsed.has_integrity());
        assert_eq!(
            verify_message_integrity_sha256(&bytes, b"key"),
            Err(Error::NoMessageIntegrity)
        );
    }

    #[test]
    fn malformed_turn_attributes_are_errors() {
        for (kind, value) in [
            (attr::LIFETIME, vec![0, 0, 1]),
            (attr::CHANNEL_NUMBER, vec![0x40]),
            (attr::REQUESTED_TRANSPORT, vec![17, 0]),
            (attr::XOR_RELAYED_ADDRESS, vec![0, 3, 0, 0, 1, 2, 3, 4]),
            (attr::XOR_PEER_ADDRESS, vec![0, 1, 0, 0, 1, 2]),
            (attr::DONT_FRAGMENT, vec![1]),
            (attr::PASSWORD_ALGORITHMS, vec![0, 1, 0, 8, 0, 0]),
            (attr::PASSWORD_ALGORITHM, vec![]),
        ] {
            let message = Message {
                class: Class::SuccessResponse,
                method: method::ALLOCATE,
                transaction_id: TransactionId([1; 12]),
                attributes: vec![Attribute::Other {
                    kind,
                    value: value.clone(),
                }],
            };
            assert!(
                matches!(
                    parse(&message.encode(None)),
                    Err(Error::BadAttribute { .. })
                ),
                "{kind:#06x} {value:?}"
            );
        }
    }

    #[test]
    fn broken_messages_are_errors_not_panics() {
        let good = Message {
            class: Class::SuccessResponse,
            method: METHOD_BINDING,
            transaction_id: TransactionId([3; 12]),
            attributes: vec![
                Attribute::XorMappedAddress("192.0.2.1:5".parse().unwrap()),
                Attribute::Fingerprint(0),
            ],
        }
        .encode(None);
        assert!(parse(&good).is_ok());
        // Every truncation and every single-bit flip must return, never panic.
        for len in 0..good.len() {
            assert!(parse(&good[..len]).is_err());
        }
        for bit in 0..good.len() * 8 {
            let mut flipped = good.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let _ = parse(&flipped);
        }
        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert!(matches!(
            parse(&bad_crc),
            Err(Error::FingerprintMismatch { .. })
        ));
        let mut bad_cookie = good.clone();
        bad_cookie[4] = 0;
        assert!(matches!(parse(&bad_cookie), Err(Error::BadMagicCookie(_))));
        let mut rtp_like = good;
        rtp_like[0] = 0x80;
        assert_eq!(parse(&rtp_like), Err(Error::NotStun));
    }
}
