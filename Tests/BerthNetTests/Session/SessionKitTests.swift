import NIOCore
import Testing

@testable import BerthNet

struct ReadGateTests {
    @Test func readsPassWhileOpen() {
        var gate = ReadGate()
        let r1 = gate.readRequested()
        #expect(r1)
        #expect(!gate.readHeld)
    }

    @Test func aReadAskedForWhileClosedIsIssuedWhenTheLastReasonClears() {
        var gate = ReadGate()
        let r2 = gate.set(.sessionBusy, closed: true)
        #expect(!r2)
        let r3 = gate.set(.replyBacklog, closed: true)
        #expect(!r3)
        let r4 = gate.readRequested()
        #expect(!r4, "closed: the read is held")
        #expect(gate.readHeld)
        let r5 = gate.set(.sessionBusy, closed: false)
        #expect(!r5, "still closed by the reply backlog")
        let r6 = gate.set(.replyBacklog, closed: false)
        #expect(r6, "open again: the held read must be issued now")
        #expect(!gate.readHeld)
        let r7 = gate.set(.replyBacklog, closed: false)
        #expect(!r7, "only once")
    }

    @Test func openingWithNoHeldReadIssuesNothing() {
        var gate = ReadGate()
        _ = gate.set(.spoolBacklog, closed: true)
        let r8 = gate.set(.spoolBacklog, closed: false)
        #expect(!r8)
    }
}

struct SessionDeadlineTests {
    static let timeouts = SessionTimeouts(command: .seconds(300), handshake: .seconds(30))

    @Test func eachKindGetsItsOwnTimeout() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        for (kind, seconds) in [(SessionDeadline.Kind.handshake, 30), (.command, 300), (.data, 600)] {
            var deadline = SessionDeadline()
            deadline.arm(kind, now: start, timeouts: Self.timeouts)
            #expect(deadline.expired(at: start + .seconds(Int64(seconds)) - .nanoseconds(1)) == nil)
            #expect(deadline.expired(at: start + .seconds(Int64(seconds))) == kind)
        }
    }

    @Test func disarmedNeverExpires() {
        var deadline = SessionDeadline()
        deadline.arm(.command, now: .uptimeNanoseconds(0), timeouts: Self.timeouts)
        deadline.disarm()
        #expect(deadline.expired(at: .uptimeNanoseconds(UInt64.max / 2)) == nil)
    }

    @Test func dataGetsTwiceTheCommandTimeout() {
        #expect(SessionTimeouts(command: .seconds(3), handshake: .seconds(2)).data == .seconds(6))
    }
}

struct BanTableTests {
    static func table(threshold: Int = 3, window: Int64 = 60, duration: Int64 = 300) -> BanTable {
        var table = BanTable()
        table.policy.threshold = threshold
        table.policy.window = .seconds(window)
        table.policy.duration = .seconds(duration)
        table.policy.failureDelay = .milliseconds(500)
        return table
    }

    static let t0 = NIODeadline.uptimeNanoseconds(10_000_000_000)

    @Test func thresholdFailuresWithinTheWindowBan() {
        var table = Self.table()
        let r9 = table.failure("192.0.2.1", now: Self.t0)
        #expect(!r9)
        let r10 = table.failure("192.0.2.1", now: Self.t0 + .seconds(1))
        #expect(!r10)
        #expect(table.banRemaining("192.0.2.1", now: Self.t0 + .seconds(1)) == nil)
        let r11 = table.failure("192.0.2.1", now: Self.t0 + .seconds(2))
        #expect(r11)
        #expect(table.banRemaining("192.0.2.1", now: Self.t0 + .seconds(2)) == .seconds(300))
        #expect(table.banRemaining("192.0.2.2", now: Self.t0 + .seconds(2)) == nil, "only that client")
    }

    @Test func theBanExpires() {
        var table = Self.table(threshold: 1, duration: 10)
        let r12 = table.failure("c", now: Self.t0)
        #expect(r12)
        #expect(table.banRemaining("c", now: Self.t0 + .seconds(9)) != nil)
        #expect(table.banRemaining("c", now: Self.t0 + .seconds(10)) == nil)
    }

    @Test func failuresOutsideTheWindowAreForgotten() {
        var table = Self.table(threshold: 3, window: 60)
        _ = table.failure("c", now: Self.t0)
        _ = table.failure("c", now: Self.t0 + .seconds(30))
        let r13 = table.failure("c", now: Self.t0 + .seconds(61))
        #expect(!r13, "the first failure left the window")
        let r14 = table.failure("c", now: Self.t0 + .seconds(62))
        #expect(r14)
    }

    @Test func successClearsRecentFailures() {
        var table = Self.table(threshold: 2)
        _ = table.failure("c", now: Self.t0)
        table.success("c")
        let r15 = table.failure("c", now: Self.t0 + .seconds(1))
        #expect(!r15)
    }

    @Test func theDelayGrowsWithEachFailureUpToACap() {
        let table = Self.table()
        #expect(table.delay(forFailure: 1) == .milliseconds(500))
        #expect(table.delay(forFailure: 3) == .milliseconds(1500))
        #expect(table.delay(forFailure: 50) == .milliseconds(5000))
    }
}

struct ConnectionCountsTests {
    @Test func limitsPerListenerAndPerClient() {
        var counts = ConnectionCounts()
        let r16 = counts.admit("a", maxConnections: 3, maxPerClient: 2)
        #expect(r16 == nil)
        let r17 = counts.admit("a", maxConnections: 3, maxPerClient: 2)
        #expect(r17 == nil)
        let r18 = counts.admit("a", maxConnections: 3, maxPerClient: 2)
        #expect(r18 == .clientLimit)
        let r19 = counts.admit("b", maxConnections: 3, maxPerClient: 2)
        #expect(r19 == nil)
        let r20 = counts.admit("c", maxConnections: 3, maxPerClient: 2)
        #expect(r20 == .listenerFull)
        counts.release("a")
        #expect(counts.count(for: "a") == 1)
        let r21 = counts.admit("c", maxConnections: 3, maxPerClient: 2)
        #expect(r21 == nil)
        #expect(counts.total == 3)
    }

    @Test func releasingAnUnknownClientChangesNothing() {
        var counts = ConnectionCounts()
        counts.release("nobody")
        #expect(counts.total == 0)
    }

    @Test(arguments: [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("2001:db8::1", "2001:db8:0:0::/64"),
        ("::1", "0:0:0:0::/64"),
        ("not an address", "not an address"),
    ])
    func clientKeys(_ address: String, _ key: String) {
        #expect(ClientKey.of(address) == key)
    }

    @Test func sessionBudget() {
        let budget = SessionBudget(limit: 2)
        let r22 = budget.take()
        #expect(r22)
        let r23 = budget.take()
        #expect(r23)
        let r24 = budget.take()
        #expect(!r24)
        budget.give()
        let r25 = budget.take()
        #expect(r25)
        #expect(budget.current == 2)
    }
}
