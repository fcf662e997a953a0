/// Why a key could not be read or a message could not be signed. Messages name what to fix
/// and never contain key material.
public enum DKIMError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stored private key does not parse for its algorithm; `reason` says what was expected.
    case invalidPrivateKey(DKIMAlgorithm, reason: String)
    /// A selector must be a dot-separated list of DNS labels (RFC 6376 §3.1).
    case invalidSelector(String)
    /// The signing domain must be a dot-separated list of DNS labels (RFC 6376 §3.5 `d=`).
    case invalidDomain(String)
    /// The body hash is not a SHA-256 digest (32 bytes).
    case invalidBodyHash(byteCount: Int)
    /// RFC 6376 §5.4: the From header field MUST be signed.
    case fromNotSigned
    /// The header section is longer than the limit; the message is not signed.
    case headerSectionTooLarge(limit: Int)
    /// The crypto library refused to sign.
    case signingFailed(DKIMAlgorithm)

    public var description: String {
        switch self {
        case .invalidPrivateKey(let algorithm, let reason):
            "DKIM \(algorithm.rawValue) private key does not parse: \(reason)"
        case .invalidSelector(let selector):
            "DKIM selector \"\(selector)\" is not a DNS name: use letters, digits and hyphens, labels separated by dots"
        case .invalidDomain(let domain):
            "DKIM signing domain \"\(domain)\" is not a DNS name: use letters, digits and hyphens (IDNs as A-labels), labels separated by dots"
        case .invalidBodyHash(let count):
            "DKIM body hash has \(count) bytes; a SHA-256 digest has 32 (use DKIMBodyHasher.finalize())"
        case .fromNotSigned:
            "DKIM signed header list has no \"from\": RFC 6376 §5.4 requires the From field to be signed"
        case .headerSectionTooLarge(let limit):
            "message header section is longer than \(limit) bytes; not signed"
        case .signingFailed(let algorithm):
            "DKIM \(algorithm.rawValue) signing failed in the crypto library"
        }
    }
}

/// RFC 6376 §3.1 selectors and §3.5 `d=` are domain names: labels of 1–63 letters, digits
/// and hyphens (underscores tolerated, as DNS itself does), at most 253 octets in all.
/// Anything else (spaces, ";", "=") would corrupt the tag list or the DNS query.
func isDNSName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard !bytes.isEmpty, bytes.count <= 253 else { return false }
    for label in bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
        guard (1...63).contains(label.count),
              label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-"),
              label.allSatisfy({ isLetterOrDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") })
        else { return false }
    }
    return true
}

private func isLetterOrDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
        || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
}
