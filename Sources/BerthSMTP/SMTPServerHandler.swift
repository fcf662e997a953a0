import BerthCore
import BerthNet
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Drives one SMTP session: frames bytes, asks the state machine, runs its actions.
/// While a password check, a delivery or a TLS handshake is pending, no further input is
/// processed (pipelined commands wait in the framer), so replies stay in order.
final class SMTPServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: SMTPStateMachine
    private var framer: SMTPFramer
    private let backend: any SMTPBackend
    private let tlsContext: NIOSSLContext?
    private let idleTimeout: TimeAmount
    private var waiting = false
    private var closing = false
    private var lastActivity = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var remoteIP = "unknown"
    private var messageBody = ByteBuffer()
    private var pendingWrites = false
    private static let sessionCounter = Atomic<UInt64>(0)
    private var sessionID = ""
    private var messageCount = 0

    init(machine: SMTPStateMachine, backend: any SMTPBackend, tlsContext: NIOSSLContext?, idleTimeout: TimeAmount) {
        self.machine = machine
        self.framer = SMTPFramer(maxMessageSize: machine.configuration.maxMessageSize)
        self.backend = backend
        self.tlsContext = tlsContext
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard sessionID.isEmpty else { return }
        sessionID = String(Self.sessionCounter.add(1, ordering: .relaxed).newValue, radix: 36, uppercase: true)
        remoteIP = context.channel.remoteAddress?.ipAddress ?? "unknown"
        run(machine.connected(), context)
        flushIfNeeded(context)
        scheduleIdleCheck(context, after: idleTimeout)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        lastActivity = .now()
        framer.append(unwrapInboundIn(data))
        process(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent, waiting, !machine.isTLS {
            // RFC 3207 §4.2: the session starts over on the new, encrypted channel.
            machine.tlsEstablished()
            waiting = false
            process(context)
        } else if event is DrainEvent {
            // While a check, delivery or handshake is pending, the 421 waits for its end.
            if waiting {
                machine.drain()
            } else {
                run(machine.drain(), context)
                flushIfNeeded(context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // TLS failures, resets: this connection ends; the server carries on.
        context.close(promise: nil)
    }

    // MARK: Input

    private func process(_ context: ChannelHandlerContext) {
        while !waiting && !closing {
            if case .data = machine.phase {
                guard case .complete(let content, let problem)? = framer.nextData() else { break }
                messageBody = content
                run(machine.dataFinished(problem: problem), context)
                continue
            }
            let limit = machine.awaitsSASLResponse ? SMTPLimits.authLineLength : SMTPLimits.commandLineLength
            guard let frame = framer.nextCommand(maxLength: limit) else { break }
            switch frame {
            case .line(let line):
                if machine.awaitsSASLResponse {
                    run(machine.saslResponse(String(buffer: line)), context)
                } else {
                    let parsed = SMTPCommandParser.parse(line.readableBytesView)
                    run(machine.command(parsed, classify: backend.classify), context)
                }
            case .tooLong:
                run(machine.badLine(.lineTooLong), context)
            case .bareLineEnding:
                run(machine.badLine(.bareLineEnding), context)
            }
        }
        flushIfNeeded(context)
    }

    // MARK: Actions

    private func run(_ action: SMTPStateMachine.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .reply(let reply), .authChallenge(let reply):
            write(reply, context)
        case .replyAndClose(let reply):
            closing = true
            var buffer = context.channel.allocator.buffer(capacity: 128)
            reply.encode(into: &buffer)
            pendingWrites = false
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
        case .beginData(let reply):
            write(reply, context)
            framer.beginData()
        case .startTLS(let reply):
            guard let tlsContext else {
                write(SMTPReply(454, "4.7.0", "TLS not available due to temporary reason"), context)
                return
            }
            write(reply, context)
            flushIfNeeded(context)
            // Bytes the client sent after STARTTLS and before the handshake were not sent
            // over TLS: they are dropped, never executed (RFC 3207 §4.2, CVE-2011-0411).
            _ = framer.discardBuffered()
            do {
                try StartTLS.upgrade(context.channel, context: tlsContext)
                waiting = true
            } catch {
                context.close(promise: nil)
            }
        case .verifyCredentials(let user, let password):
            waiting = true
            let backend = self.backend
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
                backend.verify(user: user, password: password)
            }.whenComplete { result in
                let (handler, context) = loopBound.value
                handler.waiting = false
                let valid = (try? result.get()) ?? false
                handler.run(handler.machine.credentialsChecked(valid: valid), context)
                handler.process(context)
            }
        case .deliver(let envelope):
            waiting = true
            messageCount += 1
            let message = InboundMessage(
                sender: envelope.sender,
                recipients: envelope.recipients.map { ($0.address, $0.class) },
                trace: receivedHeader(envelope),
                content: Array(messageBody.readableBytesView),
                authenticatedUser: machine.authenticatedUser)
            messageBody = ByteBuffer()
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            backend.deliver(message) { result in
                eventLoop.execute {
                    let (handler, context) = loopBound.value
                    handler.waiting = false
                    handler.run(handler.machine.deliveryFinished(queueID: try? result.get()), context)
                    handler.process(context)
                }
            }
        }
    }

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

    // MARK: Trace header

    /// RFC 5321 §4.4 trace line; the `with` keyword per RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA).
    private func receivedHeader(_ envelope: SMTPStateMachine.Envelope) -> [UInt8] {
        var with = machine.usedESMTP ? "ESMTP" : "SMTP"
        if machine.isTLS { with += "S" }
        if machine.authenticatedUser != nil { with += "A" }
        let forClause = envelope.recipients.count == 1 ? "\r\n\tfor <\(envelope.recipients[0].address)>" : ""
        let client = (machine.clientName ?? "unknown").filter { $0.isASCII && !$0.isNewline }
        let header = "Received: from \(client) ([\(remoteIP)])\r\n\tby \(machine.configuration.hostname) (Berth) with \(with) id \(sessionID).\(messageCount)\(forClause);\r\n\t\(Self.rfc5322Date())\r\n"
        return Array(header.utf8)
    }

    static func rfc5322Date() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S +0000", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Idle timeout

    /// One timer per session, re-armed only when it fires, so reads cost no timer work.
    private func scheduleIdleCheck(_ context: ChannelHandlerContext, after delay: TimeAmount) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            handler.idleCheck(context)
        }
    }

    private func idleCheck(_ context: ChannelHandlerContext) {
        guard context.channel.isActive, !closing else { return }
        let idleFor = NIODeadline.now() - lastActivity
        if idleFor >= idleTimeout && !waiting {
            run(machine.idleTimedOut(), context)
        } else {
            scheduleIdleCheck(context, after: max(idleTimeout - idleFor, .seconds(1)))
        }
    }
}
