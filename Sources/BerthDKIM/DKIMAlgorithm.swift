/// The signing algorithms Berth offers (RFC 6376 §3.3, RFC 8463 §3). rsa-sha1 is not among
/// them: RFC 8301 §3.1 forbids signing with it.
public enum DKIMAlgorithm: String, Sendable, Codable, CaseIterable {
    case rsaSHA256 = "rsa-sha256"
    case ed25519SHA256 = "ed25519-sha256"

    /// The key type (`k=`) published in the DNS record for this algorithm.
    var keyType: String {
        switch self {
        case .rsaSHA256: "rsa"
        case .ed25519SHA256: "ed25519"
        }
    }
}
