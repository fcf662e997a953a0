import BerthCore
import Foundation
import X509

/// Read-only facts about a loaded certificate beyond `CertificateInfo`: what the library's
/// API shows, and what start-up needs to tell Berth's own default certificate apart.
extension LoadedCertificate {
    /// The organization `CertificateLoader.generateSelfSigned` writes into its subject.
    public static let berthSelfSignedOrganization = "Berth self-signed"

    /// The leaf certificate's issuer, written like `info.subject`.
    public var issuer: String? {
        leaf.map { $0.issuer.description }
    }

    /// Berth generated it: self-signed, with the organization `generateSelfSigned` writes.
    /// An admin's certificate (even a self-signed one) is never this.
    public var isBerthSelfSigned: Bool {
        guard info.selfSigned, let leaf else { return false }
        return leaf.subject.contains { rdn in
            rdn.contains { attribute in
                attribute.type == .RDNAttributeType.organizationName
                    && String(attribute.value) == Self.berthSelfSignedOrganization
            }
        }
    }

    /// Whether one of its DNS names covers `hostname` (exact, or a wildcard, RFC 6125 §6.4).
    public func covers(_ hostname: String) -> Bool {
        info.dnsNames.contains { CertificateLibrary.covers($0, hostname) }
    }

    /// Days before expiry at which Berth replaces its own default certificate.
    public static let berthSelfSignedRenewalDays = 30

    /// Why Berth's own default certificate must be generated anew for `hostname`: it does
    /// not cover the host name (a new `--hostname`), or it expires within 30 days. Nil
    /// when it is still right, and always for a certificate Berth did not make: the admin's
    /// certificate is never replaced.
    public func berthSelfSignedRenewalReason(hostname: String, now: Date = Date()) -> String? {
        guard isBerthSelfSigned else { return nil }
        if !covers(hostname) {
            return "it names \(info.dnsNames.joined(separator: ", ")), not the host name \(hostname)"
        }
        let renewal = Double(Self.berthSelfSignedRenewalDays) * 86400
        if info.notAfter.timeIntervalSince(now) < renewal {
            let date = ISO8601DateFormatter().string(from: info.notAfter)
            return info.notAfter < now ? "it expired on \(date)" : "it expires on \(date)"
        }
        return nil
    }

    private var leaf: Certificate? {
        guard let first = chain.first, let der = try? first.toDERBytes() else { return nil }
        return try? Certificate(derEncoded: der)
    }
}
