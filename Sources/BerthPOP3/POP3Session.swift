import BerthNet

/// One POP3 session as a pure value: events in, actions out (RFC 1939 §3 states, RFC 2449
/// CAPA and response codes, RFC 2595 STLS, RFC 5034 AUTH). The handler frames and parses
/// lines, asks the session, and runs the action; a lookup the session asks for (a password
/// check, the maildrop listing, a message's bytes, the deletions at QUIT) is done by the
/// caller, which feeds the result back as an event.
///
/// An event that does not fit the current phase (a late answer, a second TLS handshake)
/// returns `.none` and changes nothing.
public struct POP3Session: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Named in the greeting and the sign-off.
        public var hostname: String
        /// A `tls` port: STLS is offered until TLS is up.
        public var stlsAvailable: Bool = false
        /// BINDINGS.md `tlsRequired`: only CAPA, STLS and QUIT before TLS.
        public var tlsRequired: Bool = false
        /// USER/PASS and AUTH over a connection without TLS, only when the admin asks for it.
        public var allowPlaintextAuth: Bool = false
        public var maxErrors: Int = POP3Limits.errorsBeforeDisconnect

        public init(hostname: String) {
            self.hostname = hostname
        }
    }

    /// RFC 1939 §3 session states, and the end.
    public enum State: Int, Sendable, Hashable, Comparable {
        case authorization
        case transaction
        /// QUIT from TRANSACTION: the deletions are being committed.
        case update
        case closed

        public static func < (a: State, b: State) -> Bool { a.rawValue < b.rawValue }
    }

    public enum Action: Sendable, Hashable {
        case none
        case reply(POP3Reply)
        /// Write the reply, then close the connection.
        case replyAndClose(POP3Reply)
        /// Close without a word (RFC 1939 §3 autologout).
        case close
        /// Write the reply (`+OK Begin TLS negotiation`), discard every byte buffered after
        /// the STLS line (RFC 2595 §4, command injection), start TLS in the same tick, then
        /// call `tlsEstablished()`.
        case startTLS(POP3Reply)
        /// Check the password (off the event loop, through the shared `AuthGuard` with its
        /// growing delay and bans), then call `passwordChecked`. `failures` counts this
        /// session's earlier failures.
        case verifyPassword(user: String, password: String, failures: Int)
        /// Lock the user's maildrop and list it, then call `maildropOpened`.
        case openMaildrop(user: String)
        /// Open message `number` (1-based, as in the listing). If it opened, write
        /// `firstLine`, stream its bytes through a `DotStuffer(topLines:)` (which ends the
        /// response), then call `messageSent()`; if it is gone, write nothing and call
        /// `messageUnavailable()`. A failure mid-stream can only close the connection.
        case sendMessage(number: Int, topLines: Int?, firstLine: POP3Reply)
        /// RFC 1939 §6 UPDATE: remove these messages (1-based numbers, ascending), release
        /// the lock, then call `deletionsCommitted`.
        case commitDeletions([Int])
    }

    enum Phase: Sendable, Hashable {
        /// Before the greeting.
        case connecting
        /// AUTHORIZATION; `pendingUser` is the name of a USER just accepted (RFC 1939 §7:
        /// PASS must follow it immediately).
        case authorization(pendingUser: String?)
        /// An AUTH exchange waits for the client's next line.
        case sasl(SASLServer)
        case verifying(user: String)
        /// `+OK Begin TLS negotiation` was sent; waiting for the handshake.
        case startingTLS
        case openingMaildrop(user: String)
        case transaction
        /// A RETR or TOP response is being streamed.
        case sending(number: Int)
        /// UPDATE: waiting for the deletions to be committed.
        case updating
        case closed
    }

    public let configuration: Configuration
    private(set) var phase: Phase = .connecting
    public private(set) var isTLS: Bool
    public private(set) var authenticatedUser: String?
    /// The listing given at login; nil before TRANSACTION.
    public private(set) var maildrop: POP3Maildrop?
    /// Message numbers marked by DELE in this session (RFC 1939 §5).
    public private(set) var deleted: Set<Int> = []
    /// Bad commands so far; at `maxErrors` the session ends.
    public private(set) var errorCount = 0
    /// Failed authentications in this session (the caller's delay grows with it).
    public private(set) var authFailures = 0
    public private(set) var draining = false

    public init(configuration: Configuration, isTLS: Bool) {
        self.configuration = configuration
        self.isTLS = isTLS
    }

    private var host: String { configuration.hostname }

    public var state: State {
        switch phase {
        case .connecting, .authorization, .sasl, .verifying, .startingTLS, .openingMaildrop: return .authorization
        case .transaction, .sending: return .transaction
        case .updating: return .update
        case .closed: return .closed
        }
    }

    /// False while the session waits for the server (a password check, the maildrop, a
    /// message being sent, the deletions, a TLS handshake) or has ended: the handler then
    /// processes no line, so replies stay in order and pipelined commands (RFC 2449
    /// PIPELINING) wait in the buffer or the client's socket.
    public var acceptsInput: Bool {
        switch phase {
        case .authorization, .sasl, .transaction: return true
        case .connecting, .verifying, .startingTLS, .openingMaildrop, .sending, .updating, .closed: return false
        }
    }

    /// The next line is a SASL response (RFC 5034 §4), not a command.
    public var awaitsSASLResponse: Bool {
        if case .sasl = phase { return true }
        return false
    }

    /// USER/PASS and AUTH may be used now: over TLS, or in plain text when the admin
    /// allows it and the port does not require TLS.
    public var loginAllowed: Bool {
        isTLS || (configuration.allowPlaintextAuth && !configuration.tlsRequired)
    }

    /// STLS would be accepted (RFC 2595 §4): a `tls` port without TLS yet.
    public var stlsOffered: Bool { configuration.stlsAvailable && !isTLS }

    // MARK: Events from the connection

    public mutating func connected() -> Action {
        guard case .connecting = phase else { return .none }
        if draining { return close(.shuttingDown) }
        phase = .authorization(pendingUser: nil)
        return .reply(.ok("\(host) POP3 Berth ready"))
    }

    /// A complete line from the framer (CRLF removed): a SASL response while an AUTH
    /// exchange waits for one, a command otherwise.
    public mutating func line(_ bytes: some Collection<UInt8>) -> Action {
        if awaitsSASLResponse { return saslResponse(String(decoding: bytes, as: UTF8.self)) }
        return command(POP3CommandParser.parse(bytes))
    }

    /// A command line, already parsed (or refused by the parser).
    public mutating func command(_ parsed: Result<POP3Command, POP3CommandError>) -> Action {
        guard state != .closed, acceptsInput, !awaitsSASLResponse else { return .none }
        if draining { return close(.shuttingDown) }
        let command: POP3Command
        switch parsed {
        case .success(let c): command = c
        case .failure(let failure):
            clearPendingUser()
            return error(.err(failure.kind == .unknownCommand ? "unknown command" : failure.reason))
        }
        if configuration.tlsRequired && !isTLS {
            switch command {
            case .capa, .stls, .quit: break
            default:
                clearPendingUser()
                return error(.tlsFirst)
            }
        }
        switch state {
        case .authorization: return authorization(command)
        case .transaction: return transaction(command)
        case .update, .closed: return .none
        }
    }

    /// A line that ended in a bare CR or LF (the shared framer accepts CRLF only).
    public mutating func badLine() -> Action {
        guard acceptsInput else { return .none }
        if draining { return close(.shuttingDown) }
        if awaitsSASLResponse { phase = .authorization(pendingUser: nil) }
        clearPendingUser()
        return error(.err("lines must end with CRLF"))
    }

    /// A line past `POP3Limits.framerLineLength`: the session ends after the error (the
    /// rest of such a line could only be discarded for as long as the client sends it).
    public mutating func lineTooLong() -> Action {
        guard state != .closed else { return .none }
        return close(.err("line too long"))
    }

    /// A line read while an AUTH exchange waits for the client (RFC 5034 §4).
    public mutating func saslResponse(_ line: String) -> Action {
        guard case .sasl(var sasl) = phase else { return .none }
        phase = .authorization(pendingUser: nil)
        if draining { return close(.shuttingDown) }
        return saslStep(sasl.respond(line), sasl)
    }

    /// The TLS handshake after STLS completed. RFC 2595 §4: the client forgets what it
    /// learnt before (and asks CAPA again, which now lists USER and SASL).
    public mutating func tlsEstablished() {
        guard case .startingTLS = phase else { return }
        isTLS = true
        phase = .authorization(pendingUser: nil)
    }

    /// The client went away (or the handler closed). RFC 1939 §6: without QUIT the session
    /// never enters UPDATE, so nothing is deleted; the handler releases the lock.
    public mutating func connectionClosed() {
        phase = .closed
    }

    /// The server is going away. A session waiting for a command is told now (`-ERR
    /// [SYS/TEMP]`, no UPDATE); one waiting for a check, a message or the deletions is told
    /// when that ends.
    @discardableResult
    public mutating func drain() -> Action {
        draining = true
        return acceptsInput ? close(.shuttingDown) : .none
    }

    /// RFC 1939 §3 autologout: close without a response and without UPDATE.
    public mutating func idleTimedOut() -> Action {
        guard state != .closed else { return .none }
        phase = .closed
        return .close
    }

    // MARK: Events from the caller's lookups

    /// The password check ended (after the guard's failure delay, for a failure).
    public mutating func passwordChecked(_ verdict: AuthVerdict) -> Action {
        guard case .verifying(let user) = phase else { return .none }
        phase = .authorization(pendingUser: nil)
        switch verdict {
        case .accepted:
            if draining { return close(.shuttingDown) }
            phase = .openingMaildrop(user: user)
            return .openMaildrop(user: user)
        case .rejected:
            authFailures += 1
            if draining { return close(.shuttingDown) }
            // RFC 2449 AUTH-RESP-CODE: a credentials failure carries [AUTH].
            return error(.err("authentication failed", code: .auth))
        case .banned:
            authFailures += 1
            return close(.err(Refusal.banned.reason, code: .auth))
        case .busy:
            if draining { return close(.shuttingDown) }
            return .reply(.err("temporary authentication failure; try again later", code: .sysTemp))
        }
    }

    /// The caller's answer to `.openMaildrop`.
    public mutating func maildropOpened(_ opening: POP3MaildropOpening) -> Action {
        guard case .openingMaildrop(let user) = phase else { return .none }
        phase = .authorization(pendingUser: nil)
        switch opening {
        case .opened(let listing):
            authenticatedUser = user
            maildrop = listing
            deleted = []
            phase = .transaction
            if draining { return close(.shuttingDown) }
            return .reply(.ok("maildrop has \(summary)"))
        case .locked:
            if draining { return close(.shuttingDown) }
            return .reply(.err("maildrop already locked by another session", code: .inUse))
        case .failed:
            if draining { return close(.shuttingDown) }
            return .reply(.err("unable to open the maildrop; try again later", code: .sysTemp))
        }
    }

    /// The message of a `.sendMessage` was streamed whole.
    public mutating func messageSent() -> Action {
        guard case .sending = phase else { return .none }
        phase = .transaction
        return draining ? close(.shuttingDown) : .none
    }

    /// The message of a `.sendMessage` could not be opened (removed by another client
    /// since the listing); nothing was written for it.
    public mutating func messageUnavailable() -> Action {
        guard case .sending(let number) = phase else { return .none }
        phase = .transaction
        if draining { return close(.shuttingDown) }
        return .reply(.err("message \(number) is no longer available", code: .sysTemp))
    }

    /// The caller's answer to `.commitDeletions`. RFC 1939 §6: if some messages could not
    /// be removed, QUIT answers -ERR; either way the session ends.
    public mutating func deletionsCommitted(_ succeeded: Bool) -> Action {
        guard case .updating = phase else { return .none }
        phase = .closed
        guard succeeded else {
            return .replyAndClose(.err("some deleted messages not removed", code: .sysTemp))
        }
        return .replyAndClose(.ok("\(host) POP3 server signing off (\(remainingSummary))"))
    }

    // MARK: AUTHORIZATION

    private mutating func authorization(_ command: POP3Command) -> Action {
        let pendingUser: String?
        if case .authorization(let user) = phase { pendingUser = user } else { pendingUser = nil }
        // RFC 1939 §7: PASS only immediately after a successful USER.
        phase = .authorization(pendingUser: nil)
        switch command {
        case .capa:
            return .reply(capabilities)
        case .stls:
            return startTLS()
        case .quit:
            // RFC 1939 §6: QUIT in AUTHORIZATION ends the session without UPDATE.
            phase = .closed
            return .replyAndClose(.ok("\(host) POP3 server signing off"))
        case .user(let name):
            guard loginAllowed else { return error(loginRefusal) }
            // Always +OK: whether the mailbox exists is not revealed before PASS.
            phase = .authorization(pendingUser: name)
            return .reply(.ok("send PASS"))
        case .pass(let password):
            guard loginAllowed else { return error(loginRefusal) }
            guard let user = pendingUser else { return error(.err("send USER first")) }
            phase = .verifying(user: user)
            return .verifyPassword(user: user, password: password, failures: authFailures)
        case .apop:
            return error(.err("APOP is not offered; use USER and PASS, or AUTH"))
        case .authMechanisms:
            guard loginAllowed else { return error(loginRefusal) }
            return .reply(.multiLine("", SASLServer.Mechanism.allCases.map(\.rawValue)))
        case .auth(let mechanism, let initialResponse):
            guard loginAllowed else { return error(loginRefusal) }
            var sasl = SASLServer()
            return saslStep(sasl.start(mechanism: mechanism, initialResponse: initialResponse), sasl)
        case .stat, .list, .retr, .dele, .noop, .rset, .top, .uidl:
            return error(.err("\(command.keyword) is not valid before authentication"))
        }
    }

    private mutating func saslStep(_ step: SASLServer.Step, _ sasl: SASLServer) -> Action {
        switch step {
        case .challenge(let text):
            phase = .sasl(sasl)
            return .reply(.continuation(text))
        case .verify(let user, let password):
            phase = .verifying(user: user)
            return .verifyPassword(user: user, password: password, failures: authFailures)
        case .failed(.unknownMechanism):
            return error(.err("unsupported authentication mechanism"))
        case .failed(.malformed):
            return error(.err("cannot decode the authentication response"))
        case .failed(.cancelled):
            // RFC 5034 §4: "*" cancels, answered with -ERR.
            return error(.err("authentication cancelled"))
        case .failed(.authorizationIdentity):
            authFailures += 1
            return error(.err("authentication failed", code: .auth))
        }
    }

    private mutating func startTLS() -> Action {
        guard configuration.stlsAvailable else { return error(.err("STLS is not offered on this port")) }
        guard !isTLS else { return error(.err("TLS already active")) }
        phase = .startingTLS
        return .startTLS(.ok("Begin TLS negotiation"))
    }

    private var loginRefusal: POP3Reply {
        stlsOffered
            ? .err("plain-text login is disabled; issue STLS first", code: .sysPerm)
            : .err("plain-text login is disabled on this port", code: .sysPerm)
    }

    /// RFC 2449 §5 CAPA. AUTHORIZATION capabilities are listed in both states (§6); USER
    /// and SASL only when a login would be accepted now, STLS only while it is offered.
    public var capabilities: POP3Reply {
        var lines = ["CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if loginAllowed {
            lines.append("USER")
            lines.append("SASL " + SASLServer.Mechanism.allCases.map(\.rawValue).joined(separator: " "))
        }
        if stlsOffered { lines.append("STLS") }
        lines.append("IMPLEMENTATION Berth")
        return .multiLine("Capability list follows", lines)
    }

    // MARK: TRANSACTION

    private mutating func transaction(_ command: POP3Command) -> Action {
        let messages = maildrop?.messages ?? []
        switch command {
        case .capa:
            return .reply(capabilities)
        case .stat:
            // RFC 1939 §5: deleted messages are not counted.
            return .reply(.ok("\(liveCount) \(liveOctets)"))
        case .list(nil):
            let lines = messages.indices.filter { !deleted.contains($0 + 1) }.map { "\($0 + 1) \(messages[$0].size)" }
            return .reply(.multiLine("\(summary)", lines))
        case .list(let number?):
            guard let message = live(number) else { return noSuchMessage(number) }
            return .reply(.ok("\(number) \(message.size)"))
        case .uidl(nil):
            let lines = messages.indices.filter { !deleted.contains($0 + 1) }.map { "\($0 + 1) \(messages[$0].uniqueID)" }
            return .reply(.multiLine("", lines))
        case .uidl(let number?):
            guard let message = live(number) else { return noSuchMessage(number) }
            return .reply(.ok("\(number) \(message.uniqueID)"))
        case .retr(let number):
            guard let message = live(number) else { return noSuchMessage(number) }
            phase = .sending(number: number)
            return .sendMessage(number: number, topLines: nil, firstLine: .ok("\(message.size) octets"))
        case .top(let number, let lines):
            guard live(number) != nil else { return noSuchMessage(number) }
            phase = .sending(number: number)
            return .sendMessage(number: number, topLines: lines, firstLine: .ok("top of message follows"))
        case .dele(let number):
            guard number <= messages.count else { return noSuchMessage(number) }
            guard !deleted.contains(number) else { return .reply(.err("message \(number) already deleted")) }
            deleted.insert(number)
            return .reply(.ok("message \(number) deleted"))
        case .noop:
            return .reply(.ok(""))
        case .rset:
            deleted = []
            return .reply(.ok("maildrop has \(summary)"))
        case .quit:
            // RFC 1939 §6: only now are the marked messages removed.
            guard !deleted.isEmpty else {
                phase = .closed
                return .replyAndClose(.ok("\(host) POP3 server signing off (\(remainingSummary))"))
            }
            phase = .updating
            return .commitDeletions(deleted.sorted())
        case .stls:
            return error(.err("STLS is only valid before authentication"))
        case .user, .pass, .apop, .auth, .authMechanisms:
            return error(.err("already authenticated"))
        }
    }

    private func live(_ number: Int) -> POP3Maildrop.Message? {
        guard let messages = maildrop?.messages, number >= 1, number <= messages.count, !deleted.contains(number) else {
            return nil
        }
        return messages[number - 1]
    }

    /// RFC 1939 §5: a deleted message, or one past the end, does not exist.
    private func noSuchMessage(_ number: Int) -> Action {
        let count = maildrop?.messages.count ?? 0
        guard number > count else { return .reply(.err("no such message")) }
        return .reply(.err("no such message, only \(count) messages in maildrop"))
    }

    private var liveCount: Int { (maildrop?.messages.count ?? 0) - deleted.count }

    private var liveOctets: Int {
        guard let messages = maildrop?.messages else { return 0 }
        return messages.indices.reduce(0) { deleted.contains($1 + 1) ? $0 : $0 + messages[$1].size }
    }

    private var summary: String {
        "\(liveCount) message\(liveCount == 1 ? "" : "s") (\(liveOctets) octets)"
    }

    private var remainingSummary: String {
        liveCount == 0 ? "maildrop empty" : "\(liveCount) message\(liveCount == 1 ? "" : "s") left"
    }

    // MARK: Helpers

    private mutating func clearPendingUser() {
        if case .authorization(.some) = phase { phase = .authorization(pendingUser: nil) }
    }

    /// Counts a client error; at the limit the session ends (without UPDATE).
    private mutating func error(_ reply: POP3Reply) -> Action {
        errorCount += 1
        if errorCount >= configuration.maxErrors {
            return close(.err("too many errors; closing"))
        }
        return .reply(reply)
    }

    private mutating func close(_ reply: POP3Reply) -> Action {
        phase = .closed
        return .replyAndClose(reply)
    }
}

extension POP3Reply {
    static let tlsFirst = POP3Reply.err("encryption required: issue STLS first", code: .sysPerm)
    static let shuttingDown = POP3Reply.err("server shutting down", code: .sysTemp)
}
