import BerthCore
import BerthNet
import BerthTestSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import BerthPOP3

/// The handler on a real socket, driven by Python's poplib: the wire format as a widely
/// used client library reads it (multi-line responses, dot-unstuffing, UIDL, TOP).
@Suite(.enabled(if: executable("python3") != nil, "needs python3"), .timeLimit(.minutes(1)))
struct POP3RealClientTests {
    static let script = #"""
        import poplib, sys
        port, big_size = int(sys.argv[1]), int(sys.argv[2])
        pop = poplib.POP3("127.0.0.1", port, timeout=20)
        assert pop.getwelcome() == b"+OK pop.example.com POP3 Berth ready", pop.getwelcome()
        caps = pop.capa()
        assert "USER" in caps and "UIDL" in caps and "TOP" in caps and "STLS" not in caps, caps
        pop.user("alice@example.com")
        pop.pass_("right password")
        count, octets = pop.stat()
        assert count == 2, count
        _, listing, _ = pop.list()
        assert [int(l.split()[1]) for l in listing] == [big_size, 41], listing
        _, uidl, _ = pop.uidl()
        assert all(l.split()[1].startswith(b"1712345678.") for l in uidl), uidl
        _, lines, size = pop.retr(1)
        assert len(lines) == 21002, len(lines)
        assert lines[0] == b"Subject: big" and lines[1] == b"", lines[:2]
        # poplib removes the stuffed dot: the stored line comes back as it was.
        assert lines[2] == b"." + b"y" * 98 and lines[3] == b"x" + b"y" * 98, lines[2:4]
        assert sum(len(l) + 2 for l in lines) == big_size, size
        _, top, _ = pop.top(2, 1)
        assert top == [b"Subject: one", b"", b"hello"], top
        pop.dele(2)
        assert pop.quit().startswith(b"+OK"), "quit"
        """#

    /// A POP3 server over `store` on a loopback port of its own (plain POP3), with the
    /// event loop it runs on. `close()` stops both.
    struct Running {
        let group: MultiThreadedEventLoopGroup
        let listener: any Channel
        let port: Int

        func close() {
            try? listener.close().wait()
            try? group.syncShutdownGracefully()
        }
    }

    static func serve(_ store: MemoryMailboxStore, _ configure: (inout POP3Server.Configuration) -> Void = { _ in }) throws -> Running {
        var configuration = POP3Server.Configuration()
        configuration.allowPlaintextAuth = true
        configure(&configuration)
        let server = POP3Server(
            store: store, authenticator: TableAuthenticator(), authGuard: POP3ServerHandlerTests.authGuard,
            configuration: configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let listener = try listen(server, on: group)
            return Running(group: group, listener: listener, port: try #require(listener.localAddress?.port))
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    private static func listen(_ server: POP3Server, on group: any EventLoopGroup) throws -> any Channel {
        try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try server.configure(
                        channel: channel,
                        connection: ConnectionContext(
                            spec: POP3ServerHandlerTests.spec(), isImplicitTLS: false, tlsContext: nil,
                            clientAddress: "127.0.0.1"))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    /// Synchronous on purpose: `run` blocks its thread while python runs, which must not be
    /// one of Swift concurrency's few cooperative threads (the suite hung that way).
    @Test func pythonPoplibReadsAndDeletes() throws {
        let store = try MemoryMailboxStore()
        let (big, _) = POP3ServerHandlerTests.bigMessage()
        try store.add(big, to: POP3ServerHandlerTests.alice)
        let small = try store.add("Subject: one\n\nhello\n.hidden dot\nend\n", to: POP3ServerHandlerTests.alice)

        let running = try Self.serve(store)
        defer { running.close() }
        let port = running.port

        let directory = try TempDirectory()
        defer { directory.remove() }
        let path = try directory.write("client.py", Self.script)
        let bigSize = big.count + big.filter { $0 == 0x0A }.count
        let (status, errors) = try run(try #require(executable("python3")), [path, "\(port)", "\(bigSize)"])
        #expect(status == 0, "poplib: \(errors)")
        #expect(store.expungeCalls == [[small]])
    }

    /// RETR and TOP read files on the content pool, not where index calls run: with its
    /// only thread held, alice's RETR has its first line and waits for its body, while
    /// bob logs in and gets STAT and UIDL answered; the body follows once it is free.
    @Test func messageReadsDoNotHoldTheIndexThreads() throws {
        let store = try MemoryMailboxStore()
        let (big, expected) = POP3ServerHandlerTests.bigMessage()
        try store.add(big, to: POP3ServerHandlerTests.alice)
        try store.add("Subject: bob\n\nhi\n", to: TableAuthenticator.bob)
        let indexPool = NIOThreadPool(numberOfThreads: 1)
        let contentPool = NIOThreadPool(numberOfThreads: 1)
        indexPool.start()
        contentPool.start()
        defer {
            try? indexPool.syncShutdownGracefully()
            try? contentPool.syncShutdownGracefully()
        }
        let running = try Self.serve(store) {
            $0.blockingWork = .threadPool(indexPool)
            $0.contentThreadPool = contentPool
        }
        defer { running.close() }
        let (group, port) = (running.group, running.port)
        func connect() throws -> (any Channel, SocketCollector) {
            let collector = SocketCollector()
            let channel = try ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(host: "127.0.0.1", port: port).wait()
            return (channel, collector)
        }

        let held = DispatchSemaphore(value: 0)
        contentPool.submit { _ in held.wait() }
        let (alice, retrieved) = try connect()
        try alice.writeAndFlush(ByteBuffer(string: "USER alice@example.com\r\nPASS right password\r\nRETR 1\r\n")).wait()
        #expect(retrieved.wait(for: "+OK \(big.count + big.filter { $0 == 0x0A }.count) octets\r\n"))
        let (bob, answers) = try connect()
        try bob.writeAndFlush(ByteBuffer(string: "USER bob@example.com\r\nPASS bob-pw\r\nSTAT\r\nUIDL\r\nQUIT\r\n")).wait()
        #expect(answers.wait(for: "signing off"), "bob's session: \(answers.text)")
        #expect(!retrieved.text.contains("Subject: big"), "the body waits for the content pool")

        held.signal()
        #expect(retrieved.wait(for: "\r\n.\r\n"))
        #expect(retrieved.text.hasSuffix(String(decoding: expected, as: UTF8.self)))
        try alice.writeAndFlush(ByteBuffer(string: "QUIT\r\n")).wait()
        try alice.closeFuture.wait()
        try bob.closeFuture.wait()
    }
}
