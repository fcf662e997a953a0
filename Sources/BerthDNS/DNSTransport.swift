#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// Why one try at one server got no answer.
enum DNSTransportFailure: Error, CustomStringConvertible {
    case timedOut(TimeAmount)
    case closedEarly
    case malformed(DNSMessageError)

    var description: String {
        switch self {
        case .timedOut(let timeout):
            timeout.nanoseconds % 1_000_000_000 == 0
                ? "timed out after \(timeout.nanoseconds / 1_000_000_000) s"
                : "timed out after \(timeout.nanoseconds / 1_000_000) ms"
        case .closedEarly: "closed the TCP connection without an answer"
        case .malformed(let error): "sent a malformed answer (\(error))"
        }
    }

    /// Why a server gave no answer, for the timeout message.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let failure as DNSTransportFailure: failure.description
        case let error as IOError where error.errnoCode == ECONNREFUSED: "refused the query (nothing listening)"
        default: "failed (\(error))"
        }
    }
}

/// One query, one server, one transport: completes `promise` with the first matching answer,
/// ignoring everything else until the caller's timeout fails it.
final class DNSUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let query: DNSQuery
    private let promise: EventLoopPromise<DNSMessage>

    init(query: DNSQuery, promise: EventLoopPromise<DNSMessage>) {
        self.query = query
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        switch DNSReply(Array(envelope.data.readableBytesView), to: query, maximumSize: DNSLimits.udpResponseSize) {
        case .ignore: break
        case .answer(let message): promise.succeed(message)
        case .malformed(let error): promise.fail(DNSTransportFailure.malformed(error))
        }
    }

    /// A connected UDP socket reports ICMP port unreachable as ECONNREFUSED: no server there,
    /// so the next one is tried at once rather than after the timeout.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
    }
}

/// RFC 1035 §4.2.2: each TCP message is preceded by a 2-octet length.
struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

final class DNSTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let query: DNSQuery
    private let promise: EventLoopPromise<DNSMessage>

    init(query: DNSQuery, promise: EventLoopPromise<DNSMessage>) {
        self.query = query
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        let message = query.encoded()
        var buffer = context.channel.allocator.buffer(capacity: message.count + 2)
        buffer.writeInteger(UInt16(message.count))
        buffer.writeBytes(message)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch DNSReply(Array(frame.readableBytesView), to: query, maximumSize: DNSLimits.tcpResponseSize) {
        case .ignore: break
        case .answer(let message): promise.succeed(message)
        case .malformed(let error): promise.fail(DNSTransportFailure.malformed(error))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSTransportFailure.closedEarly)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

extension DNSResolver {
    /// One query over UDP from a fresh connected socket: a random source port per query
    /// (RFC 5452 §9.2), and the kernel drops datagrams from any other address.
    func exchangeUDP(_ query: DNSQuery, server: SocketAddress) async throws -> DNSMessage {
        let loop = group.next()
        let promise = loop.makePromise(of: DNSMessage.self)
        let channel = DatagramBootstrap(group: loop)
            // One octet more than the limit, so an oversized datagram is refused, not cut.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: DNSLimits.udpResponseSize + 1))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSUDPHandler(query: query, promise: promise))
                }
            }
            .connect(to: server)
        channel.whenComplete { result in
            switch result {
            case .success(let channel):
                let written = channel.writeAndFlush(ByteBuffer(bytes: query.encoded()))
                written.whenFailure { promise.fail($0) }
            case .failure(let error):
                promise.fail(error)
            }
        }
        return try await wait(for: promise, closing: channel)
    }

    /// One query over TCP (RFC 7766), after a truncated UDP answer.
    func exchangeTCP(_ query: DNSQuery, server: SocketAddress) async throws -> DNSMessage {
        let loop = group.next()
        let promise = loop.makePromise(of: DNSMessage.self)
        let channel = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(DNSTCPHandler(query: query, promise: promise))
                }
            }
            .connect(to: server)
        channel.whenFailure { promise.fail($0) }
        return try await wait(for: promise, closing: channel)
    }

    /// Waits for the answer at most `timeout`, then closes the channel whatever happened.
    private func wait(for promise: EventLoopPromise<DNSMessage>, closing channel: EventLoopFuture<any Channel>) async throws -> DNSMessage {
        let timeout = self.timeout
        let timer = promise.futureResult.eventLoop.scheduleTask(in: timeout) {
            promise.fail(DNSTransportFailure.timedOut(timeout))
        }
        promise.futureResult.whenComplete { _ in
            timer.cancel()
            channel.whenSuccess { $0.close(promise: nil) }
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }
}
