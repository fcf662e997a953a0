import BerthCore
import BerthNet
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOSSL
import Testing

@testable import BerthPOP3

/// The POP3 handler on `EmbeddedChannel` over `MemoryMailboxStore`. The store calls and
/// password checks run as tasks of the channel's own loop (`.channelEventLoop`), so each
/// test is single-threaded and time (deadlines, the failure delay) moves only when it
/// advances the loop's clock. `POP3RealClientTests` covers the thread-pool path.
@Suite
struct POP3ServerHandlerTests {
    static let alice = TableAuthenticator.alice
    static let hostname = "pop.example.com"
    /// One guard for every test, as in the server; the default 1 s failure delay.
    static let authGuard = AuthGuard(logger: Logger(label: "test.pop3.auth"))

    static func spec(encryption: Encryption = .none, tlsRequired: Bool = false) -> ListenerSpec {
        ListenerSpec(
            address: "127.0.0.2", family: .ipv4, source: .manual, port: 110, portID: "1", portName: "pop",
            protocol: .pop, encryption: encryption, tlsRequired: tlsRequired, certificate: nil, hostname: hostname)
    }

    /// One client connection: what it sends and what it has received.
    final class Client {
        let channel: EmbeddedChannel
        private var received: [UInt8] = []
        private(set) var greeting = ""

        init(
            _ store: MemoryMailboxStore, encryption: Encryption = .none, tlsRequired: Bool = false,
            tls: NIOSSLContext? = nil, implicitTLS: Bool = false, plaintext: Bool = true,
            before: (() -> any ChannelHandler)? = nil
        ) throws {
            var configuration = POP3Server.Configuration()
            configuration.allowPlaintextAuth = plaintext
            configuration.blockingWork = .channelEventLoop
            let server = POP3Server(
                store: store, authenticator: TableAuthenticator(), authGuard: POP3ServerHandlerTests.authGuard,
                configuration: configuration)
            let connection = ConnectionContext(
                spec: POP3ServerHandlerTests.spec(encryption: encryption, tlsRequired: tlsRequired),
                isImplicitTLS: implicitTLS, tlsContext: tls, clientAddress: "192.0.2.\(Int.random(in: 1...254))")
            channel = EmbeddedChannel()
            // What the listener puts first: the TLS handler of an `ssl` port, or a test's socket.
            if let before { try channel.pipeline.syncOperations.addHandler(before()) }
            try server.configure(channel: channel, connection: connection)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
            // Over implicit TLS the greeting is encrypted: the test reads it with its TLS client.
            greeting = implicitTLS ? "" : try read()
        }

        var loop: EmbeddedEventLoop { channel.embeddedEventLoop }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
            loop.run()
        }

        /// Lets the loop run what is due (store calls, file reads), then takes what was written.
        private func collect() throws {
            loop.run()
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                received += buffer.readableBytesView
            }
        }

        /// Everything received up to and including the first `marker`.
        func read(until marker: String = "\r\n") throws -> String {
            try collect()
            guard let range = received.firstRange(of: Array(marker.utf8)) else {
                Issue.record("no \(marker.debugDescription) in \(String(decoding: received, as: UTF8.self).debugDescription)")
                return try pending()
            }
            defer { received.removeSubrange(..<range.upperBound) }
            return String(decoding: received[..<range.upperBound], as: UTF8.self)
        }

        /// Everything received and not read yet.
        func pending() throws -> String {
            try collect()
            defer { received = [] }
            return String(decoding: received, as: UTF8.self)
        }

        /// The command's one-line reply.
        func command(_ line: String) throws -> String {
            try send(line + "\r\n")
            return try read()
        }

        /// The command's multi-line reply, up to its terminating ".".
        func multiLine(_ line: String) throws -> String {
            try send(line + "\r\n")
            return try read(until: "\r\n.\r\n")
        }

        func login(_ user: String = "alice@example.com", _ password: String = "right password") throws -> String {
            #expect(try command("USER \(user)") == "+OK send PASS\r\n")
            return try command("PASS \(password)")
        }

        var isClosed: Bool {
            loop.run()
            return !channel.isActive
        }
    }

    /// Two messages for alice: an LF-only file with a line starting with ".", and one
    /// with a longer body for TOP.
    static func aliceStore() throws -> (MemoryMailboxStore, [UInt32]) {
        let store = try MemoryMailboxStore()
        let first = try store.add("Subject: one\n\nhello\n.hidden dot\nend\n", to: alice)
        let second = try store.add("Subject: two\nFrom: b@x.org\n\nline 1\nline 2\nline 3\n", to: alice)
        return (store, [first, second])
    }

    // MARK: A whole session

    @Test func aWholeSessionOverUSERAndPASS() throws {
        let (store, uids) = try Self.aliceStore()
        let client = try Client(store)
        #expect(client.greeting == "+OK pop.example.com POP3 Berth ready\r\n")
        #expect(try client.login() == "+OK maildrop has 2 messages (96 octets)\r\n")
        #expect(store.isLocked(Self.alice))
        #expect(try client.command("STAT") == "+OK 2 96\r\n")
        #expect(try client.multiLine("LIST") == "+OK 2 messages (96 octets)\r\n1 41\r\n2 55\r\n.\r\n")
        #expect(try client.multiLine("UIDL") == "+OK\r\n1 1712345678.\(uids[0])\r\n2 1712345678.\(uids[1])\r\n.\r\n")
        #expect(try client.command("UIDL 2") == "+OK 2 1712345678.\(uids[1])\r\n")

        // RFC 1939 §3: CRLF line ends whatever the file holds, a leading "." doubled.
        let retr = try client.multiLine("RETR 1")
        #expect(retr == "+OK 41 octets\r\nSubject: one\r\n\r\nhello\r\n..hidden dot\r\nend\r\n.\r\n")
        let body = retr.utf8.dropFirst("+OK 41 octets\r\n".utf8.count).dropLast(".\r\n".utf8.count)
        #expect(body.count - 1 == 41, "LIST's size is what RETR serves, before dot-stuffing (one dot added)")
        #expect(store.seenUIDs == [uids[0]], "a whole RETR sets \\Seen")

        #expect(try client.multiLine("TOP 2 1") == "+OK top of message follows\r\nSubject: two\r\nFrom: b@x.org\r\n\r\nline 1\r\n.\r\n")
        #expect(try client.multiLine("TOP 2 0") == "+OK top of message follows\r\nSubject: two\r\nFrom: b@x.org\r\n\r\n.\r\n")
        #expect(try client.command("QUIT") == "+OK pop.example.com POP3 server signing off (2 messages left)\r\n")
        #expect(client.isClosed)
        #expect(store.expungeCalls.isEmpty)
        #expect(!store.isLocked(Self.alice))
        #expect(store.seenUIDs == [uids[0]], "TOP leaves a message unseen")
    }

    @Test func aSASLPlainLoginOpensTheMaildropToo() throws {
        let (store, _) = try Self.aliceStore()
        let client = try Client(store)
        let plain = Data("\0alice@example.com\0right password".utf8).base64EncodedString()
        #expect(try client.command("AUTH PLAIN \(plain)") == "+OK maildrop has 2 messages (96 octets)\r\n")
        #expect(try client.command("QUIT").hasPrefix("+OK"))
    }

    // MARK: UPDATE (RFC 1939 §6)

    @Test func deleAndQuitRemoveExactlyTheMarkedMessages() throws {
        let store = try MemoryMailboxStore()
        let uids = try (1...4).map { try store.add("Subject: \($0)\n\nbody\n", to: Self.alice) }
        let client = try Client(store)
        #expect(try client.login().hasPrefix("+OK maildrop has 4 messages"))
        #expect(try client.command("DELE 2") == "+OK message 2 deleted\r\n")
        #expect(try client.command("DELE 4") == "+OK message 4 deleted\r\n")
        #expect(try client.command("DELE 2") == "-ERR message 2 already deleted\r\n")
        #expect(try client.command("STAT").hasPrefix("+OK 2 "), "deleted messages are not counted")
        #expect(try client.command("RETR 2") == "-ERR no such message\r\n")
        #expect(try client.command("QUIT") == "+OK pop.example.com POP3 server signing off (2 messages left)\r\n")
        #expect(client.isClosed)
        #expect(store.expungeCalls == [[uids[1], uids[3]]])
        #expect(store.uids(of: Self.alice) == [uids[0], uids[2]])
        #expect(!store.isLocked(Self.alice))
    }

    @Test func rsetUnmarksSoQuitRemovesNothing() throws {
        let (store, uids) = try Self.aliceStore()
        let client = try Client(store)
        _ = try client.login()
        #expect(try client.command("DELE 1").hasPrefix("+OK"))
        #expect(try client.command("RSET") == "+OK maildrop has 2 messages (96 octets)\r\n")
        #expect(try client.command("QUIT").hasPrefix("+OK"))
        #expect(client.isClosed)
        #expect(store.expungeCalls.isEmpty)
        #expect(store.uids(of: Self.alice) == uids)
    }

    @Test func aConnectionDroppedInTransactionRemovesNothingAndFreesTheMaildrop() throws {
        let (store, uids) = try Self.aliceStore()
        let client = try Client(store)
        _ = try client.login()
        #expect(try client.command("DELE 1").hasPrefix("+OK"))
        try client.channel.close().wait()
        #expect(!store.isLocked(Self.alice))
        #expect(store.outstandingLocks == 0)
        #expect(store.expungeCalls.isEmpty)
        #expect(store.uids(of: Self.alice) == uids)
    }

    // MARK: RFC 1939 §8 maildrop lock

    @Test func aSecondSessionFindsTheMaildropInUse() throws {
        let (store, _) = try Self.aliceStore()
        let first = try Client(store)
        #expect(try first.login().hasPrefix("+OK maildrop has"))
        let second = try Client(store)
        #expect(try second.login() == "-ERR [IN-USE] maildrop already locked by another session\r\n")
        #expect(try second.command("STAT") == "-ERR STAT is not valid before authentication\r\n")
        #expect(try first.command("QUIT").hasPrefix("+OK"))
        #expect(first.isClosed)
        #expect(try second.login().hasPrefix("+OK maildrop has 2 messages"), "free again after QUIT")
        #expect(store.outstandingLocks == 1)
    }

    // MARK: Authentication

    @Test func aWrongPasswordIsAnsweredAfterTheDelay() throws {
        let (store, _) = try Self.aliceStore()
        let client = try Client(store)
        #expect(try client.command("USER alice@example.com").hasPrefix("+OK"))
        try client.send("PASS wrong one\r\n")
        #expect(try client.pending() == "", "no answer before the failure delay")
        client.loop.advanceTime(by: .milliseconds(999))
        #expect(try client.pending() == "", "the guard's first delay is 1 s")
        client.loop.advanceTime(by: .milliseconds(1))
        #expect(try client.pending() == "-ERR [AUTH] authentication failed\r\n")
        #expect(!store.isLocked(Self.alice))
        #expect(try client.command("STAT").hasPrefix("-ERR"), "still in AUTHORIZATION")
    }

    @Test func anUnknownUserGetsTheSameAnswer() throws {
        let (store, _) = try Self.aliceStore()
        let client = try Client(store)
        #expect(try client.command("USER nobody@example.com") == "+OK send PASS\r\n")
        try client.send("PASS x\r\n")
        client.loop.advanceTime(by: .seconds(1))
        #expect(try client.pending() == "-ERR [AUTH] authentication failed\r\n")
    }

    @Test func plainTextLoginIsRefusedUnlessAllowed() throws {
        let (store, _) = try Self.aliceStore()
        let client = try Client(store, plaintext: false)
        let capa = try client.multiLine("CAPA")
        #expect(!capa.contains("USER\r\n") && !capa.contains("SASL"), "RFC 2595 §2.3: no login offered: \(capa)")
        #expect(try client.command("USER alice@example.com") == "-ERR [SYS/PERM] plain-text login is disabled on this port\r\n")
    }

    // MARK: TLS (RFC 2595)

    static func tlsContexts() throws -> (server: NIOSSLContext, client: NIOSSLContext) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-test-\(UUID()).pem").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CertificateLoader.generateSelfSigned(hostname: hostname, at: path)
        let server = try CertificateLoader.load(CertificateSource(certificatePath: path)).context
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateVerification = .none
        return (server, try NIOSSLContext(configuration: client))
    }

    /// Moves bytes between the two channels (running both loops) until neither has
    /// anything to say; returns what the client received, decrypted.
    static func shuttle(_ client: EmbeddedChannel, _ server: EmbeddedChannel) throws -> String {
        var text = ""
        for _ in 0..<100 {
            var moved = false
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                try server.writeInbound(bytes)
                moved = true
            }
            server.embeddedEventLoop.run()
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                try client.writeInbound(bytes)
                moved = true
            }
            client.embeddedEventLoop.run()
            text += try clientText(client)
            if !moved { break }
        }
        return text
    }

    static func clientText(_ client: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try client.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func aTLSRequiredPortRefusesLoginBeforeSTLSAndDiscardsWhatFollowsIt() throws {
        let (serverTLS, clientTLS) = try Self.tlsContexts()
        let (store, _) = try Self.aliceStore()
        let server = try Client(store, encryption: .tls, tlsRequired: true, tls: serverTLS, plaintext: false)
        let capa = try server.multiLine("CAPA")
        #expect(capa.contains("\r\nSTLS\r\n"))
        #expect(!capa.contains("USER") && !capa.contains("SASL"), "RFC 2595 §2.3: no login before TLS: \(capa)")
        #expect(try server.command("USER alice@example.com") == "-ERR [SYS/PERM] encryption required: issue STLS first\r\n")
        // RFC 2595 §4: "USER" in the same write as STLS is never executed.
        try server.send("STLS\r\nUSER alice@example.com\r\n")
        #expect(try server.read() == "+OK Begin TLS negotiation\r\n")
        #expect(try server.pending() == "")

        let client = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientTLS, serverHostname: nil))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.2", port: 110)).wait()
        // The handshake, then CAPA and a login over TLS.
        client.writeAndFlush(ByteBuffer(string: "CAPA\r\nUSER alice@example.com\r\nPASS right password\r\n"), promise: nil)
        let afterTLS = try Self.shuttle(client, server.channel)
        #expect(afterTLS.hasPrefix("+OK Capability list follows\r\n"), "CAPA answers first, not the discarded USER: \(afterTLS)")
        #expect(afterTLS.contains("\r\nUSER\r\n") && afterTLS.contains("\r\nSASL PLAIN"))
        #expect(!afterTLS.contains("STLS"))
        #expect(afterTLS.hasSuffix("+OK send PASS\r\n+OK maildrop has 2 messages (96 octets)\r\n"), "\(afterTLS)")
    }

    @Test func stlsIsOfferedOnlyOnATLSPortWithACertificate() throws {
        let (store, _) = try Self.aliceStore()
        let plainPort = try Client(store)
        #expect(!(try plainPort.multiLine("CAPA")).contains("STLS"))
        #expect(try plainPort.command("STLS") == "-ERR STLS is not offered on this port\r\n")
        let noCertificate = try Client(store, encryption: .tls, tls: nil)
        #expect(!(try noCertificate.multiLine("CAPA")).contains("STLS"))
    }

    // MARK: Framing and pipelining

    @Test func aLineTooLongEndsTheSession() throws {
        let (store, _) = try Self.aliceStore()
        let client = try Client(store)
        // Past RFC 2449 §4's 255 octets but within the framer: refused, the session goes on.
        #expect(try client.command("USER " + String(repeating: "u", count: 300)) == "-ERR command longer than 255 octets (RFC 2449 section 4)\r\n")
        try client.send("NOOP " + String(repeating: "x", count: POP3Limits.framerLineLength + 10) + "\r\nCAPA\r\n")
        #expect(try client.read() == "-ERR line too long\r\n")
        #expect(client.isClosed)
        #expect(try client.pending() == "", "nothing after the line too long is run")
    }

    @Test func pipelinedCommandsAreAnsweredInOrder() throws {
        let (store, uids) = try Self.aliceStore()
        let client = try Client(store)
        // RFC 2449 §6.6 PIPELINING: the login and the transaction in one write.
        try client.send("USER alice@example.com\r\nPASS right password\r\nSTAT\r\nLIST 2\r\nUIDL 1\r\nRETR 1\r\nNOOP\r\nDELE 2\r\nQUIT\r\n")
        let replies = try client.read(until: "signing off (1 message left)\r\n")
        #expect(replies == """
            +OK send PASS\r
            +OK maildrop has 2 messages (96 octets)\r
            +OK 2 96\r
            +OK 2 55\r
            +OK 1 1712345678.\(uids[0])\r
            +OK 41 octets\r
            Subject: one\r
            \r
            hello\r
            ..hidden dot\r
            end\r
            .\r
            +OK\r
            +OK message 2 deleted\r
            +OK pop.example.com POP3 server signing off (1 message left)\r

            """)
        #expect(store.expungeCalls == [[uids[1]]])
    }

    // MARK: Bounded under abuse

    /// Plays the socket's send buffer: past `highWater` bytes the client has not read, the
    /// channel is not writable until the client reads them all (`clientReads`).
    final class SlowSocket: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let highWater: Int
        private var context: ChannelHandlerContext?
        /// Touched on the channel's loop only.
        private(set) var unread = 0
        private(set) var peak = 0

        init(highWater: Int) { self.highWater = highWater }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            unread += unwrapOutboundIn(data).readableBytes
            peak = max(peak, unread)
            context.write(data, promise: promise)
            if unread > highWater, let channel = context.channel as? EmbeddedChannel, channel.isWritable {
                channel.isWritable = false
                context.fireChannelWritabilityChanged()
            }
        }

        func clientReads() {
            guard let context, let channel = context.channel as? EmbeddedChannel else { return }
            unread = 0
            channel.isWritable = true
            context.fireChannelWritabilityChanged()
        }
    }

    /// 2 MiB of 100-byte lines, every tenth starting with a dot, and the RETR response
    /// body it must give (CRLF, dot-stuffed, terminated).
    static func bigMessage() -> (message: [UInt8], expected: [UInt8]) {
        var message = Array("Subject: big\n\n".utf8)
        var expected = Array("Subject: big\r\n\r\n".utf8)
        for n in 0..<21_000 {
            let line = (n % 10 == 0 ? "." : "x") + String(repeating: "y", count: 98)
            message += Array((line + "\n").utf8)
            expected += Array(((n % 10 == 0 ? "." : "") + line + "\r\n").utf8)
        }
        expected += Array(".\r\n".utf8)
        return (message, expected)
    }

    @Test func aClientThatDoesNotReadARetrDoesNotMakeTheServerBufferIt() throws {
        let store = try MemoryMailboxStore()
        let (message, expected) = Self.bigMessage()
        try store.add(message, to: Self.alice)
        let socket = SlowSocket(highWater: 64 * 1024)
        let client = try Client(store, before: { socket })
        _ = try client.login()
        try client.send("RETR 1\r\n")
        let firstLine = try client.read()
        #expect(firstLine.hasPrefix("+OK \(message.count + 21_002) octets"))
        // Everything due has run: a server without backpressure would have queued it all.
        var received = Array(try client.pending().utf8)
        let peak = socket.peak
        // One chunk of the file (64 KiB, at most doubled by CRs and dots) past the mark.
        #expect(peak < 64 * 1024 + 2 * MessageFile.chunkSize + 512, "queued \(peak) bytes of a \(expected.count)-byte response")
        #expect(!client.channel.isWritable, "the client reads nothing: the channel stays full")

        // The client reads at last: the whole message arrives, one high-water mark at a time.
        var rounds = 0
        while !received.suffix(5).elementsEqual(Array("\r\n.\r\n".utf8)) && rounds < 1000 {
            rounds += 1
            socket.clientReads()
            received += Array(try client.pending().utf8)
        }
        #expect(received.count == expected.count)
        let whole = received == expected  // not in #expect: a failure would print 2 MiB
        #expect(whole, "the message, CRLF and dot-stuffed, arrives whole and in order")
        #expect(rounds > 10, "the response came in many pieces, not at once")
        #expect(socket.peak < 64 * 1024 + 2 * MessageFile.chunkSize + 512)
    }

    @Test func aClientThatStopsReadingMidMessageIsClosedAtTheTimeout() throws {
        let store = try MemoryMailboxStore()
        try store.add(Self.bigMessage().message, to: Self.alice)
        try store.add("Subject: small\n\nhi\n", to: Self.alice)
        let socket = SlowSocket(highWater: 64 * 1024)
        let client = try Client(store, before: { socket })
        _ = try client.login()
        #expect(try client.command("DELE 2").hasPrefix("+OK"))
        try client.send("RETR 1\r\n")
        #expect(!client.channel.isWritable)
        client.loop.advanceTime(by: .seconds(599))
        #expect(client.channel.isActive, "within the timeout")
        client.loop.advanceTime(by: .seconds(1))
        #expect(client.isClosed)
        #expect(store.expungeCalls.isEmpty, "no UPDATE without QUIT")
        #expect(!store.isLocked(Self.alice))
    }

    @Test func topOfABigMessageReadsOnlyWhatItSends() throws {
        let store = try MemoryMailboxStore()
        try store.add(Self.bigMessage().message, to: Self.alice)
        let client = try Client(store)
        _ = try client.login()
        let top = try client.multiLine("TOP 1 2")
        #expect(top == "+OK top of message follows\r\nSubject: big\r\n\r\n..\(String(repeating: "y", count: 98))\r\nx\(String(repeating: "y", count: 98))\r\n.\r\n")
        #expect(try client.pending() == "")
        #expect(try client.command("NOOP") == "+OK\r\n")
    }

    @Test func aDrainDuringRetrLetsTheMessageFinish() throws {
        let store = try MemoryMailboxStore()
        let (message, expected) = Self.bigMessage()
        try store.add(message, to: Self.alice)
        let socket = SlowSocket(highWater: 64 * 1024)
        let client = try Client(store, before: { socket })
        _ = try client.login()
        try client.send("RETR 1\r\nDELE 1\r\nQUIT\r\n")
        var received = Array(try client.read().utf8)
        client.channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        for _ in 0..<1000 where client.channel.isActive {
            socket.clientReads()
            received += Array(try client.pending().utf8)
        }
        let shuttingDown = Array("-ERR [SYS/TEMP] server shutting down\r\n".utf8)
        #expect(received.count == "+OK 2121016 octets\r\n".utf8.count + expected.count + shuttingDown.count)
        let whole = received.suffix(expected.count + shuttingDown.count).elementsEqual(expected + shuttingDown)
        #expect(whole, "the message whole, then the -ERR; the pipelined DELE and QUIT never run")
        #expect(store.expungeCalls.isEmpty)
        #expect(!store.isLocked(Self.alice))
    }

    @Test func storeFailuresAreTemporaryErrors() throws {
        let (store, _) = try Self.aliceStore()
        store.fail("snapshot")
        let client = try Client(store)
        #expect(try client.login() == "-ERR [SYS/TEMP] unable to open the maildrop; try again later\r\n")
        #expect(!store.isLocked(Self.alice))

        let (other, _) = try Self.aliceStore()
        other.fail("expunge")
        let second = try Client(other)
        _ = try second.login()
        #expect(try second.command("DELE 1").hasPrefix("+OK"))
        #expect(try second.command("QUIT") == "-ERR [SYS/TEMP] some deleted messages not removed\r\n")
        #expect(second.isClosed)
        #expect(!other.isLocked(Self.alice), "the lock is freed even when UPDATE failed")
    }

    @Test func anImplicitTLSPortGreetsOverTLSAndOffersLogin() throws {
        let (serverTLS, clientTLS) = try Self.tlsContexts()
        let (store, _) = try Self.aliceStore()
        let server = try Client(
            store, encryption: .ssl, implicitTLS: true, plaintext: false,
            before: { NIOSSLServerHandler(context: serverTLS) })
        #expect(!server.greeting.contains("+OK"), "the greeting waits for the handshake")
        let client = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientTLS, serverHostname: nil))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.2", port: 995)).wait()
        #expect(try Self.shuttle(client, server.channel) == "+OK pop.example.com POP3 Berth ready\r\n")
        client.writeAndFlush(ByteBuffer(string: "CAPA\r\nUSER alice@example.com\r\nPASS right password\r\n"), promise: nil)
        let replies = try Self.shuttle(client, server.channel)
        #expect(replies.contains("\r\nUSER\r\n") && !replies.contains("STLS"), "\(replies)")
        #expect(replies.hasSuffix("+OK send PASS\r\n+OK maildrop has 2 messages (96 octets)\r\n"), "\(replies)")
    }

    @Test func anIdleClientIsLoggedOutWithoutUpdate() throws {
        let (store, _) = try Self.aliceStore()
        let client = try Client(store)
        _ = try client.login()
        #expect(try client.command("DELE 1").hasPrefix("+OK"))
        // RFC 1939 §3: at least 10 minutes.
        client.loop.advanceTime(by: .seconds(599))
        #expect(client.channel.isActive)
        client.loop.advanceTime(by: .seconds(1))
        #expect(client.isClosed)
        #expect(try client.pending() == "", "autologout says nothing")
        #expect(store.expungeCalls.isEmpty)
        #expect(!store.isLocked(Self.alice))
    }

    @Test func aDrainEndsAnIdleSessionWithoutUpdate() throws {
        let (store, _) = try Self.aliceStore()
        let client = try Client(store)
        _ = try client.login()
        #expect(try client.command("DELE 1").hasPrefix("+OK"))
        client.channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        #expect(try client.read() == "-ERR [SYS/TEMP] server shutting down\r\n")
        #expect(client.isClosed)
        #expect(store.expungeCalls.isEmpty)
        #expect(!store.isLocked(Self.alice))
    }

    @Test func aMessageWhoseFileIsGoneIsReportedAndTheSessionGoesOn() throws {
        let (store, uids) = try Self.aliceStore()
        let client = try Client(store)
        _ = try client.login()
        store.removeFile(uid: uids[0], of: Self.alice)
        #expect(try client.command("RETR 1") == "-ERR [SYS/TEMP] message 1 is no longer available\r\n")
        #expect(try client.multiLine("RETR 2").hasPrefix("+OK 55 octets\r\nSubject: two\r\n"))
    }

    @Test func aRefusedClientIsToldSysTemp() throws {
        let server = POP3Server(
            store: try MemoryMailboxStore(), authenticator: TableAuthenticator(), authGuard: Self.authGuard,
            configuration: POP3Server.Configuration())
        let connection = ConnectionContext(spec: Self.spec(), isImplicitTLS: false, tlsContext: nil)
        #expect(String(buffer: server.refusal(.clientLimit, connection: connection))
            == "-ERR [SYS/TEMP] too many connections from your address\r\n")
    }
}
