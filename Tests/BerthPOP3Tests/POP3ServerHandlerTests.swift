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

/// The POP3 handler on an in-memory channel over `MemoryMailboxStore`. The channel is
/// `NIOAsyncTestingChannel` (EmbeddedChannel's thread-safe twin): the store calls and the
/// password check really run on thread pools and come back to the channel's loop, as in
/// production; time (deadlines, the failure delay) moves only when a test advances it.
@Suite(.timeLimit(.minutes(1)))
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
        let channel: NIOAsyncTestingChannel
        private var received: [UInt8] = []
        private(set) var greeting = ""

        init(
            _ store: MemoryMailboxStore, encryption: Encryption = .none, tlsRequired: Bool = false,
            tls: NIOSSLContext? = nil, implicitTLS: Bool = false, plaintext: Bool = true,
            before: (@Sendable () -> any ChannelHandler)? = nil
        ) async throws {
            var configuration = POP3Server.Configuration()
            configuration.allowPlaintextAuth = plaintext
            let server = POP3Server(
                store: store, authenticator: TableAuthenticator(), authGuard: POP3ServerHandlerTests.authGuard,
                configuration: configuration)
            let connection = ConnectionContext(
                spec: POP3ServerHandlerTests.spec(encryption: encryption, tlsRequired: tlsRequired),
                isImplicitTLS: implicitTLS, tlsContext: tls, clientAddress: "192.0.2.\(Int.random(in: 1...254))")
            channel = NIOAsyncTestingChannel()
            let channel = self.channel
            try await channel.eventLoop.submit {
                // What the listener puts first: the TLS handler of an `ssl` port, or a test's socket.
                if let before { try channel.pipeline.syncOperations.addHandler(before()) }
                try server.configure(channel: channel, connection: connection)
            }.get()
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).get()
            // Over implicit TLS the greeting is encrypted: the test reads it with its TLS client.
            greeting = implicitTLS ? "" : try await read()
        }

        func send(_ text: String) async throws {
            try await channel.writeInbound(ByteBuffer(string: text))
        }

        private func collect() async throws {
            while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                received += buffer.readableBytesView
            }
        }

        /// Everything received up to and including the first `marker`, waiting for it.
        func read(until marker: String = "\r\n", timeout: Duration = .seconds(10)) async throws -> String {
            let start = ContinuousClock.now
            let needle = Array(marker.utf8)
            while true {
                try await collect()
                if let range = received.firstRange(of: needle) {
                    defer { received.removeSubrange(..<range.upperBound) }
                    return String(decoding: received[..<range.upperBound], as: UTF8.self)
                }
                if ContinuousClock.now - start > timeout {
                    Issue.record("no \(marker.debugDescription) within \(timeout); got \(String(decoding: received, as: UTF8.self).debugDescription)")
                    defer { received = [] }
                    return String(decoding: received, as: UTF8.self)
                }
                try await Task.sleep(for: .milliseconds(2))
            }
        }

        /// The command's one-line reply.
        func command(_ line: String) async throws -> String {
            try await send(line + "\r\n")
            return try await read()
        }

        /// The command's multi-line reply, up to its terminating ".".
        func multiLine(_ line: String) async throws -> String {
            try await send(line + "\r\n")
            return try await read(until: "\r\n.\r\n")
        }

        /// What arrives within `milliseconds` of real time (the pools have had their turn).
        func quiet(for milliseconds: Int = 150) async throws -> String {
            try await Task.sleep(for: .milliseconds(milliseconds))
            try await collect()
            defer { received = [] }
            return String(decoding: received, as: UTF8.self)
        }

        func login(_ user: String = "alice@example.com", _ password: String = "right password") async throws -> String {
            #expect(try await command("USER \(user)") == "+OK send PASS\r\n")
            return try await command("PASS \(password)")
        }

        /// Waits until the server has closed the connection.
        func closed(timeout: Duration = .seconds(10)) async throws -> Bool {
            let start = ContinuousClock.now
            while channel.isActive {
                if ContinuousClock.now - start > timeout { return false }
                try await Task.sleep(for: .milliseconds(2))
            }
            return true
        }
    }

    /// Polls `condition` (something a pool thread does after the reply) for a while.
    static func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<2000 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(2))
        }
        return condition()
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

    @Test func aWholeSessionOverUSERAndPASS() async throws {
        let (store, uids) = try Self.aliceStore()
        let client = try await Client(store)
        #expect(client.greeting == "+OK pop.example.com POP3 Berth ready\r\n")
        #expect(try await client.login() == "+OK maildrop has 2 messages (96 octets)\r\n")
        #expect(store.isLocked(Self.alice))
        #expect(try await client.command("STAT") == "+OK 2 96\r\n")
        #expect(try await client.multiLine("LIST") == "+OK 2 messages (96 octets)\r\n1 41\r\n2 55\r\n.\r\n")
        #expect(try await client.multiLine("UIDL") == "+OK\r\n1 1712345678.\(uids[0])\r\n2 1712345678.\(uids[1])\r\n.\r\n")
        #expect(try await client.command("UIDL 2") == "+OK 2 1712345678.\(uids[1])\r\n")

        // RFC 1939 §3: CRLF line ends whatever the file holds, a leading "." doubled.
        let retr = try await client.multiLine("RETR 1")
        #expect(retr == "+OK 41 octets\r\nSubject: one\r\n\r\nhello\r\n..hidden dot\r\nend\r\n.\r\n")
        let body = retr.utf8.dropFirst("+OK 41 octets\r\n".utf8.count).dropLast(".\r\n".utf8.count)
        #expect(body.count - 1 == 41, "LIST's size is what RETR serves, before dot-stuffing (one dot added)")
        #expect(try await Self.eventually { store.seenUIDs == [uids[0]] }, "a whole RETR sets \\Seen")

        #expect(try await client.multiLine("TOP 2 1") == "+OK top of message follows\r\nSubject: two\r\nFrom: b@x.org\r\n\r\nline 1\r\n.\r\n")
        #expect(try await client.multiLine("TOP 2 0") == "+OK top of message follows\r\nSubject: two\r\nFrom: b@x.org\r\n\r\n.\r\n")
        #expect(try await client.command("QUIT") == "+OK pop.example.com POP3 server signing off (2 messages left)\r\n")
        #expect(try await client.closed())
        #expect(store.expungeCalls.isEmpty)
        #expect(!store.isLocked(Self.alice))
        #expect(store.seenUIDs == [uids[0]], "TOP leaves a message unseen")
    }

    @Test func aSASLPlainLoginOpensTheMaildropToo() async throws {
        let (store, _) = try Self.aliceStore()
        let client = try await Client(store)
        let plain = Data("\0alice@example.com\0right password".utf8).base64EncodedString()
        #expect(try await client.command("AUTH PLAIN \(plain)") == "+OK maildrop has 2 messages (96 octets)\r\n")
        #expect(try await client.command("QUIT").hasPrefix("+OK"))
    }

    // MARK: UPDATE (RFC 1939 §6)

    @Test func deleAndQuitRemoveExactlyTheMarkedMessages() async throws {
        let store = try MemoryMailboxStore()
        let uids = try (1...4).map { try store.add("Subject: \($0)\n\nbody\n", to: Self.alice) }
        let client = try await Client(store)
        #expect(try await client.login().hasPrefix("+OK maildrop has 4 messages"))
        #expect(try await client.command("DELE 2") == "+OK message 2 deleted\r\n")
        #expect(try await client.command("DELE 4") == "+OK message 4 deleted\r\n")
        #expect(try await client.command("DELE 2") == "-ERR message 2 already deleted\r\n")
        #expect(try await client.command("STAT").hasPrefix("+OK 2 "), "deleted messages are not counted")
        #expect(try await client.command("RETR 2") == "-ERR no such message\r\n")
        #expect(try await client.command("QUIT") == "+OK pop.example.com POP3 server signing off (2 messages left)\r\n")
        #expect(try await client.closed())
        #expect(store.expungeCalls == [[uids[1], uids[3]]])
        #expect(store.uids(of: Self.alice) == [uids[0], uids[2]])
        #expect(!store.isLocked(Self.alice))
    }

    @Test func rsetUnmarksSoQuitRemovesNothing() async throws {
        let (store, uids) = try Self.aliceStore()
        let client = try await Client(store)
        _ = try await client.login()
        #expect(try await client.command("DELE 1").hasPrefix("+OK"))
        #expect(try await client.command("RSET") == "+OK maildrop has 2 messages (96 octets)\r\n")
        #expect(try await client.command("QUIT").hasPrefix("+OK"))
        #expect(try await client.closed())
        #expect(store.expungeCalls.isEmpty)
        #expect(store.uids(of: Self.alice) == uids)
    }

    @Test func aConnectionDroppedInTransactionRemovesNothingAndFreesTheMaildrop() async throws {
        let (store, uids) = try Self.aliceStore()
        let client = try await Client(store)
        _ = try await client.login()
        #expect(try await client.command("DELE 1").hasPrefix("+OK"))
        try await client.channel.close()
        #expect(try await Self.eventually { !store.isLocked(Self.alice) })
        #expect(store.outstandingLocks == 0)
        #expect(store.expungeCalls.isEmpty)
        #expect(store.uids(of: Self.alice) == uids)
    }

    // MARK: RFC 1939 §8 maildrop lock

    @Test func aSecondSessionFindsTheMaildropInUse() async throws {
        let (store, _) = try Self.aliceStore()
        let first = try await Client(store)
        #expect(try await first.login().hasPrefix("+OK maildrop has"))
        let second = try await Client(store)
        #expect(try await second.login() == "-ERR [IN-USE] maildrop already locked by another session\r\n")
        #expect(try await second.command("STAT") == "-ERR STAT is not valid before authentication\r\n")
        #expect(try await first.command("QUIT").hasPrefix("+OK"))
        #expect(try await first.closed())
        #expect(try await second.login().hasPrefix("+OK maildrop has 2 messages"), "free again after QUIT")
        #expect(store.outstandingLocks == 1)
    }

    // MARK: Authentication

    @Test func aWrongPasswordIsAnsweredAfterTheDelay() async throws {
        let (store, _) = try Self.aliceStore()
        let client = try await Client(store)
        #expect(try await client.command("USER alice@example.com").hasPrefix("+OK"))
        try await client.send("PASS wrong one\r\n")
        #expect(try await client.quiet() == "", "no answer before the failure delay")
        #expect(client.channel.isActive)
        var reply = ""
        for _ in 0..<50 where reply.isEmpty {
            await client.channel.testingEventLoop.advanceTime(by: .milliseconds(250))
            reply = try await client.quiet(for: 20)
        }
        #expect(reply == "-ERR [AUTH] authentication failed\r\n")
        #expect(!store.isLocked(Self.alice))
        #expect(try await client.command("STAT").hasPrefix("-ERR"), "still in AUTHORIZATION")
    }

    @Test func anUnknownUserGetsTheSameAnswer() async throws {
        let (store, _) = try Self.aliceStore()
        let client = try await Client(store)
        #expect(try await client.command("USER nobody@example.com") == "+OK send PASS\r\n")
        try await client.send("PASS x\r\n")
        var reply = ""
        for _ in 0..<50 where reply.isEmpty {
            await client.channel.testingEventLoop.advanceTime(by: .milliseconds(250))
            reply = try await client.quiet(for: 20)
        }
        #expect(reply == "-ERR [AUTH] authentication failed\r\n")
    }

    @Test func plainTextLoginIsRefusedUnlessAllowed() async throws {
        let (store, _) = try Self.aliceStore()
        let client = try await Client(store, plaintext: false)
        let capa = try await client.multiLine("CAPA")
        #expect(!capa.contains("USER\r\n") && !capa.contains("SASL"), "RFC 2595 §2.3: no login offered: \(capa)")
        #expect(try await client.command("USER alice@example.com") == "-ERR [SYS/PERM] plain-text login is disabled on this port\r\n")
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

    /// Moves bytes between the two channels until neither has said anything for a while.
    static func shuttle(_ client: NIOAsyncTestingChannel, _ server: NIOAsyncTestingChannel) async throws {
        var quietRounds = 0
        while quietRounds < 25 {
            var moved = false
            while let bytes = try await client.readOutbound(as: ByteBuffer.self) {
                try await server.writeInbound(bytes)
                moved = true
            }
            while let bytes = try await server.readOutbound(as: ByteBuffer.self) {
                try await client.writeInbound(bytes)
                moved = true
            }
            quietRounds = moved ? 0 : quietRounds + 1
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    static func clientText(_ client: NIOAsyncTestingChannel) async throws -> String {
        var text = ""
        while let buffer = try await client.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func aTLSRequiredPortRefusesLoginBeforeSTLSAndDiscardsWhatFollowsIt() async throws {
        let (serverTLS, clientTLS) = try Self.tlsContexts()
        let (store, _) = try Self.aliceStore()
        let server = try await Client(store, encryption: .tls, tlsRequired: true, tls: serverTLS, plaintext: false)
        let capa = try await server.multiLine("CAPA")
        #expect(capa.contains("\r\nSTLS\r\n"))
        #expect(!capa.contains("USER") && !capa.contains("SASL"), "RFC 2595 §2.3: no login before TLS: \(capa)")
        #expect(try await server.command("USER alice@example.com") == "-ERR [SYS/PERM] encryption required: issue STLS first\r\n")
        // RFC 2595 §4: "USER" in the same write as STLS is never executed.
        try await server.send("STLS\r\nUSER alice@example.com\r\n")
        #expect(try await server.read() == "+OK Begin TLS negotiation\r\n")
        #expect(try await server.quiet(for: 50) == "")

        let client = NIOAsyncTestingChannel()
        try await client.eventLoop.submit {
            try client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientTLS, serverHostname: nil))
        }.get()
        try await client.connect(to: SocketAddress(ipAddress: "127.0.0.2", port: 110)).get()
        try await Self.shuttle(client, server.channel)
        try await client.writeAndFlush(ByteBuffer(string: "CAPA\r\nUSER alice@example.com\r\nPASS right password\r\n"))
        try await Self.shuttle(client, server.channel)
        let afterTLS = try await Self.clientText(client)
        #expect(afterTLS.hasPrefix("+OK Capability list follows\r\n"), "CAPA answers first, not the discarded USER: \(afterTLS)")
        #expect(afterTLS.contains("\r\nUSER\r\n") && afterTLS.contains("\r\nSASL PLAIN"))
        #expect(!afterTLS.contains("STLS"))
        #expect(afterTLS.hasSuffix("+OK send PASS\r\n+OK maildrop has 2 messages (96 octets)\r\n"), "\(afterTLS)")
    }

    @Test func stlsIsOfferedOnlyOnATLSPortWithACertificate() async throws {
        let (store, _) = try Self.aliceStore()
        let plainPort = try await Client(store)
        #expect(!(try await plainPort.multiLine("CAPA")).contains("STLS"))
        #expect(try await plainPort.command("STLS") == "-ERR STLS is not offered on this port\r\n")
        let noCertificate = try await Client(store, encryption: .tls, tls: nil)
        #expect(!(try await noCertificate.multiLine("CAPA")).contains("STLS"))
    }

    // MARK: Framing and pipelining

    @Test func aLineTooLongEndsTheSession() async throws {
        let (store, _) = try Self.aliceStore()
        let client = try await Client(store)
        // Past RFC 2449 §4's 255 octets but within the framer: refused, the session goes on.
        #expect(try await client.command("USER " + String(repeating: "u", count: 300)) == "-ERR command longer than 255 octets (RFC 2449 section 4)\r\n")
        try await client.send("NOOP " + String(repeating: "x", count: POP3Limits.framerLineLength + 10) + "\r\nCAPA\r\n")
        #expect(try await client.read() == "-ERR line too long\r\n")
        #expect(try await client.closed())
        #expect(try await client.quiet(for: 20) == "", "nothing after the line too long is run")
    }

    @Test func pipelinedCommandsAreAnsweredInOrder() async throws {
        let (store, uids) = try Self.aliceStore()
        let client = try await Client(store)
        // RFC 2449 §6.6 PIPELINING: the login and the transaction in one write.
        try await client.send("USER alice@example.com\r\nPASS right password\r\nSTAT\r\nLIST 2\r\nUIDL 1\r\nRETR 1\r\nNOOP\r\nDELE 2\r\nQUIT\r\n")
        let replies = try await client.read(until: "signing off (1 message left)\r\n")
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
            if unread > highWater, let channel = context.channel as? NIOAsyncTestingChannel, channel.isWritable {
                channel.isWritable = false
                context.fireChannelWritabilityChanged()
            }
        }

        func clientReads() {
            guard let context, let channel = context.channel as? NIOAsyncTestingChannel else { return }
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

    @Test func aClientThatDoesNotReadARetrDoesNotMakeTheServerBufferIt() async throws {
        let store = try MemoryMailboxStore()
        let (message, expected) = Self.bigMessage()
        try store.add(message, to: Self.alice)
        let socket = SlowSocket(highWater: 64 * 1024)
        let client = try await Client(store, before: { socket })
        _ = try await client.login()
        try await client.send("RETR 1\r\n")
        let firstLine = try await client.read()
        #expect(firstLine.hasPrefix("+OK \(message.count + 21_002) octets"))
        // Given time, a server without backpressure would have read and queued it all.
        var received = Array(try await client.quiet(for: 300).utf8)
        let peak = try await client.channel.eventLoop.submit { socket.peak }.get()
        // One chunk of the file (64 KiB, at most doubled by CRs and dots) past the mark.
        #expect(peak < 64 * 1024 + 2 * MessageFile.chunkSize + 512, "queued \(peak) bytes of a \(expected.count)-byte response")
        #expect(!client.channel.isWritable, "the client reads nothing: the channel stays full")

        // The client reads at last: the whole message arrives, one high-water mark at a time.
        var rounds = 0
        while !received.suffix(5).elementsEqual(Array("\r\n.\r\n".utf8)) && rounds < 1000 {
            rounds += 1
            try await client.channel.eventLoop.submit { socket.clientReads() }.get()
            received += Array(try await client.quiet(for: 5).utf8)
        }
        #expect(received.count == expected.count)
        let whole = received == expected  // not in #expect: a failure would print 2 MiB
        #expect(whole, "the message, CRLF and dot-stuffed, arrives whole and in order")
        #expect(rounds > 10, "the response came in many pieces, not at once")
        #expect(try await client.channel.eventLoop.submit { socket.peak }.get() < 64 * 1024 + 2 * MessageFile.chunkSize + 512)
    }

    @Test func aClientThatStopsReadingMidMessageIsClosedAtTheTimeout() async throws {
        let store = try MemoryMailboxStore()
        try store.add(Self.bigMessage().message, to: Self.alice)
        try store.add("Subject: small\n\nhi\n", to: Self.alice)
        let socket = SlowSocket(highWater: 64 * 1024)
        let client = try await Client(store, before: { socket })
        _ = try await client.login()
        #expect(try await client.command("DELE 2").hasPrefix("+OK"))
        try await client.send("RETR 1\r\n")
        _ = try await client.quiet(for: 200)
        #expect(!client.channel.isWritable)
        await client.channel.testingEventLoop.advanceTime(by: .seconds(599))
        #expect(client.channel.isActive, "within the timeout")
        await client.channel.testingEventLoop.advanceTime(by: .seconds(1))
        #expect(try await client.closed())
        #expect(store.expungeCalls.isEmpty, "no UPDATE without QUIT")
        #expect(!store.isLocked(Self.alice))
    }

    @Test func topOfABigMessageReadsOnlyWhatItSends() async throws {
        let store = try MemoryMailboxStore()
        try store.add(Self.bigMessage().message, to: Self.alice)
        let client = try await Client(store)
        _ = try await client.login()
        let top = try await client.multiLine("TOP 1 2")
        #expect(top == "+OK top of message follows\r\nSubject: big\r\n\r\n..\(String(repeating: "y", count: 98))\r\nx\(String(repeating: "y", count: 98))\r\n.\r\n")
        #expect(try await client.quiet(for: 50) == "")
        #expect(try await client.command("NOOP") == "+OK\r\n")
    }

    @Test func aDrainDuringRetrLetsTheMessageFinish() async throws {
        let store = try MemoryMailboxStore()
        let (message, expected) = Self.bigMessage()
        try store.add(message, to: Self.alice)
        let socket = SlowSocket(highWater: 64 * 1024)
        let client = try await Client(store, before: { socket })
        _ = try await client.login()
        try await client.send("RETR 1\r\nDELE 1\r\nQUIT\r\n")
        var received = Array(try await client.read().utf8)
        client.channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        for _ in 0..<1000 where client.channel.isActive {
            try await client.channel.eventLoop.submit { socket.clientReads() }.get()
            received += Array(try await client.quiet(for: 5).utf8)
        }
        let shuttingDown = Array("-ERR [SYS/TEMP] server shutting down\r\n".utf8)
        #expect(received.count == "+OK 2121016 octets\r\n".utf8.count + expected.count + shuttingDown.count)
        let whole = received.suffix(expected.count + shuttingDown.count).elementsEqual(expected + shuttingDown)
        #expect(whole, "the message whole, then the -ERR; the pipelined DELE and QUIT never run")
        #expect(store.expungeCalls.isEmpty)
        #expect(!store.isLocked(Self.alice))
    }

    @Test func storeFailuresAreTemporaryErrors() async throws {
        let (store, _) = try Self.aliceStore()
        store.fail("snapshot")
        let client = try await Client(store)
        #expect(try await client.login() == "-ERR [SYS/TEMP] unable to open the maildrop; try again later\r\n")
        #expect(!store.isLocked(Self.alice))

        let (other, _) = try Self.aliceStore()
        other.fail("expunge")
        let second = try await Client(other)
        _ = try await second.login()
        #expect(try await second.command("DELE 1").hasPrefix("+OK"))
        #expect(try await second.command("QUIT") == "-ERR [SYS/TEMP] some deleted messages not removed\r\n")
        #expect(try await second.closed())
        #expect(!other.isLocked(Self.alice), "the lock is freed even when UPDATE failed")
    }

    @Test func anImplicitTLSPortGreetsOverTLSAndOffersLogin() async throws {
        let (serverTLS, clientTLS) = try Self.tlsContexts()
        let (store, _) = try Self.aliceStore()
        let server = try await Client(
            store, encryption: .ssl, implicitTLS: true, plaintext: false,
            before: { NIOSSLServerHandler(context: serverTLS) })
        #expect(!server.greeting.contains("+OK"), "the greeting waits for the handshake")
        let client = NIOAsyncTestingChannel()
        try await client.eventLoop.submit {
            try client.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientTLS, serverHostname: nil))
        }.get()
        try await client.connect(to: SocketAddress(ipAddress: "127.0.0.2", port: 995)).get()
        try await Self.shuttle(client, server.channel)
        #expect(try await Self.clientText(client) == "+OK pop.example.com POP3 Berth ready\r\n")
        try await client.writeAndFlush(ByteBuffer(string: "CAPA\r\nUSER alice@example.com\r\nPASS right password\r\n"))
        try await Self.shuttle(client, server.channel)
        let replies = try await Self.clientText(client)
        #expect(replies.contains("\r\nUSER\r\n") && !replies.contains("STLS"), "\(replies)")
        #expect(replies.hasSuffix("+OK send PASS\r\n+OK maildrop has 2 messages (96 octets)\r\n"), "\(replies)")
    }

    @Test func anIdleClientIsLoggedOutWithoutUpdate() async throws {
        let (store, _) = try Self.aliceStore()
        let client = try await Client(store)
        _ = try await client.login()
        #expect(try await client.command("DELE 1").hasPrefix("+OK"))
        // RFC 1939 §3: at least 10 minutes.
        await client.channel.testingEventLoop.advanceTime(by: .seconds(599))
        #expect(client.channel.isActive)
        await client.channel.testingEventLoop.advanceTime(by: .seconds(1))
        #expect(try await client.closed())
        #expect(try await client.quiet(for: 20) == "", "autologout says nothing")
        #expect(store.expungeCalls.isEmpty)
        #expect(!store.isLocked(Self.alice))
    }

    @Test func aDrainEndsAnIdleSessionWithoutUpdate() async throws {
        let (store, _) = try Self.aliceStore()
        let client = try await Client(store)
        _ = try await client.login()
        #expect(try await client.command("DELE 1").hasPrefix("+OK"))
        client.channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        #expect(try await client.read() == "-ERR [SYS/TEMP] server shutting down\r\n")
        #expect(try await client.closed())
        #expect(store.expungeCalls.isEmpty)
        #expect(!store.isLocked(Self.alice))
    }

    @Test func aMessageWhoseFileIsGoneIsReportedAndTheSessionGoesOn() async throws {
        let (store, uids) = try Self.aliceStore()
        let client = try await Client(store)
        _ = try await client.login()
        store.removeFile(uid: uids[0], of: Self.alice)
        #expect(try await client.command("RETR 1") == "-ERR [SYS/TEMP] message 1 is no longer available\r\n")
        #expect(try await client.multiLine("RETR 2").hasPrefix("+OK 55 octets\r\nSubject: two\r\n"))
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
