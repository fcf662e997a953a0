import BerthCore
import BerthNet
import Foundation

/// A library certificate as the API shows it (BINDINGS.md, "Certificates (the library) and
/// SNI"): never the password. The certificate's own fields are `null` (and `dnsNames`
/// empty) while its files do not load; `warnings` then says why.
struct LibraryCertificateView: Encodable {
    var id: String
    var certificatePath: String
    @NullEncoded var privateKeyPath: String?
    @NullEncoded var subject: String?
    var dnsNames: [String]
    @NullEncoded var issuer: String?
    @NullEncoded var notAfter: Date?
    @NullEncoded var selfSigned: Bool?
    /// The ids of the ports whose `certificatePath` is this file (they serve it without
    /// SNI, and keep it from being deleted), then `"sni"` when SNI can pick it: it loads
    /// and has at least one DNS name.
    var usedBy: [String]
    /// The names clients reach this server by (IP address host names, domains, the
    /// server's own name) that the certificate's DNS names cover (RFC 6125): where SNI
    /// picks it.
    var hostnames: [String]
    var warnings: [String]
}

extension CertificateInspector {
    /// `hostnames`: every name clients may ask for by SNI; the view lists those it covers.
    func view(
        _ certificate: LibraryCertificate, in bindings: Bindings, hostnames: [String] = [], now: Date = Date()
    ) -> LibraryCertificateView {
        var usedBy = bindings.ports(namingCertificate: certificate.certificatePath).map(\.id)
        var warnings: [String] = []
        var view = LibraryCertificateView(
            id: certificate.id, certificatePath: certificate.certificatePath, privateKeyPath: certificate.privateKeyPath,
            subject: nil, dnsNames: [], issuer: nil, notAfter: nil, selfSigned: nil, usedBy: [], hostnames: [], warnings: [])
        switch details(certificate.source) {
        case .success(let details):
            view.subject = details.info.subject
            view.dnsNames = details.info.dnsNames
            view.issuer = details.issuer
            view.notAfter = details.info.notAfter
            view.selfSigned = details.info.selfSigned
            view.hostnames = Set(hostnames.map { $0.lowercased() }).sorted().filter { name in
                details.info.dnsNames.contains { CertificateLibrary.covers($0, name) }
            }
            warnings += Self.expiryWarnings(details.info, now: now)
            if details.info.dnsNames.isEmpty {
                warnings.append("certificate has no DNS names (subjectAltName): SNI never picks it")
            } else {
                usedBy.append("sni")
            }
            if details.info.selfSigned {
                warnings.append("self-signed: clients will not trust it")
            }
        case .failure(let error):
            // The running server keeps a library certificate it loaded before its files went
            // bad (rule 4), as listeners do; one it never loaded is not offered.
            warnings.append(
                "certificate unusable: \(error.description) (SNI offers it only if the server loaded it before the file went bad)")
        }
        view.usedBy = usedBy
        view.warnings = warnings
        return view
    }
}
