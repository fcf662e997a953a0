import BerthAdmin
import BerthCore
import BerthNet
import BerthSMTP
import BerthStore
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
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
        let prepared = try DataDirectory.prepare(options, logger: logger)
        let store = prepared.store
        let hostname = prepared.hostname

        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))

        let mailStore = try MailStore(dataDirectory: options.dataDirectory, store: store, hostname: hostname, logger: logger)
        let authGuard = AuthGuard(logger: logger)
        let budget = SessionBudget.fromSystemLimit(logger: logger)
        var smtpConfiguration = SMTPServer.Configuration(spoolDirectory: mailStore.spoolRoot)
        smtpConfiguration.allowPlaintextAuth = options.allowPlaintextAuth
        smtpConfiguration.maxMessageSize = options.maxMessageSize
        smtpConfiguration.timeouts = SessionTimeouts(
            command: .seconds(Int64(options.idleTimeoutSeconds)), handshake: .seconds(Int64(options.tlsHandshakeTimeoutSeconds)))
        smtpConfiguration.logger = logger
        let smtp = SMTPServer(
            backend: StoreSMTPBackend(store: store, mailStore: mailStore), authGuard: authGuard,
            configuration: smtpConfiguration)
        var listenerConfiguration = ListenerManager.Configuration(defaultCertificate: prepared.defaultCertificate)
        let settings = SettingsService(store: store, authGuard: authGuard, changes: store.changes.subscribe(), logger: logger)
        try settings.apply()
        listenerConfiguration.admission = Admission(budget: budget, authGuard: authGuard, logger: logger)
        listenerConfiguration.admission.isTrustedProxy = { settings.current.isTrustedProxy($0) }
        listenerConfiguration.removedListenerDrainTimeout = .seconds(options.drainTimeoutSeconds)

        let registry = ListenerRegistry()
        let listeners = ListenerManager(
            group: MultiThreadedEventLoopGroup.singleton,
            configuration: listenerConfiguration,
            protocols: [.smtp: smtp, .submission: smtp],
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

        let admin = AdminAPI(
            store: store, registry: registry, defaultCertificate: prepared.defaultCertificate, metrics: metrics,
            passwordHash: prepared.passwordHash, authGuard: authGuard, allowPlaintextAuth: options.allowPlaintextAuth
        ).application(host: options.adminHost, port: options.adminPort, logger: logger)
        logger.info("admin API on http://\(options.adminHost):\(options.adminPort)")

        // Shutdown runs in reverse: the admin API stops, listeners drain their sessions,
        // then the Maildir writer finishes what they handed it.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: MailStoreService(mailStore: mailStore)),
                    .init(service: settings),
                    .init(service: listeners),
                    .init(service: admin),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        logger.info("stopped")
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
    let accepted = Counter(label: "berth_smtp_messages_accepted_total")

    func classify(_ address: String) -> RecipientClass {
        store.directory.classify(address)
    }

    func verify(user: String, password: String) -> Bool {
        store.directory.verify(address: user, password: password)
    }

    func deliver(_ message: InboundMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {
        let accepted = self.accepted
        mailStore.deliver(message) { result in
            if case .success = result { accepted.increment() }
            completion(result)
        }
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
