import Logging
import Metrics
import NIOCore

/// First in the pipeline of a `proxyProtocol` port: reads the PROXY header, then lets the
/// listener admit and set up the session with the client address the header gave, hands
/// the bytes after the header on, and leaves. A connection that sends no valid header in
/// time is closed; nothing of it reaches a protocol.
final class ProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var buffer = ByteBuffer()
    private var timer: Scheduled<Void>?
    private var done = false
    private let timeout: TimeAmount
    private let logger: Logger
    /// Sets up the session for this client address (admission, TLS, the protocol).
    private let start: (String) throws -> Void

    init(timeout: TimeAmount, logger: Logger, start: @escaping (String) throws -> Void) {
        self.timeout = timeout
        self.logger = logger
        self.start = start
    }

    static func refuse(_ reason: String, logger: Logger, context: ChannelHandlerContext) {
        logger.notice("refused", metadata: ["reason": .string("PROXY protocol: \(reason)")])
        Counter(label: "berth_proxy_refused_total").increment()
        context.close(promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = loopBound.value
            guard !handler.done else { return }
            handler.done = true
            Self.refuse("no header within \(handler.timeout.nanoseconds / 1_000_000_000) s", logger: handler.logger, context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        switch ProxyHeader.parse(buffer.readableBytesView) {
        case .needMoreData:
            return
        case .invalid(let reason):
            done = true
            Self.refuse(reason, logger: logger, context: context)
        case .header(let header, let length):
            done = true
            timer?.cancel()
            buffer.moveReaderIndex(forwardBy: length)
            let client: String
            switch header {
            case .proxied(let source, _): client = source
            case .local: client = context.channel.remoteAddress?.ipAddress ?? "unknown"
            }
            do {
                try start(client)
            } catch {
                context.close(promise: nil)
                return
            }
            if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
            buffer = ByteBuffer()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
