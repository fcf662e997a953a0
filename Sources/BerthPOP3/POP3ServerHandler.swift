import BerthCore
import BerthNet
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Drives one POP3 session: frames lines, asks the `POP3Session`, runs its actions against
/// the store. The session decides when input is taken (`acceptsInput`); the handler holds
/// the socket's reads whenever the session cannot take more (a password check, the
/// maildrop being opened, a message being sent, the deletions, replies the client does
/// not read), so no client can grow the server. Every store call runs on the blocking
/// pool. One deadline runs at a time (handshake, command, sending), on the loop's clock.
final class POP3ServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Unprocessed input held at most before reads stop (well past the longest line).
    static let inputBacklog = 64 * 1024
    /// Commands run in one go before the session lets the event loop serve others: a
    /// client pipelining thousands of commands (RFC 2449 PIPELINING) gets its turn, not
    /// the whole loop.
    static let commandsPerTurn = 256

    /// The maildrop as opened at login. RFC 1939 §5: message numbers are fixed for the
    /// session, so message n is `uids[n - 1]` until the end.
    struct OpenMaildrop {
        var account: MailAccount
        var mailboxID: Int64
        var uids: [UInt32]
        /// \Seen as listed, or set by this session's RETR.
        var seen: [Bool]
    }

    /// A RETR or TOP response being streamed, one file read in flight at a time. A class,
    /// so a read that completes after the connection closed finds its stream gone.
    final class Stream {
        let number: Int
        let isRetrieval: Bool
        let fd: Int32
        var offset: Int64 = 0
        var stuffer: DotStuffer
        var reading = false
        var cancelled = false

        init(number: Int, topLines: Int?, fd: Int32) {
            self.number = number
            self.isRetrieval = topLines == nil
            self.fd = fd
            self.stuffer = DotStuffer(topLines: topLines)
        }
    }

    /// What opening the maildrop found, on the blocking pool.
    enum Opening: Sendable {
        case opened(any MailboxObservation, MailboxSnapshot)
        case locked
        case failed(String)
    }

    private var session: POP3Session
    private var framer = LineFramer()
    private let connection: ConnectionContext
    private let server: POP3Server
    private var gate = ReadGate()
    private var timer = SessionTimer()
    private var log: SessionLog
    private var pendingWrites = false
    private var started = false
    private var tls = SessionTLS()
    private var continuationScheduled = false
    /// The account the password check found; the maildrop is opened for it.
    private var account: MailAccount?
    private var maildrop: OpenMaildrop?
    /// RFC 1939 §8 maildrop lock, held from login to the end of the session.
    private var maildropLock: (any MailboxObservation)?
    private var stream: Stream?
    private var stats = (retrieved: 0, top: 0, deleted: 0)

    init(session: POP3Session, connection: ConnectionContext, server: POP3Server) {
        self.session = session
        self.connection = connection
        self.server = server
        self.log = SessionLog(base: server.configuration.logger, connection: connection)
    }

    private var timeouts: SessionTimeouts { server.configuration.timeouts }

    /// Runs blocking work (a store call; `content`: a message file read) off the event
    /// loop; the future completes on the loop.
    private func offload<T: Sendable>(
        _ context: ChannelHandlerContext, content: Bool = false, _ work: @escaping @Sendable () throws -> T
    ) -> EventLoopFuture<T> {
        switch server.configuration.blockingWork {
        case .threadPool(let pool):
            let pool = content ? server.configuration.contentThreadPool ?? pool : pool
            return pool.runIfActive(eventLoop: context.eventLoop, work)
        case .channelEventLoop:
            return context.eventLoop.submit(work)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if tls.start(implicitTLS: connection.isImplicitTLS, log: log) { arm(.handshake, context) }
        run(session.connected(), context)
        settle(context, commandDone: !connection.isImplicitTLS)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        if let stream {
            stream.cancelled = true
            self.stream = nil
            if !stream.reading { MessageFile.close(stream.fd) }
        }
        // RFC 1939 §6: a session that ends without QUIT never enters UPDATE; nothing is
        // removed, and the maildrop is free for the next session.
        session.connectionClosed()
        releaseMaildrop()
        log.event("disconnect", [
            "retrieved": .stringConvertible(stats.retrieved), "top": .stringConvertible(stats.top),
            "deleted": .stringConvertible(stats.deleted), "errors": .stringConvertible(session.errorCount),
        ])
        context.fireChannelInactive()
    }

    // MARK: Reading

    func read(context: ChannelHandlerContext) {
        if gate.readRequested() { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard session.state != .closed else { return }
        framer.append(unwrapInboundIn(data))
        process(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context)
        process(context)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            handshakeCompleted(context)
        } else if event is DrainEvent {
            // A session in the middle of something is told when that ends.
            run(session.drain(), context)
            flushIfNeeded(context)
        } else if event is DrainDeadlineEvent {
            if stream != nil {
                // An -ERR in the middle of a message would be read as its content.
                run(.close, context)
            } else {
                run(.replyAndClose(.shuttingDown), context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // TLS failures, resets: this connection ends; the server carries on.
        if !SessionTLS.logFailure(error, log: log) {
            log.event("connection error", ["reason": "\(error)"], level: .debug)
        }
        context.close(promise: nil)
    }

    private func handshakeCompleted(_ context: ChannelHandlerContext) {
        if tls.handshakeCompleted(context.pipeline, log: &log) == .upgrade {
            session.tlsEstablished()  // RFC 2595 §4: the client starts over with CAPA
        }
        settle(context, commandDone: true)
        process(context)
    }

    // MARK: Input

    private func process(_ context: ChannelHandlerContext) {
        guard !continuationScheduled else { return }
        var commandDone = false
        var turn = 0
        while session.acceptsInput && context.channel.isWritable {
            turn += 1
            if turn > Self.commandsPerTurn {
                continuationScheduled = true
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.execute {
                    let (handler, context) = loopBound.value
                    handler.continuationScheduled = false
                    handler.process(context)
                }
                break
            }
            guard let frame = framer.nextLine(maxLength: POP3Limits.framerLineLength) else { break }
            commandDone = true
            switch frame {
            case .line(let line):
                run(session.line(line.readableBytesView), context)
            case .tooLong:
                log.event("refused", ["reason": "line too long"], level: .notice)
                run(session.lineTooLong(), context)
            case .bareLineEnding:
                run(session.badLine(), context)
            }
        }
        settle(context, commandDone: commandDone)
    }

    /// The session waits for a TLS handshake, during which the socket must be read.
    private var awaitingHandshake: Bool {
        if tls.isHandshakePending { return true }
        if case .startingTLS = session.phase { return true }
        return false
    }

    /// After any change: flush, pick the deadline the session now runs against, and open
    /// or close the read gate.
    private func settle(_ context: ChannelHandlerContext, commandDone: Bool) {
        flushIfNeeded(context)
        guard session.state != .closed else { return }
        if awaitingHandshake {
            // the handshake deadline was armed when TLS was added
        } else if stream != nil {
            // re-armed at each chunk written: the client must keep reading
            if timer.kind != .data { arm(.data, context) }
        } else if !session.acceptsInput {
            timer.disarm()  // waiting for the server, not the client
        } else if commandDone || timer.kind != .command {
            arm(.command, context)
        }
        var reopen = gate.set(.sessionBusy, closed: !session.acceptsInput && !awaitingHandshake)
        reopen = gate.set(.replyBacklog, closed: !context.channel.isWritable) || reopen
        reopen = gate.set(.inputBacklog, closed: continuationScheduled || framer.bufferedBytes >= Self.inputBacklog) || reopen
        if reopen { context.read() }
    }

    // MARK: Actions

    private func run(_ action: POP3Session.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .reply(let reply):
            write(reply, context)
        case .replyAndClose(let reply):
            end(context)
            if context.channel.isWritable {
                var buffer = context.channel.allocator.buffer(capacity: 64)
                reply.encode(into: &buffer)
                pendingWrites = false
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                // The client does not read: a reply would only queue behind the others.
                context.close(promise: nil)
            }
        case .close:
            end(context)
            flushIfNeeded(context)
            context.close(promise: nil)
        case .startTLS(let reply):
            guard let tlsContext = connection.tlsContext else {
                // Unreachable: STLS is only offered with a context (`POP3Server.configure`).
                run(.replyAndClose(.err("TLS not available", code: .sysTemp)), context)
                return
            }
            write(reply, context)
            flushIfNeeded(context)
            do {
                // RFC 2595 §4: what the client pipelined after STLS is never executed.
                try SessionTLS.upgrade(context.channel, context: tlsContext, discarding: &framer, command: "stls", log: log)
                arm(.handshake, context)
            } catch {
                context.close(promise: nil)
            }
        case .verifyPassword(let user, let password, let failures):
            verify(user: user, password: password, failures: failures, context)
        case .openMaildrop:
            openMaildrop(context)
        case .sendMessage(let number, let topLines, let firstLine):
            send(number: number, topLines: topLines, firstLine: firstLine, context)
        case .commitDeletions(let numbers):
            commit(numbers, context)
        }
    }

    /// The session is over: no line is processed any more, no deadline runs, the
    /// maildrop is free.
    private func end(_ context: ChannelHandlerContext) {
        session.connectionClosed()
        timer.disarm()
        releaseMaildrop()
    }

    private func write(_ reply: POP3Reply, _ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        reply.encode(into: &buffer)
        write(buffer, context)
    }

    private func write(_ buffer: ByteBuffer, _ context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(buffer), promise: nil)
        pendingWrites = true
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        if pendingWrites {
            pendingWrites = false
            context.flush()
        }
    }

    // MARK: Authentication

    private func verify(user: String, password: String, failures: Int, _ context: ChannelHandlerContext) {
        let authenticator = server.authenticator
        let found = NIOLockedValueBox<MailAccount?>(nil)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let check: @Sendable () -> Bool = {
            guard let account = authenticator.authenticate(user: user, password: password) else { return false }
            found.withLockedValue { $0 = account }
            return true
        }
        let (authGuard, client, logger) = (server.authGuard, connection.clientAddress, log.logger)
        let checked: EventLoopFuture<AuthVerdict>
        switch server.configuration.blockingWork {
        case .threadPool:
            checked = authGuard.check(
                user: user, client: client, service: "pop3", failuresInSession: failures, log: logger, on: eventLoop,
                verify: check)
        case .channelEventLoop:
            checked = eventLoop.submit {
                authGuard.record(
                    valid: check(), user: user, client: client, service: "pop3", failuresInSession: failures, log: logger)
            }
        }
        checked.whenComplete { result in
            // The guard's pool only fails when it is shut down: ask the client to retry.
            let verdict = (try? result.get()) ?? .busy
            let finish: @Sendable () -> Void = {
                let (handler, context) = loopBound.value
                guard context.channel.isActive else { return }
                // Failures were logged by the guard, with the client address, for fail2ban.
                if verdict == .accepted {
                    handler.account = found.withLockedValue { $0 }
                    handler.log.set("user", user)
                    handler.log.event("auth", ["result": "ok"])
                } else if verdict == .busy {
                    handler.log.event("auth", ["user": .string(user), "result": "busy"], level: .warning)
                }
                handler.run(handler.session.passwordChecked(verdict), context)
                handler.process(context)
            }
            if case .rejected(let delay) = verdict, delay > .zero {
                // The failure is answered late, so guessing costs the guesser time.
                eventLoop.scheduleTask(in: delay) { finish() }
            } else {
                finish()
            }
        }
    }

    // MARK: Maildrop

    private func openMaildrop(_ context: ChannelHandlerContext) {
        guard let account else {
            run(session.maildropOpened(.failed), context)
            return
        }
        let store = server.store
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        offload(context) { () -> Opening in
            // RFC 1939 §8: the lock first, so the listing cannot change under the session.
            guard let lock = store.lockMaildrop(of: account) else { return .locked }
            do {
                return .opened(lock, try store.snapshot(DefaultMailboxes.inbox, of: account))
            } catch {
                lock.cancel()
                return .failed("\(error)")
            }
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.maildropOpened(result, account: account, context)
        }
    }

    private func maildropOpened(_ result: Result<Opening, any Error>, account: MailAccount, _ context: ChannelHandlerContext) {
        let opening: POP3MaildropOpening
        switch result {
        case .success(.opened(let lock, let snapshot)):
            guard context.channel.isActive, session.state != .closed else {
                lock.cancel()  // the client left while the maildrop was being opened
                return
            }
            maildropLock = lock
            let messages = snapshot.messages
            maildrop = OpenMaildrop(
                account: account, mailboxID: snapshot.mailbox.id, uids: messages.map(\.uid),
                seen: messages.map { $0.flags.system.contains(.seen) })
            let uidValidity = snapshot.mailbox.uidValidity
            opening = .opened(POP3Maildrop(messages: messages.map {
                POP3Maildrop.Message(size: $0.size, uniqueID: POP3UniqueID.make(uidValidity: uidValidity, uid: $0.uid))
            }))
            log.event("maildrop opened", [
                "messages": .stringConvertible(messages.count),
                "octets": .stringConvertible(messages.reduce(0) { $0 + $1.size }),
            ])
        case .success(.locked):
            log.event("maildrop locked", level: .notice)
            opening = .locked
        case .success(.failed(let reason)):
            log.event("maildrop failed", ["error": .string(reason)], level: .error)
            opening = .failed
        case .failure(let error):
            log.event("maildrop failed", ["error": "\(error)"], level: .error)
            opening = .failed
        }
        run(session.maildropOpened(opening), context)
        process(context)
    }

    private func releaseMaildrop() {
        // Dropping a lock token is a bookkeeping call, not I/O, so it is done here rather
        // than after a hop through the pool: a client reconnecting at once after QUIT
        // finds its maildrop free.
        maildropLock?.cancel()
        maildropLock = nil
    }

    // MARK: RETR and TOP

    private func send(number: Int, topLines: Int?, firstLine: POP3Reply, _ context: ChannelHandlerContext) {
        guard let maildrop, maildrop.uids.indices.contains(number - 1) else {
            run(session.messageUnavailable(), context)
            return
        }
        let store = server.store
        let uid = maildrop.uids[number - 1]
        let (mailboxID, account) = (maildrop.mailboxID, maildrop.account)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        offload(context) { () throws -> Int32? in
            guard let path = try store.messagePath(uid: uid, in: mailboxID, of: account) else { return nil }
            return try MessageFile.open(path)
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.messageOpened(result, number: number, topLines: topLines, firstLine: firstLine, context)
        }
    }

    private func messageOpened(
        _ result: Result<Int32?, any Error>, number: Int, topLines: Int?, firstLine: POP3Reply,
        _ context: ChannelHandlerContext
    ) {
        switch result {
        case .success(let fd?):
            guard context.channel.isActive, session.state != .closed else {
                MessageFile.close(fd)
                return
            }
            write(firstLine, context)
            stream = Stream(number: number, topLines: topLines, fd: fd)
            arm(.data, context)
            pump(context)
        case .success(nil):
            log.event("message unavailable", ["number": .stringConvertible(number)], level: .notice)
            run(session.messageUnavailable(), context)
        case .failure(let error):
            log.event("message unavailable", ["number": .stringConvertible(number), "error": "\(error)"], level: .error)
            run(session.messageUnavailable(), context)
        }
        process(context)
    }

    /// Reads the stream's next chunk, unless one is being read or the client has not
    /// taken what was written (then `channelWritabilityChanged` calls again): the file is
    /// read only as fast as the client reads.
    private func pump(_ context: ChannelHandlerContext) {
        guard let stream, !stream.reading, context.channel.isWritable else { return }
        stream.reading = true
        let (fd, offset) = (stream.fd, stream.offset)
        let allocator = context.channel.allocator
        let loopBound = NIOLoopBound((self, context, stream), eventLoop: context.eventLoop)
        offload(context, content: true) {
            try MessageFile.read(fd, at: offset, allocator: allocator)
        }.whenComplete { result in
            let (handler, context, stream) = loopBound.value
            handler.chunkRead(result, stream, context)
        }
    }

    private func chunkRead(_ result: Result<ByteBuffer, any Error>, _ stream: Stream, _ context: ChannelHandlerContext) {
        stream.reading = false
        guard self.stream === stream, !stream.cancelled else {
            MessageFile.close(stream.fd)  // the connection ended while this chunk was read
            return
        }
        let chunk: ByteBuffer
        switch result {
        case .success(let read):
            chunk = read
        case .failure(let error):
            // Part of the message is out: the response cannot be ended cleanly.
            log.event("message read failed", ["number": .stringConvertible(stream.number), "error": "\(error)"], level: .error)
            run(.close, context)
            return
        }
        guard chunk.readableBytes > 0 else {
            finishStream(stream, context)
            return
        }
        stream.offset += Int64(chunk.readableBytes)
        // LF line ends gain a CR and leading dots are doubled: at most twice the input.
        var out = context.channel.allocator.buffer(capacity: chunk.readableBytes + chunk.readableBytes / 8 + 16)
        stream.stuffer.encode(chunk, into: &out)
        write(out, context)
        flushIfNeeded(context)
        arm(.data, context)  // the client took the previous chunk: it is still reading
        if stream.stuffer.isComplete {
            finishStream(stream, context)  // TOP has all its lines: the rest is not read
        } else {
            pump(context)
        }
    }

    private func finishStream(_ stream: Stream, _ context: ChannelHandlerContext) {
        var out = context.channel.allocator.buffer(capacity: 8)
        stream.stuffer.finish(into: &out)
        write(out, context)
        self.stream = nil
        // Closing a read-only regular file does not block.
        MessageFile.close(stream.fd)
        if stream.isRetrieval {
            stats.retrieved += 1
            markSeen(stream.number, context)
        } else {
            stats.top += 1
        }
        run(session.messageSent(), context)
        process(context)
    }

    /// After a whole RETR, the message is \Seen for IMAP clients too (as Dovecot does);
    /// TOP leaves it unseen. Best effort: a failure costs only the flag.
    private func markSeen(_ number: Int, _ context: ChannelHandlerContext) {
        guard let maildrop, !maildrop.seen[number - 1] else { return }
        self.maildrop?.seen[number - 1] = true
        let store = server.store
        let uid = maildrop.uids[number - 1]
        let (mailboxID, account, log) = (maildrop.mailboxID, maildrop.account, self.log)
        offload(context) {
            _ = try store.storeFlags(
                .add(MessageFlags(system: .seen)), uids: [uid], in: mailboxID, of: account, unchangedSince: nil)
        }.whenFailure { error in
            log.event("seen flag not stored", ["uid": .stringConvertible(uid), "error": "\(error)"], level: .notice)
        }
    }

    // MARK: UPDATE

    /// RFC 1939 §6: the messages marked by DELE are removed, then the lock is released.
    private func commit(_ numbers: [Int], _ context: ChannelHandlerContext) {
        guard let maildrop else {
            run(session.deletionsCommitted(false), context)
            return
        }
        let uids = numbers.filter { maildrop.uids.indices.contains($0 - 1) }.map { maildrop.uids[$0 - 1] }
        let store = server.store
        let (mailboxID, account) = (maildrop.mailboxID, maildrop.account)
        // The lock goes with the work: it is released once the removal is over, even if
        // the client leaves meanwhile.
        let lock = maildropLock
        maildropLock = nil
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        offload(context) { () -> Result<Int, MailboxStoreError> in
            defer { lock?.cancel() }
            do {
                return .success(try store.expunge(uids: uids, in: mailboxID, of: account).count)
            } catch let error as MailboxStoreError {
                return .failure(error)
            } catch {
                return .failure(.storage("\(error)"))
            }
        }.whenComplete { result in
            let (handler, context) = loopBound.value
            let expunged: Result<Int, MailboxStoreError>
            switch result {
            case .success(let outcome):
                expunged = outcome
            case .failure(let error):
                lock?.cancel()  // the pool never ran the work
                expunged = .failure(.storage("\(error)"))
            }
            switch expunged {
            case .success(let count):
                handler.stats.deleted += count
            case .failure(let error):
                handler.log.event("delete failed", ["error": .string(error.description)], level: .error)
            }
            handler.run(handler.session.deletionsCommitted((try? expunged.get()) != nil), context)
        }
    }

    // MARK: Deadline

    private func arm(_ kind: SessionDeadline.Kind, _ context: ChannelHandlerContext) {
        timer.arm(kind, timeouts: timeouts, on: context.eventLoop) { self.timerFired(context) }
    }

    private func timerFired(_ context: ChannelHandlerContext) {
        let open = context.channel.isActive && session.state != .closed
        guard let expired = timer.checkDue(sessionOpen: open, on: context.eventLoop, onCheck: { self.timerFired(context) })
        else { return }
        switch expired {
        case .handshake:
            log.event("timeout", ["during": "tls handshake"], level: .notice)
            run(.close, context)
        case .command, .data:
            // RFC 1939 §3 autologout: closed without a response and without UPDATE.
            log.event("timeout", ["during": .string(expired == .data ? "sending" : "command")], level: .notice)
            run(session.idleTimedOut(), context)
        }
    }
}
