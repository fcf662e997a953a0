import BerthCore
import BerthIMAP
import BerthIMAPServer
import BerthNet
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOSSL
import BerthTestSupport
import Testing

/// STARTTLS, output backpressure, QRESYNC, and the whole server over real sockets with
/// its thread pool (the production path: store calls and spool writes off the loop).
struct IMAPSessionTests {
    static let message = IMAPServerHandlerTests.message

    // MARK: STARTTLS (RFC 3501 §6.2.1)

    static func tlsContexts() throws -> (server: NIOSSLContext, client: NIOSSLContext) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-test-\(UUID()).pem").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CertificateLoader.generateSelfSigned(hostname: "imap.example.com", at: path)
        let server = try CertificateLoader.load(CertificateSource(certificatePath: path)).context
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateVerification = .none
        return (server, try NIOSSLContext(configuration: client))
    }

    /// Moves bytes between two in-memory channels until neither has anything to say.
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

    /// CVE-2011-0411: a LOGIN pipelined in the same write as STARTTLS is never run; after
    /// the handshake the capabilities offer AUTH=PLAIN and no longer STARTTLS.
    @Test func startTLSDropsPipelinedCommands() throws {
        let (serverTLS, clientTLS) = try Self.tlsContexts()
        let server = try IMAPTestClient(
            FakeMailboxStore(), encryption: .tls, tlsRequired: true, allowPlaintext: false, tlsContext: serverTLS)
        let greeting = try server.output()
        #expect(greeting.contains(" STARTTLS LOGINDISABLED]"))
        let plain = try server.send("a STARTTLS\r\nb LOGIN alice@example.com secret\r\n")
        #expect(plain == "a OK Begin TLS negotiation now\r\n")

        let client = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientTLS, serverHostname: nil))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.2", port: 1143)).wait()
        try Self.shuttle(client, server.channel)
        client.writeAndFlush(ByteBuffer(string: "c CAPABILITY\r\nd LOGIN alice@example.com secret\r\n"), promise: nil)
        try Self.shuttle(client, server.channel)
        var text = ""
        while let buffer = try client.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        #expect(text.hasPrefix("* CAPABILITY IMAP4rev1 "), "only c's and d's answers: \(text)")
        #expect(text.contains(" AUTH=PLAIN\r\nc OK CAPABILITY completed\r\nd OK [CAPABILITY"))
        #expect(!text.contains("STARTTLS") && !text.contains("LOGINDISABLED"))
        #expect(!text.contains("b "), "the pipelined LOGIN was dropped")
    }

    // MARK: Backpressure

    /// Marks the channel unwritable after each FETCH response, as a client that does not
    /// read would.
    final class Clog: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let buffer = unwrapOutboundIn(data)
            if String(buffer: buffer).contains(" FETCH ("), let channel = context.channel as? EmbeddedChannel {
                channel.isWritable = false
            }
            context.write(data, promise: promise)
        }
    }

    @Test func fetchWaitsForTheClientToRead() throws {
        let store = try FakeMailboxStore()
        // Over half the read batch each: one message per trip to the disk.
        let big = Self.message + String(repeating: String(repeating: "z", count: 99) + "\n", count: 6000)
        for _ in 0..<3 { try store.deliver(big) }
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.select()
        try client.channel.pipeline.syncOperations.addHandler(Clog(), position: .first)
        let first = try client.command("a FETCH 1:3 BODY.PEEK[]")
        #expect(first.hasPrefix("* 1 FETCH (BODY[] {"))
        #expect(!first.contains("* 2 FETCH"), "the next message waits until the client reads")
        #expect(try client.command("b NOOP") == "", "no command is read meanwhile")
        var rest = ""
        for _ in 0..<3 {
            client.channel.isWritable = true
            client.channel.pipeline.fireChannelWritabilityChanged()
            rest += try client.output()
        }
        #expect(rest.contains("* 2 FETCH") && rest.contains("* 3 FETCH"))
        #expect(rest.contains("a OK FETCH completed\r\nb OK NOOP completed\r\n"))
    }

    // MARK: QRESYNC (RFC 7162 §3.2.5)

    @Test func qresyncSelectReportsWhatChanged() throws {
        let store = try FakeMailboxStore()
        for _ in 0..<3 { try store.deliver(Self.message) }
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.command("e ENABLE QRESYNC")
        #expect(try client.select().contains("* OK [HIGHESTMODSEQ 4]"))
        _ = try store.storeFlags(.add(MessageFlags(system: .seen)), uids: [1], in: 1, of: FakeAuthenticator.alice, unchangedSince: nil)
        _ = try store.expunge(uids: [2], in: 1, of: FakeAuthenticator.alice)
        let reply = try client.command("s SELECT INBOX (QRESYNC (1001 4 1:3))")
        #expect(reply.hasPrefix("* OK [CLOSED] Previous mailbox closed\r\n"))
        #expect(reply.contains("* VANISHED (EARLIER) 2\r\n* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (5))\r\ns OK [READ-WRITE]"))
        #expect(try client.command("n NOOP") == "n OK NOOP completed\r\n", "nothing told twice")
    }

    @Test func appendBeforeLoginIsReadAndDropped() throws {
        let client = try IMAPTestClient(try FakeMailboxStore())
        _ = try client.output()
        #expect(try client.send("a APPEND INBOX {3+}\r\nabc\r\n") == "a BAD Not authenticated: LOGIN first\r\n")
        #expect(try client.command("b NOOP") == "b OK NOOP completed\r\n")
    }

    // MARK: Real sockets, thread pool

    typealias Collector = SocketCollector

    /// The server on a real socket, with its own thread pool; stopped by `stop()`.
    struct SocketServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 2)
        let spool: TempDirectory
        let listener: any Channel

        init(_ store: FakeMailboxStore, contentPool: NIOThreadPool? = nil) async throws {
            pool.start()
            spool = try TempDirectory()
            var configuration = IMAPServer.Configuration(spoolDirectory: spool.path, threadPool: pool)
            configuration.contentThreadPool = contentPool
            configuration.allowPlaintextAuth = true
            let server = IMAPServer(
                store: store, authenticator: FakeAuthenticator(), authGuard: IMAPTestClient.authGuard, configuration: configuration)
            let spec = IMAPTestClient.spec()
            listener = try await ServerBootstrap(group: self.group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try server.configure(channel: channel, connection: ConnectionContext(spec: spec, isImplicitTLS: false, tlsContext: nil))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }

        var port: Int { listener.localAddress!.port! }

        /// A client connection and what it receives.
        func connect() async throws -> (any Channel, Collector) {
            let collector = Collector()
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(host: "127.0.0.1", port: port).get()
            return (channel, collector)
        }

        func stop() async throws {
            try await listener.close()
            try await pool.shutdownGracefully()
            try await group.shutdownGracefully()
            spool.remove()
        }
    }

    /// Python's imaplib, a strict client parser, through a whole session.
    @Test(.enabled(if: executable("python3") != nil))
    func pythonImaplibSession() async throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message)
        let server = try await SocketServer(store)
        let script = #"""
            import imaplib, sys
            m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=20)
            assert "IMAP4REV1" in m.capabilities and "IDLE" in m.capabilities, m.capabilities
            typ, data = m.login("alice@example.com", "secret")
            assert typ == "OK", data
            typ, data = m.select("INBOX")
            assert typ == "OK" and data == [b"1"], data
            typ, data = m.fetch("1", "(FLAGS RFC822.SIZE RFC822)")
            assert typ == "OK", data
            raw = data[0][1]
            assert raw.startswith(b"From: Bob") and raw.endswith(b"Line two\r\n"), raw
            assert (b"RFC822.SIZE %d" % len(raw)) in data[0][0], data
            typ, data = m.fetch("1", "(FLAGS)")
            assert b"\\Seen" in data[0], data
            typ, data = m.uid("SEARCH", None, "SUBJECT", "Hello")
            assert data == [b"1"], data
            typ, data = m.append("INBOX", r"(\Draft)", None, b"Subject: py\r\n\r\nbody\r\n")
            assert typ == "OK" and b"APPENDUID" in data[0], data
            typ, data = m.store("2", "+FLAGS", r"(\Deleted)")
            assert typ == "OK", data
            typ, data = m.expunge()
            assert typ == "OK" and data == [b"2"], data
            typ, data = m.create("Py/Sub")
            assert typ == "OK", data
            typ, data = m.copy("1", "Py/Sub")
            assert typ == "OK", data
            typ, data = m.list()
            assert typ == "OK" and b'(\\HasNoChildren) "/" Py/Sub' in data, data
            typ, data = m.status("Py/Sub", "(MESSAGES UIDNEXT)")
            assert data == [b"Py/Sub (MESSAGES 1 UIDNEXT 2)"], data
            typ, data = m.search(None, "ALL")
            assert data == [b"1"], data
            m.close()
            m.logout()
            """#
        let result = try run(executable("python3")!, ["-c", script, String(server.port)])
        #expect(result.status == 0, "\(result.stderr)")
        try await server.stop()
    }

    @Test func servesOverRealSocketsWithAThreadPool() async throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message)
        let server = try await SocketServer(store)
        let spool = server.spool
        let collector = Collector()
        let client = try await ClientBootstrap(group: server.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: server.port).get()
        func send(_ text: String) async throws {
            try await client.writeAndFlush(ByteBuffer(string: text)).get()
        }

        _ = try await collector.received("IMAP4rev1 ready\r\n")
        try await send("a1 LOGIN alice@example.com secret\r\na2 SELECT INBOX\r\n")
        _ = try await collector.received("a2 OK [READ-WRITE]")
        // Larger than the spool's memory part: written to a file on the pool, then stored.
        let line = String(repeating: "y", count: 70) + "\r\n"
        let body = "Subject: big\r\n\r\n" + String(repeating: line, count: 1000)
        try await send("a3 APPEND INBOX {\(body.utf8.count)+}\r\n\(body)\r\n")
        _ = try await collector.received("a3 OK [APPENDUID 1001 2]")
        #expect(store.records("INBOX").last?.size == body.utf8.count)
        try await send("a4 FETCH 2 (RFC822.SIZE BODY.PEEK[])\r\n")
        let fetched = try await collector.received("a4 OK FETCH completed")
        #expect(fetched.contains("* 2 FETCH (RFC822.SIZE \(body.utf8.count) BODY[] {\(body.utf8.count)}\r\nSubject: big\r\n"))
        try await send("a5 SEARCH SUBJECT big\r\na6 IDLE\r\n")
        _ = try await collector.received("+ idling\r\n")
        #expect(collector.text.contains("* SEARCH 2\r\na5 OK"))
        try store.deliver(Self.message)
        _ = try await collector.received("* 3 EXISTS\r\n")
        try await send("DONE\r\na7 LOGOUT\r\n")
        _ = try await collector.received("a7 OK LOGOUT completed\r\n")
        try await client.closeFuture.get()
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.path).isEmpty, "no spool file left behind")
        try await server.stop()
    }

    /// Message content (SEARCH TEXT, body FETCH) is read on the content pool, never on the
    /// threads where index calls run: with the content pool's only thread held, another
    /// session's SELECT, STORE and NOOP are answered; the SEARCH and FETCH wait for it.
    @Test func indexCallsDoNotQueueBehindContentWork() async throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message)
        try store.deliver(Self.message)
        let contentPool = NIOThreadPool(numberOfThreads: 1)
        contentPool.start()
        let server = try await SocketServer(store, contentPool: contentPool)
        let held = DispatchSemaphore(value: 0)
        contentPool.submit { _ in held.wait() }

        let (searcher, searched) = try await server.connect()
        try await searcher.writeAndFlush(ByteBuffer(string: "a1 LOGIN alice@example.com secret\r\na2 SELECT INBOX\r\n")).get()
        _ = try await searched.received("a2 OK [READ-WRITE]")
        try await searcher.writeAndFlush(ByteBuffer(string: "a3 SEARCH TEXT hello\r\na4 FETCH 1 BODY.PEEK[]\r\n")).get()

        let (other, answers) = try await server.connect()
        try await other.writeAndFlush(ByteBuffer(string: "b1 LOGIN alice@example.com secret\r\nb2 SELECT INBOX\r\n")).get()
        _ = try await answers.received("b2 OK [READ-WRITE]")
        try await other.writeAndFlush(ByteBuffer(string: "b3 STORE 2 +FLAGS (\\Flagged)\r\nb4 NOOP\r\n")).get()
        _ = try await answers.received("b4 OK NOOP completed")
        #expect(!searched.text.contains("a3 OK"), "the SEARCH waits for the content pool")

        held.signal()
        let done = try await searched.received("a4 OK FETCH completed")
        // The other session's STORE may be told in between.
        #expect(done.contains("* SEARCH 1 2\r\n") && done.contains("a3 OK SEARCH completed\r\n"))
        #expect(done.contains("* 1 FETCH (BODY[] {"))
        try await searcher.close()
        try await other.close()
        try await server.stop()
        try await contentPool.shutdownGracefully()
    }
}

extension SocketCollector {
    /// Waits until `needle` has arrived; a timeout is recorded as an issue (the test goes
    /// on). Everything received so far.
    func received(_ needle: String, timeout: Double = 10) async throws -> String {
        if let text = try await arrival(of: needle, timeout: timeout) { return text }
        Issue.record("timed out waiting for \(needle): \(text.suffix(300))")
        return text
    }
}
