import BerthCore
import BerthNet
import Foundation
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
        completion(.success("Q\(id)"))
    }
}

struct SMTPServerHandlerTests {
    static func spec(encryption: Encryption, tlsRequired: Bool = false) -> ListenerSpec {
        ListenerSpec(
            address: "127.0.0.2", family: .ipv4, source: .manual, port: 2525, portID: "1", portName: "test",
            protocol: .smtp, encryption: encryption, tlsRequired: tlsRequired, certificate: nil, hostname: "mx.example.com")
    }

    static func serverChannel(_ backend: MemoryBackend, encryption: Encryption = .none, tls: NIOSSLContext? = nil) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try SMTPServer(backend: backend).configure(
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
        #expect(replies.contains("250 2.0.0 Ok: queued as Q1\r\n221 2.0.0 Bye\r\n"))
        let message = try #require(backend.messages.first)
        #expect(String(decoding: message.content, as: UTF8.self) == "Subject: t\r\n\r\n.dot\r\n")
        #expect(String(decoding: message.trace, as: UTF8.self).hasPrefix("Received: from c ("))
        #expect(String(decoding: message.trace, as: UTF8.self).contains("by mx.example.com (Berth) with ESMTP id"))
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
        #expect(try Self.output(channel) == SMTPReply.lineTooLong.description + "250 2.0.0 Ok\r\n")
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
    }
}
