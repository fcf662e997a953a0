import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

@testable import BerthDNS

/// A DNS server in-process on 127.0.0.1, UDP and TCP on one port, answering with whatever
/// `respond` returns for each query: zero, one or several messages.
final class FakeDNSServer: Sendable {
    typealias Respond = @Sendable (_ query: DNSMessage, _ overTCP: Bool) -> [[UInt8]]

    let address: SocketAddress
    private let udp: any Channel
    private let tcp: any Channel
    private let log: NIOLockedValueBox<[String]>

    /// "udp MX example.net", "tcp TXT big.example", … in arrival order.
    var queries: [String] { log.withLockedValue { $0 } }

    private init(address: SocketAddress, udp: any Channel, tcp: any Channel, log: NIOLockedValueBox<[String]>) {
        self.address = address
        self.udp = udp
        self.tcp = tcp
        self.log = log
    }

    static func start(group: any EventLoopGroup, respond: @escaping Respond) async throws -> FakeDNSServer {
        let log = NIOLockedValueBox<[String]>([])
        let record: @Sendable (DNSMessage, String) -> Void = { query, transport in
            let question = query.questions.first
            log.withLockedValue { $0.append("\(transport) \(question?.type.description ?? "?") \(question?.name ?? "?")") }
        }
        var lastError: (any Error)?
        for _ in 0..<20 {
            let udp = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPResponder(respond: respond, record: record))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            let address = udp.localAddress!
            do {
                let tcp = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                            try channel.pipeline.syncOperations.addHandler(TCPResponder(respond: respond, record: record))
                        }
                    }
                    .bind(to: address).get()
                return FakeDNSServer(address: address, udp: udp, tcp: tcp, log: log)
            } catch {
                lastError = error
                try await udp.close()
            }
        }
        throw lastError!
    }

    func stop() async {
        try? await udp.close()
        try? await tcp.close()
    }

    private final class UDPResponder: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let respond: Respond
        let record: @Sendable (DNSMessage, String) -> Void

        init(respond: @escaping Respond, record: @escaping @Sendable (DNSMessage, String) -> Void) {
            self.respond = respond
            self.record = record
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let query = try? DNSMessage(parsing: Array(envelope.data.readableBytesView)) else { return }
            record(query, "udp")
            for reply in respond(query, false) {
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: reply))), promise: nil)
            }
            context.flush()
        }
    }

    private final class TCPResponder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let respond: Respond
        let record: @Sendable (DNSMessage, String) -> Void

        init(respond: @escaping Respond, record: @escaping @Sendable (DNSMessage, String) -> Void) {
            self.respond = respond
            self.record = record
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let query = try? DNSMessage(parsing: Array(unwrapInboundIn(data).readableBytesView)) else { return }
            record(query, "tcp")
            for reply in respond(query, true) {
                var buffer = context.channel.allocator.buffer(capacity: reply.count + 2)
                buffer.writeInteger(UInt16(reply.count))
                buffer.writeBytes(reply)
                context.write(wrapOutboundOut(buffer), promise: nil)
            }
            context.flush()
        }
    }
}

/// A response to `query`, echoing its id and question unless told otherwise.
func reply(
    to query: DNSMessage, id: UInt16? = nil, name: String? = nil, rcode: UInt8 = 0, truncated: Bool = false,
    an: UInt16 = 0, ns: UInt16 = 0, _ body: (inout WireBuilder) -> Void = { _ in }
) -> [UInt8] {
    let question = query.questions[0]
    return response(name ?? question.name, question.type, id: id ?? query.header.id, rcode: rcode, truncated: truncated, an: an, ns: ns, body)
}
