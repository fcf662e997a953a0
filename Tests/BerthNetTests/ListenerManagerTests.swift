import BerthCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import BerthNet

#if canImport(Glibc)
import Glibc
#endif

/// Says "hello" to every connection: enough to tell which sockets are served.
struct HelloServer: ProtocolServer {
    final class Greeter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "hello\r\n")), promise: nil)
            context.fireChannelActive()
        }
    }

    func configure(channel: any Channel, connection: ConnectionContext) throws {
        try channel.pipeline.syncOperations.addHandler(Greeter())
    }

    func refusal(_ refusal: Refusal, connection: ConnectionContext) -> ByteBuffer {
        ByteBuffer(string: "refused: \(refusal.reason)\r\n")
    }
}

/// A ListenerManager driven by hand: `reconcile()` after each change of `bindings`.
struct Harness {
    let bindings: NIOLockedValueBox<Bindings>
    let manager: ListenerManager

    init(_ initial: Bindings, protocols: [MailProtocol: any ProtocolServer] = [.smtp: HelloServer()]) {
        let bindings = NIOLockedValueBox(initial)
        self.bindings = bindings
        manager = ListenerManager(
            group: MultiThreadedEventLoopGroup.singleton,
            configuration: .init(defaultCertificate: CertificateSource(certificatePath: "/nonexistent/berth-test.pem")),
            protocols: protocols,
            changes: AsyncStream { $0.finish() },
            logger: Logger(label: "berth.test.listeners"),
            plan: { ListenerPlan.make(bindings: bindings.withLockedValue { $0 }, domains: [], serverHostname: "test.example") })
    }

    func change(_ body: (inout Bindings) -> Void) async {
        bindings.withLockedValue { body(&$0) }
        await manager.reconcile()
    }

    /// Live listeners by port (a removed one whose probe connection is still closing shows
    /// as draining for a moment; that is the contract, but not what these tests look at).
    func snapshot() -> [Int: ListenerStatus] {
        Dictionary(
            manager.registry.snapshot().filter { $0.state != .draining }.map { ($0.port, $0) },
            uniquingKeysWith: { a, _ in a })
    }

    /// Closes every socket.
    func tearDown() async {
        await change { $0 = Bindings() }
    }
}

@Suite("ListenerManager on loopback", .serialized)
struct ListenerManagerTests {
    /// Two distinct ports free a moment ago.
    static func twoPorts() -> (Int, Int) {
        let a = Socket.freePort()
        var b = Socket.freePort()
        while b == a { b = Socket.freePort() }
        return (a, b)
    }

    static func bindings(_ a: Int, _ b: Int, secondProtocol: MailProtocol = .smtp) -> Bindings {
        Bindings(
            ports: [
                Port(id: "a", name: "Alpha", protocol: .smtp, encryption: .none, port: a),
                Port(id: "b", name: "Bravo", protocol: secondProtocol, encryption: .none, port: b),
            ],
            ipAddresses: [
                IPAddressEntry(address: "127.0.0.1", family: .ipv4, interface: "lo", source: .interface, present: true, ports: ["a", "b"]),
            ])
    }

    @Test("two specs: both listening, both answer")
    func twoListeners() async throws {
        let (a, b) = Self.twoPorts()
        let harness = Harness(Self.bindings(a, b))
        await harness.manager.reconcile()
        let listeners = harness.snapshot()
        #expect(listeners.count == 2)
        for (port, id, name) in [(a, "a", "Alpha"), (b, "b", "Bravo")] {
            let status = try #require(listeners[port])
            #expect(status.state == .listening)
            #expect(status.error == nil)
            #expect(status.address == "127.0.0.1")
            #expect(status.portId == id)
            #expect(status.portName == name)
            #expect(status.protocol == .smtp)
            #expect(Socket.probe("127.0.0.1", port) == .greeting("hello\r\n"))
        }
        #expect(harness.snapshot()[a]?.totalConnections == 1)
        await harness.tearDown()
        #expect(harness.snapshot().isEmpty)
        #expect(Socket.eventuallyRefused("127.0.0.1", a))
    }

    @Test("a removed assignment closes its socket; the other keeps answering")
    func removal() async throws {
        let (a, b) = Self.twoPorts()
        let harness = Harness(Self.bindings(a, b))
        await harness.manager.reconcile()
        #expect(Socket.probe("127.0.0.1", b) == .greeting("hello\r\n"))

        await harness.change { try! $0.assign(portID: "b", to: []) }
        #expect(harness.snapshot().keys.sorted() == [a])
        #expect(harness.snapshot()[a]?.state == .listening)
        #expect(Socket.eventuallyRefused("127.0.0.1", b))
        #expect(Socket.probe("127.0.0.1", a) == .greeting("hello\r\n"))

        // And back again.
        await harness.change { try! $0.assign(portID: "b", to: ["127.0.0.1"]) }
        #expect(harness.snapshot()[b]?.state == .listening)
        #expect(Socket.probe("127.0.0.1", b) == .greeting("hello\r\n"))
        await harness.tearDown()
    }

    @Test("a port held by another socket fails alone, and is retried on the next reconcile")
    func portInUse() async throws {
        let (a, b) = Self.twoPorts()
        let holder = Socket.hold("127.0.0.1", b)
        let harness = Harness(Self.bindings(a, b))
        await harness.manager.reconcile()
        let failed = try #require(harness.snapshot()[b])
        #expect(failed.state == .failed)
        #expect(failed.error == "address already in use")
        #expect(harness.snapshot()[a]?.state == .listening)
        #expect(Socket.probe("127.0.0.1", a) == .greeting("hello\r\n"))

        close(holder)
        await harness.manager.reconcile()
        #expect(harness.snapshot()[b]?.state == .listening)
        #expect(harness.snapshot()[b]?.error == nil)
        #expect(Socket.probe("127.0.0.1", b) == .greeting("hello\r\n"))
        await harness.tearDown()
    }

    @Test("a port another program shares out (SO_REUSEPORT) is still in use; each event loop gets its own socket")
    func reusePortIsNotShared() async throws {
        let (a, b) = Self.twoPorts()
        let holder = Socket.hold("127.0.0.1", b, reusePort: true)
        let harness = Harness(Self.bindings(a, b))
        await harness.manager.reconcile()
        #expect(harness.snapshot()[b]?.state == .failed)
        #expect(harness.snapshot()[b]?.error == "address already in use", "joined another program's socket")
        close(holder)

        // Every loop accepts on its own socket: many connections, each greeted.
        await harness.manager.reconcile()
        #expect(harness.snapshot()[b]?.state == .listening)
        var loops = 0
        var iterator = MultiThreadedEventLoopGroup.singleton.makeIterator()
        while iterator.next() != nil { loops += 1 }
        #expect(Socket.listeningSockets(b) == loops)
        for _ in 0..<20 { #expect(Socket.probe("127.0.0.1", b) == .greeting("hello\r\n")) }
        #expect(harness.snapshot()[b]?.totalConnections == 20)
        await harness.tearDown()
        #expect(Socket.eventuallyRefused("127.0.0.1", b), "every socket of the listener is closed")
    }

    @Test("a protocol with no server is notServing and opens no socket")
    func notServing() async throws {
        let (a, b) = Self.twoPorts()
        let harness = Harness(Self.bindings(a, b, secondProtocol: .imap))
        await harness.manager.reconcile()
        let imap = try #require(harness.snapshot()[b])
        #expect(imap.state == .notServing)
        #expect(imap.protocol == .imap)
        #expect(imap.error?.isEmpty == false)
        #expect(Socket.eventuallyRefused("127.0.0.1", b))
        #expect(harness.snapshot()[a]?.state == .listening)
        await harness.tearDown()
        #expect(harness.manager.registry.snapshot().isEmpty)
    }

    @Test("renaming a port updates the listener in place, without rebinding")
    func renameInPlace() async throws {
        let (a, b) = Self.twoPorts()
        let harness = Harness(Self.bindings(a, b))
        await harness.manager.reconcile()
        let since = try #require(harness.snapshot()[a]?.since)
        await harness.change { try! $0.updatePort(id: "a", PortPatch(name: "Renamed")) }
        let status = try #require(harness.snapshot()[a])
        #expect(status.portName == "Renamed")
        #expect(status.state == .listening)
        #expect(status.since == since, "same socket")
        await harness.tearDown()
    }
}
