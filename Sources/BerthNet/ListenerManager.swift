import BerthCore
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the bound sockets equal to the listener plan. Listeners are diffed by
/// (address, port): new ones bound, removed ones closed (their sessions finish), a changed
/// protocol or encryption rebinds, a changed certificate swaps the TLS context in place.
/// One failed bind never touches the others; failed ones are retried on every reconcile.
public actor ListenerManager: Service {
    public struct Configuration: Sendable {
        /// The server's certificate, used by TLS ports that name none.
        public var defaultCertificate: CertificateSource
        /// How long sessions of a removed listener may go on before they are closed.
        public var removedListenerDrainTimeout: Duration = .seconds(120)
        /// How long sessions may take to finish at shutdown (they get the drain event first).
        public var shutdownDrainTimeout: Duration = .seconds(10)
        /// How often interfaces and certificate files are looked at again.
        public var refreshInterval: Duration = .seconds(5)
        /// Sessions the process can hold (file descriptors), and the bans.
        public var admission = Admission()
        /// Certificates SNI chooses from, on every TLS listener.
        public var certificateLibrary: CertificateLibrary?
        /// Endpoints the server holds outside the bindings (the admin API): a listener over
        /// one fails without binding, so that a stored assignment can never keep the admin
        /// API from starting.
        public var reserved: [ReservedEndpoint] = []
        /// The CPU each event loop is pinned to: a listener's sockets then hand every
        /// connection to the loop on the CPU that received it (`CPUSteering`).
        public var steering: CPUSteering?

        public init(defaultCertificate: CertificateSource) {
            self.defaultCertificate = defaultCertificate
        }
    }

    private let group: any EventLoopGroup
    private let configuration: Configuration
    private let plan: @Sendable () throws -> ListenerPlan
    private let changes: AsyncStream<Void>
    private let refresh: @Sendable () async -> Void
    private let protocols: [MailProtocol: any ProtocolServer]
    public nonisolated let registry: ListenerRegistry
    private let logger: Logger

    private var bound: [ListenerSpec.Key: BoundListener] = [:]
    private let greetingNames = NIOLockedValueBox<[String: String]>([:])
    private var draining: [BoundListener] = []
    private var certificates: [CertificateSource: LoadedCertificate] = [:]
    private var loggedCertificateErrors: [CertificateSource: String] = [:]
    private var loggedCoverage: Set<String> = []
    private var loggedNotServing: [String] = []
    /// The last failure logged per socket, so a retry that fails the same way stays quiet.
    private var loggedFailures: [ListenerSpec.Key: String] = [:]
    private var reconciling = false
    private var reconcileAgain = false

    public init(
        group: any EventLoopGroup,
        configuration: Configuration,
        protocols: [MailProtocol: any ProtocolServer],
        registry: ListenerRegistry = ListenerRegistry(),
        changes: AsyncStream<Void>,
        logger: Logger,
        plan: @escaping @Sendable () throws -> ListenerPlan,
        refresh: @escaping @Sendable () async -> Void = {}
    ) {
        self.group = group
        self.configuration = configuration
        self.protocols = protocols
        self.registry = registry
        self.changes = changes
        self.logger = logger
        self.plan = plan
        self.refresh = refresh
    }

    public func run() async throws {
        await reconcile()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in self.changes { await self.reconcile() }
                }
                group.addTask {
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: self.configuration.refreshInterval) } catch { return }
                        await self.refresh()
                        await self.reconcile()
                    }
                }
                await group.waitForAll()
            }
        }
        await shutdown()
    }

    /// Brings the sockets in line with the plan. Re-entrant calls fold into one more pass.
    public func reconcile() async {
        if reconciling {
            reconcileAgain = true
            return
        }
        reconciling = true
        defer { reconciling = false }
        repeat {
            reconcileAgain = false
            await reconcileOnce()
        } while reconcileAgain
    }

    private func reconcileOnce() async {
        let desired: [ListenerSpec]
        do {
            let current = try plan()
            desired = current.specs
            greetingNames.withLockedValue { $0 = current.greetingNames }
        } catch {
            logger.error("cannot read the bindings: \(error)")
            return
        }
        var wanted: [ListenerSpec.Key: ListenerSpec] = [:]
        for spec in desired where wanted[spec.key] == nil { wanted[spec.key] = spec }

        for (key, listener) in bound where wanted[key] == nil {
            bound[key] = nil
            loggedFailures[key] = nil
            await retire(listener, reason: "removed")
        }
        for spec in wanted.values.sorted(by: { ($0.address, $0.port) < ($1.address, $1.port) }) {
            if let existing = bound[spec.key] {
                if existing.spec.socketIdentity != spec.socketIdentity || existing.state == .failed
                    || existing.state == .notServing && protocols[spec.protocol] != nil
                {
                    bound[spec.key] = nil
                    await retire(existing, reason: "rebinding")
                    bound[spec.key] = await open(spec)
                } else {
                    update(existing, to: spec)
                }
            } else {
                bound[spec.key] = await open(spec)
            }
        }
        sweepDraining()
        logNotServing()
    }

    /// One line per port whose protocol does not serve yet, not one per address; said
    /// again only when the set of such ports changes.
    private func logNotServing() {
        var byPort: [String: [ListenerSpec]] = [:]
        for listener in bound.values where listener.state == .notServing {
            byPort[listener.spec.portID, default: []].append(listener.spec)
        }
        let summary = byPort.keys.sorted().map { id in
            let specs = byPort[id]!
            let first = specs[0]
            return "port '\(first.portName)' (\(first.protocol.rawValue)/\(first.encryption.rawValue) \(first.port)) on \(specs.count) address\(specs.count == 1 ? "" : "es")"
        }
        guard summary != loggedNotServing else { return }
        loggedNotServing = summary
        if !summary.isEmpty {
            logger.notice("not serving yet (protocol not implemented; no socket opened): \(summary.joined(separator: "; "))")
        }
    }

    // MARK: Certificates

    /// The current certificate for `source`: reloaded when its files changed; if the new
    /// files are bad, the last good one stays in use and the error is reported.
    private func certificate(for source: CertificateSource?) -> (LoadedCertificate?, String?) {
        let source = source ?? configuration.defaultCertificate
        if let cached = certificates[source], cached.fingerprint == FileFingerprint.of(source) {
            return (cached, nil)
        }
        do {
            let loaded = try CertificateLoader.load(source, library: configuration.certificateLibrary)
            certificates[source] = loaded
            loggedCertificateErrors[source] = nil
            return (loaded, nil)
        } catch {
            var message = "certificate \(source.certificatePath): \(error)"
            if certificates[source] != nil { message += " (keeping the last good certificate)" }
            // Once per change, not on every refresh.
            if loggedCertificateErrors[source] != message {
                loggedCertificateErrors[source] = message
                logger.error("\(message)")
            }
            return (certificates[source], message)
        }
    }

    /// A client that connects by the listener's host name checks the certificate against
    /// it: say so when neither the listener's certificate nor a library one covers it.
    private func coverageWarning(_ spec: ListenerSpec, _ loaded: LoadedCertificate) -> String? {
        let name = spec.hostname
        if loaded.info.dnsNames.contains(where: { CertificateLibrary.covers($0, name) }) { return nil }
        if configuration.certificateLibrary?.match(name) != nil { return nil }
        let warning = "certificate (\(loaded.info.dnsNames.joined(separator: ", "))) does not cover the host name \(name) clients connect by"
        let key = "\(spec.key) \(warning)"
        if loggedCoverage.insert(key).inserted {
            logger.warning("listener \(spec.key): \(warning)")
        }
        return warning
    }

    // MARK: Opening and closing

    private func open(_ spec: ListenerSpec) async -> BoundListener {
        let listener = BoundListener(spec: spec, greetingNames: greetingNames, admission: configuration.admission)
        if let reserved = configuration.reserved.first(where: { $0.conflicts(address: spec.address, port: spec.port) }) {
            fail(listener, "reserved for \(reserved.owner)")
            return listener
        }
        guard let server = protocols[spec.protocol] else {
            listener.state = .notServing
            listener.error = "protocol \(spec.protocol.rawValue) is not implemented yet; no socket is opened"
            publish(listener)
            return listener
        }
        if spec.encryption != .none {
            let (loaded, error) = certificate(for: spec.certificate)
            guard let loaded else {
                fail(listener, "no usable certificate: \(error ?? "unknown")")
                return listener
            }
            listener.tls.withLockedValue { $0 = loaded.context }
            listener.certificateFingerprint = loaded.fingerprint
            listener.certificateError = error ?? coverageWarning(spec, loaded)
        }
        listener.state = .starting
        publish(listener)
        do {
            listener.channels = try await bindSockets(spec, server: server, listener: listener)
            listener.state = .listening
            listener.error = listener.certificateError
            listener.since = Date()
            loggedFailures[spec.key] = nil
            logger.info("listener \(spec.key) \(spec.protocol.rawValue)/\(spec.encryption.rawValue): listening")
            publish(listener)
        } catch {
            fail(listener, Self.reason(error))
        }
        return listener
    }

    /// One listening socket per event loop, all on the listener's address (SO_REUSEPORT):
    /// the kernel spreads connections over them, and each connection is served on the loop
    /// that accepted it. With one shared socket, NIO hands a connection accepted on one loop
    /// to the next loop in turn, which costs three cross-thread wake-ups before the banner.
    /// An exclusive bind comes first, so a port another program holds (even one that also
    /// sets SO_REUSEPORT) fails here, as it would without sharing. The sockets join the group
    /// in loop order, which is the order `CPUSteering`'s program indexes them by.
    private func bindSockets(_ spec: ListenerSpec, server: any ProtocolServer, listener: BoundListener) async throws -> [any Channel] {
        try Self.probeExclusiveBind(spec)
        var loops: [any EventLoop] = []
        var iterator = group.makeIterator()
        while let loop = iterator.next() { loops.append(loop) }
        var channels: [any Channel] = []
        do {
            var port = spec.port
            for loop in loops {
                let channel = try await bootstrap(spec, on: loop, server: server, listener: listener)
                    .bind(host: spec.address, port: port).get()
                port = channel.localAddress?.port ?? port  // port 0: the others join the first one's
                channels.append(channel)
            }
        } catch {
            for channel in channels { try? await channel.close().get() }
            listener.children.endSessions()  // any the closed sockets took meanwhile
            throw error
        }
        if let steering = configuration.steering, steering.cpus.count == channels.count {
            do {
                try await CPUSteering.attach(steering.program, to: channels[0]).get()
                let steeringSwitch = SteeringSwitch(steering, socket: channels[0])
                listener.steeringSwitch.withLockedValue { $0 = steeringSwitch }
                steeringSwitch.sessionsChanged(to: listener.counters.active.load(ordering: .relaxed))
            } catch {
                // The listener serves without it, on the kernel's hash, as before.
                logger.warning("listener \(spec.key): connections not steered to their CPU's loop: \(Self.reason(error))")
            }
        }
        return channels
    }

    private func bootstrap(_ spec: ListenerSpec, on loop: any EventLoop, server: any ProtocolServer, listener: BoundListener) -> ServerBootstrap {
        let acceptErrors = configuration.admission.acceptErrors
        var bootstrap = ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelInitializer { channel in
                // Out of descriptors (EMFILE/ENFILE), accept fails at once every time it is
                // tried: without a pause the event loop spins at 100 % and nothing else runs.
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler { error in
                        acceptErrors.record(error)
                        return .milliseconds(250)
                    })
                }
            }
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(Self.reusePort, value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 16 * 1024))
            // No child TCP_NODELAY option: ServerBootstrap sets it on the listening socket and
            // accepted sockets inherit it (`.socketOption(.tcp_nodelay)` would set SO_DEBUG).
            .childChannelInitializer { channel in
                listener.initialize(channel, server: server)
            }
        for option in Self.addressOptions(spec) {
            bootstrap = bootstrap.serverChannelOption(
                ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: option.level), name: NIOBSDSocket.Option(rawValue: option.name)),
                value: 1)
        }
        return bootstrap
    }

    static let reusePort = ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT))

    /// Socket options the address needs, as (level, name) set to 1.
    static func addressOptions(_ spec: ListenerSpec) -> [(level: CInt, name: CInt)] {
        var options: [(level: CInt, name: CInt)] = []
        // IP_FREEBIND: an address a failover will bring up can be bound before it exists.
        if spec.source == .manual { options.append((CInt(IPPROTO_IP), IP_FREEBIND)) }
        // "All IPv6" must not also take the IPv4 wildcard's place.
        if spec.address == "::" { options.append((CInt(IPPROTO_IPV6), IPV6_V6ONLY)) }
        return options
    }

    /// Binds (and closes) a socket without SO_REUSEPORT on the listener's address: fails
    /// with the bind's error when any other socket listens there.
    static func probeExclusiveBind(_ spec: ListenerSpec) throws {
        let address = try SocketAddress.makeAddressResolvingHost(spec.address, port: spec.port)
        let fd = socket(CInt(address.protocol.rawValue), CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { close(fd) }
        var one: CInt = 1
        var options: [(level: CInt, name: CInt)] = [(SOL_SOCKET, SO_REUSEADDR)]
        options += addressOptions(spec)
        for option in options {
            guard setsockopt(fd, option.level, option.name, &one, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
                throw IOError(errnoCode: errno, reason: "setsockopt")
            }
        }
        let bound = address.withSockAddr { pointer, size in Glibc.bind(fd, pointer, socklen_t(size)) }
        guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
    }

    /// Records a socket that could not be opened; logs it unless it failed the same way last time.
    private func fail(_ listener: BoundListener, _ reason: String) {
        let spec = listener.spec
        listener.state = .failed
        listener.error = reason
        if loggedFailures[spec.key] != reason {
            loggedFailures[spec.key] = reason
            logger.error("listener \(spec.key) \(spec.protocol.rawValue)/\(spec.encryption.rawValue): failed: \(reason)")
        }
        publish(listener)
    }

    /// Applies what needs no new socket: names, tlsRequired, the certificate.
    private func update(_ listener: BoundListener, to spec: ListenerSpec) {
        guard listener.state != .notServing else {
            if spec != listener.spec {
                listener.spec = spec
                publish(listener)
            }
            return
        }
        var error: String? = nil
        if spec.encryption != .none {
            let (loaded, certificateError) = certificate(for: spec.certificate)
            error = certificateError
            if let loaded, loaded.fingerprint != listener.certificateFingerprint || spec.certificate != listener.spec.certificate {
                listener.tls.withLockedValue { $0 = loaded.context }
                listener.certificateFingerprint = loaded.fingerprint
                logger.info("listener \(spec.key): TLS certificate swapped (\(loaded.info.subject))")
            }
            if error == nil, let loaded { error = coverageWarning(spec, loaded) }
        }
        let changed = spec != listener.spec || error != listener.error
        listener.spec = spec
        listener.error = error
        if changed { publish(listener) }
    }

    /// Closes the socket; its sessions go on until they end or the drain timeout passes.
    private func retire(_ listener: BoundListener, reason: String) async {
        if !listener.channels.isEmpty {
            await listener.closeSockets()
            logger.info("listener \(listener.spec.key) \(listener.spec.protocol.rawValue): closed (\(reason))")
        }
        // The socket's series leave /metrics with it; a socket bound again starts anew.
        listener.counters.destroyMetrics()
        registry.remove(listener.spec.key)
        if listener.state == .notServing { return }
        if case .failed = listener.state { return }
        guard listener.children.count > 0 else { return }
        listener.state = .draining
        listener.drainDeadline = ContinuousClock.now + configuration.removedListenerDrainTimeout
        draining.append(listener)
        // Shown as draining until its sessions end, unless a new socket takes its place.
        if reason == "removed" { publish(listener) }
    }

    private func sweepDraining() {
        let now = ContinuousClock.now
        draining.removeAll { listener in
            var done = listener.children.count == 0
            if !done, let deadline = listener.drainDeadline, now >= deadline {
                listener.children.endSessions()
                done = true
            }
            if done && bound[listener.spec.key] == nil { registry.remove(listener.spec.key) }
            return done
        }
    }

    private func shutdown() async {
        logger.info("listeners: draining for shutdown")
        let all = Array(bound.values) + draining
        bound.removeAll()
        for listener in all {
            await listener.closeSockets()
            listener.children.drain()
        }
        let deadline = ContinuousClock.now + configuration.shutdownDrainTimeout
        while ContinuousClock.now < deadline, all.contains(where: { $0.children.count > 0 }) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for listener in all { listener.children.endSessions() }
        try? await Task.sleep(for: .milliseconds(200))
        for listener in all { listener.children.closeAll() }
        try? await Task.sleep(for: .milliseconds(50))
    }

    private func publish(_ listener: BoundListener) {
        registry.set(
            listener.spec, state: listener.state, error: listener.error, counters: listener.counters,
            since: listener.since)
    }

    /// The OS reason of a failed bind, as an admin reads it ("address already in use").
    static func reason(_ error: any Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        return "\(error)"
    }
}

/// One listening address (a socket per event loop) and everything its connections share.
final class BoundListener: @unchecked Sendable {
    // Actor-owned fields (touched only by ListenerManager):
    var spec: ListenerSpec {
        didSet { config.withLockedValue { $0 = spec } }
    }
    var channels: [any Channel] = []
    var state: ListenerStatus.State = .starting
    var error: String?
    var certificateError: String?
    var certificateFingerprint: FileFingerprint?
    var since = Date()
    var drainDeadline: ContinuousClock.Instant?

    // Shared with the event loops:
    let config: NIOLockedValueBox<ListenerSpec>
    let tls = NIOLockedValueBox<NIOSSLContext?>(nil)
    let counters: ListenerCounters
    let children = ChildChannels()
    let greetingNames: NIOLockedValueBox<[String: String]>
    let admission: Admission
    let connections = NIOLockedValueBox(ConnectionCounts())
    /// Set once the sockets are bound, when connections are steered by CPU.
    let steeringSwitch = NIOLockedValueBox<SteeringSwitch?>(nil)

    func closeSockets() async {
        for channel in channels { try? await channel.close().get() }
        channels = []
    }

    init(spec: ListenerSpec, greetingNames: NIOLockedValueBox<[String: String]>, admission: Admission) {
        self.spec = spec
        self.greetingNames = greetingNames
        self.admission = admission
        self.config = NIOLockedValueBox(spec)
        self.counters = ListenerCounters(key: spec.key, protocol: spec.protocol)
    }

    /// Runs on the child's event loop for every accepted connection.
    func initialize(_ channel: any Channel, server: any ProtocolServer) -> EventLoopFuture<Void> {
        var spec = config.withLockedValue { $0 }
        if spec.source == .wildcard, let local = channel.localAddress?.ipAddress,
           let name = greetingNames.withLockedValue({ $0[IPLiteral.canonical(local)?.address ?? local] })
        {
            spec.hostname = name
        }
        counters.opened()
        children.add(channel)
        let steeringSwitch = self.steeringSwitch.withLockedValue { $0 }
        steeringSwitch?.sessionsChanged(to: counters.active.load(ordering: .relaxed))
        let counters = self.counters
        let children = self.children
        channel.closeFuture.whenComplete { _ in
            counters.closed()
            children.remove(channel)
            steeringSwitch?.sessionsChanged(to: counters.active.load(ordering: .relaxed))
        }
        let peer = channel.remoteAddress?.ipAddress ?? "unknown"
        var connection = ConnectionContext(
            spec: spec, isImplicitTLS: spec.encryption == .ssl, tlsContext: tls.withLockedValue { $0 }, clientAddress: peer)
        return channel.eventLoop.makeCompletedFuture {
            guard spec.proxyProtocol else {
                try admit(channel, connection: connection, server: server)
                return
            }
            // The header's address is the client's everywhere: limits, bans, logs, banner.
            var logger = admission.logger
            logger[metadataKey: "session"] = .string(connection.sessionID)
            logger[metadataKey: "client"] = .string(peer)
            logger[metadataKey: "listener"] = .string(spec.key.description)
            guard admission.isTrustedProxy(peer) else {
                logger.notice("refused", metadata: ["reason": "PROXY protocol: \(peer) is not in proxyTrustedNetworks"])
                Counter(label: "berth_proxy_refused_total").increment()
                channel.close(promise: nil)
                return
            }
            try channel.pipeline.syncOperations.addHandler(ProxyHeaderHandler(
                timeout: admission.proxyHeaderTimeout, logger: logger
            ) { client in
                connection.clientAddress = client
                try self.admit(channel, connection: connection, server: server)
            })
        }
    }

    /// Limits and bans, then the session. A refused client gets the protocol's refusal
    /// (over TLS on an `ssl` port) and is closed.
    func admit(_ channel: any Channel, connection: ConnectionContext, server: any ProtocolServer) throws {
        let spec = connection.spec
        var refusal: Refusal?
        if !admission.budget.take() {
            refusal = .serverFull
        } else {
            let budget = admission.budget
            channel.closeFuture.whenComplete { _ in budget.give() }
            let client = ClientKey.of(connection.clientAddress)
            refusal = connections.withLockedValue {
                $0.admit(client, maxConnections: spec.maxConnections, maxPerClient: spec.maxConnectionsPerClient)
            }
            if refusal == nil {
                let connections = self.connections
                channel.closeFuture.whenComplete { _ in connections.withLockedValue { $0.release(client) } }
                if admission.authGuard?.banRemaining(connection.clientAddress) != nil { refusal = .banned }
            }
        }
        if spec.encryption == .ssl {
            guard let tlsContext = connection.tlsContext else {
                channel.close(promise: nil)
                return
            }
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
        }
        guard let refusal else {
            try server.configure(channel: channel, connection: connection)
            return
        }
        admission.refused(refusal, connection: connection)
        let message = server.refusal(refusal, connection: connection)
        channel.writeAndFlush(message).whenComplete { _ in channel.close(promise: nil) }
        // A refused client gets no longer than a handshake would to take its answer; the
        // timer goes with the channel, so a flood of refusals holds no closed channels.
        let grace = channel.eventLoop.scheduleTask(in: admission.refusalGrace) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in grace.cancel() }
    }
}

/// The open connections of one listener, for draining.
final class ChildChannels: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) { channels.withLockedValue { $0[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: any Channel) { channels.withLockedValue { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) } }
    var count: Int { channels.withLockedValue { $0.count } }

    /// Tells every session to finish (protocols reply "closing" at the next command).
    func drain() {
        for channel in channels.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        }
    }

    /// The drain time is over: protocols send their closing reply now.
    func endSessions() {
        for channel in channels.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(DrainDeadlineEvent())
        }
    }

    func closeAll() {
        for channel in channels.withLockedValue({ Array($0.values) }) {
            channel.close(promise: nil)
        }
    }
}
