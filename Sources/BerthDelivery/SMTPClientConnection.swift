import BerthNet
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Why a conversation with a remote server ended early. Every case is temporary (the
/// recipients are retried) except where a reply says otherwise.
public struct SMTPClientError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads replies off the wire and hands each to the command waiting for it, in order.
/// A reply nobody waits for, or bytes still buffered when STARTTLS's `220` arrives (a
/// man-in-the-middle injecting plaintext that would be read as if it came over TLS),
/// ends the connection.
final class SMTPClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var assembler = SMTPReplyAssembler()
    private var waiting = CircularBuffer<EventLoopPromise<SMTPClientReply>>()
    private var failure: (any Error)?
    /// The server may greet before anyone asks: the first reply is waited for from the start.
    private(set) var greeting: EventLoopFuture<SMTPClientReply>?

    func handlerAdded(context: ChannelHandlerContext) {
        greeting = expectReply(on: context.eventLoop)
    }

    /// A connect that fails removes the handler without the channel ever being active.
    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(SMTPClientError("connection closed"))
    }

    /// Registers a promise for the next reply. Call on the channel's event loop.
    func expectReply(on eventLoop: any EventLoop) -> EventLoopFuture<SMTPClientReply> {
        let promise = eventLoop.makePromise(of: SMTPClientReply.self)
        if let failure {
            promise.fail(failure)
        } else {
            waiting.append(promise)
        }
        return promise.futureResult
    }

    var bufferedBytes: Int { assembler.bufferedBytes }

    /// STARTTLS was sent: from its reply until TLS is in the pipeline, the server must send
    /// nothing more (RFC 3207 §5; the CVE-2011-0411 class of injection).
    private var awaitingUpgrade = false

    func beginUpgrade() { awaitingUpgrade = true }

    /// TLS is about to be added: true when nothing came after the reply to STARTTLS.
    func finishUpgrade() -> Bool {
        awaitingUpgrade = false
        return failure == nil && assembler.bufferedBytes == 0
    }

    static let injection = SMTPClientError("server sent bytes after its 220 to STARTTLS; refusing the connection")

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        assembler.append(unwrapInboundIn(data))
        do {
            while let reply = try assembler.next() {
                guard let promise = waiting.popFirst() else {
                    fail(awaitingUpgrade ? Self.injection : SMTPClientError("unexpected reply from server: \(reply)"), context: context)
                    return
                }
                promise.succeed(reply)
                if awaitingUpgrade {
                    if assembler.bufferedBytes > 0 { fail(Self.injection, context: context) }
                    return
                }
            }
        } catch {
            fail(SMTPClientError("\(error)"), context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(SMTPClientError("connection closed by server"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        if failure == nil { failure = error }
        while let promise = waiting.popFirst() { promise.fail(failure!) }
    }
}

/// One SMTP client connection: commands out, replies in, each with a deadline.
/// Methods are called from one task at a time.
public final class SMTPClientConnection: Sendable {
    public let channel: any Channel
    private let handler: NIOLoopBound<SMTPClientHandler>
    /// RFC 5321 §4.5.3.2 allows 5 minutes for most replies, 10 for the end of data; a
    /// server slower than `replyTimeout` is given up on and retried later.
    public let replyTimeout: TimeAmount

    private init(channel: any Channel, handler: NIOLoopBound<SMTPClientHandler>, replyTimeout: TimeAmount) {
        self.channel = channel
        self.handler = handler
        self.replyTimeout = replyTimeout
    }

    /// Connects to `address`, from `source` (port chosen by the OS) when given.
    public static func connect(
        to address: SocketAddress, from source: SocketAddress?, group: any EventLoopGroup,
        connectTimeout: TimeAmount, replyTimeout: TimeAmount = .minutes(5)
    ) async throws -> SMTPClientConnection {
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SMTPClientHandler())
                }
            }
        if let source { bootstrap = bootstrap.bind(to: source) }
        let channel = try await bootstrap.connect(to: address).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: SMTPClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return SMTPClientConnection(channel: channel, handler: handler, replyTimeout: replyTimeout)
    }

    /// The greeting (RFC 5321 §3.1).
    public func greeting() async throws -> SMTPClientReply {
        let channel = self.channel
        let handler = self.handler
        let deadline = replyTimeout
        return try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<SMTPClientReply> in
            let timer = channel.eventLoop.scheduleTask(in: deadline) {
                channel.pipeline.fireErrorCaught(SMTPClientError("no greeting within \(deadline.nanoseconds / 1_000_000_000) s"))
            }
            let greeting = handler.value.greeting!
            greeting.whenComplete { _ in timer.cancel() }
            return greeting
        }.get()
    }

    public func command(_ line: String) async throws -> SMTPClientReply {
        try await send([line], expecting: 1)[0]
    }

    /// Sends several commands in one write (RFC 2920 PIPELINING) and reads their replies.
    public func pipeline(_ lines: [String]) async throws -> [SMTPClientReply] {
        try await send(lines, expecting: lines.count)
    }

    private func send(_ lines: [String], expecting count: Int, timeout: TimeAmount? = nil) async throws -> [SMTPClientReply] {
        let channel = self.channel
        let handler = self.handler
        let deadline = timeout ?? replyTimeout
        return try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<[SMTPClientReply]> in
            let futures = (0..<count).map { _ in handler.value.expectReply(on: channel.eventLoop) }
            if !lines.isEmpty {
                var buffer = channel.allocator.buffer(capacity: lines.reduce(0) { $0 + $1.utf8.count + 2 })
                for line in lines { buffer.writeString(line + "\r\n") }
                channel.writeAndFlush(buffer, promise: nil)
            }
            let timer = channel.eventLoop.scheduleTask(in: deadline) {
                channel.pipeline.fireErrorCaught(SMTPClientError("no reply within \(deadline.nanoseconds / 1_000_000_000) s"))
            }
            let all = EventLoopFuture.whenAllSucceed(futures, on: channel.eventLoop)
            all.whenComplete { _ in timer.cancel() }
            return all
        }.get()
    }

    /// STARTTLS (RFC 3207): on `220`, refuses bytes that came with it, then puts TLS
    /// first in the pipeline and waits for the handshake. Returns the reply when it was
    /// not `220` (the caller decides whether to go on in plaintext).
    public func startTLS(context: NIOSSLContext, serverHostname: String?) async throws -> SMTPClientReply? {
        let channel = self.channel
        let handler = self.handler
        try await channel.eventLoop.submit { handler.value.beginUpgrade() }.get()
        let reply = try await command("STARTTLS")
        guard reply.code == 220 else {
            try await channel.eventLoop.submit { _ = handler.value.finishUpgrade() }.get()
            return reply
        }
        let timeout = replyTimeout
        try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            guard handler.value.finishUpgrade() else {
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(SMTPClientHandler.injection)
            }
            let done = channel.eventLoop.makePromise(of: Void.self)
            do {
                let tls = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
                try channel.pipeline.syncOperations.addHandler(tls, position: .first)
                try channel.pipeline.syncOperations.addHandler(
                    HandshakeWatcher(promise: done), position: .after(tls))
                let timer = channel.eventLoop.scheduleTask(in: timeout) {
                    done.fail(SMTPClientError("TLS handshake timed out"))
                    channel.close(promise: nil)
                }
                done.futureResult.whenComplete { _ in timer.cancel() }
                return done.futureResult
            } catch {
                done.fail(error)
                return done.futureResult
            }
        }.get()
        return nil
    }

    /// The negotiated TLS version, when TLS is on.
    public func tlsVersion() async -> String? {
        try? await channel.eventLoop.submit { [channel] () -> String? in
            guard let tls = try? channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self) else { return nil }
            return tls.tlsVersion.map(TLSDetails.versionName)
        }.get()
    }

    /// Writes message data (already dot-stuffed, CRLF), waiting for each chunk to leave
    /// before the next is read, so a slow server holds one chunk of memory.
    public func writeData(_ chunk: ByteBuffer) async throws {
        try await channel.writeAndFlush(chunk)
    }

    /// Sends the message data (`write` writes it, ending with the "." line) and reads
    /// the reply to it, waited for from before the first byte leaves, since a server may
    /// answer as soon as the "." arrives (RFC 5321 §4.5.3.2.6 gives it 10 minutes).
    public func data(_ write: @Sendable () async throws -> Void) async throws -> SMTPClientReply {
        let channel = self.channel
        let handler = self.handler
        let reply = try await channel.eventLoop.submit { handler.value.expectReply(on: channel.eventLoop) }.get()
        // One deadline for sending the data and reading the reply: a server that stops
        // reading must not hold the worker (and its connection slot) forever.
        let timer = channel.eventLoop.scheduleTask(in: .minutes(10)) {
            channel.pipeline.fireErrorCaught(SMTPClientError("message data not taken and answered within 10 minutes"))
        }
        defer { timer.cancel() }
        do {
            try await write()
        } catch {
            channel.close(promise: nil)
            _ = try? await reply.get()
            throw error
        }
        return try await reply.get()
    }

    /// QUIT without waiting long for the answer, then close.
    public func quit() async {
        _ = try? await send(["QUIT"], expecting: 1, timeout: .seconds(5))
        try? await channel.close()
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Completes a promise when the TLS handshake is done (or failed).
private final class HandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            promise.succeed(())
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(SMTPClientError("connection closed during TLS handshake"))
        context.fireChannelInactive()
    }
}
