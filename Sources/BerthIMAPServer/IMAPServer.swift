import BerthCore
import BerthIMAP
import BerthMIME
import BerthNet
import Logging
import NIOCore
import NIOPosix

/// IMAP4rev1 (RFC 3501) with the extensions in `IMAPCapabilities`, as a protocol the
/// listener layer can serve: one `IMAPServerHandler` per connection over a `MailboxStore`.
/// The files of the messages one command reads, looked up in one index read at the first
/// need (not one per message), off the event loop.
final class MessageFiles {
    let store: any MailboxStore
    let account: MailAccount
    let mailboxID: Int64
    let uidValidity: UInt32
    private let uids: [UInt32]
    private var paths: [UInt32: String]?

    init(_ store: any MailboxStore, _ uids: [UInt32], in view: (mailboxID: Int64, uidValidity: UInt32), of account: MailAccount) {
        self.store = store
        self.uids = uids
        self.mailboxID = view.mailboxID
        self.uidValidity = view.uidValidity
        self.account = account
    }

    /// nil when the message was expunged meanwhile.
    func path(_ uid: UInt32) throws -> String? {
        if let paths { return paths[uid] }
        let found = try store.messagePaths(uids: uids, in: mailboxID, of: account)
        paths = found
        return found[uid]
    }
}

public struct IMAPServer: ProtocolServer {
    /// How long a client may take. RFC 3501 §5.4: an autologout timer must be at least 30
    /// minutes once a client is authenticated (IDLE included); before that a short one keeps
    /// unauthenticated sockets from piling up.
    public struct Timeouts: Sendable, Hashable {
        public var handshake: TimeAmount = .seconds(30)
        public var notAuthenticated: TimeAmount = .seconds(60)
        public var authenticated: TimeAmount = .minutes(30)
        /// An APPEND message literal as a whole (25 MiB at 1 Mbit/s is about 4 minutes).
        public var appendLiteral: TimeAmount = .minutes(10)

        public init() {}
    }

    public struct Configuration: Sendable {
        public var timeouts = Timeouts()
        /// LOGIN / AUTHENTICATE without TLS, only when the admin asks for it.
        public var allowPlaintextAuth = false
        /// The largest message APPEND takes (RFC 7888 §4 `[TOOBIG]` above it).
        public var maxAppendSize = IMAPLimits.defaultAppendLiteralSize
        /// Where APPEND bodies are spooled while they arrive (same filesystem as the mail).
        public var spoolDirectory: String
        /// Where store calls run, off the event loop. nil runs them (and content work) as
        /// separate event-loop tasks: only for tests over an in-memory store.
        public var threadPool: NIOThreadPool?
        /// Where message content is read: FETCH of headers and bodies, SEARCH over headers
        /// and text. Its own bounded pool, so a heavy SEARCH TEXT or a big FETCH never holds
        /// a thread other sessions' index calls (NOOP, SELECT, STORE) wait for. nil: `threadPool`.
        public var contentThreadPool: NIOThreadPool?
        public var logger = Logger(label: "berth.imap")
        /// Octets of parsed message headers kept for every session (`IMAPHeaderCache`);
        /// 0 turns the cache off.
        public var headerCacheSize = 16 * 1024 * 1024

        public init(spoolDirectory: String, threadPool: NIOThreadPool?) {
            self.spoolDirectory = spoolDirectory
            self.threadPool = threadPool
        }

        var limits: IMAPLimits { IMAPLimits(maxAppendLiteralSize: maxAppendSize) }
    }

    let store: any MailboxStore
    let authenticator: any MailAuthenticator
    let authGuard: AuthGuard
    let configuration: Configuration
    let headerCache: IMAPHeaderCache

    public init(store: any MailboxStore, authenticator: any MailAuthenticator, authGuard: AuthGuard, configuration: Configuration) {
        self.store = store
        self.authenticator = authenticator
        self.authGuard = authGuard
        self.configuration = configuration
        self.headerCache = IMAPHeaderCache(capacity: configuration.headerCacheSize)
    }

    /// A message, parsed as far as `content` asks (blocking: call off the event loop).
    /// Headers come from the shared cache when they can. nil when the message is gone.
    func message(uid: UInt32, _ content: IMAPFetch.Content, files: MessageFiles) throws -> MIMEMessage? {
        let key = IMAPHeaderCache.Key(account: files.account, mailboxID: files.mailboxID, uidValidity: files.uidValidity, uid: uid)
        if content == .header, let cached = headerCache.get(key) { return cached }
        guard let message = IMAPFetch.load(path: try files.path(uid), content) else { return nil }
        if content == .header { headerCache.put(key, message) }
        return message
    }

    public func configure(channel: any Channel, connection: ConnectionContext) throws {
        let handler = IMAPServerHandler(server: self, connection: connection)
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    /// RFC 3501 §7.1.5: a server refusing a connection greets with BYE and closes.
    public func refusal(_ refusal: Refusal, connection: ConnectionContext) -> ByteBuffer {
        ByteBuffer(bytes: IMAPResponseEncoder.encode(.untagged(.bye, text: "\(connection.hostname) \(refusal.reason)")))
    }

    /// Runs blocking work on the thread pool (`content`: reading messages, on the content
    /// pool) and completes on `eventLoop`.
    func offLoop<T: Sendable>(
        _ eventLoop: any EventLoop, content: Bool = false, _ work: @escaping @Sendable () throws -> T
    ) -> EventLoopFuture<T> {
        if let pool = configuration.threadPool {
            return (content ? configuration.contentThreadPool ?? pool : pool).runIfActive(eventLoop: eventLoop, work)
        }
        return eventLoop.submit(work)
    }
}

/// What the server says it can do (RFC 3501 §6.1.1 and each extension's RFC).
struct IMAPCapabilities: Sendable, Hashable {
    /// STARTTLS can be offered (a `tls` port with a certificate loaded).
    var startTLSAvailable: Bool
    /// BINDINGS.md `tlsRequired`: nothing but STARTTLS, CAPABILITY, NOOP, ID, LOGOUT before TLS.
    var tlsRequired: Bool
    var allowPlaintextAuth: Bool
    /// RFC 7889 APPENDLIMIT: the largest message APPEND takes.
    var appendLimit: Int

    static let extensions = [
        "IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT",
        "CHILDREN", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "CONDSTORE", "QRESYNC", "ESEARCH", "QUOTA",
        "QUOTA=RES-STORAGE",
    ]

    /// Extensions ENABLE knows (RFC 5161 §3.1); QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
    static let enableable = ["CONDSTORE", "QRESYNC"]

    /// As SMTP decides AUTH: with TLS, or without when the admin allows plaintext and the
    /// port does not require TLS. Otherwise LOGINDISABLED (RFC 3501 §6.2.3).
    func loginAllowed(isTLS: Bool) -> Bool {
        isTLS || (allowPlaintextAuth && !tlsRequired)
    }

    func list(isTLS: Bool, authenticated: Bool) -> [String] {
        var capabilities = Self.extensions + ["APPENDLIMIT=\(appendLimit)"]
        guard !authenticated else { return capabilities }
        if startTLSAvailable && !isTLS { capabilities.append("STARTTLS") }
        if loginAllowed(isTLS: isTLS) {
            capabilities.append("AUTH=PLAIN")
        } else {
            capabilities.append("LOGINDISABLED")
        }
        return capabilities
    }
}
