import BerthCore
import BerthIMAPServer
import BerthNet
import BerthTestSupport
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOSSL

/// One IMAP session on an `EmbeddedChannel`: the server's handler with the fake store, and
/// helpers that send lines and read what came back.
struct IMAPTestClient {
    let channel: EmbeddedChannel

    static let authGuard = AuthGuard(logger: Logger(label: "test.auth"))
    static let spool = try! TempDirectory()

    static func spec(encryption: Encryption = .none, tlsRequired: Bool = false) -> ListenerSpec {
        ListenerSpec(
            address: "127.0.0.2", family: .ipv4, source: .manual, port: 1143, portID: "1", portName: "imap",
            protocol: .imap, encryption: encryption, tlsRequired: tlsRequired, certificate: nil, hostname: "imap.example.com")
    }

    init(
        _ store: FakeMailboxStore, encryption: Encryption = .none, tlsRequired: Bool = false, allowPlaintext: Bool = true,
        maxAppendSize: Int? = nil, clientAddress: String = "192.0.2.1", tlsContext: NIOSSLContext? = nil,
        authGuard: AuthGuard = IMAPTestClient.authGuard
    ) throws {
        var configuration = IMAPServer.Configuration(spoolDirectory: Self.spool.path, threadPool: nil)
        configuration.allowPlaintextAuth = allowPlaintext
        if let maxAppendSize { configuration.maxAppendSize = maxAppendSize }
        let server = IMAPServer(
            store: store, authenticator: FakeAuthenticator(), authGuard: authGuard, configuration: configuration)
        channel = EmbeddedChannel()
        try server.configure(
            channel: channel,
            connection: ConnectionContext(
                spec: Self.spec(encryption: encryption, tlsRequired: tlsRequired), isImplicitTLS: false, tlsContext: tlsContext,
                clientAddress: clientAddress))
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 40000)).wait()
        channel.embeddedEventLoop.run()
    }

    /// Everything written since the last call.
    func output() throws -> String {
        channel.embeddedEventLoop.run()
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// Sends raw bytes (CRLF included by the caller) and returns the output.
    @discardableResult
    func send(_ text: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: text))
        return try output()
    }

    /// Sends one command line and returns the output.
    @discardableResult
    func command(_ line: String) throws -> String {
        try send(line + "\r\n")
    }

    func login() throws {
        _ = try output()
        let reply = try command("L1 LOGIN alice@example.com secret")
        precondition(reply.contains("L1 OK"), reply)
    }

    func select(_ name: String = "INBOX") throws -> String {
        try command("S1 SELECT \(name)")
    }

    var isActive: Bool { channel.isActive }
}
