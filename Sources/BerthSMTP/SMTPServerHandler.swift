import BerthCore
import BerthNet
import Logging
import NIOCore
import NIOSSL
import NIOTLS

#if canImport(Glibc)
import Glibc
#endif

/// Drives one SMTP session: frames bytes, asks the state machine, runs its actions. The
/// machine decides when input is taken (`acceptsInput`); the handler holds the socket's
/// reads whenever the session cannot take more (waiting for the server, replies the client
/// does not read, a body chunk still being written), so no client can grow the server.
/// One deadline runs at a time (handshake, command, data), on the event loop's clock.
final class SMTPServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Unprocessed input held at most (one read's worth) before reads stop.
    static let inputBacklog = 64 * 1024
    /// Commands run in one go before the session lets the event loop serve others: a
    /// client pipelining a million commands gets its turn, not the whole loop.
    static let commandsPerTurn = 256

    private var machine: SMTPStateMachine
    private var framer: SMTPFramer
    private let connection: ConnectionContext
    private let server: SMTPServer
    private var gate = ReadGate()
    private var timer = SessionTimer()
    private var log: SessionLog
    private var spool: MessageSpool?
    private var pendingWrites = false
    private var started = false
    private var tls = SessionTLS()
    private var messageNumber = 0
    private var stats = (messages: 0, accepted: 0, refused: 0)
    private var continuationScheduled = false

    init(machine: SMTPStateMachine, connection: ConnectionContext, server: SMTPServer) {
        self.machine = machine
        self.framer = SMTPFramer(maxMessageSize: machine.configuration.maxMessageSize)
        self.connection = connection
        self.server = server
        self.log = SessionLog(base: server.configuration.logger, connection: connection)
    }

    private var timeouts: SessionTimeouts { server.configuration.timeouts }

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
        run(machine.connected(), context)
        settle(context, commandDone: !connection.isImplicitTLS)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        spool?.discard()
        spool = nil
        log.event("disconnect", [
            "messages": .stringConvertible(stats.messages), "rcpt_accepted": .stringConvertible(stats.accepted),
            "rcpt_refused": .stringConvertible(stats.refused), "errors": .stringConvertible(machine.errorCount),
        ])
        context.fireChannelInactive()
    }

    // MARK: Reading

    func read(context: ChannelHandlerContext) {
        if gate.readRequested() { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard machine.phase != .closed else { return }
        framer.append(unwrapInboundIn(data))
        process(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        process(context)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            handshakeCompleted(context)
        } else if event is DrainEvent {
            // A session in the middle of something gets its 421 at its next command.
            run(machine.drain(), context)
            flushIfNeeded(context)
        } else if event is DrainDeadlineEvent {
            run(.replyAndClose(.shuttingDown(machine.configuration.hostname)), context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // TLS failures, resets: this connection ends; the server carries on.
        SessionTLS.logFailure(error, log: log)
        context.close(promise: nil)
    }

    private func handshakeCompleted(_ context: ChannelHandlerContext) {
        if tls.handshakeCompleted(context.pipeline, log: &log) == .upgrade {
            machine.tlsEstablished()  // RFC 3207 §4.2: the session starts over
        }
        settle(context, commandDone: true)
        process(context)
    }

    // MARK: Input

    private func process(_ context: ChannelHandlerContext) {
        guard !continuationScheduled else { return }
        var commandDone = false
        var turn = 0
        while machine.acceptsInput && context.channel.isWritable && spool?.isBackedUp != true {
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
            if machine.isReceivingData {
                guard let frame = framer.nextData() else { break }
                switch frame {
                case .content(let piece):
                    spool?.append(piece)
                case .complete(let problem):
                    if problem != nil {
                        spool?.discard()
                        spool = nil
                    }
                    run(machine.dataFinished(problem: problem), context)
                    commandDone = true
                }
                continue
            }
            let limit = machine.awaitsSASLResponse ? SMTPLimits.authLineLength : SMTPLimits.commandLineLength
            guard let frame = framer.nextCommand(maxLength: limit) else { break }
            commandDone = true
            switch frame {
            case .line(let line):
                if machine.awaitsSASLResponse {
                    run(machine.saslResponse(String(buffer: line)), context)
                } else {
                    let parsed = SMTPCommandParser.parse(line.readableBytesView)
                    lastCommandForLog = try? parsed.get()
                    run(machine.command(parsed, classify: server.backend.classify), context)
                }
            case .tooLong:
                log.event("refused", ["reason": "line too long"], level: .notice)
                run(machine.lineTooLong(), context)
            case .bareLineEnding:
                run(machine.badLine(.bareLineEnding), context)
            }
        }
        settle(context, commandDone: commandDone)
    }

    /// After any change: flush, pick the deadline the session now runs against, and open
    /// or close the read gate.
    private func settle(_ context: ChannelHandlerContext, commandDone: Bool) {
        flushIfNeeded(context)
        guard machine.phase != .closed else { return }
        if tls.isHandshakePending || machine.phase == .startingTLS {
            // the handshake deadline was armed when TLS was added
        } else if !machine.acceptsInput {
            timer.disarm()  // waiting for the server, not the client
        } else if machine.isReceivingData {
            if timer.kind != .data { arm(.data, context) }
        } else if commandDone || timer.kind != .command {
            arm(.command, context)
        }
        var reopen = gate.set(.sessionBusy, closed: machine.waitsForServer)
        reopen = gate.set(.replyBacklog, closed: !context.channel.isWritable) || reopen
        reopen = gate.set(.inputBacklog, closed: continuationScheduled || framer.bufferedBytes >= Self.inputBacklog) || reopen
        reopen = gate.set(.spoolBacklog, closed: spool?.isBackedUp == true) || reopen
        if reopen { context.read() }
    }

    // MARK: Actions

    private func run(_ action: SMTPStateMachine.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .reply(let reply), .authChallenge(let reply):
            note(reply)
            write(reply, context)
        case .replyAndClose(let reply):
            note(reply)
            timer.disarm()
            spool?.discard()
            spool = nil
            if context.channel.isWritable {
                var buffer = context.channel.allocator.buffer(capacity: 128)
                reply.encode(into: &buffer)
                pendingWrites = false
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            } else {
                // The client does not read: a reply would only queue behind the others.
                context.close(promise: nil)
            }
        case .beginData(let reply):
            messageNumber += 1
            write(reply, context)
            framer.beginData()
            beginSpool(context)
        case .startTLS(let reply):
            guard let tlsContext = connection.tlsContext else {
                write(SMTPReply(454, "4.7.0", "TLS not available due to temporary reason"), context)
                return
            }
            write(reply, context)
            flushIfNeeded(context)
            do {
                try SessionTLS.upgrade(context.channel, context: tlsContext, discarding: &framer, command: "starttls", log: log)
                arm(.handshake, context)
            } catch {
                context.close(promise: nil)
            }
        case .verifyCredentials(let user, let password, let failures):
            verify(user: user, password: password, failures: failures, context)
        case .deliver(let envelope):
            deliver(envelope, context)
        }
    }

    /// One log line per recipient verdict, MAIL verdict and refusal (RFC 5321 reply codes).
    private func note(_ reply: SMTPReply) {
        guard let last = lastCommandForLog else {
            if reply.code >= 400 {
                log.event("reply", ["code": .stringConvertible(reply.code), "text": .string(reply.lines.last ?? "")])
            }
            return
        }
        lastCommandForLog = nil
        var fields: Logger.Metadata = ["code": .stringConvertible(reply.code)]
        if reply.code >= 400 { fields["text"] = .string(reply.lines.last ?? "") }
        switch last {
        case .rcpt(let to, _):
            fields["to"] = .string(to)
            if reply.isPositive { stats.accepted += 1 } else { stats.refused += 1 }
            log.event(reply.isPositive ? "rcpt accepted" : "rcpt refused", fields)
        case .mail(let from, _):
            fields["from"] = .string(from)
            log.event(reply.isPositive ? "mail from" : "mail from refused", fields)
        default:
            if reply.code >= 400 { log.event("reply", fields) }
        }
    }

    private var lastCommandForLog: SMTPCommand?

    private func write(_ reply: SMTPReply, _ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        reply.encode(into: &buffer)
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
        let backend = server.backend
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        server.authGuard.check(
            user: user, client: connection.clientAddress, service: connection.spec.protocol.rawValue,
            failuresInSession: failures, log: log.logger, on: eventLoop
        ) {
            backend.verify(user: user, password: password)
        }.whenSuccess { verdict in
            let finish = {
                let (handler, context) = loopBound.value
                guard context.channel.isActive else { return }
                // Failures were logged by the guard, with the client address, for fail2ban.
                if verdict == .accepted {
                    handler.log.set("user", user)
                    handler.log.event("auth", ["result": "ok"])
                } else if verdict == .busy {
                    handler.log.event("auth", ["user": .string(user), "result": "busy"], level: .warning)
                }
                handler.run(handler.machine.credentialsChecked(verdict), context)
                handler.process(context)
            }
            if case .rejected(let delay) = verdict {
                eventLoop.scheduleTask(in: delay) { finish() }
            } else {
                finish()
            }
        }
    }

    // MARK: Message body

    private var queueID: String { "\(connection.sessionID).\(messageNumber)" }

    private func beginSpool(_ context: ChannelHandlerContext) {
        guard case .data(let envelope) = machine.phase else { return }
        var prefix = Array("Return-Path: <\(envelope.sender)>\r\n".utf8)
        prefix += receivedHeader(envelope)
        let spool = MessageSpool(
            directory: server.configuration.spoolDirectory, name: queueID, prefix: prefix, eventLoop: context.eventLoop)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        spool.onWritten = {
            let (handler, context) = loopBound.value
            handler.process(context)
        }
        self.spool = spool
    }

    private func deliver(_ envelope: SMTPStateMachine.Envelope, _ context: ChannelHandlerContext) {
        guard let spool else {
            run(machine.deliveryFinished(queueID: nil), context)
            return
        }
        self.spool = nil
        spool.onWritten = nil
        let queueID = self.queueID
        let sender = envelope.sender
        let recipients = envelope.recipients.map { ($0.address, $0.class) }
        let authenticatedUser = machine.authenticatedUser
        let backend = server.backend
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        spool.finish().whenComplete { result in
            let done: @Sendable (Result<String, any Error>) -> Void = { stored in
                eventLoop.execute {
                    let (handler, context) = loopBound.value
                    switch stored {
                    case .success:
                        handler.stats.messages += 1
                        handler.log.event("accepted", [
                            "queue": .string(queueID), "from": .string(sender),
                            "rcpts": .stringConvertible(recipients.count),
                            "size": .stringConvertible((try? result.get())?.size ?? 0),
                        ])
                    case .failure(let refusal as SMTPDeliveryRefusal):
                        handler.log.event("refused", [
                            "queue": .string(queueID), "from": .string(sender), "code": .stringConvertible(refusal.reply.code),
                            "text": .string(refusal.reply.lines.last ?? ""),
                        ])
                    case .failure(let error):
                        handler.log.event("delivery failed", ["queue": .string(queueID), "error": "\(error)"], level: .error)
                    }
                    let refusal = (stored.failureValue as? SMTPDeliveryRefusal)?.reply
                    handler.run(
                        handler.machine.deliveryFinished(queueID: (try? stored.get()).map { _ in queueID }, refusal: refusal), context)
                    handler.process(context)
                }
            }
            switch result {
            case .success(let body):
                backend.deliver(
                    InboundMessage(
                        queueID: queueID, sender: sender, recipients: recipients, body: body,
                        authenticatedUser: authenticatedUser),
                    completion: done)
            case .failure(let error):
                done(.failure(error))
            }
        }
    }

    // MARK: Trace header

    /// RFC 5321 §4.4 trace line; the `with` keyword per RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA).
    /// Its `id` is the queue id of the `250` reply and the mail log.
    private func receivedHeader(_ envelope: SMTPStateMachine.Envelope) -> [UInt8] {
        var with = machine.usedESMTP ? "ESMTP" : "SMTP"
        if machine.isTLS { with += "S" }
        if machine.authenticatedUser != nil { with += "A" }
        let forClause = envelope.recipients.count == 1 ? "\r\n\tfor <\(envelope.recipients[0].address)>" : ""
        let client = (machine.clientName ?? "unknown").filter { $0.isASCII && !$0.isNewline }
        let header = "Received: from \(client) ([\(connection.clientAddress)])\r\n\tby \(machine.configuration.hostname) (Berth) with \(with) id \(queueID)\(forClause);\r\n\t\(UTCTime.rfc5322(time(nil)))\r\n"
        return Array(header.utf8)
    }

    // MARK: Deadline

    private func arm(_ kind: SessionDeadline.Kind, _ context: ChannelHandlerContext) {
        timer.arm(kind, timeouts: timeouts, on: context.eventLoop) { self.timerFired(context) }
    }

    private func timerFired(_ context: ChannelHandlerContext) {
        let open = context.channel.isActive && machine.phase != .closed
        guard let expired = timer.checkDue(sessionOpen: open, on: context.eventLoop, onCheck: { self.timerFired(context) })
        else { return }
        switch expired {
        case .handshake:
            log.event("timeout", ["during": "tls handshake"], level: .notice)
            timer.disarm()
            context.close(promise: nil)
        case .command, .data:
            log.event("timeout", ["during": .string(expired == .data ? "data" : "command")], level: .notice)
            run(machine.idleTimedOut(), context)
        }
    }
}
