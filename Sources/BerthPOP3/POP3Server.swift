import BerthCore
import BerthNet
import Logging
import NIOCore
import NIOPosix

/// POP3 (RFC 1939, RFC 2449, RFC 2595 STLS, RFC 5034 AUTH) as a protocol the listener
/// layer can serve: each connection gets a `POP3ServerHandler` driving a `POP3Session`
/// over the account's INBOX in a `MailboxStore`.
public struct POP3Server: ProtocolServer {
    public struct Configuration: Sendable {
        /// `command`: RFC 1939 §3 autologout, at least 10 minutes. `data`: how long a
        /// client that reads nothing of a RETR or TOP response is waited for.
        public var timeouts = POP3Server.defaultTimeouts
        /// USER/PASS and AUTH without TLS, only when the admin asks for it (RFC 2595 §2.3).
        public var allowPlaintextAuth = false
        public var logger = Logger(label: "berth.pop3")
        /// Where the store's blocking calls (SQLite, file reads) and password checks run.
        public var blockingWork: BlockingWork = .threadPool(.singleton)
        /// Where RETR and TOP read message files, with `.threadPool` work: a bounded pool of
        /// its own, so clients downloading large messages never hold the threads other
        /// sessions' index calls wait for. nil: the `blockingWork` pool.
        public var contentThreadPool: NIOThreadPool?

        public init() {}
    }

    /// Where a session's blocking work runs.
    public enum BlockingWork: Sendable {
        /// The server: store calls on this pool, password checks on the `AuthGuard`'s own
        /// pool (a KDF must not hold the threads the store needs).
        case threadPool(NIOThreadPool)
        /// Tests on `EmbeddedChannel`, whose event loop must not be touched from another
        /// thread: the work runs as a task of the channel's own loop, and the password
        /// verdict comes from the guard's `record` (same delays, bans and log lines). It
        /// blocks the loop: never in a server.
        case channelEventLoop
    }

    /// RFC 1939 §3: "the autologout timer ... of at least 10 minutes".
    public static let defaultTimeouts: SessionTimeouts = {
        var timeouts = SessionTimeouts(command: .seconds(POP3Limits.idleTimeoutSeconds), handshake: .seconds(30))
        timeouts.data = .seconds(POP3Limits.idleTimeoutSeconds)
        return timeouts
    }()

    let store: any MailboxStore
    let authenticator: any MailAuthenticator
    let authGuard: AuthGuard
    let configuration: Configuration

    public init(
        store: any MailboxStore, authenticator: any MailAuthenticator, authGuard: AuthGuard, configuration: Configuration
    ) {
        self.store = store
        self.authenticator = authenticator
        self.authGuard = authGuard
        self.configuration = configuration
    }

    public func configure(channel: any Channel, connection: ConnectionContext) throws {
        var session = POP3Session.Configuration(hostname: connection.hostname)
        // RFC 2595 §4: STLS only on a `tls` port that has a certificate to offer.
        session.stlsAvailable = connection.spec.encryption == .tls && connection.tlsContext != nil
        // RFC 2595 §2.3 / BINDINGS.md `tlsRequired`: no USER, PASS or AUTH before STLS.
        session.tlsRequired = connection.spec.encryption == .tls && connection.spec.tlsRequired
        session.allowPlaintextAuth = configuration.allowPlaintextAuth
        let handler = POP3ServerHandler(
            session: POP3Session(configuration: session, isTLS: connection.isImplicitTLS),
            connection: connection, server: self)
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    /// RFC 3206 §4: a server that cannot serve the client now answers `-ERR [SYS/TEMP]`.
    public func refusal(_ refusal: Refusal, connection: ConnectionContext) -> ByteBuffer {
        var buffer = ByteBuffer()
        POP3Reply.err(refusal.reason, code: .sysTemp).encode(into: &buffer)
        return buffer
    }
}
