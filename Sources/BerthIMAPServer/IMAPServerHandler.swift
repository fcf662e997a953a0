import BerthCore
import BerthIMAP
import BerthMIME
import BerthNet
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// STARTTLS drops what the client pipelined after the command (`StartTLS.upgrade`).
extension IMAPFramer: BufferedInput {}

/// Drives one IMAP session: frames bytes, runs one command at a time, and writes the
/// responses. While a command waits for the store (always off the event loop) or for the
/// client to read what was written, the handler stops reading the socket, so no client can
/// grow the server (the read gate). One deadline runs at a time on the event loop's clock:
/// the TLS handshake, the autologout timer (RFC 3501 §5.4), or an APPEND literal.
///
/// The command code lives in extensions by concern: `+Auth` (not authenticated),
/// `+Mailboxes` (authenticated), `+Selected` (selected: FETCH, SEARCH, STORE...).
final class IMAPServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Unprocessed input held at most before reads stop.
    static let inputBacklog = 64 * 1024
    /// Commands run in one go before the session lets the event loop serve others.
    static let commandsPerTurn = 256
    /// Invalid commands before the session is ended, as SMTP does (a client speaking another
    /// protocol, or garbage, should not hold a connection).
    static let maxBadCommands = 20
    /// FETCH responses without message content written between writability checks.
    static let fetchBatch = 256

    /// What the session takes from the client next.
    enum Mode: Equatable {
        /// Commands.
        case command
        /// An AUTHENTICATE exchange waits for the client's response line (RFC 3501 §6.2.2).
        case sasl(tag: String)
        /// IDLE waits for DONE (RFC 2177 §3).
        case idle(tag: String)
        /// STARTTLS answered; the handshake runs.
        case startingTLS
        case closed
    }

    let server: IMAPServer
    let connection: ConnectionContext
    var framer: IMAPFramer
    var context: ChannelHandlerContext!
    var mode: Mode = .command
    /// A command waits for the server (store, password check, message read): nothing else
    /// is read meanwhile.
    var busy = false
    /// Output passed the channel's high-water mark in the middle of a FETCH.
    var waitingForWritability = false
    var isTLS: Bool
    private var tls = SessionTLS()
    var sasl = SASLServer()
    var authFailures = 0
    var account: MailAccount?
    var selected: SelectedMailbox?
    var observation: (any MailboxObservation)?
    /// The store said the selected folder changed (another session, a delivery).
    var changesNoticed = false
    /// RFC 7162 / RFC 5161.
    var condStoreEnabled = false
    var qresyncEnabled = false
    var append: AppendState?
    var appendNumber = 0
    var fetchJob: FetchJob?
    /// The last message read for FETCH or SEARCH: clients often fetch a message's parts
    /// one command after another.
    var messageCache: CachedMessage?
    var badCommands = 0
    var draining = false
    var log: SessionLog
    var stats = (appended: 0, expunged: 0, fetched: 0)

    private var gate = ReadGate()
    private var timer = SessionTimer()
    var pendingWrites = false
    private var started = false
    private var continuationScheduled = false
    private var processing = false

    struct CachedMessage: Sendable {
        var mailboxID: Int64
        var uid: UInt32
        var message: MIMEMessage
        /// `.header` when only the header was read.
        var content: IMAPFetch.Content

        func serves(_ mailboxID: Int64, _ uid: UInt32, _ content: IMAPFetch.Content) -> Bool {
            self.mailboxID == mailboxID && self.uid == uid && self.content >= content
        }
    }

    /// An APPEND whose message literal is arriving.
    struct AppendState {
        var tag: String?
        /// nil when the message is read and thrown away (not authenticated).
        var spool: MessageSpool?
        /// A CR that ended the last piece: kept so a CRLF split between pieces reaches the
        /// spool whole.
        var heldCR = false
        var size: Int
    }

    init(server: IMAPServer, connection: ConnectionContext) {
        self.server = server
        self.connection = connection
        self.framer = IMAPFramer(limits: server.configuration.limits)
        self.isTLS = connection.isImplicitTLS
        self.log = SessionLog(base: server.configuration.logger, connection: connection)
    }

    var capabilities: IMAPCapabilities {
        IMAPCapabilities(
            startTLSAvailable: connection.spec.encryption == .tls && connection.tlsContext != nil,
            tlsRequired: connection.spec.encryption == .tls && connection.spec.tlsRequired,
            allowPlaintextAuth: server.configuration.allowPlaintextAuth, appendLimit: server.configuration.maxAppendSize)
    }

    var capabilityList: [String] { capabilities.list(isTLS: isTLS, authenticated: account != nil) }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start() }
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    private func start() {
        guard !started else { return }
        started = true
        if tls.start(implicitTLS: connection.isImplicitTLS, log: log) { arm(.handshake) }
        // RFC 3501 §7.1.1 greeting, with the capabilities so clients need not ask (§7.2.1).
        write(.untagged(.ok, code: .capability(capabilityList), text: "\(connection.hostname) IMAP4rev1 ready"))
        settle(commandDone: !connection.isImplicitTLS)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        append?.spool?.discard()
        append = nil
        observation?.cancel()
        observation = nil
        mode = .closed
        log.event("disconnect", [
            "appended": .stringConvertible(stats.appended), "expunged": .stringConvertible(stats.expunged),
            "fetched": .stringConvertible(stats.fetched), "bad": .stringConvertible(badCommands),
        ])
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        SessionTLS.logFailure(error, log: log)
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            handshakeCompleted()
        } else if event is DrainEvent {
            // A session in the middle of a command gets its BYE when the command ends.
            draining = true
            if !busy && mode != .closed && mode != .startingTLS { bye("Server shutting down") }
        } else if event is DrainDeadlineEvent {
            bye("Server shutting down")
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handshakeCompleted() {
        _ = tls.handshakeCompleted(context.pipeline, log: &log)
        isTLS = true
        if mode == .startingTLS { mode = .command }
        settle(commandDone: true)
        process()
    }

    // MARK: Reading

    func read(context: ChannelHandlerContext) {
        if gate.readRequested() { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard mode != .closed else { return }
        let buffer = unwrapInboundIn(data)
        framer.append(buffer.readableBytesView)
        process()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if waitingForWritability && context.channel.isWritable {
            waitingForWritability = false
            continueFetch()
        }
        process()
        context.fireChannelWritabilityChanged()
    }

    private var acceptsInput: Bool {
        switch mode {
        case .command, .sasl, .idle: return !busy
        case .startingTLS, .closed: return false
        }
    }

    /// Takes frames while the session can: one command at a time, at most
    /// `commandsPerTurn` before yielding the event loop.
    func process() {
        // A command finishing inside this loop must not start a nested one.
        guard !continuationScheduled, !processing, mode != .closed else { return }
        processing = true
        defer { processing = false }
        var commandDone = false
        var turn = 0
        while acceptsInput && context.channel.isWritable && append?.spool?.isBackedUp != true {
            turn += 1
            if turn > Self.commandsPerTurn {
                continuationScheduled = true
                context.eventLoop.assumeIsolated().execute {
                    self.continuationScheduled = false
                    self.process()
                }
                break
            }
            guard let frame = framer.next() else { break }
            switch frame {
            case .command(let bytes):
                commandDone = true
                received(bytes)
            case .continuationRequest:
                // RFC 3501 §7.5: the client waits for this before sending a literal.
                write(.continuation("Ready for literal data"))
                flushIfNeeded()
            case .appendMessageBegin(let tag, let size):
                beginAppend(tag: tag, size: size)
            case .appendMessageBytes(let bytes):
                appendPiece(bytes)
            case .appendMessageEnd:
                if append?.heldCR == true {
                    append?.heldCR = false
                    append?.spool?.append(ByteBuffer(bytes: [ASCII.cr]))
                }
            case .error(let error):
                commandDone = true
                framingFailed(error)
            }
        }
        settle(commandDone: commandDone)
    }

    /// One framed line or command, by what the session waits for.
    private func received(_ bytes: IMAPCommandBytes) {
        switch mode {
        case .sasl(let tag):
            saslResponse(bytes, tag: tag)
        case .idle(let tag):
            if IMAPCommandParser.isIdleDone(bytes) {
                mode = .command
                complete(tag, .ok, text: "IDLE terminated")
            } else {
                mode = .command
                bad(tag, "Expected DONE to end IDLE")
            }
        default:
            switch IMAPCommandParser.parse(bytes) {
            case .success(let command):
                if bytes.streamedLiteral == nil, append != nil { discardAppend() }
                run(command)
                // An APPEND refused before it reached the store leaves no spool behind.
                if bytes.streamedLiteral != nil { discardAppend() }
            case .failure(let error):
                discardAppend()
                bad(error.tag, error.reason)
            }
        }
    }

    private func framingFailed(_ error: IMAPFramingError) {
        discardAppend()
        log.event("refused", ["reason": .string(error.description)], level: .notice)
        let tag = error.tag
        if case .literalTooLarge(_, _, let synchronizing) = error.kind, synchronizing, let tag {
            // RFC 7888 §4 / RFC 4469: a message too large is refused before it is sent.
            write(.tagged(tag: tag, .no, code: .tooBig, text: error.description))
            return
        }
        bad(tag, error.description, code: error.isTooBig ? .tooBig : nil)
    }

    // MARK: Output

    func write(_ response: IMAPResponse) {
        guard mode != .closed else { return }
        let bytes = IMAPResponseEncoder.encode(response)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
        pendingWrites = true
    }

    func write(_ responses: [IMAPResponse]) {
        for response in responses { write(response) }
    }

    func flushIfNeeded() {
        if pendingWrites {
            pendingWrites = false
            context.flush()
        }
    }

    /// `tag BAD text`; too many end the session.
    func bad(_ tag: String?, _ text: String, code: IMAPResponseCode? = nil) {
        badCommands += 1
        if let tag {
            write(.tagged(tag: tag, .bad, code: code, text: text))
        } else {
            write(.untagged(.bad, code: code, text: text))
        }
        if badCommands >= Self.maxBadCommands {
            log.event("too many errors", ["bad": .stringConvertible(badCommands)], level: .notice)
            bye("Too many invalid commands")
        }
    }

    /// `* BYE text` and close (RFC 3501 §7.1.5).
    func bye(_ text: String) {
        guard mode != .closed else { return }
        write(.untagged(.bye, text: text))
        mode = .closed
        timer.disarm()
        append?.spool?.discard()
        append = nil
        observation?.cancel()
        observation = nil
        pendingWrites = false
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    // MARK: Completing commands

    /// Ends a command: first what changed in the selected folder meanwhile (RFC 3501 §7:
    /// untagged data before the tagged completion), then `tag status text`.
    /// `expungeAllowed` is false for FETCH, STORE and SEARCH (RFC 3501 §7.4.1); `refresh`
    /// asks the store even when no change was signalled (NOOP, CHECK, after own changes).
    func complete(
        _ tag: String, _ status: IMAPStatus, code: IMAPResponseCode? = nil, text: String,
        expungeAllowed: Bool = true, refresh: Bool = false
    ) {
        guard selected != nil, changesNoticed || refresh else {
            write(.tagged(tag: tag, status, code: code, text: text))
            commandFinished()
            return
        }
        busy = true
        refreshSelected(expungeAllowed: expungeAllowed) {
            self.write(.tagged(tag: tag, status, code: code, text: text))
            self.busy = false
            self.commandFinished()
        }
    }

    /// Asks the store what changed in the selected folder and writes it; then `done` (not
    /// called if the folder vanished: the session has ended).
    func refreshSelected(expungeAllowed: Bool, _ done: @escaping () -> Void) {
        guard let view = selected, let account else {
            done()
            return
        }
        changesNoticed = false
        let store = server.store
        let mailboxID = view.mailboxID, since = view.highestModSeq
        let lastKnown = view.messages.last?.uid ?? 0, readOnly = view.readOnly
        blocking { () throws -> (MailboxChanges, [UInt32]) in
            let changes = try store.changes(in: mailboxID, of: account, since: since)
            // New arrivals: this session may be the first to see them (\Recent).
            let arrived = !readOnly && changes.changed.contains { $0.uid > lastKnown }
            return (changes, arrived ? try store.claimRecent(in: mailboxID, of: account) : [])
        } then: { result in
            switch result {
            case .success(let (changes, claimed)):
                // The folder may have been closed or reselected while the store answered.
                if self.selected?.mailboxID == mailboxID {
                    self.write(self.selected!.apply(changes, expungeAllowed: expungeAllowed, claimed: claimed))
                }
                done()
            case .failure(let error as MailboxStoreError) where error == .mailboxGone:
                self.log.event("selected mailbox gone", ["mailbox": .string(view.name)])
                self.bye("Selected mailbox was deleted or renamed")
            case .failure(let error):
                self.log.event("store error", ["error": "\(error)"], level: .error)
                done()
            }
        }
    }

    /// A command is over: take the next one (or leave, when draining).
    func commandFinished() {
        guard mode != .closed else { return }
        if draining, !busy, mode == .command || isIdle {
            bye("Server shutting down")
            return
        }
        settle(commandDone: true)
        process()
    }

    var isIdle: Bool {
        if case .idle = mode { return true }
        return false
    }

    /// The observation fired (on any thread, hopped here): in IDLE the client hears of it
    /// at once (RFC 2177 §3); otherwise at the end of its next command.
    func changeNoticed() {
        guard selected != nil, mode != .closed else { return }
        changesNoticed = true
        pushIfIdle()
    }

    /// In IDLE, what changed goes out now; a change noticed while a push was in flight
    /// gets a push of its own.
    func pushIfIdle() {
        guard isIdle, !busy, changesNoticed, selected != nil else { return }
        busy = true
        refreshSelected(expungeAllowed: true) {
            self.busy = false
            self.pushIfIdle()
            self.settle(commandDone: false)
            self.process()
        }
        settle(commandDone: false)
    }

    // MARK: Blocking work

    /// Runs `work` off the event loop (the store blocks; `content`: it reads messages), then
    /// `then` on the loop. The read gate is closed by the caller's `busy`.
    func blocking<T: Sendable>(
        content: Bool = false, _ work: @escaping @Sendable () throws -> T, then: @escaping (Result<T, any Error>) -> Void
    ) {
        server.offLoop(context.eventLoop, content: content, work).assumeIsolated().whenComplete { result in
            guard self.mode != .closed else { return }
            then(result)
            self.flushIfNeeded()
        }
    }

    /// The NO a store failure is answered with (its description is fit for the client).
    func storeFailure(_ error: any Error, tryCreate: Bool = false) -> (IMAPResponseCode?, String) {
        guard let error = error as? MailboxStoreError else {
            log.event("store error", ["error": "\(error)"], level: .error)
            return (.serverBug, "Internal error")
        }
        switch error {
        case .noSuchMailbox: return (tryCreate ? .tryCreate : .nonExistent, error.description)
        case .mailboxExists: return (.alreadyExists, error.description)
        case .invalidName: return (.cannot, error.description)
        case .cannotDelete(_, let reason): return (reason.contains("child") ? .hasChildren : .cannot, error.description)
        case .overQuota: return (.overQuota, error.description)
        case .mailboxGone: return (.nonExistent, error.description)
        case .storage:
            log.event("store error", ["error": "\(error)"], level: .error)
            return (.serverBug, "Internal error")
        }
    }

    /// Runs a store call for command `tag` (`content`: one that reads messages) and answers
    /// `NO` with the store's reason when it fails.
    func storeCommand<T: Sendable>(
        _ tag: String, tryCreate: Bool = false, content: Bool = false, _ work: @escaping @Sendable () throws -> T,
        then: @escaping (T) -> Void
    ) {
        busy = true
        blocking(content: content, work) { result in
            self.busy = false
            switch result {
            case .success(let value):
                then(value)
            case .failure(let error):
                let (code, text) = self.storeFailure(error, tryCreate: tryCreate)
                self.complete(tag, .no, code: code, text: text)
            }
        }
        settle(commandDone: false)
    }

    // MARK: Gate and deadline

    /// After any change: flush, pick the deadline the session runs against, and open or
    /// close the read gate.
    func settle(commandDone: Bool) {
        flushIfNeeded()
        guard mode != .closed else { return }
        if tls.isHandshakePending || mode == .startingTLS {
            // The handshake deadline was armed when TLS was added.
        } else if waitingForWritability {
            // The client must read what it asked for within the timeout.
            if timer.kind != .command { arm(.command) }
        } else if busy {
            timer.disarm()  // waiting for the server, not the client
        } else if append != nil {
            if timer.kind != .data { arm(.data) }
        } else if commandDone || timer.kind != .command {
            arm(.command)
        }
        // Not closed for a TLS handshake: the TLS handler before this one needs the reads.
        var reopen = gate.set(.sessionBusy, closed: busy)
        reopen = gate.set(.replyBacklog, closed: !context.channel.isWritable) || reopen
        // Only input not yet framed counts: a command being assembled (up to
        // IMAPLimits.maxCommandSize) needs more input to finish, never less.
        let unframed = framer.bufferedBytes - framer.commandBytes
        reopen = gate.set(.inputBacklog, closed: continuationScheduled || unframed >= Self.inputBacklog) || reopen
        reopen = gate.set(.spoolBacklog, closed: append?.spool?.isBackedUp == true) || reopen
        if reopen { context.read() }
    }

    private var timeouts: SessionTimeouts {
        let configured = server.configuration.timeouts
        var timeouts = SessionTimeouts(
            command: account == nil ? configured.notAuthenticated : configured.authenticated,
            handshake: configured.handshake)
        timeouts.data = configured.appendLiteral
        return timeouts
    }

    func arm(_ kind: SessionDeadline.Kind) {
        timer.arm(kind, timeouts: timeouts, on: context.eventLoop) { self.timerFired() }
    }

    private func timerFired() {
        let open = context.channel.isActive && mode != .closed
        guard let expired = timer.checkDue(sessionOpen: open, on: context.eventLoop, onCheck: { self.timerFired() })
        else { return }
        switch expired {
        case .handshake:
            log.event("timeout", ["during": "tls handshake"], level: .notice)
            timer.disarm()
            mode = .closed
            context.close(promise: nil)
        case .command, .data:
            log.event("timeout", ["during": .string(expired == .data ? "append" : "command")], level: .notice)
            bye("Autologout; idle for too long")
        }
    }
}

enum ASCII {
    static let cr = UInt8(ascii: "\r")
}
