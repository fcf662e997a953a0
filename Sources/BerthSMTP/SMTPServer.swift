import BerthCore
import BerthNet
import Logging
import NIOCore

/// What SMTP needs from the rest of the server: who recipients are, password checks and
/// durable storage. Implemented by the wiring over the store; faked below the protocol
/// layer in tests.
public protocol SMTPBackend: Sendable {
    func classify(_ address: String) -> RecipientClass
    /// Slow by design (a KDF); called on the auth guard's pool.
    func verify(user: String, password: String) -> Bool
    /// Calls `completion` (on any thread) with the queue id once the message is on disk.
    func deliver(_ message: InboundMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void)
}

/// A backend's final "no" to a message (not a storage failure, which gets 451): the
/// reply the client gets instead of 250, e.g. 552 5.2.2 when it cannot fit the mailbox.
public struct SMTPDeliveryRefusal: Error, Sendable {
    public var reply: SMTPReply

    public init(_ reply: SMTPReply) {
        self.reply = reply
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}

/// SMTP and submission as a protocol the listener layer can serve.
public struct SMTPServer: ProtocolServer {
    public struct Configuration: Sendable {
        public var maxMessageSize = SMTPLimits.defaultMessageSize
        public var timeouts = SessionTimeouts()
        public var allowPlaintextAuth = false
        /// An outbound queue runs: authenticated clients' remote recipients are queued.
        public var relayAvailable = false
        /// Where message bodies are spooled while they arrive (same filesystem as the mail).
        public var spoolDirectory: String
        public var logger = Logger(label: "berth.smtp")

        public init(spoolDirectory: String) {
            self.spoolDirectory = spoolDirectory
        }
    }

    let backend: any SMTPBackend
    let authGuard: AuthGuard
    let configuration: Configuration

    public init(backend: any SMTPBackend, authGuard: AuthGuard, configuration: Configuration) {
        self.backend = backend
        self.authGuard = authGuard
        self.configuration = configuration
    }

    public func configure(channel: any Channel, connection: ConnectionContext) throws {
        var machine = SMTPStateMachine.Configuration(hostname: connection.hostname)
        machine.maxMessageSize = configuration.maxMessageSize
        machine.startTLSAvailable = connection.spec.encryption == .tls && connection.tlsContext != nil
        machine.tlsRequired = connection.spec.encryption == .tls && connection.spec.tlsRequired
        machine.authRequired = connection.spec.protocol == .submission
        machine.allowPlaintextAuth = configuration.allowPlaintextAuth
        machine.relayAvailable = configuration.relayAvailable
        let handler = SMTPServerHandler(
            machine: SMTPStateMachine(configuration: machine, isTLS: connection.isImplicitTLS),
            connection: connection, server: self)
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    /// RFC 5321 §3.8: a server that cannot serve a client says 421 and closes.
    public func refusal(_ refusal: Refusal, connection: ConnectionContext) -> ByteBuffer {
        var buffer = ByteBuffer()
        SMTPReply(421, "4.7.0", "\(connection.hostname) Error: \(refusal.reason)").encode(into: &buffer)
        return buffer
    }
}
