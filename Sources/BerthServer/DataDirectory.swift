import BerthCore
import BerthNet
import BerthStore
import Foundation
import HummingbirdBcrypt
import Logging

/// First-start seeding and per-start upkeep of the data directory.
enum DataDirectory {
    static func prepare(_ options: ServeOptions, logger: Logger) throws -> (store: ConfigStore, hostname: String, passwordHash: String, defaultCertificate: CertificateSource) {
        let fm = FileManager.default
        try fm.createDirectory(atPath: options.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try ConfigStore(path: options.dataDirectory + "/berth.sqlite")
        // After a kill -9 or a power loss: tmp/ leftovers out, new/ files without an index
        // row in, before the Maildir writer starts.
        try MailStore.recover(dataDirectory: options.dataDirectory, store: store, logger: logger)

        let hostname = try resolveHostname(options, store: store)
        if !hostname.contains(".") {
            // RFC 5321 §4.1.1.1: the greeting names the server by its fully qualified domain name.
            logger.warning("server host name '\(hostname)' is not fully qualified; greetings and EHLO use it (set --hostname mx.example.com)")
        }
        let firstStart = try store.setting("initialized") == nil

        // Addresses: the interfaces as they are now, plus the wildcards.
        let discovered = InterfaceDiscovery.discover()
        try store.updateBindings { bindings, newID in
            bindings.mergeDiscovered(discovered)
            if firstStart && !options.noDefaultPorts {
                let ports = Port.defaults(makeID: { (try? newID()) ?? UUID().uuidString })
                bindings.ports += ports
                for index in bindings.ipAddresses.indices where bindings.ipAddresses[index].source == .interface {
                    bindings.ipAddresses[index].ports += ports.map(\.id)
                }
            }
        }

        let certificatePath = options.dataDirectory + "/certs/default.pem"
        try prepareDefaultCertificate(at: certificatePath, hostname: hostname, logger: logger)

        let passwordHash = try adminPasswordHash(options, store: store, firstStart: firstStart, logger: logger)
        if firstStart { try store.setSetting("initialized", ISO8601DateFormatter().string(from: Date())) }
        return (store, hostname, passwordHash, CertificateSource(certificatePath: certificatePath))
    }

    /// The default certificate, so that every TLS port works on a fresh machine. One Berth
    /// generated follows the host name (a new `--hostname`) and is made anew 30 days before
    /// it expires; one the admin put at the path is never touched.
    static func prepareDefaultCertificate(at path: String, hostname: String, logger: Logger) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            try CertificateLoader.generateSelfSigned(hostname: hostname, at: path)
            logger.notice("generated a self-signed certificate for \(hostname) at \(path)")
            return
        }
        let current: LoadedCertificate
        do {
            current = try CertificateLoader.load(CertificateSource(certificatePath: path))
        } catch {
            // Not provably Berth's own: leave it; the listeners report what is wrong with it.
            logger.warning("default certificate \(path) does not load (\(error)); left as it is (remove it and restart to have a new one generated)")
            return
        }
        guard let reason = current.berthSelfSignedRenewalReason(hostname: hostname) else { return }
        try CertificateLoader.generateSelfSigned(hostname: hostname, at: path)
        logger.notice("generated a new self-signed certificate for \(hostname) at \(path): the previous one \(reason)")
    }

    private static func resolveHostname(_ options: ServeOptions, store: ConfigStore) throws -> String {
        if let name = options.hostname {
            guard Hostname.isValid(name) else { throw BindingsError.invalid("hostname", "--hostname '\(name)' is not a valid host name") }
            try store.setSetting("hostname", name.lowercased())
            return name.lowercased()
        }
        if let stored = try store.setting("hostname") { return stored }
        let system = ProcessInfo.processInfo.hostName
        let name = Hostname.isValid(system) ? system.lowercased() : "localhost"
        try store.setSetting("hostname", name)
        return name
    }

    /// BINDINGS.md: the admin password comes from BERTH_ADMIN_PASSWORD at first start, or
    /// is generated and printed once; only a bcrypt hash is kept. Later starts keep it,
    /// unless `--reset-admin-password` asks to take the variable (or a new one) again.
    private static func adminPasswordHash(
        _ options: ServeOptions, store: ConfigStore, firstStart: Bool, logger: Logger
    ) throws -> String {
        let stored = try store.setting("adminPasswordHash")
        let given = options.adminPassword.flatMap { $0.isEmpty ? nil : $0 }
        if let stored, !options.resetAdminPassword {
            if let given, !Bcrypt.verify(given, hash: stored) {
                logger.warning("BERTH_ADMIN_PASSWORD differs from the stored admin password and is ignored (it is read at first start; use --reset-admin-password to change it)")
            }
            return stored
        }
        if let given {
            let hash = Bcrypt.hash(given, cost: ConfigStore.passwordHashCost)
            try store.setSetting("adminPasswordHash", hash)
            return hash
        }
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        let password = String((0..<20).map { _ in alphabet.randomElement(using: &generator)! })
        let hash = Bcrypt.hash(password, cost: ConfigStore.passwordHashCost)
        try store.setSetting("adminPasswordHash", hash)
        // Unbuffered, so that it is seen even when stdout is a pipe.
        FileHandle.standardOutput.write(Data("admin password: \(password)\n(shown once; set BERTH_ADMIN_PASSWORD to choose another)\n".utf8))
        return hash
    }
}
