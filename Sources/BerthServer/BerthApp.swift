import BerthAdmin
import BerthCore
import BerthDNS
import BerthDelivery
import BerthIMAPServer
import BerthLDAPServer
import BerthNet
import BerthPOP3
import BerthSMTP
import BerthStore
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import ServiceLifecycle

/// Builds and runs the whole server: store, listeners, SMTP, admin API, one ServiceGroup.
public enum BerthApp {
    public static func run(_ options: ServeOptions) async throws {
        // Everything Berth writes (database, its WAL with certificate passwords, Maildir,
        // keys) is for the server's user alone.
        umask(0o077)
        BerthLogHandler.bootstrap(level: Logger.Level(rawValue: options.logLevel) ?? .info, format: options.logFormat)
        let logger = Logger(label: "berth")
        // One server per data directory: a second one would deliver into the same Maildir
        // and database, and its start-up recovery could take the first one's files.
        let lock = try DataDirectoryLock(directory: options.dataDirectory)
        defer { lock.release() }
        let prepared = try DataDirectory.prepare(options, logger: logger)
        let store = prepared.store
        let hostname = prepared.hostname

        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))

        let notifier = MailboxNotifier()
        let mailStore = try MailStore(
            dataDirectory: options.dataDirectory, store: store, hostname: hostname, notifier: notifier,
            journalCheckpointInterval: options.journalCheckpointSeconds, logger: logger)
        let directory = store.directory
        let mailboxes = try MaildirMailboxStore(
            dataDirectory: options.dataDirectory, index: SQLiteMailIndex(database: store.database), hostname: hostname,
            notifier: notifier, quotaLimit: { directory.quota(of: $0) }, journal: mailStore.journal, logger: logger)
        let authGuard = AuthGuard(logger: logger)
        let budget = SessionBudget.fromSystemLimit(logger: logger)
        var smtpConfiguration = SMTPServer.Configuration(spoolDirectory: mailStore.spoolRoot)
        smtpConfiguration.allowPlaintextAuth = options.allowPlaintextAuth
        smtpConfiguration.maxMessageSize = options.maxMessageSize
        smtpConfiguration.timeouts = SessionTimeouts(
            command: .seconds(Int64(options.idleTimeoutSeconds)), handshake: .seconds(Int64(options.tlsHandshakeTimeoutSeconds)))
        smtpConfiguration.logger = logger
        smtpConfiguration.relayAvailable = true
        let smtp = SMTPServer(
            backend: StoreSMTPBackend(store: store, mailStore: mailStore, mailboxes: mailboxes), authGuard: authGuard,
            configuration: smtpConfiguration)
        let authenticator = DirectoryAuthenticator(directory: directory)
        // Reading message content (IMAP SEARCH over text, FETCH of bodies; POP3 RETR/TOP)
        // has threads of its own: a heavy search holds one of these, never one of the
        // shared pool's, where every session's index calls (NOOP, SELECT, STORE) run.
        let contentPool = NIOThreadPool(numberOfThreads: contentThreads)
        contentPool.start()
        var imapConfiguration = IMAPServer.Configuration(spoolDirectory: mailStore.spoolRoot, threadPool: .singleton)
        imapConfiguration.contentThreadPool = contentPool
        imapConfiguration.allowPlaintextAuth = options.allowPlaintextAuth
        imapConfiguration.maxAppendSize = options.maxMessageSize
        imapConfiguration.timeouts.handshake = .seconds(Int64(options.tlsHandshakeTimeoutSeconds))
        imapConfiguration.logger = logger
        let imap = IMAPServer(store: mailboxes, authenticator: authenticator, authGuard: authGuard, configuration: imapConfiguration)
        var popConfiguration = POP3Server.Configuration()
        popConfiguration.allowPlaintextAuth = options.allowPlaintextAuth
        popConfiguration.timeouts.handshake = .seconds(Int64(options.tlsHandshakeTimeoutSeconds))
        popConfiguration.logger = logger
        popConfiguration.contentThreadPool = contentPool
        let pop = POP3Server(store: mailboxes, authenticator: authenticator, authGuard: authGuard, configuration: popConfiguration)
        let settings = SettingsService(store: store, authGuard: authGuard, changes: store.changes.subscribe(), logger: logger)
        try settings.apply()
        let ldapDirectory = LDAPDirectoryService(store: store, changes: store.changes.subscribe(), logger: logger)
        var ldapConfiguration = LDAPServer.Configuration()
        ldapConfiguration.timeouts = SessionTimeouts(
            command: .seconds(Int64(options.idleTimeoutSeconds)), handshake: .seconds(Int64(options.tlsHandshakeTimeoutSeconds)))
        ldapConfiguration.logger = logger
        ldapConfiguration.searchThreadPool = contentPool
        ldapConfiguration.access = {
            let current = settings.current
            return .init(anonymousSearch: current.ldapAnonymousSearch, allDomains: current.ldapSearchAllDomains)
        }
        let ldap = LDAPServer(directory: ldapDirectory.source, authenticator: authenticator, authGuard: authGuard, configuration: ldapConfiguration)
        var listenerConfiguration = ListenerManager.Configuration(defaultCertificate: prepared.defaultCertificate)
        let certificateLibrary = CertificateLibraryService(store: store, changes: store.changes.subscribe(), logger: logger)
        await certificateLibrary.reload()
        listenerConfiguration.certificateLibrary = certificateLibrary.library
        listenerConfiguration.admission = Admission(budget: budget, authGuard: authGuard, logger: logger)
        listenerConfiguration.admission.isTrustedProxy = { settings.current.isTrustedProxy($0) }
        listenerConfiguration.removedListenerDrainTimeout = .seconds(options.drainTimeoutSeconds)
        let adminEndpoint = options.adminHost.contains(":") ? "[\(options.adminHost)]:\(options.adminPort)" : "\(options.adminHost):\(options.adminPort)"
        let adminReserved = ReservedEndpoint(
            host: options.adminHost, port: options.adminPort, owner: "the admin API's listener (--admin \(adminEndpoint))")
        listenerConfiguration.reserved = adminReserved.map { [$0] } ?? []
        if options.cpuAffinity {
            let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
            listenerConfiguration.steering = await CPUSteering.pin(loops)
            logger.info("event loops: \(loops.count), \(listenerConfiguration.steering.map { "pinned to CPUs \($0.cpus.map(String.init).joined(separator: ","))" } ?? "not pinned")")
        }

        let outbound = try makeOutboundQueue(
            options, store: store, mailStore: mailStore, hostname: hostname, settings: settings, logger: logger)

        let registry = ListenerRegistry()
        let listeners = ListenerManager(
            group: MultiThreadedEventLoopGroup.singleton,
            configuration: listenerConfiguration,
            protocols: [.smtp: smtp, .submission: smtp, .imap: imap, .pop: pop, .ldap: ldap],
            registry: registry,
            changes: store.changes.subscribe(),
            logger: logger,
            plan: {
                ListenerPlan.make(bindings: try store.bindings(), domains: try store.domains(), serverHostname: hostname)
            },
            refresh: {
                let found = InterfaceDiscovery.discover()
                _ = try? store.updateBindings { bindings, _ in bindings.mergeDiscovered(found) }
            })

        let adminTLS = try adminTLSConfiguration(options)
        let webRoot = WebAdmin.locateRoot()
        if webRoot.root == nil {
            logger.warning("web admin files not found (looked in \(webRoot.searched.joined(separator: ", "))); the admin API works without them")
        }
        var adminAPI = AdminAPI(
            store: store, registry: registry, defaultCertificate: prepared.defaultCertificate, metrics: metrics,
            passwordHash: prepared.passwordHash, authGuard: authGuard, allowPlaintextAuth: options.allowPlaintextAuth,
            servedOverTLS: adminTLS != nil, webRoot: webRoot, serverName: hostname, adminNames: adminTLS?.names ?? [],
            reserved: adminReserved)
        adminAPI.queueChanged = { await outbound.queue.reload() }
        let admin = try adminAPI.application(
            host: options.adminHost, port: options.adminPort, tls: adminTLS?.configuration, logger: logger)
        let adminAddress = (adminTLS == nil ? "http://" : "https://") + adminEndpoint

        // Shutdown runs in reverse: the admin API stops, listeners drain their sessions,
        // the content pool stops once no session is left to use it, then the Maildir writer
        // finishes what they handed it.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: MailStoreService(mailStore: mailStore)),
                    .init(service: ThreadPoolService(pool: contentPool)),
                    .init(service: settings),
                    .init(service: outbound.policy),
                    .init(service: outbound.queue),
                    .init(service: certificateLibrary),
                    .init(service: ldapDirectory),
                    .init(service: listeners),
                    .init(service: NamedService(admin, failure: "cannot serve the admin API on \(adminAddress)")),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        logger.info("stopped")
    }
}

/// `--admin-certificate`: the admin listener's TLS, loaded by the code that loads a port's
/// certificate, so the same files work and a bad one stops the start with the same reason.
func adminTLSConfiguration(_ options: ServeOptions) throws -> (configuration: TLSConfiguration, names: [String])? {
    guard let path = options.adminCertificate, !path.isEmpty else { return nil }
    let source = CertificateSource(
        certificatePath: URL(fileURLWithPath: path).path, privateKeyPath: options.adminPrivateKey.map { URL(fileURLWithPath: $0).path },
        password: options.adminCertificatePassword)
    let loaded: LoadedCertificate
    do {
        loaded = try CertificateLoader.load(source)
    } catch {
        throw ServeError("--admin-certificate \(path): \(error)")
    }
    var configuration = TLSConfiguration.makeServerConfiguration(
        certificateChain: loaded.chain.map { .certificate($0) }, privateKey: .privateKey(loaded.key))
    configuration.minimumTLSVersion = .tlsv12
    return (configuration, loaded.info.dnsNames)
}

/// The outbound queue and the configuration snapshot it delivers by. DSNs go back
/// through the Maildir writer like any message; the writer tells the queue what it queued.
func makeOutboundQueue(
    _ options: ServeOptions, store: ConfigStore, mailStore: MailStore, hostname: String, settings: SettingsService,
    logger: Logger
) throws -> (queue: OutboundQueue, policy: OutboundPolicyService) {
    let group = MultiThreadedEventLoopGroup.singleton
    let servers: [SocketAddress]
    if let dns = options.dnsServer {
        do {
            servers = [try DNSResolver.parseServer(dns)]
        } catch {
            throw ServeError("--dns \(dns): \(error)")
        }
    } else {
        servers = DNSResolver.systemServers()
    }
    let policy = OutboundPolicyService(store: store, hostname: hostname, changes: store.changes.subscribe(), logger: logger)
    policy.ensureKeys()
    try policy.refresh()
    let queue = OutboundQueue(.init(
        store: store, resolver: MailExchangerResolver(resolver: DNSResolver(servers: servers, group: group), mxPort: options.mxPort),
        group: group, settings: { settings.current }, policy: { policy.current },
        submit: { message, stored in
            mailStore.deliver(message) { result in
                if case .failure(let error) = result {
                    logger.error("dsn: cannot store \(message.queueID): \(error)")
                }
                stored((try? result.get()) != nil)
            }
        },
        classify: { store.directory.classify($0) }, logger: logger))
    mailStore.onQueued = { queue.enqueue($0) }
    logger.info("outbound delivery: DNS \(servers.map { "\($0)" }.joined(separator: ", ")), MX port \(options.mxPort)")
    return (queue, policy)
}

/// Threads of the content pool, fixed: one per core (2 at least, 8 at most). Reading and
/// parsing messages is disk and CPU work; more threads than cores would only queue it.
let contentThreads = max(2, min(System.coreCount, 8))

/// A thread pool started before the services, shut down at their graceful shutdown.
struct ThreadPoolService: Service {
    let pool: NIOThreadPool

    func run() async throws {
        try? await gracefulShutdown()
        try await pool.shutdownGracefully()
    }
}

/// The Maildir writer thread as a service.
struct MailStoreService: Service {
    let mailStore: MailStore

    func run() async throws {
        mailStore.start()
        try? await gracefulShutdown()
        mailStore.stop()
    }
}

/// SMTP's view of the store.
struct StoreSMTPBackend: SMTPBackend {
    let store: ConfigStore
    let mailStore: MailStore
    let mailboxes: MaildirMailboxStore
    let accepted = Counter(label: "berth_smtp_messages_accepted_total")

    /// A local user whose quota is used up is `.mailboxFull` (452 4.2.2). Only users with a
    /// quota cost an index read.
    func classify(_ address: String) -> RecipientClass {
        let verdict = store.directory.classify(address)
        guard case .local(let domain, let user) = verdict, let room = room(MailAccount(domain: domain, user: user)) else {
            return verdict
        }
        return room <= 0 ? .mailboxFull : verdict
    }

    /// Octets left under the account's quota; nil: no quota.
    private func room(_ account: MailAccount) -> Int? {
        guard let limit = store.directory.quota(of: account) else { return nil }
        guard let used = try? mailboxes.quota(of: account).usedBytes else { return nil }
        return limit - used
    }

    func verify(user: String, password: String) -> Bool {
        store.directory.verify(address: user, password: password)
    }

    func deliver(_ message: InboundMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {
        // RFC 3463 5.2.2: a message bigger than the room left in every mailbox it is for
        // is refused for good; with other recipients it is delivered (the quota is soft
        // for the one message that crosses it) rather than lost for all.
        let fits = message.recipients.map { recipient -> Bool in
            guard case .local(let domain, let user) = recipient.class,
                  let room = room(MailAccount(domain: domain, user: user)) else { return true }
            return message.body.size <= room
        }
        if !fits.isEmpty && !fits.contains(true) {
            if case .file(let path, _) = message.body { unlink(path) }
            completion(.failure(SMTPDeliveryRefusal(SMTPReply(552, "5.2.2", "Mailbox full: the message does not fit the recipient's quota"))))
            return
        }
        let accepted = self.accepted
        mailStore.deliver(message) { result in
            if case .success = result { accepted.increment() }
            completion(result)
        }
    }
}

/// IMAP and POP3 logins: the directory's bcrypt check (with its verified-credentials
/// cache), then the address to its account.
struct DirectoryAuthenticator: MailAuthenticator {
    let directory: MailDirectory

    func authenticate(user: String, password: String) -> MailAccount? {
        guard directory.verify(address: user, password: password),
              case .local(let domain, let name) = directory.classify(user)
        else { return nil }
        return MailAccount(domain: domain, user: name)
    }
}

/// Keeps the running server in step with `/api/v1/settings`: the auth guard's policy and
/// the trusted PROXY networks follow every change, with no restart.
final class SettingsService: Service, Sendable {
    private let store: ConfigStore
    private let authGuard: AuthGuard
    private let changes: AsyncStream<Void>
    private let logger: Logger
    private let box = NIOLockedValueBox(ServerSettings())

    init(store: ConfigStore, authGuard: AuthGuard, changes: AsyncStream<Void>, logger: Logger) {
        self.store = store
        self.authGuard = authGuard
        self.changes = changes
        self.logger = logger
    }

    var current: ServerSettings { box.withLockedValue { $0 } }

    func apply() throws {
        let settings = try store.serverSettings()
        let old = box.withLockedValue { old in
            defer { old = settings }
            return old
        }
        var policy = BanTable.Policy()
        policy.failureDelay = .milliseconds(Int64(settings.authFailureDelayMs))
        policy.threshold = settings.authBanThreshold
        policy.window = .seconds(Int64(settings.authBanWindowSeconds))
        policy.duration = .seconds(Int64(settings.authBanSeconds))
        authGuard.policy = policy
        if old != settings { logger.info("settings applied", metadata: ["settings": "\(settings)"]) }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in self.changes {
                do { try self.apply() } catch { self.logger.error("cannot read the settings: \(error)") }
            }
        }
    }
}

/// Says which service failed and where, instead of a bare "address already in use".
struct NamedService<Wrapped: Service>: Service {
    let wrapped: Wrapped
    let failure: String

    init(_ wrapped: Wrapped, failure: String) {
        self.wrapped = wrapped
        self.failure = failure
    }

    func run() async throws {
        do {
            try await wrapped.run()
        } catch let error as IOError {
            throw ServeError("\(failure): \(String(cString: strerror(error.errnoCode)).lowercased())")
        } catch is CancellationError {
            return
        } catch {
            throw ServeError("\(failure): \(error)")
        }
    }
}

public struct ServeError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// An exclusive lock on `DATA/berth.lock` (flock), held for the life of the process; the
/// file holds the owner's pid so the refusal can name it.
final class DataDirectoryLock {
    private var fd: Int32

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = directory + "/berth.lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ServeError("cannot open \(path): \(String(cString: strerror(errno)).lowercased())") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buffer, buffer.count)
            let owner = n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            close(fd)
            throw ServeError("another berth serve (pid \(owner)) is already using the data directory \(directory); stop it first or use another --data")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    func release() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }
}
