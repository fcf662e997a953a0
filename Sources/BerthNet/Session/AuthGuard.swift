import BerthCore
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// The client a limit or a ban applies to: an IPv4 address, or an IPv6 /64 (one
/// customer's prefix; a host can change its low 64 bits at will).
public enum ClientKey {
    public static func of(_ address: String) -> String {
        guard let (canonical, family) = IPLiteral.canonical(address) else { return address }
        guard family == .ipv6 else { return canonical }
        var groups = canonical.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if let gap = groups.firstIndex(of: "") {
            // Expand "::" so the first four groups are the /64.
            let present = groups.filter { !$0.isEmpty }
            let missing = 8 - present.count
            let head = groups[..<gap].filter { !$0.isEmpty }
            let tail = groups[(gap + 1)...].filter { !$0.isEmpty }
            groups = head + Array(repeating: "0", count: missing) + tail
        }
        return groups.prefix(4).joined(separator: ":") + "::/64"
    }
}

/// What authentication failures from each client add up to, as a pure value over a
/// monotonic clock: `threshold` failures within `window` ban the client for `duration`.
public struct BanTable: Sendable {
    public struct Policy: Sendable, Hashable {
        public var failureDelay: TimeAmount = .seconds(1)
        public var threshold = 10
        public var window: TimeAmount = .seconds(600)
        public var duration: TimeAmount = .seconds(900)
        public init() {}
    }

    struct Record: Sendable {
        var failures: [NIODeadline] = []
        var bannedUntil: NIODeadline?
    }

    public var policy = Policy()
    private var records: [String: Record] = [:]
    /// Bounds the table: past this many clients, the oldest quiet ones are forgotten.
    public static let maxClients = 100_000

    public init() {}

    /// How long `client` stays banned from `now`, or nil.
    public func banRemaining(_ client: String, now: NIODeadline) -> TimeAmount? {
        guard let until = records[client]?.bannedUntil, until > now else { return nil }
        return until - now
    }

    /// Records a failure; returns true if it bans the client.
    public mutating func failure(_ client: String, now: NIODeadline) -> Bool {
        if records.count >= Self.maxClients, records[client] == nil { prune(now: now) }
        var record = records[client] ?? Record()
        record.failures.removeAll { $0 + policy.window <= now }
        record.failures.append(now)
        var banned = false
        if record.failures.count >= policy.threshold {
            record.bannedUntil = now + policy.duration
            record.failures.removeAll()
            banned = true
        }
        records[client] = record
        return banned
    }

    /// A success clears the client's recent failures (not a ban).
    public mutating func success(_ client: String) {
        records[client]?.failures.removeAll()
    }

    private mutating func prune(now: NIODeadline) {
        records = records.filter { _, record in
            (record.bannedUntil.map { $0 > now } ?? false) || record.failures.contains { $0 + policy.window > now }
        }
    }

    /// The delay before answering the `nth` failure of a session (1-based): it grows with
    /// each failure, so one session cannot guess at bcrypt speed.
    public func delay(forFailure nth: Int) -> TimeAmount {
        let capped = min(max(nth, 1), 10)
        return .nanoseconds(policy.failureDelay.nanoseconds * Int64(capped))
    }
}

/// How one password check ended.
public enum AuthVerdict: Sendable, Hashable {
    case accepted
    /// Wrong credentials; answer after `delay`.
    case rejected(delay: TimeAmount)
    /// Wrong credentials, and this failure banned the client.
    case banned
    /// Too many checks waiting; the client should try again later (not counted as a failure).
    case busy
}

/// Password checks for every protocol and the admin API: on a small pool of their own
/// (bcrypt is slow on purpose, so guessers must not take the threads the admin API, the
/// listener manager or the store need), with a bounded queue, a growing failure delay and
/// per-client bans. Failures are logged with the client address, one line each, in a
/// fixed shape fail2ban can match: `auth failed ... client=ADDRESS` (`failregex = auth failed .*client=<HOST>`).
public final class AuthGuard: Sendable {
    public static let maxQueuedChecks = 64

    private let table = NIOLockedValueBox(BanTable())
    private let pool: NIOThreadPool
    private let queued = Atomic<Int>(0)
    private let logger: Logger

    public init(threads: Int = 1, logger: Logger) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        self.logger = logger
    }

    public var policy: BanTable.Policy {
        get { table.withLockedValue { $0.policy } }
        set { table.withLockedValue { $0.policy = newValue } }
    }

    public func banRemaining(_ address: String) -> TimeAmount? {
        table.withLockedValue { $0.banRemaining(ClientKey.of(address), now: .now()) }
    }

    /// Runs `verify` on the auth pool. `failuresInSession` counts earlier failures of this
    /// session, for the growing delay.
    public func check(
        user: String, client: String, service: String, failuresInSession: Int, log: Logger? = nil,
        on eventLoop: any EventLoop, verify: @escaping @Sendable () -> Bool
    ) -> EventLoopFuture<AuthVerdict> {
        let log = log ?? logger
        guard queued.add(1, ordering: .relaxed).newValue <= Self.maxQueuedChecks else {
            queued.subtract(1, ordering: .relaxed)
            log.warning("auth busy", metadata: ["client": .string(client), "service": .string(service)])
            return eventLoop.makeSucceededFuture(.busy)
        }
        return pool.runIfActive(eventLoop: eventLoop) { verify() }
            .always { _ in self.queued.subtract(1, ordering: .relaxed) }
            .map { valid in
                self.record(
                    valid: valid, user: user, client: client, service: service, failuresInSession: failuresInSession,
                    log: log)
            }
    }

    /// The same check for async callers (the admin API).
    public func check(
        user: String, client: String, service: String, failuresInSession: Int, log: Logger? = nil,
        verify: @escaping @Sendable () -> Bool
    ) async -> AuthVerdict {
        let log = log ?? logger
        guard queued.add(1, ordering: .relaxed).newValue <= Self.maxQueuedChecks else {
            queued.subtract(1, ordering: .relaxed)
            log.warning("auth busy", metadata: ["client": .string(client), "service": .string(service)])
            return .busy
        }
        defer { queued.subtract(1, ordering: .relaxed) }
        let valid = (try? await pool.runIfActive { verify() }) ?? false
        return record(
            valid: valid, user: user, client: client, service: service, failuresInSession: failuresInSession, log: log)
    }

    /// Counts a check done elsewhere (a cached admin password) toward bans and the log.
    public func record(
        valid: Bool, user: String, client: String, service: String, failuresInSession: Int, log: Logger? = nil
    ) -> AuthVerdict {
        let log = log ?? logger
        let key = ClientKey.of(client)
        if valid {
            table.withLockedValue { $0.success(key) }
            return .accepted
        }
        let (banned, delay, duration) = table.withLockedValue { table in
            (table.failure(key, now: .now()), table.delay(forFailure: failuresInSession + 1), table.policy.duration)
        }
        let shownUser = String(user.prefix(64).filter { $0.isASCII && !$0.isNewline && $0 != " " })
        log.warning("auth failed", metadata: ["client": .string(client), "service": .string(service), "user": .string(shownUser)])
        Counter(label: "berth_auth_failures_total", dimensions: [("service", service)]).increment()
        if banned {
            log.warning("auth banned", metadata: [
                "client": .string(client), "banned": .string(key), "service": .string(service),
                "seconds": .stringConvertible(duration.nanoseconds / 1_000_000_000),
            ])
            Counter(label: "berth_auth_bans_total", dimensions: [("service", service)]).increment()
            return .banned
        }
        return .rejected(delay: delay)
    }
}
