import BerthCore
import BerthNet
import BerthStore
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOSSL
import Prometheus

/// The admin HTTP API of BINDINGS.md. Every change goes through `ConfigStore.updateBindings`
/// and `Validation.validate` (the certificate library through `checkCertificate` and its
/// own store calls): one code path, one transaction, nothing half-applied.
public struct AdminAPI: Sendable {
    let store: ConfigStore
    let registry: ListenerRegistry
    let inspector: CertificateInspector
    let metrics: PrometheusCollectorRegistry
    let login: AdminLogin
    let webRoot: (root: String?, searched: [String])
    /// The server's host name (greetings, the web admin's header, certificate coverage).
    let serverName: String
    /// More names the admin listener answers to (the DNS names of `--admin-certificate`).
    let adminNames: Set<String>
    /// The admin listener's own address: no port may be assigned over it.
    let reserved: ReservedEndpoint?
    /// Called after the admin changed the queue (retry, delete), so the queue runner reloads.
    public var queueChanged: @Sendable () async -> Void = {}

    /// `allowPlaintextAuth`: the server runs with `--allow-plaintext-auth` (the port
    /// warnings say what that means instead of claiming AUTH is refused). `servedOverTLS`:
    /// the admin listener is HTTPS, so the session cookie is `Secure`. `webRoot`: the web
    /// admin's files and where they were looked for (`WebAdmin.locateRoot()`).
    public init(
        store: ConfigStore, registry: ListenerRegistry, defaultCertificate: CertificateSource,
        metrics: PrometheusCollectorRegistry, passwordHash: String, authGuard: AuthGuard,
        allowPlaintextAuth: Bool = false, servedOverTLS: Bool = false,
        webRoot: (root: String?, searched: [String]) = (nil, []), serverName: String = "", adminNames: [String] = [],
        reserved: ReservedEndpoint? = nil
    ) {
        self.store = store
        self.registry = registry
        self.inspector = CertificateInspector(defaultSource: defaultCertificate, allowPlaintextAuth: allowPlaintextAuth)
        self.metrics = metrics
        self.login = AdminLogin(
            passwordHash: passwordHash, authGuard: authGuard, sessions: AdminSessions(serverName: serverName), cookie: SessionCookie(secure: servedOverTLS))
        self.webRoot = webRoot
        self.serverName = serverName
        self.adminNames = Set(adminNames.map { $0.lowercased() })
        self.reserved = reserved
    }

    /// The admin application: a ServiceLifecycle service; HTTPS when `tls` is given.
    public func application(host: String, port: Int, tls: TLSConfiguration? = nil, logger: Logger) throws -> some ApplicationProtocol {
        Application(
            router: router(),
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(address: .hostname(host, port: port), serverName: "berth-admin"),
            logger: logger)
    }

    public func router() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: HostCheckMiddleware { [self] name in
            if adminNames.contains(name) { return true }
            guard let bindings = try? store.bindings(), let names = try? hostnames(bindings) else { return false }
            return names.contains { $0.lowercased() == name }
        })
        router.add(middleware: JSONErrorMiddleware())
        if let root = webRoot.root {
            // Pages revalidate on every load (ETag): an upgraded server never runs old script.
            router.add(middleware: FileMiddleware(root, cacheControl: .init([(MediaType(type: .any), [.noCache])]), searchForIndexHtml: true))
        } else {
            router.add(middleware: MissingWebAdminMiddleware(searched: webRoot.searched))
        }
        login.addRoutes(to: router)
        router.get("/healthz") { _, _ -> Response in try JSONResponse.make(["status": "ok"]) }
        router.get("/metrics") { _, _ -> Response in
            var text = [UInt8]()
            metrics.emit(into: &text)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        let api = router.group("api/v1").add(middleware: AdminAuthMiddleware(login: login))
            .add(middleware: AdminAuditMiddleware())

        api.get("bindings") { _, _ -> Response in
            let bindings = try store.bindings()
            let listeners = registry.snapshot()
            let ports = bindings.ports.map { inspector.view($0, in: bindings, listeners: listeners) }
            return try JSONResponse.make(BindingsView(ports: ports, ipAddresses: bindings.ipAddresses))
        }

        // MARK: Ports
        api.get("ports") { _, _ -> Response in
            let bindings = try store.bindings()
            let listeners = registry.snapshot()
            return try JSONResponse.make(bindings.ports.map { inspector.view($0, in: bindings, listeners: listeners) })
        }
        api.post("ports") { request, _ -> Response in
            let patch = try await JSONResponse.decode(PortPatch.self, from: request).resolvingPaths(against: workingDirectory)
            let dryRun = try Self.dryRun(request)
            let (id, bindings) = try change(dryRun: dryRun) { bindings, newID in
                let id = try newID()
                try bindings.addPort(id: id, patch)
                try Validation.validate(
                    bindings, changedPortIDs: [id], subject: id, subjectIsNew: true, certificateCheck: checkCertificate)
                return (id, bindings)
            }
            return try JSONResponse.make(
                inspector.view(bindings.port(id)!, in: bindings, listeners: registry.snapshot()), status: dryRun ? .ok : .created)
        }
        api.post("ports/delete") { request, _ -> Response in
            struct Body: Decodable {
                var ids: [String]
                enum CodingKeys: CodingKey { case ids }
                init(from decoder: any Decoder) throws {
                    try decoder.refuseUnknownKeys(CodingKeys.self)
                    ids = try decoder.container(keyedBy: CodingKeys.self).decode([PortID].self, forKey: .ids).map(\.value)
                }
            }
            let body = try await JSONResponse.decode(Body.self, from: request)
            try change { bindings, _ in
                try bindings.deletePorts(body.ids)
                try Validation.validate(bindings)
            }
            return try JSONResponse.make(["deleted": body.ids])
        }
        api.get("ports/:id") { _, context -> Response in
            let bindings = try store.bindings()
            let id = try context.parameters.require("id")
            guard let port = bindings.port(id) else { throw APIError(.notFound("no port with id '\(id)'")) }
            return try JSONResponse.make(inspector.view(port, in: bindings, listeners: registry.snapshot()))
        }
        api.put("ports/:id") { request, context -> Response in
            let id = try context.parameters.require("id")
            let patch = try await JSONResponse.decode(PortPatch.self, from: request).resolvingPaths(against: workingDirectory)
            let bindings = try change(dryRun: try Self.dryRun(request)) { bindings, _ in
                let certificateChanged = try bindings.updatePort(id: id, patch, holdsOwnKey: certificateFileHoldsKey)
                try Validation.validate(
                    bindings, changedPortIDs: certificateChanged ? [id] : [], subject: id, certificateCheck: checkCertificate)
                return bindings
            }
            return try JSONResponse.make(inspector.view(bindings.port(id)!, in: bindings, listeners: registry.snapshot()))
        }
        api.delete("ports/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            try change { bindings, _ in
                try bindings.deletePorts([id])
                try Validation.validate(bindings)
            }
            return Response(status: .noContent)
        }

        // MARK: IP addresses
        api.get("ip-addresses") { _, _ -> Response in try JSONResponse.make(try store.bindings().ipAddresses) }
        api.post("ip-addresses") { request, _ -> Response in
            struct Body: Decodable {
                var address: String
                var hostname: String?
                var description: String?
                var ports: [String]?
                enum CodingKeys: CodingKey { case address, hostname, description, ports }
                init(from decoder: any Decoder) throws {
                    try decoder.refuseUnknownKeys(CodingKeys.self)
                    let container = try decoder.container(keyedBy: CodingKeys.self)
                    address = try container.decode(String.self, forKey: .address)
                    hostname = try container.decodeIfPresent(String.self, forKey: .hostname)
                    description = try container.decodeIfPresent(String.self, forKey: .description)
                    ports = try container.decodeIfPresent([PortID].self, forKey: .ports)?.map(\.value)
                }
            }
            let body = try await JSONResponse.decode(Body.self, from: request)
            let dryRun = try Self.dryRun(request)
            let entry = try change(dryRun: dryRun) { bindings, _ in
                let canonical = IPLiteral.canonical(body.address)
                let present = canonical.map { found in
                    InterfaceDiscovery.discover().contains { $0.address == found.address }
                        || (IPLiteral.isIPv4Loopback(found.address) && bindings.entry("127.0.0.1")?.present == true)
                } ?? false
                let entry = try bindings.addManualAddress(
                    body.address, AddressPatch(ports: body.ports, hostname: body.hostname, description: body.description),
                    present: present)
                try Self.checkPortIDs(body.ports, in: bindings)
                try Validation.validate(bindings)
                return entry
            }
            return try JSONResponse.make(entry, status: dryRun ? .ok : .created)
        }
        api.get("ip-addresses/:address") { _, context -> Response in
            let address = try context.parameters.require("address").removingPercentEncoding ?? ""
            guard let entry = try store.bindings().entry(IPLiteral.canonical(address)?.address ?? address) else {
                throw APIError(.notFound("no IP address '\(address)' in the list"))
            }
            return try JSONResponse.make(entry)
        }
        api.put("ip-addresses/:address") { request, context -> Response in
            let address = try context.parameters.require("address").removingPercentEncoding ?? ""
            let patch = try await JSONResponse.decode(AddressPatch.self, from: request)
            let entry = try change(dryRun: try Self.dryRun(request)) { bindings, _ in
                try bindings.updateAddress(address, patch)
                try Self.checkPortIDs(patch.ports, in: bindings)
                try Validation.validate(bindings)
                return bindings.entry(IPLiteral.canonical(address)?.address ?? address)!
            }
            return try JSONResponse.make(entry)
        }
        api.delete("ip-addresses/:address") { _, context -> Response in
            let address = try context.parameters.require("address").removingPercentEncoding ?? ""
            let key = IPLiteral.canonical(address)?.address ?? address
            if let domain = try store.domains().first(where: { $0.ipAddress == key }) {
                throw APIError(BindingsError(
                    .conflict, "IP address \(key) is domain \(domain.name)'s ipAddress; change the domain first", field: "address"))
            }
            try change { bindings, _ in
                try bindings.deleteAddress(address)
                try Validation.validate(bindings)
            }
            return Response(status: .noContent)
        }

        api.get("listeners") { _, _ -> Response in try JSONResponse.make(registry.snapshot()) }

        // The web admin's navigation counts in one small answer, instead of every list.
        api.get("summary") { _, _ -> Response in
            let bindings = try store.bindings()
            let listeners = registry.snapshot()
            let ports = bindings.ports.map { inspector.view($0, in: bindings, listeners: listeners) }
            let names = try hostnames(bindings)
            let certificates = try store.libraryCertificates().map { inspector.view($0, in: bindings, hostnames: names) }
            return try JSONResponse.make(Summary(
                ipAddresses: bindings.ipAddresses.count, ports: ports.count,
                portsWithWarnings: ports.filter { !$0.warnings.isEmpty }.count,
                certificates: certificates.count,
                certificatesWithProblems: certificates.filter { certificate in
                    certificate.warnings.contains { $0.contains("expire") || $0.contains("unusable") }
                }.count,
                domains: try store.domains().count, users: try store.allUsers().count,
                queue: try store.queuedMessages().count, listeners: listeners.count,
                listenersFailed: listeners.filter { $0.state == .failed }.count))
        }

        // MARK: Domains and users
        api.get("domains") { _, _ -> Response in try JSONResponse.make(try store.domains()) }
        api.post("domains") { request, _ -> Response in
            let domain = normalized(try await JSONResponse.decode(Domain.self, from: request))
            try Self.mapErrors { try store.saveDomain(domain, creating: true, check: Self.checkDomain) }
            // Its DKIM keys; if this fails, the first GET of its record makes them.
            _ = try? DomainKeys.ensure(domain.name, in: store)
            return try JSONResponse.make(domain, status: .created)
        }
        api.get("domains/:name") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard let domain = try store.domain(name) else { throw APIError(.notFound("no domain '\(name)'")) }
            return try JSONResponse.make(domain)
        }
        api.put("domains/:name") { request, context -> Response in
            let name = try context.parameters.require("name").lowercased()
            /// Partial: an absent key stays, `null` or `""` clears `ipAddress`.
            struct Body: Decodable {
                var name: String?
                var ipAddress: String??
                var outbound: OutboundSettings?
                enum CodingKeys: CodingKey { case name, ipAddress, outbound }
                init(from decoder: any Decoder) throws {
                    try decoder.refuseUnknownKeys(CodingKeys.self)
                    let container = try decoder.container(keyedBy: CodingKeys.self)
                    name = try container.decodeIfPresent(String.self, forKey: .name)
                    if container.contains(.ipAddress) {
                        ipAddress = .some(try container.decodeNil(forKey: .ipAddress) ? nil : container.decode(String.self, forKey: .ipAddress))
                    }
                    outbound = try container.decodeIfPresent(OutboundSettings.self, forKey: .outbound)
                }
            }
            let body = try await JSONResponse.decode(Body.self, from: request)
            if let newName = body.name, newName.lowercased() != name {
                throw APIError(BindingsError.invalid("name", "a domain cannot be renamed; create \(newName) and move its users"))
            }
            guard var domain = try store.domain(name) else { throw APIError(.notFound("no domain '\(name)'")) }
            if let ipAddress = body.ipAddress {
                domain.ipAddress = ipAddress.flatMap { $0.isEmpty ? nil : (IPLiteral.canonical($0)?.address ?? $0) }
            }
            if let outbound = body.outbound { domain.outbound = outbound }
            let updated = domain
            try Self.mapErrors { try store.saveDomain(updated, creating: false, check: Self.checkDomain) }
            return try JSONResponse.make(updated)
        }
        api.delete("domains/:name") { request, context -> Response in
            let name = try context.parameters.require("name")
            let force = try Self.flag("force", in: request)
            try Self.mapErrors { try store.deleteDomain(name, force: force) }
            return Response(status: .noContent)
        }
        api.get("domains/:name/users") { _, context -> Response in
            let name = try context.parameters.require("name")
            let users = try Self.mapErrors { try store.users(domain: name) }
            return try JSONResponse.make(users.map(UserView.init))
        }
        api.post("domains/:name/users") { request, context -> Response in
            let domain = try context.parameters.require("name").lowercased()
            struct Body: Decodable {
                var name: String
                var password: String
                var profile: UserChange
                enum CodingKeys: CodingKey { case name, password }
                init(from decoder: any Decoder) throws {
                    try decoder.refuseUnknownKeys(NewUserKeys.self)
                    let container = try decoder.container(keyedBy: CodingKeys.self)
                    name = try container.decode(String.self, forKey: .name)
                    password = try container.decode(String.self, forKey: .password)
                    profile = try UserChange(decodingProfileFrom: decoder)
                }
            }
            let body = try await JSONResponse.decode(Body.self, from: request)
            var user = body.profile.applied(to: User(domain: domain, name: body.name.lowercased()))
            try Self.mapErrors {
                try DomainRules.validateUserName(user.name)
                try DomainRules.validatePassword(body.password)
                user.aliases = try DomainRules.validateProfile(of: user)
                try store.addUser(user, password: body.password)
            }
            return try JSONResponse.make(UserView(user), status: .created)
        }
        api.put("domains/:name/users/:user") { request, context -> Response in
            let domain = try context.parameters.require("name").lowercased()
            let name = try context.parameters.require("user").lowercased()
            /// Partial: a new password and/or profile fields (`"quotaBytes": null` removes the quota).
            struct Body: Decodable {
                var change: UserChange
                init(from decoder: any Decoder) throws {
                    try decoder.refuseUnknownKeys(UserChangeKeys.self)
                    change = try UserChange(decodingProfileFrom: decoder)
                    change.password = try decoder.container(keyedBy: UserChangeKeys.self)
                        .decodeIfPresent(String.self, forKey: .password)
                }
            }
            var change = try await JSONResponse.decode(Body.self, from: request).change
            let user = try Self.mapErrors { () throws -> User in
                if let password = change.password { try DomainRules.validatePassword(password) }
                // The fields given are checked as they will be stored: on a user with them applied.
                var probe = change.applied(to: User(domain: domain, name: name))
                probe.aliases = try DomainRules.validateProfile(of: probe)
                if change.aliases != nil { change.aliases = probe.aliases }
                return try store.updateUser(domain: domain, name: name, change: change)
            }
            if change.password != nil { context.logger.info("user \(user.address): password changed") }
            return try JSONResponse.make(UserView(user))
        }
        api.delete("domains/:name/users/:user") { _, context -> Response in
            let domain = try context.parameters.require("name")
            let user = try context.parameters.require("user")
            try Self.mapErrors { try store.deleteUser(domain: domain, name: user) }
            return Response(status: .noContent)
        }
        api.get("users") { _, _ -> Response in try JSONResponse.make(try store.allUsers().map(UserView.init)) }

        // MARK: Server settings
        api.get("settings") { _, _ -> Response in try JSONResponse.make(try store.serverSettings()) }
        api.put("settings") { request, _ -> Response in
            let patch = try await JSONResponse.decode(ServerSettingsPatch.self, from: request)
            let settings = try Self.mapErrors { try store.updateServerSettings { patch.apply(to: &$0) } }
            return try JSONResponse.make(settings)
        }

        // MARK: Certificate library (SNI)
        api.get("certificates") { _, _ -> Response in
            let bindings = try store.bindings()
            let names = try hostnames(bindings)
            return try JSONResponse.make(try store.libraryCertificates().map { inspector.view($0, in: bindings, hostnames: names) })
        }
        api.post("certificates") { request, context -> Response in
            let body = try await JSONResponse.decode(LibraryCertificateBody.self, from: request)
            let certificate = try Self.mapErrors {
                // The rules of a port's certificate: the same path resolution, the same
                // loader, the same 422 naming `certificatePath` and the reason.
                let resolved = try body.resolvingPaths(against: workingDirectory)
                try checkCertificate(resolved.source)
                return try store.addLibraryCertificate(
                    certificatePath: resolved.certificatePath, privateKeyPath: resolved.privateKeyPath,
                    certificatePassword: resolved.certificatePassword)
            }
            context.logger.info("certificate library: added \(certificate.id) (\(certificate.certificatePath))")
            let bindings = try store.bindings()
            return try JSONResponse.make(inspector.view(certificate, in: bindings, hostnames: try hostnames(bindings)), status: .created)
        }
        api.get("certificates/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard let certificate = try store.libraryCertificate(id: id) else {
                throw APIError(.notFound("no certificate with id '\(id)'"))
            }
            let bindings = try store.bindings()
            return try JSONResponse.make(inspector.view(certificate, in: bindings, hostnames: try hostnames(bindings)))
        }
        api.delete("certificates/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            let certificate = try Self.mapErrors { try store.deleteLibraryCertificate(id: id) }
            context.logger.info("certificate library: deleted \(certificate.id) (\(certificate.certificatePath))")
            return Response(status: .noContent)
        }
        addOutboundRoutes(to: api)
        return router
    }

    /// The domain rules, and (issue 6) outbound source addresses present on the host.
    @Sendable static func checkDomain(_ domain: Domain, bindings: Bindings) throws {
        try DomainRules.validate(domain, bindings: bindings)
        try SourceAddress.requirePresent(domain.outbound)
    }

    /// The names clients reach this server by: each IP address's host name, each domain,
    /// and the server's own name.
    /// The Host check and the certificate library's `hostnames` share it.
    private func hostnames(_ bindings: Bindings) throws -> [String] {
        bindings.ipAddresses.compactMap(\.hostname) + (try store.domains()).map(\.name)
            + (serverName.isEmpty ? [] : [serverName])
    }

    /// Relative certificate paths in a request are taken from the server's working
    /// directory, the one `--data` is relative to; what is stored is absolute.
    private var workingDirectory: String { FileManager.default.currentDirectoryPath }

    /// Names the list position of an unknown port id, so that `ports[1]` is the field.
    static func checkPortIDs(_ ids: [String]?, in bindings: Bindings) throws {
        for (index, id) in (ids ?? []).enumerated() where bindings.port(id) == nil {
            throw BindingsError.invalid("ports[\(index)]", "no port with id '\(id)'")
        }
    }

    /// `GET /api/v1/summary`: how many of each, and how many need a look.
    struct Summary: Encodable {
        var ipAddresses: Int
        var ports: Int
        var portsWithWarnings: Int
        var certificates: Int
        var certificatesWithProblems: Int
        var domains: Int
        var users: Int
        var queue: Int
        var listeners: Int
        var listenersFailed: Int
    }

    struct BindingsView: Encodable {
        var ports: [PortView]
        var ipAddresses: [IPAddressEntry]
    }

    /// The keys of a user change (`PUT`); a new user (`POST`) also has its `name`.
    enum UserChangeKeys: String, CodingKey {
        case password, displayName, givenName, surname, aliases, quotaBytes
    }
    enum NewUserKeys: String, CodingKey {
        case name, password, displayName, givenName, surname, aliases, quotaBytes
    }

    struct UserView: Encodable {
        var user: User

        init(_ user: User) { self.user = user }

        enum CodingKeys: CodingKey { case name, domain, address, displayName, givenName, surname, aliases, quotaBytes }

        /// Every field is always present: `quotaBytes` null says "no quota".
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(user.name, forKey: .name)
            try container.encode(user.domain, forKey: .domain)
            try container.encode(user.address, forKey: .address)
            try container.encode(user.displayName, forKey: .displayName)
            try container.encode(user.givenName, forKey: .givenName)
            try container.encode(user.surname, forKey: .surname)
            try container.encode(user.aliases, forKey: .aliases)
            try container.encode(user.quotaBytes, forKey: .quotaBytes)
        }
    }

    private func normalized(_ domain: Domain) -> Domain {
        var domain = domain
        domain.name = domain.name.lowercased().trimmingWhitespace
        domain.ipAddress = domain.ipAddress.flatMap { $0.isEmpty ? nil : (IPLiteral.canonical($0)?.address ?? $0) }
        return domain
    }

    /// Runs a bindings change in one transaction and maps refusals to API errors. A dry
    /// run makes the same change and the same checks on a copy and saves nothing, so a form
    /// can show a conflict before the admin saves.
    @discardableResult
    private func change<T>(dryRun: Bool = false, _ body: (inout Bindings, () throws -> String) throws -> T) throws -> T {
        let reserved = self.reserved
        return try Self.mapErrors {
            try withoutActuallyEscaping(body) { body in
                let checked = { (bindings: inout Bindings, newID: () throws -> String) throws -> T in
                    let result = try body(&bindings, newID)
                    try reserved?.check(bindings)
                    return result
                }
                return dryRun ? try store.previewBindings(checked) : try store.updateBindings(checked)
            }
        }
    }

    /// `?dryRun=true`: check and answer as if saved, but save nothing.
    static func dryRun(_ request: Request) throws -> Bool { try flag("dryRun", in: request) }

    /// A true/false query parameter; absent is false, a bare `?name` true.
    static func flag(_ name: String, in request: Request) throws -> Bool {
        switch request.uri.queryParameters[Substring(name)].map({ $0.lowercased() }) {
        case nil, "false"?, "0"?, "no"?: return false
        case "true"?, "1"?, "yes"?, ""?: return true
        case let other?:
            throw APIError(BindingsError.invalid(name, "\(name) must be true or false, not '\(other)'"))
        }
    }

    @discardableResult
    static func mapErrors<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as BindingsError {
            throw APIError(error)
        }
    }
}

/// Whether a certificate file carries its own private key (PKCS#12, or a PEM with a key
/// block), so that a `privateKeyPath` given for an earlier file no longer applies.
@Sendable func certificateFileHoldsKey(_ path: String) -> Bool {
    let lower = path.lowercased()
    if lower.hasSuffix(".pfx") || lower.hasSuffix(".p12") { return true }
    guard let handle = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? handle.close() }
    guard let data = try? handle.read(upToCount: CertificateLoader.maxFileSize) else { return false }
    return String(decoding: data, as: UTF8.self).contains("PRIVATE KEY-----")
}

/// Rule 4, at save time: the certificate must load and its key must match.
@Sendable func checkCertificate(_ source: CertificateSource) throws {
    do {
        _ = try CertificateLoader.load(source)
    } catch {
        throw BindingsError(.badCertificate, "certificate \(source.certificatePath): \(error)", field: "certificatePath")
    }
}

extension UserChange {
    /// The profile fields of a user body (create or change); the password is left to the caller.
    init(decodingProfileFrom decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AdminAPI.UserChangeKeys.self)
        self.init(
            displayName: try container.decodeIfPresent(String.self, forKey: .displayName),
            givenName: try container.decodeIfPresent(String.self, forKey: .givenName),
            surname: try container.decodeIfPresent(String.self, forKey: .surname),
            aliases: try container.decodeIfPresent([String].self, forKey: .aliases))
        if container.contains(.quotaBytes) {
            quotaBytes = .some(try container.decodeNil(forKey: .quotaBytes) ? nil : try container.decode(Int.self, forKey: .quotaBytes))
        }
    }
}
