import CBerthSystem
import Foundation
import Logging
import Testing
@testable import BerthStore

@Suite("Idle worker")
struct IdleWorkerTests {
    static func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while !condition() {
            if Date() > deadline { return false }
            Thread.sleep(forTimeInterval: 0.002)
        }
        return true
    }

    static func priority() -> Int32 { cberth_thread_is_idle(cberth_gettid()) }

    typealias Job = @Sendable () -> Void

    /// A worker whose items are closures, run in order.
    static func started(backlogBoost: Int = 256) -> IdleWorker<Job> {
        let worker = IdleWorker<Job>(name: "test-idle-worker", backlogBoost: backlogBoost, logger: Logger(label: "test.idle"))
        worker.start { jobs in for job in jobs { job() } }
        return worker
    }

    @Test("work runs in order at normal priority; whileIdle sections at SCHED_IDLE unless boosted")
    func priorities() throws {
        let worker = Self.started()
        defer { worker.stop() }
        // Unprivileged (no CAP_SYS_NICE) it could not come back from SCHED_IDLE: never idle.
        let idle: Int32 = IdlePriority.isReversible() ? 1 : 0
        let seen = Locked<[String]>([])
        let release = DispatchSemaphore(value: 0)
        worker.submit {
            _ = release.wait(timeout: .now() + 10)
            seen.mutate { $0.append("outside \(Self.priority())") }
            worker.whileIdle { seen.mutate { $0.append("inside \(Self.priority())") } }
        }
        for n in 0..<3 { worker.submit { seen.mutate { $0.append("job \(n)") } } }
        release.signal()
        #expect(Self.eventually { seen.get().count == 5 })
        #expect(seen.get() == ["outside 0", "inside \(idle)", "job 0", "job 1", "job 2"])

        // Boosted (someone waits for the work): not idle even inside, until the queue empties.
        let hold = DispatchSemaphore(value: 0)
        let boosted = Locked<Int32>(-2)
        worker.submit { _ = hold.wait(timeout: .now() + 10) }
        worker.submit { worker.whileIdle { boosted.set(Self.priority()) } }
        worker.boost()
        hold.signal()
        #expect(Self.eventually { boosted.get() != -2 })
        #expect(boosted.get() == 0)
        var sawIdle = false
        for _ in 0..<100 where !sawIdle {
            let later = Locked<Int32>(-2)
            worker.submit { worker.whileIdle { later.set(Self.priority()) } }
            #expect(Self.eventually { later.get() != -2 })
            sawIdle = later.get() == idle
            if !sawIdle { Thread.sleep(forTimeInterval: 0.01) }
        }
        #expect(sawIdle, "idle sections again once the boosted queue emptied")
    }

    @Test("a backlog boosts it by itself; stop drains the queue, later work runs on the caller")
    func backlogAndStop() throws {
        let worker = Self.started(backlogBoost: 16)
        let release = DispatchSemaphore(value: 0)
        let inside = Locked<Int32>(-2)
        worker.submit { _ = release.wait(timeout: .now() + 10) }
        for _ in 0..<worker.backlogBoost { worker.submit {} }
        worker.submit { worker.whileIdle { inside.set(Self.priority()) } }
        let count = Locked(0)
        for _ in 0..<10 { worker.submit { count.mutate { $0 += 1 } } }
        release.signal()
        worker.stop()
        #expect(inside.get() == 0, "boosted by the backlog")
        #expect(count.get() == 10, "stop ran everything queued before it returned")
        let caller = cberth_gettid()
        let ranOn = Locked<Bool?>(nil)
        worker.submit { ranOn.set(cberth_gettid() == caller) }
        #expect(ranOn.get() == true, "ended: at once, on the caller's thread")
    }

    @Test("items submitted within the gather delay reach the handler as one group; a full group, a boost and a stop end the wait")
    func gathering() throws {
        let worker = IdleWorker<Int>(name: "test-idle-worker", gatherDelay: 0.5, logger: Logger(label: "test.idle"))
        let groups = Locked<[[Int]]>([])
        worker.start { group in groups.mutate { $0.append(group) } }
        defer { worker.stop() }
        let started = Date()
        for n in 1...5 { worker.submit(n) }
        #expect(Self.eventually { groups.get().count == 1 })
        #expect(groups.get() == [[1, 2, 3, 4, 5]])
        #expect(Date().timeIntervalSince(started) >= 0.5, "waited out the delay for more")

        // A minute's delay: a full group, someone waiting for the work (a boost) and a stop
        // each end it.
        let slow = IdleWorker<Int>(name: "test-idle-worker", gatherDelay: 60, maxGather: 3, logger: Logger(label: "test.idle"))
        let slowGroups = Locked<[[Int]]>([])
        slow.start { group in slowGroups.mutate { $0.append(group) } }
        for n in 7...9 { slow.submit(n) }
        #expect(Self.eventually { slowGroups.get().count == 1 })
        slow.submit(6)
        slow.boost()
        #expect(Self.eventually { slowGroups.get().count == 2 })
        slow.submit(10)
        slow.stop(timeout: 10)
        #expect(slowGroups.get() == [[7, 8, 9], [6], [10]])
    }
}
