import BerthCore
import BerthLDAP
import BerthNet
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import Foundation
import Testing
@testable import BerthLDAPServer

@Suite("LDAP handler on EmbeddedChannel: framing, refusals, anonymous reads")
struct LDAPServerHandlerTests {
    struct NoUsers: MailAuthenticator {
        func authenticate(user: String, password: String) -> MailAccount? { nil }
    }

    static func channel(
        tlsRequired: Bool = false, access: @escaping @Sendable () -> LDAPServer.ReadAccess = { .init() },
        people: Int = 0, pool: NIOThreadPool? = nil, reads: ReadCounter? = nil
    ) throws -> EmbeddedChannel {
        let spec = ListenerSpec(
            address: "127.0.0.2", family: .ipv4, source: .manual, port: 389, portID: "1", portName: "ldap",
            protocol: .ldap, encryption: tlsRequired ? .tls : .none, tlsRequired: tlsRequired, certificate: nil, hostname: "mx.test")
        let directory = LDAPDirectorySource {
            LDAPDirectory(
                domains: ["example.com"],
                people: [.init(uid: "alice", domain: "example.com", mail: ["alice@example.com"])]
                    + (0..<people).map { .init(uid: "p\($0)", domain: "example.com", mail: ["p\($0)@example.com"]) },
                vendorVersion: "test")
        }
        var configuration = LDAPServer.Configuration()
        configuration.access = access
        configuration.searchThreadPool = pool
        let server = LDAPServer(directory: directory, authenticator: NoUsers(), authGuard: AuthGuard(logger: Logger(label: "test")), configuration: configuration)
        let channel = EmbeddedChannel()
        if let reads { try channel.pipeline.syncOperations.addHandler(reads) }
        try server.configure(channel: channel, connection: ConnectionContext(spec: spec, isImplicitTLS: false, tlsContext: nil))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return channel
    }

    static func send(_ channel: EmbeddedChannel, _ bytes: [UInt8]) throws -> [UInt8] {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        var out: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += buffer.readableBytesView }
        return out
    }

    static let rootDSESearch = LDAPTestBytes.search(id: 2, base: "", scope: 0)

    @Test("Garbage gets the Notice of Disconnection, then the channel closes")
    func garbage() throws {
        let channel = try Self.channel()
        let out = try Self.send(channel, Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(out == LDAPEncoder.noticeOfDisconnection(.protocolError, "not an LDAP message (first byte 0x47)"))
        #expect(!channel.isActive)
    }

    @Test("A message split over many reads is answered once it is whole")
    func splitMessage() throws {
        let channel = try Self.channel()
        var out: [UInt8] = []
        for byte in Self.rootDSESearch { out += try Self.send(channel, [byte]) }
        #expect(out.count > 20)
        #expect(Array(out.suffix(14)) == LDAPEncoder.result(id: 2, .searchDone, LDAPResult(.success)).suffix(14))
    }

    @Test("Anonymous: the root DSE yes, the people no; a write is refused; the session goes on")
    func anonymous() throws {
        let channel = try Self.channel()
        let rootDSE = try Self.send(channel, Self.rootDSESearch)
        #expect(rootDSE.count > 100)
        let people = try Self.send(channel, LDAPTestBytes.search(id: 3, base: "dc=example,dc=com", scope: 2))
        #expect(people == LDAPEncoder.result(id: 3, .searchDone, LDAPResult(.insufficientAccessRights, diagnosticMessage: "bind first")))
        let delete = try Self.send(channel, [0x30, 0x0C, 0x02, 0x01, 0x04, 0x4A, 0x07] + Array("dc=x,dc".utf8))
        #expect(delete.count > 10 && delete[7] == 0x0A && delete[9] == 53)  // unwillingToPerform
        #expect(channel.isActive)
    }

    @Test("ldapAnonymousSearch turned on applies to an open anonymous session at its next search")
    func anonymousSearchSetting() throws {
        let access = NIOLockedValueBox(LDAPServer.ReadAccess())
        let channel = try Self.channel(access: { access.withLockedValue { $0 } })
        let search = { (id: UInt8) in try Self.send(channel, LDAPTestBytes.search(id: id, base: "dc=example,dc=com", scope: 2)) }
        #expect(try search(3) == LDAPEncoder.result(id: 3, .searchDone, LDAPResult(.insufficientAccessRights, diagnosticMessage: "bind first")))
        access.withLockedValue { $0.anonymousSearch = true }
        let found = try search(4)
        // The domain, ou=people and alice: three entries (tag 0x64), then success.
        #expect(String(decoding: found, as: UTF8.self).contains("uid=alice,ou=people,dc=example,dc=com"))
        #expect(Array(found.suffix(14)) == LDAPEncoder.result(id: 4, .searchDone, LDAPResult(.success)).suffix(14))
        access.withLockedValue { $0.anonymousSearch = false }
        #expect(try search(5) == LDAPEncoder.result(id: 5, .searchDone, LDAPResult(.insufficientAccessRights, diagnosticMessage: "bind first")))
    }

    /// Counts the reads that get past the handler to the socket side.
    final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    @Test("A search the indexes cannot narrow runs on the pool; reads are held until it is answered, and the next request waits")
    func searchOnThePool() throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { try? pool.syncShutdownGracefully() }
        let counter = ReadCounter()
        let channel = try Self.channel(access: { .init(anonymousSearch: true) }, people: 600, pool: pool, reads: counter)
        // (objectClass=*) under the domain: 603 entries to test, more than the inline limit;
        // a root DSE read is pipelined behind it.
        let scan = LDAPTestBytes.search(id: 3, base: "dc=example,dc=com", scope: 2)
        var out = try Self.send(channel, scan + Self.rootDSESearch)
        #expect(out.isEmpty, "answered from the pool, not inline")
        // NIO asks to read while the search runs: the handler holds the read (a handler
        // that never saw reads would let a client that never reads fill memory).
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before, "read passed while the session waits for its search")
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            channel.embeddedEventLoop.run()
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += buffer.readableBytesView }
            if out.suffix(14) == LDAPEncoder.result(id: 2, .searchDone, LDAPResult(.success)).suffix(14) { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains("uid=p599,ou=people,dc=example,dc=com"))
        #expect(counter.reads == before + 1, "the held read is issued once the search is answered")
        // The scan's done message (id 3) comes before anything of the root DSE read (id 2).
        let scanDone = LDAPEncoder.result(id: 3, .searchDone, LDAPResult(.success))
        let scanEnd = out.indices.first { out[$0...].starts(with: scanDone) }
        let rootStart = text.range(of: "namingContexts").map { text.utf8.distance(from: text.startIndex, to: $0.lowerBound) }
        #expect(scanEnd != nil && rootStart != nil && scanEnd! < rootStart!)
    }

    @Test("On a tlsRequired port a simple bind before StartTLS gets confidentialityRequired")
    func tlsRequired() throws {
        let channel = try Self.channel(tlsRequired: true)
        let bind = [0x30, 0x1A, 0x02, 0x01, 0x01, 0x60, 0x15, 0x02, 0x01, 0x03, 0x04, 0x0A] + Array("uid=a,dc=x".utf8)
            + [0x80, 0x04] + Array("pass".utf8)
        let out = try Self.send(channel, bind)
        #expect(out == LDAPEncoder.result(id: 1, .bind, LDAPResult(.confidentialityRequired, diagnosticMessage: "send the StartTLS extended operation first")))
    }

    @Test("Bind names: a DN under ou=people, or an address", arguments: [
        ("uid=alice,ou=people,dc=example,dc=com", "alice@example.com"),
        ("UID=Alice, OU=People, DC=Example, DC=COM", "alice@example.com"),
        ("Alice@Example.com", "alice@example.com"),
        ("cn=alice,ou=people,dc=example,dc=com", nil),
        ("uid=alice,ou=staff,dc=example,dc=com", nil),
        ("uid=alice,dc=example,dc=com", nil),
        ("uid=alice,ou=people,o=example", nil),
        ("alice", nil),
    ] as [(String, String?)])
    func bindNames(name: String, account: String?) {
        #expect(LDAPServerHandler.account(named: name) == account)
    }
}

/// Requests built by hand, with short-form lengths.
enum LDAPTestBytes {
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] { [tag, UInt8(content.count)] + content }

    static func search(id: UInt8, base: String, scope: UInt8) -> [UInt8] {
        let body = tlv(0x04, Array(base.utf8)) + [0x0A, 1, scope, 0x0A, 1, 0, 0x02, 1, 0, 0x02, 1, 0, 0x01, 1, 0]
            + tlv(0x87, Array("objectClass".utf8)) + tlv(0x30, [])
        return tlv(0x30, [0x02, 1, id] + tlv(0x63, body))
    }
}
