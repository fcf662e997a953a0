import Logging
import Metrics
import NIOCore
import NIOConcurrencyHelpers
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why a connection is turned away at connect, before any protocol byte.
public enum Refusal: Sendable, Hashable {
    /// The listener's `maxConnections`.
    case listenerFull
    /// `maxConnectionsPerClient` for this client (IPv6: its /64).
    case clientLimit
    /// Sessions would run the process out of file descriptors.
    case serverFull
    /// Too many failed authentications from this client.
    case banned

    public var reason: String {
        switch self {
        case .listenerFull: return "too many connections to this port"
        case .clientLimit: return "too many connections from your address"
        case .serverFull: return "server busy"
        case .banned: return "too many failed authentications from your address; try again later"
        }
    }
}

/// Counts the connections of one listener, in total and per client, as a pure value.
public struct ConnectionCounts: Sendable {
    public private(set) var total = 0
    private var perClient: [String: Int] = [:]

    public init() {}

    /// Takes a place for `client` if the limits allow; returns the refusal otherwise.
    public mutating func admit(_ client: String, maxConnections: Int, maxPerClient: Int) -> Refusal? {
        guard total < maxConnections else { return .listenerFull }
        let current = perClient[client, default: 0]
        guard current < maxPerClient else { return .clientLimit }
        total += 1
        perClient[client] = current + 1
        return nil
    }

    public mutating func release(_ client: String) {
        guard let current = perClient[client] else { return }
        total -= 1
        perClient[client] = current > 1 ? current - 1 : nil
    }

    public func count(for client: String) -> Int { perClient[client, default: 0] }
}

/// The process-wide budget of sessions, kept below the file descriptor limit with a
/// reserve for the admin API, the store, spool files and listening sockets, so that
/// running out of descriptors refuses new clients instead of freezing the server.
public final class SessionBudget: Sendable {
    /// Descriptors kept back for everything that is not a session.
    public static let reserve = 128

    public let limit: Int
    private let inUse = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = max(limit, 1)
    }

    public var current: Int { inUse.load(ordering: .relaxed) }

    /// Takes one place; false when the budget is spent.
    public func take() -> Bool {
        if inUse.add(1, ordering: .relaxed).newValue <= limit { return true }
        inUse.subtract(1, ordering: .relaxed)
        return false
    }

    public func give() { inUse.subtract(1, ordering: .relaxed) }

    /// Raises the soft RLIMIT_NOFILE to the hard limit (how far an unprivileged process may
    /// go) and sizes the budget from it; logs both.
    public static func fromSystemLimit(logger: Logger) -> SessionBudget {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            logger.warning("cannot read the file descriptor limit; sessions capped at 896")
            return SessionBudget(limit: 896)
        }
        let before = limit.rlim_cur
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let usable = Int(min(limit.rlim_cur, UInt(Int32.max)))
        let sessions = max(usable - reserve, 16)
        logger.notice("file descriptor limit \(limit.rlim_cur) (soft limit was \(before)); sessions capped at \(sessions)")
        return SessionBudget(limit: sessions)
    }
}

/// What every listener consults before a session starts: the process's session budget and
/// the bans; and what it counts: refusals and failed accepts.
public struct Admission: Sendable {
    public var budget: SessionBudget
    public var authGuard: AuthGuard?
    /// How long a refused client has to take its answer (a TLS handshake first on `ssl`).
    public var refusalGrace: TimeAmount = .seconds(5)
    public var logger: Logger
    public let acceptErrors: AcceptErrors
    /// `settings.proxyTrustedNetworks`: who may send a PROXY header.
    public var isTrustedProxy: @Sendable (String) -> Bool = { _ in false }
    /// How long a connection on a `proxyProtocol` port has to send its header.
    public var proxyHeaderTimeout: TimeAmount = .seconds(5)

    public init(budget: SessionBudget = SessionBudget(limit: 1_000_000), authGuard: AuthGuard? = nil,
                logger: Logger = Logger(label: "berth.listener")) {
        self.budget = budget
        self.authGuard = authGuard
        self.logger = logger
        self.acceptErrors = AcceptErrors(logger: logger)
    }

    func refused(_ refusal: Refusal, connection: ConnectionContext) {
        var logger = self.logger
        logger[metadataKey: "session"] = .string(connection.sessionID)
        logger[metadataKey: "client"] = .string(connection.clientAddress)
        logger[metadataKey: "listener"] = .string(connection.spec.key.description)
        logger.notice("refused", metadata: ["reason": .string(refusal.reason)])
        Counter(label: "berth_connections_refused_total", dimensions: [("reason", refusal.metricName)]).increment()
    }
}

extension Refusal {
    var metricName: String {
        switch self {
        case .listenerFull: return "listener_full"
        case .clientLimit: return "client_limit"
        case .serverFull: return "server_full"
        case .banned: return "banned"
        }
    }
}

/// Accepts that failed (out of descriptors, mostly): counted, logged at most every 10 s.
public final class AcceptErrors: Sendable {
    private let lastLogged = Atomic<Int64>(0)
    private let suppressed = Atomic<Int>(0)
    private let logger: Logger
    private let counter = Counter(label: "berth_accept_errors_total")

    init(logger: Logger) { self.logger = logger }

    func record(_ error: IOError) {
        counter.increment()
        let now = NIODeadline.now().uptimeNanoseconds
        let last = lastLogged.load(ordering: .relaxed)
        guard now - UInt64(last) >= 10_000_000_000 || last == 0,
              lastLogged.compareExchange(expected: last, desired: Int64(now), ordering: .relaxed).exchanged
        else {
            suppressed.add(1, ordering: .relaxed)
            return
        }
        let more = suppressed.exchange(0, ordering: .relaxed)
        logger.error("accept failed: \(String(cString: strerror(error.errnoCode)).lowercased()); pausing accepts for 250 ms\(more > 0 ? " (\(more) more since the last report)" : "")")
    }
}
