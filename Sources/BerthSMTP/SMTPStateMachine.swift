import BerthCore
import BerthNet

/// One SMTP session as a pure value: events in, actions out (RFC 5321 §4.1.4 command order,
/// RFC 3207 STARTTLS, RFC 4954 AUTH). The channel handler parses, asks, and runs the action.
public struct SMTPStateMachine {
    public struct Configuration: Sendable, Hashable {
        public var hostname: String
        public var maxMessageSize: Int = SMTPLimits.defaultMessageSize
        public var maxRecipients: Int = SMTPLimits.recipients
        public var maxErrors: Int = SMTPLimits.errorsBeforeDisconnect
        /// A `tls` port: STARTTLS is offered until TLS is up.
        public var startTLSAvailable: Bool = false
        /// BINDINGS.md `tlsRequired`: only EHLO/HELO/NOOP/RSET/QUIT/STARTTLS before TLS.
        public var tlsRequired: Bool = false
        /// A submission port (RFC 6409): MAIL needs AUTH first.
        public var authRequired: Bool = false
        /// AUTH over plain text, only when the admin asks for it.
        public var allowPlaintextAuth: Bool = false
        /// Mail for other domains can be sent on. Until outbound delivery exists, an
        /// authenticated client's remote recipients get 451 4.3.2, never a 250 that
        /// would leave the message in a black hole.
        public var relayAvailable: Bool = false

        public init(hostname: String) {
            self.hostname = hostname
        }
    }

    public struct Envelope: Sendable, Hashable {
        public var sender: String
        public var recipients: [Recipient] = []
        public var declaredSize: Int?
        /// RCPT commands accepted, duplicates included: the recipient limit counts these,
        /// so repeating one address cannot get around it.
        public var acceptedRecipientCommands = 0
    }

    public struct Recipient: Sendable, Hashable {
        public var address: String
        public var `class`: RecipientClass
    }

    public enum Action: Sendable, Hashable {
        case reply(SMTPReply)
        case replyAndClose(SMTPReply)
        /// Write the reply, drop anything buffered, add TLS in the same tick.
        case startTLS(SMTPReply)
        /// Write 354 and read the body.
        case beginData(SMTPReply)
        /// Write a 334 challenge; the next line is a SASL response.
        case authChallenge(SMTPReply)
        /// Check these credentials (slowly, off the event loop), then call `credentialsChecked`.
        /// `failures` counts this session's earlier failures (for the growing delay).
        case verifyCredentials(user: String, password: String, failures: Int)
        /// Store the message for this envelope, then call `deliveryFinished`.
        case deliver(Envelope)
        case none
    }

    enum Phase: Hashable {
        case connected
        case ready
        case mail(Envelope)
        case data(Envelope)
        /// Waiting for the store to make the message durable.
        case delivering
        /// A SASL exchange waits for the client's next line.
        case auth(SASLServer)
        /// Waiting for the password check.
        case verifying(user: String)
        /// `220 Ready to start TLS` was sent; waiting for the handshake.
        case startingTLS
        case closed
    }

    public let configuration: Configuration
    private(set) var phase: Phase = .connected
    public private(set) var isTLS: Bool
    public private(set) var greeted: Bool = false
    public private(set) var clientName: String?
    public private(set) var usedESMTP = false
    public private(set) var authenticatedUser: String?
    public private(set) var errorCount = 0
    public private(set) var authFailures = 0
    public private(set) var draining = false

    public init(configuration: Configuration, isTLS: Bool) {
        self.configuration = configuration
        self.isTLS = isTLS
    }

    private var host: String { configuration.hostname }

    /// True while the machine waits for a line from the client (not mid-DATA or mid-check).
    public var awaitsCommand: Bool {
        switch phase {
        case .connected, .ready, .mail: return true
        case .data, .delivering, .auth, .verifying, .startingTLS, .closed: return false
        }
    }

    /// False while the session waits for the server (a password check, a delivery, a TLS
    /// handshake) or has ended: the handler then reads and processes nothing, so replies
    /// stay in order and pipelined input waits in the client's own socket.
    public var acceptsInput: Bool {
        switch phase {
        case .connected, .ready, .mail, .data, .auth: return true
        case .delivering, .verifying, .startingTLS, .closed: return false
        }
    }

    /// Waiting for a password check or a delivery: nothing is read from the socket until
    /// it ends. (During a TLS handshake reads go on: they feed the handshake.)
    public var waitsForServer: Bool {
        switch phase {
        case .delivering, .verifying: return true
        default: return false
        }
    }

    public var isReceivingData: Bool {
        if case .data = phase { return true }
        return false
    }

    public var awaitsSASLResponse: Bool {
        if case .auth = phase { return true }
        return false
    }

    // MARK: Events

    public mutating func connected() -> Action {
        if draining { return close(.shuttingDown(host)) }
        phase = .ready
        return .reply(SMTPReply(220, nil, "\(host) ESMTP Berth"))
    }

    /// A command line the framer delivered, already parsed (or refused by the parser).
    /// `classify` tells where a recipient lives.
    public mutating func command(
        _ parsed: Result<SMTPCommand, SMTPCommandError>, classify: (String) -> RecipientClass
    ) -> Action {
        if draining {
            if case .success(.quit) = parsed { return close(.bye) }
            return close(.shuttingDown(host))
        }
        let command: SMTPCommand
        switch parsed {
        case .success(let c): command = c
        case .failure(.unrecognized): return error(.unrecognized)
        case .failure(.syntax(let usage)): return error(.syntax(usage))
        }
        if configuration.tlsRequired && !isTLS {
            switch command {
            case .ehlo, .helo, .noop, .rset, .quit, .startTLS: break
            default: return error(.tlsFirst)
            }
        }
        switch command {
        case .ehlo(let name): return hello(name, extended: true)
        case .helo(let name): return hello(name, extended: false)
        case .mail(let from, let parameters): return mail(from: from, parameters: parameters)
        case .rcpt(let to, let parameters): return rcpt(to: to, parameters: parameters, classify: classify)
        case .data: return data()
        case .rset:
            if case .mail = phase { phase = .ready }
            return .reply(.ok)
        case .noop: return .reply(.ok)
        case .quit:
            return close(.bye)
        case .vrfy:
            // RFC 5321 §3.5.3: 252 when we will not confirm addresses (no user enumeration).
            return .reply(SMTPReply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"))
        case .expn:
            return .reply(SMTPReply(502, "5.5.1", "EXPN is not supported"))
        case .help:
            var commands = "EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"
            if configuration.startTLSAvailable && !isTLS { commands += " STARTTLS" }
            if authAllowed { commands += " AUTH" }
            return .reply(SMTPReply(code: 214, enhanced: "2.0.0", lines: ["Commands: \(commands)", "See RFC 5321"]))
        case .startTLS: return startTLS()
        case .auth(let mechanism, let initial): return auth(mechanism: mechanism, initialResponse: initial)
        case .unsupported(let verb):
            return error(SMTPReply(502, "5.5.1", "Error: \(verb) is not implemented"))
        }
    }

    /// A command line with a bare line ending.
    public mutating func badLine(_ reply: SMTPReply) -> Action {
        if draining { return close(.shuttingDown(host)) }
        if case .auth = phase { phase = .ready }
        return error(reply)
    }

    /// A line past its length limit: the session ends after the error. The rest of such a
    /// line could only be discarded byte by byte for as long as the client keeps sending
    /// (a stream with no CRLF), so there is nothing to wait for.
    public mutating func lineTooLong() -> Action {
        close(.lineTooLong)
    }

    /// A line read while an AUTH exchange waits for the client (RFC 4954 §4).
    public mutating func saslResponse(_ line: String) -> Action {
        guard case .auth(var sasl) = phase else { return .none }
        phase = .ready
        return saslStep(sasl.respond(line), sasl)
    }

    private mutating func saslStep(_ step: SASLServer.Step, _ sasl: SASLServer) -> Action {
        switch step {
        case .challenge(let text):
            phase = .auth(sasl)
            return .authChallenge(SMTPReply(334, nil, text))
        case .verify(let user, let password):
            phase = .verifying(user: user)
            return .verifyCredentials(user: user, password: password, failures: authFailures)
        case .failed(.unknownMechanism):
            return error(SMTPReply(504, "5.5.4", "Unrecognized authentication type"))
        case .failed(.malformed):
            return error(SMTPReply(501, "5.5.2", "Cannot decode AUTH response"))
        case .failed(.cancelled):
            return error(SMTPReply(501, "5.7.0", "Authentication cancelled"))
        case .failed(.authorizationIdentity):
            authFailures += 1
            return error(SMTPReply(535, "5.7.8", "Authentication credentials invalid"))
        }
    }

    /// The password check ended (after the guard's failure delay, for a failure).
    public mutating func credentialsChecked(_ verdict: AuthVerdict) -> Action {
        guard case .verifying(let user) = phase else { return .none }
        phase = .ready
        switch verdict {
        case .accepted:
            if draining { return close(.shuttingDown(host)) }
            authenticatedUser = user
            return .reply(SMTPReply(235, "2.7.0", "Authentication successful"))
        case .rejected:
            authFailures += 1
            if draining { return close(.shuttingDown(host)) }
            return error(SMTPReply(535, "5.7.8", "Authentication credentials invalid"))
        case .banned:
            authFailures += 1
            return close(SMTPReply(421, "4.7.0", "\(host) Error: \(Refusal.banned.reason)"))
        case .busy:
            if draining { return close(.shuttingDown(host)) }
            return .reply(SMTPReply(454, "4.7.0", "Temporary authentication failure; try again later"))
        }
    }

    /// The body ended (with or without a problem the framer found).
    public mutating func dataFinished(problem: SMTPFramer.DataProblem?) -> Action {
        guard case .data(let envelope) = phase else { return .none }
        switch problem {
        case .none:
            phase = .delivering
            return .deliver(envelope)
        case .tooLarge:
            phase = .ready
            return error(SMTPReply(552, "5.3.4", "Message size exceeds fixed limit of \(configuration.maxMessageSize) octets"))
        case .lineTooLong:
            phase = .ready
            return error(SMTPReply(554, "5.6.0", "Message refused: a line is longer than 1000 octets (RFC 5321 section 4.5.3.1.6)"))
        case .bareLineEnding:
            phase = .ready
            return error(SMTPReply(554, "5.6.0", "Message refused: bare CR or LF in message; end lines with CRLF (RFC 5321 section 2.3.8)"))
        }
    }

    /// The store answered: durable (with its id) or failed.
    /// `refusal`: the store turned the message down for good (552 5.2.2 over quota).
    public mutating func deliveryFinished(queueID: String?, refusal: SMTPReply? = nil) -> Action {
        guard case .delivering = phase else { return .none }
        phase = .ready
        if let refusal { return .reply(refusal) }
        guard let queueID else {
            return .reply(SMTPReply(451, "4.3.0", "Error: could not store the message; try again later"))
        }
        return .reply(SMTPReply(250, "2.0.0", "Ok: queued as \(queueID)"))
    }

    /// The TLS handshake after STARTTLS completed: RFC 3207 §4.2, forget everything learnt
    /// before it (HELO name, AUTH).
    public mutating func tlsEstablished() {
        guard case .startingTLS = phase else { return }
        isTLS = true
        greeted = false
        clientName = nil
        usedESMTP = false
        authenticatedUser = nil
        phase = .ready
    }

    /// The server is going away. A session waiting for a command is told now (421 4.3.2);
    /// one in the middle of DATA, AUTH or a delivery gets it at its next command.
    @discardableResult
    public mutating func drain() -> Action {
        draining = true
        return awaitsCommand ? close(.shuttingDown(host)) : .none
    }

    public mutating func idleTimedOut() -> Action {
        close(SMTPReply(421, "4.4.2", "\(host) Error: timeout exceeded"))
    }

    // MARK: Commands

    private mutating func hello(_ name: String, extended: Bool) -> Action {
        if case .auth = phase { return error(.badSequence("AUTH in progress")) }
        phase = .ready  // RFC 5321 §4.1.4: EHLO/HELO also resets a transaction
        greeted = true
        clientName = name
        usedESMTP = extended
        guard extended else { return .reply(SMTPReply(250, nil, host)) }
        var lines = ["\(host) Hello \(name)", "PIPELINING", "SIZE \(configuration.maxMessageSize)", "8BITMIME",
                     "ENHANCEDSTATUSCODES"]
        if configuration.startTLSAvailable && !isTLS { lines.append("STARTTLS") }
        if authAllowed { lines.append("AUTH PLAIN LOGIN") }
        lines.append("HELP")
        return .reply(SMTPReply(code: 250, enhanced: nil, lines: lines))
    }

    private var authAllowed: Bool { isTLS || configuration.allowPlaintextAuth }

    private mutating func mail(from: String, parameters: [String: String]) -> Action {
        guard greeted else { return error(.badSequence("send HELO/EHLO first")) }
        guard case .ready = phase else { return error(.badSequence("nested MAIL command")) }
        if configuration.authRequired && authenticatedUser == nil { return error(.authFirst) }
        // Like Postfix's reject_sender_login_mismatch: a logged-in user sends as itself
        // (or as the null sender), so a stolen password cannot forge other senders.
        if let user = authenticatedUser, !from.isEmpty, from.lowercased() != user.lowercased() {
            return error(SMTPReply(553, "5.7.1", "<\(from)>: Sender address rejected: not owned by user \(user)"))
        }
        var declaredSize: Int?
        for (key, value) in parameters {
            switch key {
            case "SIZE":
                guard let size = Int(value), size >= 0 else { return error(.syntax("SIZE=<octets>")) }
                guard size <= configuration.maxMessageSize else {
                    return error(SMTPReply(552, "5.3.4", "Message size exceeds fixed limit of \(configuration.maxMessageSize) octets"))
                }
                declaredSize = size
            case "BODY":
                guard ["7BIT", "8BITMIME"].contains(value.uppercased()) else { return error(.syntax("BODY=7BIT|8BITMIME")) }
            case "AUTH":
                break  // RFC 4954 §5: accepted, the value is not trusted
            default:
                return error(SMTPReply(555, "5.5.4", "Unsupported parameter \(key)"))
            }
        }
        phase = .mail(Envelope(sender: from, declaredSize: declaredSize))
        return .reply(SMTPReply(250, "2.1.0", "Ok"))
    }

    private mutating func rcpt(to: String, parameters: [String: String], classify: (String) -> RecipientClass) -> Action {
        guard case .mail(var envelope) = phase else { return error(.badSequence("need MAIL before RCPT")) }
        guard parameters.isEmpty else {
            return error(SMTPReply(555, "5.5.4", "Unsupported RCPT parameter \(parameters.keys.sorted().joined(separator: ","))"))
        }
        guard envelope.acceptedRecipientCommands < configuration.maxRecipients else {
            return .reply(SMTPReply(452, "4.5.3", "Error: too many recipients"))
        }
        let recipientClass = classify(to)
        switch recipientClass {
        case .local:
            break
        case .unknownLocalUser:
            return error(SMTPReply(550, "5.1.1", "<\(to)>: Recipient address rejected: User unknown in local recipient table"))
        case .mailboxFull:
            // Temporary: the sender retries while the user makes room.
            return .reply(SMTPReply(452, "4.2.2", "<\(to)>: Recipient address rejected: Mailbox full"))
        case .remote:
            // No open relay: only authenticated clients may send elsewhere.
            guard authenticatedUser != nil else {
                return error(SMTPReply(554, "5.7.1", "<\(to)>: Relay access denied"))
            }
            guard configuration.relayAvailable else {
                return .reply(SMTPReply(451, "4.3.2", "<\(to)>: Outbound delivery is not available on this server yet; try again later"))
            }
        }
        // The same mailbox named twice (To and Cc, case variants) gets one copy.
        let isDuplicate = envelope.recipients.contains { existing in
            switch (existing.class, recipientClass) {
            case (.local(let d1, let u1), .local(let d2, let u2)): return d1 == d2 && u1 == u2
            case (.remote, .remote): return existing.address.lowercased() == to.lowercased()
            default: return false
            }
        }
        if !isDuplicate { envelope.recipients.append(Recipient(address: to, class: recipientClass)) }
        envelope.acceptedRecipientCommands += 1
        phase = .mail(envelope)
        return .reply(SMTPReply(250, "2.1.5", "Ok"))
    }

    private mutating func data() -> Action {
        guard case .mail(let envelope) = phase else { return error(.badSequence("need MAIL command")) }
        guard !envelope.recipients.isEmpty else { return error(SMTPReply(554, "5.5.1", "Error: no valid recipients")) }
        phase = .data(envelope)
        return .beginData(SMTPReply(354, nil, "End data with <CR><LF>.<CR><LF>"))
    }

    private mutating func startTLS() -> Action {
        guard configuration.startTLSAvailable else { return error(SMTPReply(502, "5.5.1", "Error: STARTTLS is not offered on this port")) }
        guard !isTLS else { return error(.badSequence("TLS already active")) }
        guard case .ready = phase else { return error(.badSequence("STARTTLS inside a mail transaction")) }
        phase = .startingTLS
        return .startTLS(SMTPReply(220, "2.0.0", "Ready to start TLS"))
    }

    private mutating func auth(mechanism: String, initialResponse: String?) -> Action {
        guard authAllowed else {
            return error(SMTPReply(538, "5.7.11", "Encryption required for requested authentication mechanism"))
        }
        guard greeted, usedESMTP else { return error(.badSequence("send EHLO first")) }
        guard authenticatedUser == nil else { return error(.badSequence("already authenticated")) }
        guard case .ready = phase else { return error(.badSequence("AUTH inside a mail transaction")) }
        var sasl = SASLServer()
        let step = sasl.start(mechanism: mechanism, initialResponse: initialResponse)
        return saslStep(step, sasl)
    }

    // MARK: Helpers

    /// Counts a client error; past the limit the session ends with 421.
    private mutating func error(_ reply: SMTPReply) -> Action {
        errorCount += 1
        if errorCount >= configuration.maxErrors {
            return close(SMTPReply(
                code: 421, enhanced: "4.7.0",
                lines: ["\(host) Error: too many errors (\(reply.code) \(reply.lines.last ?? ""))"]))
        }
        return .reply(reply)
    }

    private mutating func close(_ reply: SMTPReply) -> Action {
        phase = .closed
        return .replyAndClose(reply)
    }
}
