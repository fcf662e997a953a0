import BerthCore
import NIOCore
import NIOSSL

/// A mail protocol that can serve connections of a listener. The listener layer does
/// sockets, implicit TLS, stats and draining; a protocol only sets up its pipeline.
public protocol ProtocolServer: Sendable {
    /// Called on the channel's event loop for each accepted connection, after the TLS
    /// handler was added for `ssl` ports. Adds the protocol's handlers.
    func configure(channel: any Channel, connection: ConnectionContext) throws
}

/// What a connection knows of the listener that accepted it, frozen at accept time.
public struct ConnectionContext: Sendable {
    public var spec: ListenerSpec
    /// TLS is on from the first byte (`ssl` ports).
    public var isImplicitTLS: Bool
    /// The TLS context for STARTTLS (`tls` ports) as it is now; nil if none could be loaded.
    public var tlsContext: NIOSSLContext?

    public init(spec: ListenerSpec, isImplicitTLS: Bool, tlsContext: NIOSSLContext?) {
        self.spec = spec
        self.isImplicitTLS = isImplicitTLS
        self.tlsContext = tlsContext
    }

    public var hostname: String { spec.hostname }
}

/// Sent down every connection's pipeline when the server (or its listener) drains:
/// protocols answer the next command with their "service closing" reply.
public struct DrainEvent: Sendable {
    public init() {}
}
