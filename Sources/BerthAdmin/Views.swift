import BerthCore
import BerthNet
import Foundation
import NIOConcurrencyHelpers

/// A port as the API shows it: no password, plus the read-only fields of the contract.
struct PortView: Encodable {
    var id: String
    var name: String
    var `protocol`: MailProtocol
    var encryption: Encryption
    var tlsRequired: Bool
    var port: Int
    @NullEncoded var certificatePath: String?
    @NullEncoded var privateKeyPath: String?
    var description: String
    var maxConnections: Int
    var maxConnectionsPerClient: Int
    var proxyProtocol: Bool
    var assignedTo: [String]
    @NullEncoded var certificate: CertificateInfo?
    var warnings: [String]
}

/// What the API shows of a certificate file: a port's `certificate`, and for the library
/// also the issuer.
struct CertificateDetails: Sendable {
    var info: CertificateInfo
    var issuer: String?
}

/// Reads certificate details for the API, cached per file version.
final class CertificateInspector: Sendable {
    private let cache = NIOLockedValueBox<[CertificateSource: (FileFingerprint, Result<CertificateDetails, CertificateError>)]>([:])
    let defaultSource: CertificateSource
    let allowPlaintextAuth: Bool

    init(defaultSource: CertificateSource, allowPlaintextAuth: Bool = false) {
        self.defaultSource = defaultSource
        self.allowPlaintextAuth = allowPlaintextAuth
    }

    func inspect(_ source: CertificateSource?) -> Result<CertificateInfo, CertificateError> {
        details(source).map(\.info)
    }

    /// Loads `source` (nil: the default certificate) with the rules of `CertificateLoader`,
    /// unless the files are unchanged since the last look.
    func details(_ source: CertificateSource?) -> Result<CertificateDetails, CertificateError> {
        let source = source ?? defaultSource
        let fingerprint = FileFingerprint.of(source)
        if let (cachedPrint, result) = cache.withLockedValue({ $0[source] }), cachedPrint == fingerprint {
            return result
        }
        let result: Result<CertificateDetails, CertificateError>
        do {
            let loaded = try CertificateLoader.load(source)
            result = .success(CertificateDetails(info: loaded.info, issuer: loaded.issuer))
        } catch let error as CertificateError {
            result = .failure(error)
        } catch {
            result = .failure(CertificateError("\(error)"))
        }
        cache.withLockedValue { $0[source] = (fingerprint, result) }
        return result
    }

    func view(_ port: BerthCore.Port, in bindings: Bindings, listeners: [ListenerStatus], now: Date = Date()) -> PortView {
        var warnings = bindings.warnings(for: port, allowPlaintextAuth: allowPlaintextAuth)
        for listener in listeners where listener.portId == port.id && listener.state == .failed {
            warnings.append("not listening on \(listener.address): \(listener.error ?? "bind failed")")
        }
        var info: CertificateInfo?
        if port.encryption != .none {
            switch inspect(port.certificateSource) {
            case .success(let certificate):
                info = certificate
                warnings += Self.expiryWarnings(certificate, now: now)
                if port.certificateSource == nil && certificate.selfSigned {
                    warnings.append("uses the server's self-signed default certificate; clients will not trust it")
                } else if certificate.selfSigned {
                    warnings.append("certificate is self-signed; clients will not trust it")
                }
                // What a running listener found: its certificate does not cover the host name
                // clients reach that address by.
                for listener in listeners
                where listener.portId == port.id && (listener.state == .listening || listener.state == .draining) {
                    if let problem = listener.error { warnings.append("on \(listener.address): \(problem)") }
                }
            case .failure(let error):
                // Only a listener that loaded the certificate before it went bad still has
                // one; after a restart there is none to keep, and its own warning says so.
                let serving = listeners.contains {
                    $0.portId == port.id && ($0.state == .listening || $0.state == .draining)
                }
                warnings.append(
                    "certificate unusable: \(error.description)"
                        + (serving ? " (running listeners still serve the certificate loaded before)" : ""))
            }
        }
        return PortView(
            id: port.id, name: port.name, protocol: port.protocol, encryption: port.encryption,
            tlsRequired: port.tlsRequired, port: port.port, certificatePath: port.certificatePath,
            privateKeyPath: port.privateKeyPath, description: port.description,
            maxConnections: port.maxConnections, maxConnectionsPerClient: port.maxConnectionsPerClient,
            proxyProtocol: port.proxyProtocol,
            assignedTo: bindings.assignedTo(port.id), certificate: info, warnings: warnings)
    }

    /// Warns of a certificate that expired or expires within 30 days (time to renew it).
    static func expiryWarnings(_ certificate: CertificateInfo, now: Date) -> [String] {
        let days = Int(certificate.notAfter.timeIntervalSince(now) / 86400)
        if certificate.notAfter < now {
            return ["certificate expired on \(ISO8601DateFormatter().string(from: certificate.notAfter))"]
        } else if days < 30 {
            return ["certificate expires in \(days) days"]
        }
        return []
    }
}
