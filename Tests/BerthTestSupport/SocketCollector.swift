import Foundation
import NIOCore

/// What a socket client received, read from the test's thread (tests over real sockets).
public final class SocketCollector: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = ByteBuffer
    private let lock = NSLock()
    private var received = ""

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: unwrapInboundIn(data))
        lock.withLock { received += text }
    }

    public var text: String { lock.withLock { received } }

    /// Waits, blocking this thread, until `needle` has arrived; false at the timeout.
    public func wait(for needle: String, timeout: Double = 10) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if text.contains(needle) { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    /// Waits, suspending, until `needle` has arrived: everything received so far, or nil at
    /// the timeout.
    public func arrival(of needle: String, timeout: Double = 10) async throws -> String? {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let text = self.text
            if text.contains(needle) { return text }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }
}
