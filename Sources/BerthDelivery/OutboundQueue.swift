import BerthCore
import BerthDKIM
import BerthDNS
import BerthStore
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// The outbound queue runner. Every pending recipient lives in memory (loaded at start,
/// added by the Maildir writer after each commit) and in the `queueRecipient` table; a
/// result is written to the table before the queue forgets the recipient, and the file
/// goes only when no recipient is pending. A crash between a remote `250` and that write
/// sends the message again (never zero times).
///
/// Work is grouped by destination (recipient domain and sender domain: the sender
/// domain picks the source address, so two senders never share a connection). Each
/// destination runs up to `outboundMaxConnectionsPerDestination` connections, all of
/// them at most `outboundMaxConnections`; a connection carries message after message
/// while its destination has work.
public actor OutboundQueue: Service {
    public struct Dependencies: Sendable {
        public var store: ConfigStore
        public var resolver: MailExchangerResolver
        public var group: any EventLoopGroup
        public var settings: @Sendable () -> ServerSettings
        public var policy: @Sendable () -> OutboundPolicy
        /// Hands a DSN to local delivery (or back to this queue for a remote sender); the
        /// callback says whether it was stored.
        public var submit: @Sendable (InboundMessage, @escaping @Sendable (Bool) -> Void) -> Void
        public var classify: @Sendable (String) -> RecipientClass
        public var logger: Logger

        public init(
            store: ConfigStore, resolver: MailExchangerResolver, group: any EventLoopGroup,
            settings: @escaping @Sendable () -> ServerSettings, policy: @escaping @Sendable () -> OutboundPolicy,
            submit: @escaping @Sendable (InboundMessage, @escaping @Sendable (Bool) -> Void) -> Void, classify: @escaping @Sendable (String) -> RecipientClass,
            logger: Logger
        ) {
            self.store = store
            self.resolver = resolver
            self.group = group
            self.settings = settings
            self.policy = policy
            self.submit = submit
            self.classify = classify
            self.logger = logger
        }
    }

    struct DestinationKey: Hashable, Sendable {
        var recipientDomain: String
        var senderDomain: String
    }

    /// One message's due recipients in one domain: one SMTP transaction.
    struct Job: Sendable {
        var entry: QueueEntry
        var key: DestinationKey
    }

    struct Destination {
        var jobs = CircularBuffer<Job>()
        var workers = 0
    }

    private let dependencies: Dependencies
    private let threadPool: NIOThreadPool
    private var entries: [Int64: QueueEntry] = [:]
    private var inFlight: Set<Int64> = []
    private var destinations: [DestinationKey: Destination] = [:]
    private var connections = 0
    private var nextDue = Date.distantFuture
    /// When queue rows have a recipient due (see `RetryHeap`).
    private var schedule = RetryHeap()
    private var sleeper: CheckedContinuation<Void, Never>?
    private var wakePending = false
    private var stopping = false
    private var journal: [RecipientUpdate] = []
    private var flushing = false
    private var flushWaiters: [CheckedContinuation<Void, Never>] = []
    /// `rotate`: source addresses that failed to connect, until when they go last.
    private var failedSources: [String: Date] = [:]
    private var dsnSequence = 0
    /// The highest queue row read from the table (see `add`).
    private var loadedThrough: Int64 = 0

    private let depthMessages = Gauge(label: "berth_queue_messages")
    private let depthRecipients = Gauge(label: "berth_queue_recipients")

    public init(_ dependencies: Dependencies) {
        self.dependencies = dependencies
        threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
    }

    // MARK: Service

    public func run() async throws {
        do {
            let pending = try dependencies.store.pendingQueue()
            for entry in pending { entries[entry.row] = entry }
            loadedThrough = pending.map(\.row).max() ?? 0
            rebuildSchedule()
            pendingRecipients = entries.values.reduce(0) { $0 + $1.recipients.count }
            if !pending.isEmpty {
                dependencies.logger.info("outbound queue: \(pending.count) message(s) waiting")
            }
        } catch {
            dependencies.logger.error("outbound queue: cannot read the queue: \(error)")
        }
        // Graceful shutdown, or cancellation when another service of the group failed.
        await withTaskCancellationOrGracefulShutdownHandler {
            await self.loop()
        } onCancelOrGracefulShutdown: {
            Task { await self.beginStopping() }
        }
        // Let connections finish the message they are sending, for a while.
        for _ in 0..<100 where connections > 0 { try? await Task.sleep(for: .milliseconds(100)) }
        await flushJournal()
        try? await threadPool.shutdownGracefully()
    }

    private func loop() async {
        while !stopping {
            let now = Date()
            dispatch(Set(schedule.popDue(now)), now: now)
            updateDepth()
            nextDue = schedule.earliest ?? .distantFuture
            let wait = min(max(nextDue.timeIntervalSinceNow, 0.05), 60)
            await sleep(seconds: wait)
        }
    }

    private func beginStopping() {
        stopping = true
        wake()
    }

    private func sleep(seconds: Double) async {
        if wakePending {
            wakePending = false
            return
        }
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))) != nil else { return }
            await self?.wake()
        }
        await withCheckedContinuation { sleeper = $0 }
        timer.cancel()
    }

    private func wake() {
        if let sleeper {
            self.sleeper = nil
            sleeper.resume()
        } else {
            wakePending = true
        }
    }

    // MARK: Intake

    /// Messages the Maildir writer just queued; called from its thread.
    public nonisolated func enqueue(_ new: [QueueEntry]) {
        Task { await self.add(new) }
    }

    private func add(_ new: [QueueEntry]) {
        // A row the table was read through (at start, or by reload) is known already, or
        // finished since: adding it again would send it again.
        let fresh = new.filter { $0.row > loadedThrough && entries[$0.row] == nil }
        for entry in fresh {
            entries[entry.row] = entry
            pendingRecipients += entry.recipients.count
        }
        dispatch(fresh.map(\.row), now: Date())
        updateDepth()
    }

    /// The admin changed the queue (retry, delete): the table is the truth again for
    /// every recipient not being sent right now.
    public func reload() async {
        // Every result must be in the table before it is read back: results that finish
        // while a flush runs start another, so wait until none is left. No suspension
        // between that check and the read below.
        repeat { await flushJournal() } while flushing || !journal.isEmpty
        do {
            let pending = try dependencies.store.pendingQueue()
            loadedThrough = max(loadedThrough, pending.map(\.row).max() ?? 0)
            var fresh: [Int64: QueueEntry] = [:]
            for entry in pending { fresh[entry.row] = entry }
            for (row, entry) in entries where fresh[row] != nil || entry.recipients.contains(where: { inFlight.contains($0.row) }) {
                guard var updated = fresh[row] else { continue }
                // In-flight recipients keep their in-memory state until their result is in.
                for recipient in entry.recipients where inFlight.contains(recipient.row) {
                    if !updated.recipients.contains(where: { $0.row == recipient.row }) { updated.recipients.append(recipient) }
                }
                fresh[row] = updated
            }
            entries = fresh
            rebuildSchedule()
            pendingRecipients = entries.values.reduce(0) { $0 + $1.recipients.count }
        } catch {
            dependencies.logger.error("outbound queue: cannot read the queue: \(error)")
        }
        wake()
    }

    // MARK: Scheduling

    /// One heap entry per waiting recipient not being sent now.
    private func rebuildSchedule() {
        schedule.removeAll()
        for (row, entry) in entries {
            for recipient in entry.recipients where !inFlight.contains(recipient.row) {
                schedule.insert(recipient.nextAttemptAt, row: row)
            }
        }
    }

    private func dispatch(_ rows: some Sequence<Int64>, now: Date) {
        for row in rows {
            guard let entry = entries[row] else { continue }
            var byDomain: [String: [QueueRecipient]] = [:]
            for recipient in entry.recipients where !inFlight.contains(recipient.row) {
                if recipient.nextAttemptAt <= now {
                    byDomain[domainPart(recipient.address), default: []].append(recipient)
                }
            }
            for (domain, recipients) in byDomain {
                var part = entry
                part.recipients = recipients
                for recipient in recipients { inFlight.insert(recipient.row) }
                let key = DestinationKey(recipientDomain: domain, senderDomain: domainPart(entry.sender))
                destinations[key, default: Destination()].jobs.append(Job(entry: part, key: key))
            }
        }
        startWorkers()
    }

    private func startWorkers() {
        guard !stopping else { return }
        let settings = dependencies.settings()
        for key in Array(destinations.keys) {
            while var destination = destinations[key], !destination.jobs.isEmpty,
                  destination.workers < settings.outboundMaxConnectionsPerDestination,
                  connections < settings.outboundMaxConnections
            {
                let first = destination.jobs.removeFirst()
                destination.workers += 1
                destinations[key] = destination
                connections += 1
                Task { await self.work(key: key, first: first) }
            }
        }
    }

    private func takeJob(_ key: DestinationKey) -> Job? {
        guard !stopping, var destination = destinations[key], !destination.jobs.isEmpty else { return nil }
        let job = destination.jobs.removeFirst()
        destinations[key] = destination
        return job
    }

    private func workerFinished(_ key: DestinationKey) {
        connections -= 1
        if var destination = destinations[key] {
            destination.workers -= 1
            if destination.workers == 0 && destination.jobs.isEmpty {
                destinations[key] = nil
            } else {
                destinations[key] = destination
            }
        }
        if stopping {
            // Jobs not started go back to waiting; the next start picks them up.
            for (key, destination) in destinations {
                for job in destination.jobs { for recipient in job.entry.recipients { inFlight.remove(recipient.row) } }
                destinations[key]?.jobs.removeAll()
            }
        }
        startWorkers()
    }

    // MARK: A worker: one connection at a time to one destination

    private func work(key: DestinationKey, first: Job) async {
        defer { workerFinished(key) }
        let policy = dependencies.policy()
        let settings = dependencies.settings()
        let route = policy.routes[key.recipientDomain]
        var families: Set<AddressFamily> = []
        for family in [AddressFamily.ipv4, .ipv6] where policy.sources(senderDomain: key.senderDomain, family: family) != .disabled {
            families.insert(family)
        }
        var job: Job? = first
        let lookup = await dependencies.resolver.lookup(domain: key.recipientDomain, route: route, families: families)
        let exchangers: [MailExchanger]
        switch lookup {
        case .exchangers(let list):
            exchangers = list
        case .permanent(let status, let reason):
            while let current = job {
                await finish(current, outcomes: current.entry.recipients.map {
                    Outcome(recipient: $0, kind: .bounced, status: status, text: reason)
                }, attempt: nil)
                job = takeJob(key)
            }
            return
        case .temporary(let reason):
            await deferAll(first: job, key: key, reason: reason)
            return
        }
        while let current = job {
            let session: OutboundSession
            do {
                session = try await connect(exchangers, key: key, route: route, policy: policy, settings: settings)
            } catch {
                await deferAll(first: current, key: key, reason: "\(error)")
                return
            }
            var next: Job? = current
            var messages = 0
            var healthy = true
            while let sending = next {
                healthy = await transact(sending, over: session, policy: policy)
                messages += 1
                next = takeJob(key)
                if !healthy || messages >= Self.maxMessagesPerConnection { break }
            }
            // QUIT only on a connection in step with the server (one left in DATA mode
            // would take it as message text).
            if healthy && next == nil { await session.connection.quit() } else { await session.connection.close() }
            job = next
        }
    }

    /// Like Postfix's smtp_connection_reuse_count_limit: a connection is not kept forever.
    static let maxMessagesPerConnection = 1000

    private func deferAll(first: Job?, key: DestinationKey, reason: String) async {
        var job = first
        while let current = job {
            await finish(current, outcomes: current.entry.recipients.map {
                Outcome(recipient: $0, kind: .deferred, status: "4.4.1", text: reason)
            }, attempt: nil)
            job = takeJob(key)
        }
    }

    struct OutboundSession {
        var connection: SMTPClientConnection
        var exchanger: String
        var address: String
        var source: String?
        var tls: String?
        var extensions: [String: String]
    }

    private func connect(
        _ exchangers: [MailExchanger], key: DestinationKey, route: OutboundRoute?, policy: OutboundPolicy,
        settings: ServerSettings
    ) async throws -> OutboundSession {
        var errors: [String] = []
        let timeout = TimeAmount.seconds(Int64(settings.outboundConnectTimeoutSeconds))
        for exchanger in exchangers {
            for address in exchanger.addresses {
                let family: AddressFamily = address.contains(":") ? .ipv6 : .ipv4
                let now = Date()
                failedSources = failedSources.filter { $0.value > now }
                let sources: [String?]
                switch policy.sources(senderDomain: key.senderDomain, family: family).ordered(skipping: Set(failedSources.keys)) {
                case .disabled:
                    errors.append("\(exchanger.host)[\(address)]: \(family.rawValue) is disabled for mail from \(key.senderDomain)")
                    continue
                case .system: sources = [nil]
                case .addresses(let list): sources = list
                }
                for source in sources {
                    do {
                        return try await open(
                            exchanger: exchanger, address: address, source: source, route: route, policy: policy, timeout: timeout)
                    } catch let error as SourceFailure {
                        if let source {
                            failedSources[source] = Date().addingTimeInterval(TimeInterval(settings.outboundFailureMemorySeconds))
                        }
                        errors.append("\(exchanger.host)[\(address)] from \(source ?? "system"): \(error.reason)")
                    } catch {
                        errors.append("\(exchanger.host)[\(address)]: \(error)")
                        break
                    }
                }
            }
        }
        throw SMTPClientError(errors.isEmpty ? "no mail exchanger to try" : errors.joined(separator: "; "))
    }

    /// A connect that failed: the next source address may do better.
    struct SourceFailure: Error { var reason: String }

    private func open(
        exchanger: MailExchanger, address: String, source: String?, route: OutboundRoute?, policy: OutboundPolicy,
        timeout: TimeAmount, plaintextOnly: Bool = false
    ) async throws -> OutboundSession {
        let connection: SMTPClientConnection
        do {
            let target = try SocketAddress(ipAddress: address, port: exchanger.port)
            let from = try source.map { try SocketAddress(ipAddress: $0, port: 0) }
            connection = try await SMTPClientConnection.connect(
                to: target, from: from, group: dependencies.group, connectTimeout: timeout)
        } catch {
            throw SourceFailure(reason: Self.describe(error))
        }
        do {
            let greeting = try await connection.greeting()
            guard greeting.code == 220 else { throw SMTPClientError("greeting: \(greeting)") }
            let name = policy.ehloName(source: source)
            var ehlo = try await connection.command("EHLO \(name)")
            if !ehlo.isPositive {
                ehlo = try await connection.command("HELO \(name)")
                guard ehlo.isPositive else { throw SMTPClientError("HELO: \(ehlo)") }
                ehlo.lines = [ehlo.lines.first ?? ""]
            }
            var tls: String?
            let requireTLS = route?.requireTLS ?? false
            if ehlo.extensions["STARTTLS"] != nil && !plaintextOnly {
                let verify = route?.verifyCertificate ?? false
                do {
                    if let refused = try await connection.startTLS(
                        context: try Self.tlsContext(verify: verify),
                        serverHostname: verify && IPLiteral.canonical(exchanger.host) == nil ? exchanger.host : nil)
                    {
                        if requireTLS { throw SMTPClientError("STARTTLS refused: \(refused)") }
                    } else {
                        tls = await connection.tlsVersion() ?? "TLS"
                        ehlo = try await connection.command("EHLO \(name)")
                        guard ehlo.isPositive else { throw SMTPClientError("EHLO after STARTTLS: \(ehlo)") }
                    }
                } catch {
                    await connection.close()
                    if requireTLS { throw SMTPClientError("TLS: \(error)") }
                    // Opportunistic TLS (RFC 3207 §4.1, RFC 7435): a failed handshake is
                    // retried once in plaintext rather than not delivering at all.
                    dependencies.logger.notice("outbound TLS with \(exchanger.host)[\(address)] failed (\(error)); retrying without TLS")
                    return try await open(
                        exchanger: exchanger, address: address, source: source, route: route, policy: policy,
                        timeout: timeout, plaintextOnly: true)
                }
            }
            if requireTLS && tls == nil {
                throw SMTPClientError("the route requires TLS and \(exchanger.host) does not offer STARTTLS")
            }
            return OutboundSession(
                connection: connection, exchanger: exchanger.host, address: address, source: source, tls: tls,
                extensions: ehlo.extensions)
        } catch {
            await connection.close()
            throw error
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        if error is ChannelError { return "\(error)" }
        return "\(error)"
    }

    private static let tlsContexts: [Bool: NIOSSLContext] = {
        var contexts: [Bool: NIOSSLContext] = [:]
        for verify in [false, true] {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = verify ? .fullVerification : .none
            contexts[verify] = try? NIOSSLContext(configuration: configuration)
        }
        return contexts
    }()

    static func tlsContext(verify: Bool) throws -> NIOSSLContext {
        guard let context = tlsContexts[verify] else { throw SMTPClientError("cannot set up a TLS client context") }
        return context
    }

    // MARK: One transaction

    struct Outcome: Sendable {
        enum Kind: Sendable { case delivered, deferred, bounced }
        var recipient: QueueRecipient
        var kind: Kind
        var status: String
        var text: String
        var remoteMTA: String? = nil

        static func from(_ reply: SMTPClientReply, recipient: QueueRecipient, remote: String) -> Outcome {
            // Only 2xx accepts a recipient or a message; a 3xx there is out of step: retry.
            let kind: Kind = (200..<300).contains(reply.code) ? .delivered : reply.isPermanent ? .bounced : .deferred
            let enhanced = reply.lines.first.flatMap { line -> String? in
                let first = line.split(separator: " ").first.map(String.init) ?? ""
                let parts = first.split(separator: ".")
                return parts.count == 3 && parts.allSatisfy({ Int($0) != nil }) ? first : nil
            }
            let status = enhanced ?? (reply.isPositive ? "2.0.0" : reply.isPermanent ? "5.0.0" : "4.0.0")
            return Outcome(recipient: recipient, kind: kind, status: status, text: reply.description, remoteMTA: remote)
        }
    }

    /// One message over an open session. Returns whether the connection can carry another.
    private func transact(_ job: Job, over session: OutboundSession, policy: OutboundPolicy) async -> Bool {
        let entry = job.entry
        let connection = session.connection
        let remote = session.exchanger
        var outcomes: [Outcome] = []
        var healthy = true
        do {
            let keys = policy.dkimKeys[job.key.senderDomain] ?? []
            let file = try await QueuedMessageFile.prepare(
                path: entry.path, domain: keys.isEmpty ? nil : job.key.senderDomain, keys: keys, threadPool: threadPool)
            let size = file.estimatedWireSize
            if let limit = session.extensions["SIZE"].flatMap({ Int($0) }), limit > 0, size > limit {
                let text = "message of \(size) bytes exceeds \(remote)'s limit of \(limit) bytes"
                outcomes = entry.recipients.map { Outcome(recipient: $0, kind: .bounced, status: "5.3.4", text: text, remoteMTA: remote) }
                await finish(job, outcomes: outcomes, attempt: session)
                return true
            }
            var mail = "MAIL FROM:<\(entry.sender)>"
            if session.extensions["SIZE"] != nil { mail += " SIZE=\(size)" }
            if file.eightBit && session.extensions["8BITMIME"] != nil { mail += " BODY=8BITMIME" }
            let commands = [mail] + entry.recipients.map { "RCPT TO:<\($0.address)>" }
            var replies: [SMTPClientReply]
            var dataReply: SMTPClientReply?
            if session.extensions["PIPELINING"] != nil {
                replies = try await connection.pipeline(commands + ["DATA"])
                dataReply = replies.removeLast()
            } else {
                replies = [try await connection.command(mail)]
                if replies[0].isPositive {
                    for command in commands.dropFirst() { replies.append(try await connection.command(command)) }
                }
            }
            let mailReply = replies[0]
            guard mailReply.isPositive else {
                outcomes = entry.recipients.map { Outcome.from(mailReply, recipient: $0, remote: remote) }
                if dataReply?.code == 354 { healthy = false } else { _ = try await connection.command("RSET") }
                await finish(job, outcomes: outcomes, attempt: session)
                return healthy
            }
            var accepted: [QueueRecipient] = []
            for (recipient, reply) in zip(entry.recipients, replies.dropFirst()) {
                if (200..<300).contains(reply.code) {
                    accepted.append(recipient)
                } else {
                    outcomes.append(.from(reply, recipient: recipient, remote: remote))
                }
            }
            if accepted.isEmpty {
                // RFC 2920 §3.1: DATA after only failed RCPTs must fail; a server that says
                // 354 anyway is not trusted with another message.
                if dataReply?.code == 354 { healthy = false } else { _ = try await connection.command("RSET") }
                await finish(job, outcomes: outcomes, attempt: session)
                return healthy
            }
            if dataReply == nil { dataReply = try await connection.command("DATA") }
            guard let data = dataReply, data.code == 354 else {
                // Anything but 354 to DATA: a 4xx/5xx is the server's verdict; a 2xx would
                // mean it took nothing, so it is an error to retry, never a delivery.
                let reply = dataReply!
                outcomes += accepted.map {
                    reply.code >= 400 ? Outcome.from(reply, recipient: $0, remote: remote)
                        : Outcome(recipient: $0, kind: .deferred, status: "4.5.0", text: "\(remote): unexpected reply to DATA: \(reply)", remoteMTA: remote)
                }
                healthy = reply.code >= 400
                if healthy { _ = try await connection.command("RSET") }
                await finish(job, outcomes: outcomes, attempt: session)
                return healthy
            }
            let pool = threadPool
            let end = try await connection.data { try await file.send(over: connection, threadPool: pool) }
            outcomes += accepted.map { Outcome.from(end, recipient: $0, remote: remote) }
        } catch {
            // The connection broke or timed out: whatever has no verdict yet is retried.
            healthy = false
            let decided = Set(outcomes.map(\.recipient.row))
            outcomes += entry.recipients.filter { !decided.contains($0.row) }.map {
                Outcome(recipient: $0, kind: .deferred, status: "4.4.2", text: "\(remote): \(Self.describe(error))", remoteMTA: remote)
            }
        }
        await finish(job, outcomes: outcomes, attempt: session)
        return healthy
    }

    // MARK: Results

    private let deliveries = OutboundMetrics()

    /// Records a job's outcomes: memory, log, metrics, DSNs, then the table.
    private func finish(_ job: Job, outcomes: [Outcome], attempt session: OutboundSession?) async {
        let now = Date()
        let settings = dependencies.settings()
        let schedule = RetrySchedule(settings)
        var updates: [RecipientUpdate] = []
        var failed: [DeliveryStatusNotification.Recipient] = []
        var delayed: [DeliveryStatusNotification.Recipient] = []
        var bounces: [RecipientUpdate] = []
        var bounced: [QueueRecipient] = []
        var rearm = false
        let row = job.entry.row
        for outcome in outcomes {
            var recipient = outcome.recipient
            inFlight.remove(recipient.row)
            recipient.attempts += 1
            var kind = outcome.kind
            var text = outcome.text
            var status = outcome.status
            if kind == .deferred, now.timeIntervalSince(job.entry.receivedAt) >= TimeInterval(settings.queueLifetimeSeconds) {
                kind = .bounced
                status = "4.4.7"
                text = "delivery time expired after \(settings.queueLifetimeSeconds) s; last error: \(outcome.text)"
            }
            recipient.lastError = kind == .delivered ? nil : text
            let dsnRecipient = DeliveryStatusNotification.Recipient(
                address: recipient.address, status: status, diagnostic: text, remoteMTA: outcome.remoteMTA)
            switch kind {
            case .delivered:
                updates.append(RecipientUpdate(row: recipient.row, outcome: .delivered, attempts: recipient.attempts, lastError: nil, warned: recipient.warned))
                removeRecipient(recipient.row, from: row)
            case .bounced:
                bounces.append(RecipientUpdate(row: recipient.row, outcome: .bounced, attempts: recipient.attempts, lastError: text, warned: recipient.warned))
                bounced.append(recipient)
                removeRecipient(recipient.row, from: row)
                failed.append(dsnRecipient)
            case .deferred:
                recipient.nextAttemptAt = now.addingTimeInterval(schedule.delay(afterAttempts: recipient.attempts))
                if settings.queueDelayWarningSeconds > 0, !recipient.warned,
                   now.timeIntervalSince(job.entry.receivedAt) >= TimeInterval(settings.queueDelayWarningSeconds)
                {
                    recipient.warned = true
                    delayed.append(dsnRecipient)
                }
                updates.append(RecipientUpdate(
                    row: recipient.row, outcome: .deferred(until: recipient.nextAttemptAt), attempts: recipient.attempts,
                    lastError: text, warned: recipient.warned))
                replaceRecipient(recipient, in: row)
                self.schedule.insert(recipient.nextAttemptAt, row: row)
                if recipient.nextAttemptAt < nextDue {
                    // The loop sleeps until the earliest retry it knows of: wake it to
                    // sleep less. Otherwise there is nothing for it to do now, and a full
                    // scan after every message would cost O(queue) each time.
                    nextDue = recipient.nextAttemptAt
                    rearm = true
                }
            }
            let statusWord = kind == .delivered ? "sent" : kind == .bounced ? "bounced" : "deferred"
            let source = session?.source ?? "system"
            deliveries.count(statusWord, source: source)
            dependencies.logger.info("delivery", metadata: [
                "event": "delivery", "queue": .string(job.entry.queueID), "to": .string(recipient.address),
                "mx": .string(session?.exchanger ?? "-"), "ip": .string(session?.address ?? "-"),
                "source": .string(source), "tls": .string(session?.tls ?? "none"), "status": .string(statusWord),
                "reply": .string(text),
            ])
        }
        if !delayed.isEmpty { _ = sendDSN(.delayed, for: job.entry, recipients: delayed, now: now) }
        // A bounce is recorded once its DSN is stored: a sender is never left untold. (A
        // crash between the two retries the recipient, which may bounce again: a second
        // DSN, never none.)
        let entry = job.entry
        let (bounceUpdates, bouncedRecipients) = (bounces, bounced)
        let notified = !failed.isEmpty && sendDSN(.failed, for: entry, recipients: failed, now: now) { stored in
            Task { await self.bounceNoticeDone(stored, bounces: bounceUpdates, recipients: bouncedRecipients, entry: entry) }
        }
        if !notified { updates += bounces }
        record(updates)
        updateDepth()
        if rearm { wake() }
    }

    /// The DSN for `bounces` is stored (record them) or could not be (retry them later).
    private func bounceNoticeDone(_ stored: Bool, bounces: [RecipientUpdate], recipients: [QueueRecipient], entry: QueueEntry) {
        guard !stored else {
            record(bounces)
            return
        }
        let delay = RetrySchedule(dependencies.settings()).delay(afterAttempts: 1)
        var retry: [RecipientUpdate] = []
        var readded = entries[entry.row] ?? QueueEntry(
            row: entry.row, queueID: entry.queueID, path: entry.path, sender: entry.sender, size: entry.size,
            receivedAt: entry.receivedAt, recipients: [])
        for (update, var recipient) in zip(bounces, recipients) {
            recipient.nextAttemptAt = Date().addingTimeInterval(delay)
            recipient.lastError = "\(update.lastError ?? "bounced"); the DSN to the sender could not be stored, so it is tried again"
            retry.append(RecipientUpdate(
                row: recipient.row, outcome: .deferred(until: recipient.nextAttemptAt), attempts: recipient.attempts,
                lastError: recipient.lastError, warned: recipient.warned))
            readded.recipients.append(recipient)
            pendingRecipients += 1
            schedule.insert(recipient.nextAttemptAt, row: entry.row)
            if recipient.nextAttemptAt < nextDue { nextDue = recipient.nextAttemptAt }
        }
        entries[entry.row] = readded
        record(retry)
        updateDepth()
        wake()
    }

    private func removeRecipient(_ recipientRow: Int64, from row: Int64) {
        guard var entry = entries[row], let index = entry.recipients.firstIndex(where: { $0.row == recipientRow }) else { return }
        entry.recipients.remove(at: index)
        pendingRecipients -= 1
        entries[row] = entry.recipients.isEmpty ? nil : entry
    }

    private func replaceRecipient(_ recipient: QueueRecipient, in row: Int64) {
        guard var entry = entries[row], let index = entry.recipients.firstIndex(where: { $0.row == recipient.row }) else { return }
        entry.recipients[index] = recipient
        entries[row] = entry
    }

    /// Pending recipients in `entries`, kept as they come and go (a sum over the queue
    /// after every message would cost O(queue) each time).
    private var pendingRecipients = 0

    private func updateDepth() {
        depthMessages.record(entries.count)
        depthRecipients.record(pendingRecipients)
    }

    /// RFC 3464 report to the sender; none for the null sender (RFC 5321 §4.5.5: no
    /// bounce of a bounce).
    /// Returns whether a DSN was handed over; `stored` then hears whether it is durable.
    private func sendDSN(
        _ action: DeliveryStatusNotification.Action, for entry: QueueEntry, recipients: [DeliveryStatusNotification.Recipient],
        now: Date, stored: (@Sendable (Bool) -> Void)? = nil
    ) -> Bool {
        let logger = dependencies.logger
        guard !entry.sender.isEmpty else {
            logger.info("dsn", metadata: ["event": "dsn", "queue": .string(entry.queueID), "action": .string(action.rawValue), "status": "skipped: null sender"])
            return false
        }
        let recipientClass = dependencies.classify(entry.sender)
        if case .unknownLocalUser = recipientClass {
            logger.warning("dsn", metadata: ["event": "dsn", "queue": .string(entry.queueID), "status": .string("skipped: sender \(entry.sender) has no mailbox")])
            return false
        }
        dsnSequence += 1
        let hostname = dependencies.policy().serverHostname
        // Unique across restarts too (queue ids are a unique key).
        let id = "\(entry.queueID).dsn\(dsnSequence)\(String(UInt32.random(in: .min ... .max), radix: 36))"
        let report = DeliveryStatusNotification(
            reportingMTA: hostname, queueID: entry.queueID, sender: entry.sender, action: action, recipients: recipients,
            arrivalDate: entry.receivedAt, originalHeaders: Self.headers(of: entry.path))
        dependencies.submit(InboundMessage(
            queueID: id, sender: "", recipients: [(entry.sender, recipientClass)],
            body: .bytes(report.render(now: now, messageID: "\(id)@\(hostname)")))
        ) { ok in stored?(ok) }
        logger.info("dsn", metadata: [
            "event": "dsn", "queue": .string(entry.queueID), "dsn": .string(id), "action": .string(action.rawValue),
            "to": .string(entry.sender), "recipients": .string(recipients.map(\.address).joined(separator: ",")),
        ])
        return true
    }

    /// The original's header section (after our `Return-Path:`), at most 64 KiB.
    static func headers(of path: String) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: 64 * 1024)) ?? Data()
        var scanner = HeaderScanner()
        data.withUnsafeBytes { _ = scanner.feed($0) }
        scanner.finish()
        return Array(scanner.headerBytes[scanner.contentStart...])
    }

    // MARK: Journal: results into the table, batched

    private func record(_ updates: [RecipientUpdate]) {
        journal += updates
        guard !flushing else { return }
        flushing = true
        Task { await self.flushLoop() }
    }

    private func flushLoop() async {
        while !journal.isEmpty {
            let batch = journal
            journal = []
            let store = dependencies.store
            let logger = dependencies.logger
            do {
                try await threadPool.runIfActive {
                    let finished = try store.applyDeliveryResults(batch)
                    for path in finished { unlink(path) }
                }
            } catch {
                // Memory has forgotten these recipients; the table must learn of them, or
                // they would be sent again after a restart. Keep them and try again.
                logger.error("outbound queue: cannot record delivery results (retrying in 1 s): \(error)")
                journal = batch + journal
                try? await Task.sleep(for: .seconds(1))
            }
        }
        flushing = false
        for waiter in flushWaiters { waiter.resume() }
        flushWaiters = []
    }

    private func flushJournal() async {
        guard flushing || !journal.isEmpty else { return }
        if !flushing {
            flushing = true
            Task { await self.flushLoop() }
        }
        await withCheckedContinuation { flushWaiters.append($0) }
    }
}

/// `berth_outbound_deliveries_total{outcome, source}`: one counter per pair, made once.
final class OutboundMetrics: @unchecked Sendable {
    private var counters: [String: Counter] = [:]
    private let lock = NSLock()

    func count(_ status: String, source: String) {
        let outcome = status == "sent" ? "delivered" : status
        let key = outcome + "|" + source
        let counter = lock.withLock {
            if let existing = counters[key] { return existing }
            let made = Counter(label: "berth_outbound_deliveries_total", dimensions: [("outcome", outcome), ("source", source)])
            counters[key] = made
            return made
        }
        counter.increment()
    }
}
