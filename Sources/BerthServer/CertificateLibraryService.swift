import BerthCore
import BerthNet
import BerthStore
import Logging
import ServiceLifecycle

/// Keeps the TLS layer's certificate library (what SNI picks from on every TLS port) equal
/// to the store's: every library certificate is loaded at start, after each change of the
/// store, and again when its files change on disk (a renewal). As for a port's certificate
/// (BINDINGS.md rule 4), one whose files go bad keeps being served as it was last loaded,
/// and the error is logged once per change, not on every look; the others are unaffected.
actor CertificateLibraryService: Service {
    /// The library the listeners' TLS contexts consult on every handshake.
    nonisolated let library: CertificateLibrary
    private let store: ConfigStore
    private let changes: AsyncStream<Void>
    private let logger: Logger
    private let refreshInterval: Duration

    /// The last good load of each certificate, by id.
    private var loaded: [String: LoadedCertificate] = [:]
    /// The last error logged per id, so that the same failure is logged once.
    private var loggedErrors: [String: String] = [:]

    /// `refreshInterval`: how often the files are looked at for a change on disk (the
    /// listener manager's interval for port certificates).
    init(
        store: ConfigStore, library: CertificateLibrary = CertificateLibrary(), changes: AsyncStream<Void>,
        logger: Logger, refreshInterval: Duration = .seconds(5)
    ) {
        self.store = store
        self.library = library
        self.changes = changes
        self.logger = logger
        self.refreshInterval = refreshInterval
    }

    func run() async throws {
        reload()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in self.changes { await self.reload() }
                }
                group.addTask {
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: self.refreshInterval) } catch { return }
                        await self.reload()
                    }
                }
                await group.waitForAll()
            }
        }
    }

    /// Brings the library in line with the store and the files. Certificates whose files
    /// are unchanged since their last load are not read again.
    func reload() {
        let certificates: [LibraryCertificate]
        do {
            certificates = try store.libraryCertificates()
        } catch {
            logger.error("certificate library: cannot read it from the store: \(error)")
            return
        }
        var changed = false
        var next: [String: LoadedCertificate] = [:]
        for certificate in certificates {
            let source = certificate.source
            let previous = loaded[certificate.id].flatMap { $0.source == source ? $0 : nil }
            if let previous, previous.fingerprint == FileFingerprint.of(source) {
                next[certificate.id] = previous
                continue
            }
            do {
                let fresh = try CertificateLoader.load(source)
                next[certificate.id] = fresh
                changed = true
                loggedErrors[certificate.id] = nil
                logger.info(
                    "certificate library: loaded \(certificate.id) (\(certificate.certificatePath)) for \(fresh.info.dnsNames.joined(separator: ", "))")
            } catch {
                var message = "certificate library: certificate \(certificate.id) \(certificate.certificatePath): \(error)"
                if let previous {
                    next[certificate.id] = previous
                    message += " (keeping the last good certificate)"
                } else {
                    message += " (SNI does not offer it)"
                }
                if loggedErrors[certificate.id] != message {
                    loggedErrors[certificate.id] = message
                    logger.error("\(message)")
                }
            }
        }
        for (id, gone) in loaded where next[id] == nil {
            changed = true
            if certificates.contains(where: { $0.id == id }) { continue }  // still listed, now failing with no last good
            logger.info("certificate library: removed \(id) (\(gone.source.certificatePath))")
        }
        for id in loggedErrors.keys where !certificates.contains(where: { $0.id == id }) {
            loggedErrors[id] = nil
        }
        loaded = next
        if changed {
            library.replace(with: certificates.compactMap { certificate in
                next[certificate.id].map { (id: certificate.id, certificate: $0) }
            })
        }
    }
}
