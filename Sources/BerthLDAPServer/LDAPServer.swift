import BerthCore
import BerthLDAP
import BerthNet
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The address book (RFC 4511) as a protocol the listener layer serves: each connection
/// gets an `LDAPServerHandler` over the current `LDAPDirectory`.
public struct LDAPServer: ProtocolServer {
    public struct Configuration: Sendable {
        public var timeouts = SessionTimeouts(command: .seconds(300), handshake: .seconds(30))
        /// Who may read what, asked at each search so that a settings change applies to
        /// open sessions too.
        public var access: @Sendable () -> ReadAccess = { ReadAccess() }
        /// Largest request accepted; a larger one ends the session.
        public var maxMessageSize = 256 * 1024
        /// Entries one search returns at most (a client may ask for fewer).
        public var sizeLimit = 1_000
        /// The longest one search may take (a client may ask for less with timeLimit);
        /// then it answers timeLimitExceeded with what it found.
        public var searchTimeLimit: Duration = .seconds(30)
        /// Where searches the indexes cannot narrow run (nil: on the event loop).
        public var searchThreadPool: NIOThreadPool?
        public var logger = Logger(label: "berth.ldap")

        public init() {}
    }

    /// What sessions may read (admin settings `ldapAnonymousSearch`, `ldapSearchAllDomains`).
    public struct ReadAccess: Sendable, Equatable {
        /// Anonymous searches (RFC 4513 §5.1.1) of every domain; off: an anonymous session
        /// (bound anonymously or not bound) reads the root DSE only.
        public var anonymousSearch: Bool
        /// Every domain's entries; off: a bound user sees their own domain only.
        public var allDomains: Bool

        public init(anonymousSearch: Bool = false, allDomains: Bool = false) {
            self.anonymousSearch = anonymousSearch
            self.allDomains = allDomains
        }
    }

    /// What binds may use besides simple (the root DSE lists them).
    public static let saslMechanisms = ["PLAIN"]

    let directory: LDAPDirectorySource
    let authenticator: any MailAuthenticator
    let authGuard: AuthGuard
    let configuration: Configuration

    public init(directory: LDAPDirectorySource, authenticator: any MailAuthenticator, authGuard: AuthGuard, configuration: Configuration) {
        self.directory = directory
        self.authenticator = authenticator
        self.authGuard = authGuard
        self.configuration = configuration
    }

    public func configure(channel: any Channel, connection: ConnectionContext) throws {
        try channel.pipeline.syncOperations.addHandler(LDAPServerHandler(connection: connection, server: self))
    }

    /// RFC 4511 §4.4.1: the Notice of Disconnection, `busy` or `unavailable`.
    public func refusal(_ refusal: Refusal, connection: ConnectionContext) -> ByteBuffer {
        ByteBuffer(bytes: LDAPEncoder.noticeOfDisconnection(.unavailable, refusal.reason))
    }
}

/// The directory as it is now, rebuilt off the event loops when the configuration changes
/// (a user added through the admin API is found at once after).
public final class LDAPDirectorySource: Sendable {
    private let current: NIOLockedValueBox<LDAPDirectory>
    private let build: @Sendable () -> LDAPDirectory

    public init(build: @escaping @Sendable () -> LDAPDirectory) {
        self.build = build
        current = NIOLockedValueBox(build())
    }

    public var directory: LDAPDirectory { current.withLockedValue { $0 } }

    /// Builds the directory again from the configuration.
    public func rebuild() {
        let fresh = build()
        current.withLockedValue { $0 = fresh }
    }
}
