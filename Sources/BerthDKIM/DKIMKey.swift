import Crypto
import _CryptoExtras
import Foundation

/// A domain's DKIM signing key as the config store keeps it: text that round-trips through
/// JSON and SQLite, with the parsed key kept beside it. Parsing an RSA key (PEM, DER, the
/// key check, BoringSSL's Montgomery set-up) costs as much as a signature, so it is done
/// once per key, not once per message. Equality and hashing look at the text only.
public struct DKIMKey: Sendable, Hashable {
    /// RFC 8301 §3.2: signers SHOULD use at least 2048 bits; verifiers need only handle up
    /// to 4096, so a larger key could make mail unverifiable.
    public static let rsaKeyBits: ClosedRange<Int> = 2048...4096

    /// `algorithm` and `privateKey` only change together, through `init`, so a key that
    /// was accepted once always parses.
    public private(set) var algorithm: DKIMAlgorithm
    public var selector: String
    /// What the store keeps: PEM (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY") for RSA,
    /// the base64 raw 32-byte seed for ed25519 (RFC 8463 §3).
    public private(set) var privateKey: String
    private let parsed: ParsedKey

    public static func == (a: DKIMKey, b: DKIMKey) -> Bool {
        a.algorithm == b.algorithm && a.selector == b.selector && a.privateKey == b.privateKey
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(algorithm)
        hasher.combine(selector)
        hasher.combine(privateKey)
    }

    /// Throws `DKIMError.invalidPrivateKey` when `privateKey` does not parse for `algorithm`,
    /// and `DKIMError.invalidSelector` when the selector is not a DNS name.
    public init(algorithm: DKIMAlgorithm, selector: String, privateKey: String) throws {
        guard isDNSName(selector) else { throw DKIMError.invalidSelector(selector) }
        parsed = ParsedKey(try SigningKey(algorithm: algorithm, text: privateKey))
        self.algorithm = algorithm
        self.selector = selector
        self.privateKey = privateKey
    }

    /// A fresh key: 2048-bit RSA (stored as PKCS#8 PEM) or an ed25519 seed.
    /// The selector is not checked here; signing throws if it is not a DNS name.
    public static func generate(_ algorithm: DKIMAlgorithm, selector: String) -> DKIMKey {
        switch algorithm {
        case .rsaSHA256:
            // Only a key size below 2048 makes this throw.
            let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
            return DKIMKey(checked: algorithm, selector: selector, privateKey: key.pkcs8PEMRepresentation, parsed: .rsa(key))
        case .ed25519SHA256:
            let key = Curve25519.Signing.PrivateKey()
            return DKIMKey(
                checked: algorithm, selector: selector, privateKey: key.rawRepresentation.base64EncodedString(), parsed: .ed25519(key))
        }
    }

    private init(checked algorithm: DKIMAlgorithm, selector: String, privateKey: String, parsed: SigningKey) {
        self.algorithm = algorithm
        self.selector = selector
        self.privateKey = privateKey
        self.parsed = ParsedKey(parsed)
    }

    /// The TXT record value to publish at "<selector>._domainkey.<domain>" (RFC 6376 §3.6.1):
    /// "v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo DER>" or
    /// "v=DKIM1; k=ed25519; p=<base64 raw 32-byte public key>" (RFC 8463 §4.2).
    /// An RSA record is longer than 255 octets, so the DNS zone must split it into several
    /// character-strings of one TXT record; verifiers join them.
    public var dnsRecord: String {
        "v=DKIM1; k=\(algorithm.keyType); p=\(publicKeyBytes.base64EncodedString())"
    }

    /// The `p=` bytes: SubjectPublicKeyInfo DER for RSA, the raw key for ed25519.
    var publicKeyBytes: Data {
        switch parsed.key {
        case .rsa(let key): key.publicKey.derRepresentation
        case .ed25519(let key): key.publicKey.rawRepresentation
        }
    }

    func signingKey() throws -> SigningKey {
        parsed.key
    }
}

/// The parsed key, shared by copies of a `DKIMKey` (immutable, so safe to share).
final class ParsedKey: Sendable {
    let key: SigningKey
    init(_ key: SigningKey) { self.key = key }
}

/// A parsed private key, ready to sign.
// BoringSSL signs with one RSA key from several threads safely (its lazily built
// Montgomery contexts are set up under a lock); swift-crypto just does not say Sendable.
enum SigningKey: @unchecked Sendable {
    case rsa(_RSA.Signing.PrivateKey)
    case ed25519(Curve25519.Signing.PrivateKey)

    init(algorithm: DKIMAlgorithm, text: String) throws {
        switch algorithm {
        case .rsaSHA256:
            let pem = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard pem.hasPrefix("-----BEGIN PRIVATE KEY-----") || pem.hasPrefix("-----BEGIN RSA PRIVATE KEY-----") else {
                throw DKIMError.invalidPrivateKey(algorithm, reason: "expected an unencrypted PEM \"PRIVATE KEY\" (PKCS#8) or \"RSA PRIVATE KEY\" (PKCS#1) block")
            }
            // The unsafe initialiser parses keys of any size so that the size check below
            // can name the accepted range instead of failing with a bare library error.
            let key: _RSA.Signing.PrivateKey
            do {
                key = try _RSA.Signing.PrivateKey(unsafePEMRepresentation: pem)
            } catch {
                throw DKIMError.invalidPrivateKey(algorithm, reason: "the PEM block is not an RSA private key")
            }
            guard DKIMKey.rsaKeyBits.contains(key.keySizeInBits) else {
                throw DKIMError.invalidPrivateKey(algorithm, reason: "the key has \(key.keySizeInBits) bits; use \(DKIMKey.rsaKeyBits.lowerBound) to \(DKIMKey.rsaKeyBits.upperBound) (RFC 8301 §3.2)")
            }
            self = .rsa(key)
        case .ed25519SHA256:
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let seed = Data(base64Encoded: trimmed), seed.count == 32,
                  let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed)
            else {
                throw DKIMError.invalidPrivateKey(algorithm, reason: "expected the base64 of a raw 32-byte ed25519 seed")
            }
            self = .ed25519(key)
        }
    }

    /// RFC 6376 §3.7 / RFC 8463 §3: the signature over the SHA-256 of the canonical header
    /// data. RSA signs the digest with PKCS#1 v1.5; Ed25519 (PureEdDSA) signs the 32 digest
    /// bytes themselves.
    func sign(_ digest: SHA256Digest) throws -> Data {
        switch self {
        case .rsa(let key):
            guard let signature = try? key.signature(for: digest, padding: .insecurePKCS1v1_5) else {
                throw DKIMError.signingFailed(.rsaSHA256)
            }
            return signature.rawRepresentation
        case .ed25519(let key):
            guard let signature = try? key.signature(for: Data(digest)) else {
                throw DKIMError.signingFailed(.ed25519SHA256)
            }
            return signature
        }
    }
}
