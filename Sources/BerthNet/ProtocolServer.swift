import BerthCore
import NIOCore
import NIOSSL

/// A mail protocol that can serve connections of a listener. The listener layer does
/// sockets, admission (limits, bans), implicit TLS, stats and draining; a protocol only
/// sets up its pipeline and says how it refuses a client.
public protocol ProtocolServer: Sendable {
    /// Called on the channel's event loop for each admitted connection, after the TLS
    /// handler was added for `ssl` ports. Adds the protocol's handlers.
    func configure(channel: any Channel, connection: ConnectionContext) throws

    /// The protocol's own "go away" for a client turned away at connect (SMTP `421 4.7.0`,
    /// IMAP `* BYE`, POP `-ERR`); the listener writes it and closes.
    func refusal(_ refusal: Refusal, connection: ConnectionContext) -> ByteBuffer
}

/// What a connection knows of the listener that accepted it, frozen at accept time.
public struct ConnectionContext: Sendable {
    public var spec: ListenerSpec
    /// TLS is on from the first byte (`ssl` ports).
    public var isImplicitTLS: Bool
    /// The TLS context for STARTTLS (`tls` ports) as it is now; nil if none could be loaded.
    public var tlsContext: NIOSSLContext?
    /// The client's address: the peer's, or the one a trusted PROXY header gave.
    public var clientAddress: String
    /// The session id every log line, trace header and queue id of this connection carries.
    public var sessionID: String

    public init(
        spec: ListenerSpec, isImplicitTLS: Bool, tlsContext: NIOSSLContext?, clientAddress: String = "unknown",
        sessionID: String = SessionID.next()
    ) {
        self.spec = spec
        self.isImplicitTLS = isImplicitTLS
        self.tlsContext = tlsContext
        self.clientAddress = clientAddress
        self.sessionID = sessionID
    }

    public var hostname: String { spec.hostname }
}

/// Sent down every connection's pipeline when the server (or its listener) drains:
/// protocols answer the next command with their "service closing" reply.
public struct DrainEvent: Sendable {
    public init() {}
}

/// Sent when the drain time is over: protocols send their "service closing" reply now,
/// whatever the session is doing, and close.
public struct DrainDeadlineEvent: Sendable {
    public init() {}
}
