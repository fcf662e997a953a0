import BerthCore
import BerthNet
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@testable import BerthSMTP

/// A backend below the protocol layer: recipients from a table, deliveries kept in memory.
final class MemoryBackend: SMTPBackend, @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [InboundMessage] = []

    var messages: [InboundMessage] { lock.withLock { stored } }

    func classify(_ address: String) -> RecipientClass { SMTPStateMachineTests.classify(address) }
    func verify(user: String, password: String) -> Bool { user == "alice@example.com" && password == "right-password" }
    func deliver(_ message: InboundMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {
        let id = lock.withLock { () -> Int in
            stored.append(message)
            return stored.count
        }
        _ = id
        completion(.success(message.queueID))
    }
}

struct SMTPServerHandlerTests {
    static func spec(encryption: Encryption, tlsRequired: Bool = false) -> ListenerSpec {
        ListenerSpec(
            address: "127.0.0.2", family: .ipv4, source: .manual, port: 2525, portID: "1", portName: "test",
            protocol: .smtp, encryption: encryption, tlsRequired: tlsRequired, certificate: nil, hostname: "mx.example.com")
    }

    static let authGuard = AuthGuard(logger: Logger(label: "test.auth"))
    static let configuration = SMTPServer.Configuration(spoolDirectory: NSTemporaryDirectory())

    static func serverChannel(_ backend: MemoryBackend, encryption: Encryption = .none, tls: NIOSSLContext? = nil) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try SMTPServer(backend: backend, authGuard: Self.authGuard, configuration: Self.configuration).configure(
            channel: channel,
            connection: ConnectionContext(spec: spec(encryption: encryption), isImplicitTLS: false, tlsContext: tls))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return channel
    }

    static func output(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func pipelinedTransactionIsDelivered() throws {
        let backend = MemoryBackend()
        let channel = try Self.serverChannel(backend)
        #expect(try Self.output(channel) == "220 mx.example.com ESMTP Berth\r\n")
        try channel.writeInbound(ByteBuffer(string:
            "EHLO c\r\nMAIL FROM:<bob@x.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: t\r\n\r\n..dot\r\n.\r\nQUIT\r\n"))
        channel.embeddedEventLoop.run()
        let replies = try Self.output(channel)
        #expect(replies.contains("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data"))
        let message = try #require(backend.messages.first)
        #expect(replies.contains("250 2.0.0 Ok: queued as \(message.queueID)\r\n221 2.0.0 Bye\r\n"))
        guard case .bytes(let bytes) = message.body else {
            Issue.record("a small body stays in memory")
            return
        }
        let stored = String(decoding: bytes, as: UTF8.self)
        #expect(stored.hasPrefix("Return-Path: <bob@x.org>\nReceived: from c ("))
        #expect(stored.contains("by mx.example.com (Berth) with ESMTP id \(message.queueID)"))
        #expect(stored.hasSuffix("\n\nSubject: t\n\n.dot\n") || stored.hasSuffix("\nSubject: t\n\n.dot\n"))
        #expect(!stored.contains("\r"), "Maildir files use LF line ends")
    }

    @Test func bareLineFeedInDataStoresNothing() throws {
        let backend = MemoryBackend()
        let channel = try Self.serverChannel(backend)
        _ = try Self.output(channel)
        try channel.writeInbound(ByteBuffer(string:
            "EHLO c\r\nMAIL FROM:<bob@x.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nline\n.\r\nMAIL FROM:<evil@x.org>\r\n.\r\nNOOP\r\n"))
        channel.embeddedEventLoop.run()
        let replies = try Self.output(channel)
        #expect(replies.contains("554 5.6.0"))
        #expect(replies.hasSuffix("250 2.0.0 Ok\r\n"), "the smuggled MAIL must have been content, not a command")
        #expect(replies.components(separatedBy: "250 2.1.0").count == 2, "no second transaction was started: \(replies)")
        #expect(backend.messages.isEmpty)
    }

    @Test func overlongCommandLine() throws {
        let channel = try Self.serverChannel(MemoryBackend())
        _ = try Self.output(channel)
        try channel.writeInbound(ByteBuffer(string: "NOOP " + String(repeating: "x", count: 600) + "\r\nNOOP\r\n"))
        // The session ends after the error: the rest of an endless line is not waited for.
        #expect(try Self.output(channel) == SMTPReply.lineTooLong.description)
        #expect(!channel.isActive)
    }

    @Test func drainEventClosesAnIdleSessionWith421() throws {
        let channel = try Self.serverChannel(MemoryBackend())
        _ = try Self.output(channel)
        channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        #expect(try Self.output(channel).hasPrefix("421 4.3.2"))
    }

    // MARK: TLS in memory

    static func tlsContexts() throws -> (server: NIOSSLContext, client: NIOSSLContext) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-test-\(UUID()).pem").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CertificateLoader.generateSelfSigned(hostname: "mx.example.com", at: path)
        let server = try CertificateLoader.load(CertificateSource(certificatePath: path)).context
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateVerification = .none
        return (server, try NIOSSLContext(configuration: client))
    }

    /// Moves bytes between the two in-memory channels until neither has anything to say.
    static func shuttle(_ client: EmbeddedChannel, _ server: EmbeddedChannel) throws {
        for _ in 0..<100 {
            var moved = false
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                try server.writeInbound(bytes)
                moved = true
            }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                try client.writeInbound(bytes)
                moved = true
            }
            server.embeddedEventLoop.run()
            client.embeddedEventLoop.run()
            if !moved { return }
        }
    }

    static func clientText(_ client: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try client.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// RFC 3207 §4.2 / CVE-2011-0411: "RSET" sent in the same write as STARTTLS is never run.
    @Test func bytesPipelinedAfterStartTLSAreDiscarded() throws {
        let (serverTLS, clientTLS) = try Self.tlsContexts()
        let backend = MemoryBackend()
        let server = try Self.serverChannel(backend, encryption: .tls, tls: serverTLS)
        _ = try Self.output(server)
        try server.writeInbound(ByteBuffer(string: "EHLO c\r\nSTARTTLS\r\nRSET\r\n"))
        let plain = try Self.output(server)
        #expect(plain.hasSuffix("220 2.0.0 Ready to start TLS\r\n"))
        #expect(!plain.contains("250 2.0.0 Ok"), "RSET must not have been executed")

        let client = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientTLS, serverHostname: nil))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.2", port: 2525)).wait()
        try Self.shuttle(client, server)
        client.writeAndFlush(ByteBuffer(string: "EHLO c\r\nNOOP\r\n"), promise: nil)
        try Self.shuttle(client, server)
        let afterTLS = try Self.clientText(client)
        #expect(afterTLS.hasPrefix("250-mx.example.com Hello c\r\n"), "got: \(afterTLS)")
        #expect(afterTLS.contains("250-AUTH PLAIN LOGIN\r\n"))
        #expect(!afterTLS.contains("STARTTLS"))
        #expect(afterTLS.hasSuffix("250 HELP\r\n250 2.0.0 Ok\r\n"), "exactly EHLO's reply then NOOP's: \(afterTLS)")
        // The mail log's cipher comes from swift-nio-ssl's private SSL pointer: this fails
        // if a later swift-nio-ssl moves it.
        let tls = try server.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        #expect(TLSDetails.cipher(of: tls)?.hasPrefix("TLS_") == true)
    }

    // MARK: Bounded under abuse (fake clock: EmbeddedEventLoop.advanceTime)

    static func timedChannel(_ backend: any SMTPBackend = MemoryBackend(), implicitTLS: Bool = false,
                             command: Int64 = 300, handshake: Int64 = 30) throws -> (EmbeddedChannel, ReadCounter) {
        var configuration = Self.configuration
        configuration.timeouts = SessionTimeouts(command: .seconds(command), handshake: .seconds(handshake))
        let channel = EmbeddedChannel()
        let reads = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(reads)
        try SMTPServer(backend: backend, authGuard: Self.authGuard, configuration: configuration).configure(
            channel: channel,
            connection: ConnectionContext(spec: spec(encryption: implicitTLS ? .ssl : .none), isImplicitTLS: implicitTLS, tlsContext: nil))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return (channel, reads)
    }

    /// Counts the reads the session lets through to the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Never
        var count = 0
        func read(context: ChannelHandlerContext) {
            count += 1
            context.read()
        }
    }

    @Test func tricklingBytesDoNotExtendTheCommandTimeout() throws {
        let (channel, _) = try Self.timedChannel(command: 300)
        _ = try Self.output(channel)
        for _ in 0..<29 {
            try channel.writeInbound(ByteBuffer(string: "N"))
            channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        }
        #expect(channel.isActive, "290 s: still within the command timeout")
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(try Self.output(channel).hasPrefix("421 4.4.2"))
        #expect(!channel.isActive)
    }

    @Test func eachCompleteCommandRestartsTheTimeout() throws {
        let (channel, _) = try Self.timedChannel(command: 300)
        _ = try Self.output(channel)
        for _ in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(200))
            try channel.writeInbound(ByteBuffer(string: "NOOP\r\n"))
        }
        #expect(channel.isActive, "1000 s of NOOPs 200 s apart")
        channel.embeddedEventLoop.advanceTime(by: .seconds(300))
        #expect(!channel.isActive)
    }

    @Test func aHandshakeThatNeverCompletesIsClosed() throws {
        let (channel, _) = try Self.timedChannel(implicitTLS: true, handshake: 30)
        channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func repliesTheClientDoesNotReadStopProcessingAndReading() throws {
        let (channel, reads) = try Self.timedChannel()
        _ = try Self.output(channel)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        try channel.writeInbound(ByteBuffer(string: String(repeating: "NOOP\r\n", count: 1000)))
        #expect(try Self.output(channel).isEmpty, "nothing is processed while replies cannot be written")
        let before = reads.count
        channel.read()
        #expect(reads.count == before, "the socket is not read while the client does not read")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(try Self.output(channel).components(separatedBy: "250 2.0.0 Ok\r\n").count - 1 == SMTPServerHandler.commandsPerTurn,
                "one turn's worth, then the event loop serves others")
        channel.embeddedEventLoop.run()
        let replies = String(repeating: "250 2.0.0 Ok\r\n", count: SMTPServerHandler.commandsPerTurn) + (try Self.output(channel))
        #expect(replies.components(separatedBy: "250 2.0.0 Ok\r\n").count - 1 == 1000)
        #expect(reads.count == before + 1, "the held read is issued once the backlog clears")
    }

    @Test func aClientThatNeverReadsIsClosedAtTheTimeoutWithoutAReply() throws {
        let (channel, _) = try Self.timedChannel(command: 300)
        _ = try Self.output(channel)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        try channel.writeInbound(ByteBuffer(string: "NOOP\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(300))
        #expect(!channel.isActive)
    }

    /// A delivery that never finishes: the session waits for the server and reads nothing.
    final class StuckBackend: SMTPBackend, @unchecked Sendable {
        func classify(_ address: String) -> RecipientClass { SMTPStateMachineTests.classify(address) }
        func verify(user: String, password: String) -> Bool { false }
        func deliver(_ message: InboundMessage, completion: @escaping @Sendable (Result<String, any Error>) -> Void) {}
    }

    @Test func whileTheServerWorksTheSocketIsNotReadAndNoTimeoutRuns() throws {
        let (channel, reads) = try Self.timedChannel(StuckBackend(), command: 300)
        _ = try Self.output(channel)
        try channel.writeInbound(ByteBuffer(string:
            "EHLO c\r\nMAIL FROM:<bob@x.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nhi\r\n.\r\nNOOP\r\n"))
        channel.embeddedEventLoop.run()
        let replies = try Self.output(channel)
        #expect(replies.hasSuffix("354 End data with <CR><LF>.<CR><LF>\r\n"), "NOOP waits behind the delivery: \(replies)")
        let before = reads.count
        channel.read()
        #expect(reads.count == before)
        channel.embeddedEventLoop.advanceTime(by: .seconds(3600))
        #expect(channel.isActive, "the client is not timed out for the server's slowness")
    }

    @Test func theDrainDeadlineEndsASessionMidMessage() throws {
        let (channel, _) = try Self.timedChannel()
        _ = try Self.output(channel)
        try channel.writeInbound(ByteBuffer(string: "EHLO c\r\nMAIL FROM:<bob@x.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\npart\r\n"))
        _ = try Self.output(channel)
        channel.pipeline.fireUserInboundEventTriggered(DrainDeadlineEvent())
        #expect(try Self.output(channel).hasPrefix("421 4.3.2"))
        #expect(!channel.isActive)
    }

    @Test func quitDuringDrainGets221() throws {
        let (channel, _) = try Self.timedChannel(StuckBackend())
        _ = try Self.output(channel)
        try channel.writeInbound(ByteBuffer(string: "EHLO c\r\nMAIL FROM:<bob@x.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\r\n.\r\n"))
        channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        _ = try Self.output(channel)
        var machine = SMTPStateMachineTests.machine()
        machine.drain()
        #expect(Self.code(machine.command(.success(.quit), classify: SMTPStateMachineTests.classify)) == 221)
    }

    static func code(_ action: SMTPStateMachine.Action) -> Int? { SMTPStateMachineTests.code(action) }
}
