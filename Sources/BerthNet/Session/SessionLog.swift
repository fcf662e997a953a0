import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Session ids: unique across restarts (start time) and within a run (a counter), short
/// enough to grep: the same id is in every log line of the session, in the `Received:`
/// header and, with the message number, in the `250` reply.
public enum SessionID {
    private static let counter = Atomic<UInt64>(0)
    private static let prefix: String = {
        let base = String(UInt64(time(nil)), radix: 36, uppercase: true)
        return base
    }()

    public static func next() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        let suffix = String(n, radix: 36, uppercase: true)
        return prefix + String(repeating: "0", count: max(0, 4 - suffix.count)) + suffix
    }
}

/// The mail log of one session: one line per event, each carrying the session id, the
/// client address and the listener, so an admin can follow a session (or, with
/// fail2ban, a client) with one grep. Never given a password.
public struct SessionLog: Sendable {
    public let id: String
    public private(set) var logger: Logger

    public init(base: Logger, id: String, client: String, listener: String, protocol: String) {
        self.id = id
        var logger = base
        // One assignment, not one per field: a handler may work out its lines' fields
        // whenever they change.
        var metadata = logger.handler.metadata
        metadata["session"] = .string(id)
        metadata["client"] = .string(client)
        metadata["listener"] = .string(listener)
        metadata["proto"] = .string(`protocol`)
        logger.handler.metadata = metadata
        self.logger = logger
    }

    /// The log of the session on `connection`.
    public init(base: Logger, connection: ConnectionContext) {
        self.init(
            base: base, id: connection.sessionID, client: connection.clientAddress,
            listener: connection.spec.key.description, protocol: connection.spec.protocol.rawValue)
    }

    public mutating func set(_ key: String, _ value: String) {
        logger[metadataKey: key] = .string(value)
    }

    public func event(_ name: String, _ fields: Logger.Metadata = [:], level: Logger.Level = .info) {
        logger.log(level: level, "\(name)", metadata: fields.isEmpty ? nil : fields)
    }
}
