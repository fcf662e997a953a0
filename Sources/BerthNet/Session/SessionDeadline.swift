import NIOCore

/// How long a session may take for each thing a client must do. The defaults follow
/// RFC 5321 §4.5.3.2 (5 minutes for a command; the DATA block as a whole gets 10).
public struct SessionTimeouts: Sendable, Hashable {
    /// A TLS handshake (implicit TLS, or after STARTTLS) must finish within this.
    public var handshake: TimeAmount = .seconds(30)
    /// A command must be complete within this after the previous reply: bytes trickling
    /// in do not extend it (slowloris).
    public var command: TimeAmount = .seconds(300)
    /// The whole message body after `354`.
    public var data: TimeAmount = .seconds(600)

    public init() {}

    public init(command: TimeAmount, handshake: TimeAmount) {
        self.command = command
        self.handshake = handshake
        self.data = max(command * 2, .seconds(1))
    }
}

/// The one deadline a session runs against, as a pure value over any `NIODeadline` clock
/// (the event loop's `now`, so `EmbeddedEventLoop.advanceTime` drives it in tests).
/// One timer serves every kind: moving the deadline later costs nothing; the handler's
/// timer fires at the old time, finds the deadline moved, and schedules itself again.
public struct SessionDeadline: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case handshake, command, data
    }

    public private(set) var kind: Kind?
    public private(set) var deadline: NIODeadline = .distantFuture

    public init() {}

    /// Starts the clock for `kind`.
    public mutating func arm(_ kind: Kind, now: NIODeadline, timeouts: SessionTimeouts) {
        self.kind = kind
        let amount: TimeAmount
        switch kind {
        case .handshake: amount = timeouts.handshake
        case .command: amount = timeouts.command
        case .data: amount = timeouts.data
        }
        deadline = now + amount
    }

    /// The session waits for the server, not the client: no client deadline runs.
    public mutating func disarm() {
        kind = nil
        deadline = .distantFuture
    }

    /// What expired at `now`, if anything.
    public func expired(at now: NIODeadline) -> Kind? {
        guard let kind, now >= deadline else { return nil }
        return kind
    }
}
