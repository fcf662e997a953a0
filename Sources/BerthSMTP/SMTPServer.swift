import BerthCore
import BerthNet
import NIOCore

/// What SMTP needs from the rest of the server: who recipients are, password checks and
/// durable storage. Implemented by the wiring over the store; faked below the protocol
/// layer in tests.
public protocol SMTPBackend: Sendable {
    func classify(_ address: String) -> RecipientClass
    /// Slow by design (a KDF); called off the event loop.
    func verify(user: String, password: String) -> Bool
    /// Calls `completion` (on any thread) with the queue id once the message is on disk.
    func deliver(_ message: InboundMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void)
}

/// SMTP and submission as a protocol the listener layer can serve.
public struct SMTPServer: ProtocolServer {
    public struct Configuration: Sendable {
        public var maxMessageSize = SMTPLimits.defaultMessageSize
        public var idleTimeout: TimeAmount = .seconds(SMTPLimits.idleTimeoutSeconds)
        public var allowPlaintextAuth = false

        public init() {}
    }

    let backend: any SMTPBackend
    let configuration: Configuration

    public init(backend: any SMTPBackend, configuration: Configuration = .init()) {
        self.backend = backend
        self.configuration = configuration
    }

    public func configure(channel: any Channel, connection: ConnectionContext) throws {
        var machine = SMTPStateMachine.Configuration(hostname: connection.hostname)
        machine.maxMessageSize = configuration.maxMessageSize
        machine.startTLSAvailable = connection.spec.encryption == .tls && connection.tlsContext != nil
        machine.tlsRequired = connection.spec.encryption == .tls && connection.spec.tlsRequired
        machine.authRequired = connection.spec.protocol == .submission
        machine.allowPlaintextAuth = configuration.allowPlaintextAuth
        let handler = SMTPServerHandler(
            machine: SMTPStateMachine(configuration: machine, isTLS: connection.isImplicitTLS),
            backend: backend, tlsContext: connection.tlsContext, idleTimeout: configuration.idleTimeout)
        try channel.pipeline.syncOperations.addHandler(handler)
    }
}
