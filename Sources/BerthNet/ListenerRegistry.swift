import BerthCore
import Foundation
import Metrics
import NIOConcurrencyHelpers
import Synchronization

/// BINDINGS.md "Listener": runtime state of one (IP, port) assignment.
public struct ListenerStatus: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable {
        case listening, failed, starting, draining, notServing
    }
    public var address: String
    public var port: Int
    public var portId: String
    public var portName: String
    public var `protocol`: MailProtocol
    public var encryption: Encryption
    public var state: State
    @NullEncoded public var error: String?
    public var activeConnections: Int
    public var totalConnections: Int
    public var since: Date
}

/// Connection counters of one socket, shared by its child channels.
public final class ListenerCounters: Sendable {
    let active = Atomic<Int>(0)
    let total = Atomic<Int>(0)
    let totalMetric: Counter
    let activeMetric: Meter

    init(key: ListenerSpec.Key, protocol: MailProtocol) {
        let dimensions = [("address", key.address), ("port", String(key.port)), ("protocol", `protocol`.rawValue)]
        totalMetric = Counter(label: "berth_listener_connections_total", dimensions: dimensions)
        activeMetric = Meter(label: "berth_listener_active_connections", dimensions: dimensions)
    }

    func opened() {
        active.add(1, ordering: .relaxed)
        total.add(1, ordering: .relaxed)
        totalMetric.increment()
        activeMetric.increment()
    }

    func closed() {
        active.subtract(1, ordering: .relaxed)
        activeMetric.decrement()
    }

    func destroyMetrics() {
        totalMetric.destroy()
        activeMetric.destroy()
    }
}

/// The listener table the admin API and /metrics read; written by the listener manager.
public final class ListenerRegistry: Sendable {
    struct Entry {
        var spec: ListenerSpec
        var state: ListenerStatus.State
        var error: String?
        var since: Date
        var counters: ListenerCounters
    }

    private let entries = NIOLockedValueBox<[ListenerSpec.Key: Entry]>([:])

    public init() {}

    func set(_ spec: ListenerSpec, state: ListenerStatus.State, error: String?, counters: ListenerCounters, since: Date) {
        entries.withLockedValue {
            $0[spec.key] = Entry(spec: spec, state: state, error: error, since: since, counters: counters)
        }
    }

    func remove(_ key: ListenerSpec.Key) {
        entries.withLockedValue { _ = $0.removeValue(forKey: key) }
    }

    public func snapshot() -> [ListenerStatus] {
        entries.withLockedValue { entries in
            entries.values.map { entry in
                ListenerStatus(
                    address: entry.spec.address, port: entry.spec.port, portId: entry.spec.portID,
                    portName: entry.spec.portName, protocol: entry.spec.protocol, encryption: entry.spec.encryption,
                    state: entry.state, error: entry.error,
                    activeConnections: entry.counters.active.load(ordering: .relaxed),
                    totalConnections: entry.counters.total.load(ordering: .relaxed), since: entry.since)
            }
        }.sorted { ($0.address, $0.port) < ($1.address, $1.port) }
    }
}
