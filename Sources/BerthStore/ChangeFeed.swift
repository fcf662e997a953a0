import Foundation

/// Tells listeners of the store that a committed change moved the configuration.
/// Each subscriber gets its own stream; bursts collapse to one pending wake-up.
public final class ChangeFeed: @unchecked Sendable {
    private let lock = NSLock()
    private var continuations: [UUID: AsyncStream<Void>.Continuation] = [:]

    public init() {}

    public func subscribe() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        lock.withLock { continuations[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.lock.withLock { _ = self.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    public func notify() {
        let all = lock.withLock { Array(continuations.values) }
        for continuation in all { continuation.yield() }
    }
}
