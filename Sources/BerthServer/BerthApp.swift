import BerthAdmin
import BerthCore
import BerthNet
import BerthSMTP
import BerthStore
import Foundation
import Logging
import Metrics
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
        listenerConfiguration.admission = Admission(budget: budget, authGuard: authGuard, logger: logger)
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
            passwordHash: prepared.passwordHash, authGuard: authGuard
        ).application(host: options.adminHost, port: options.adminPort, logger: logger)
        logger.info("admin API on http://\(options.adminHost):\(options.adminPort)")

        // Shutdown runs in reverse: the admin API stops, listeners drain their sessions,
        // then the Maildir writer finishes what they handed it.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: MailStoreService(mailStore: mailStore)),
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
