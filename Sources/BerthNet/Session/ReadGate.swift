/// Whether a session lets the socket be read. The handler holds NIO's `read()` while the
/// session cannot take more input and issues it once it can, so a client that pipelines
/// without reading, or while a password check or delivery is pending, fills its own TCP
/// window instead of the server's memory (the postgres-nio `readEventCaught` pattern).
public struct ReadGate: Sendable, Hashable {
    public struct Reasons: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// The session state machine waits for the server (AUTH check, delivery, TLS handshake).
        public static let sessionBusy = Reasons(rawValue: 1 << 0)
        /// Replies the client has not read passed the channel's high water mark.
        public static let replyBacklog = Reasons(rawValue: 1 << 1)
        /// Unprocessed input passed its cap.
        public static let inputBacklog = Reasons(rawValue: 1 << 2)
        /// A message body chunk is still being written to the spool.
        public static let spoolBacklog = Reasons(rawValue: 1 << 3)
    }

    public private(set) var closedBy: Reasons = []
    /// NIO asked for a read while the gate was closed.
    public private(set) var readHeld = false

    public init() {}

    /// NIO asks to read: true if the read may go to the socket now.
    public mutating func readRequested() -> Bool {
        if closedBy.isEmpty { return true }
        readHeld = true
        return false
    }

    /// Sets one reason. Returns true when the gate just opened with a read held, which the
    /// handler must now issue.
    public mutating func set(_ reason: Reasons, closed: Bool) -> Bool {
        if closed {
            closedBy.insert(reason)
            return false
        }
        closedBy.remove(reason)
        if closedBy.isEmpty && readHeld {
            readHeld = false
            return true
        }
        return false
    }
}
