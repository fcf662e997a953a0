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

    @Test("work runs in order at SCHED_IDLE; a boost restores normal priority until the queue is empty")
    func priority() throws {
        let worker = IdleWorker(name: "test-idle-worker", logger: Logger(label: "test.idle"))
        worker.start()
        defer { worker.stop() }
        #expect(Self.eventually { worker.threadID != 0 })
        let tid = worker.threadID
        // Unprivileged (no CAP_SYS_NICE) it could not come back from SCHED_IDLE: it stays normal.
        let idle: Int32 = IdleWorker.canLeaveIdle() ? 1 : 0
        #expect(cberth_thread_is_idle(tid) == idle, "lowest priority while it keeps up")

        let order = Locked<[Int]>([])
        let release = DispatchSemaphore(value: 0)
        worker.submit { _ = release.wait(timeout: .now() + 10) }
        for n in 0..<5 { worker.submit { order.mutate { $0.append(n) } } }
        worker.boost()  // someone waits for the work
        #expect(cberth_thread_is_idle(tid) == 0)
        release.signal()
        #expect(Self.eventually { order.get() == [0, 1, 2, 3, 4] })
        #expect(Self.eventually { cberth_thread_is_idle(tid) == idle }, "idle again once the queue is empty")

        let inside = Locked<Int32>(-2)
        let after = Locked<Int32>(-2)
        worker.submit {
            worker.atNormalPriority { inside.set(cberth_thread_is_idle(cberth_gettid())) }
            after.set(cberth_thread_is_idle(cberth_gettid()))
        }
        #expect(Self.eventually { after.get() != -2 })
        #expect(inside.get() == 0, "normal priority where it holds locks others take")
        #expect(after.get() == idle)
    }

    @Test("a backlog boosts it by itself; after stop, work runs on the caller")
    func backlogAndStop() throws {
        let worker = IdleWorker(name: "test-idle-worker", logger: Logger(label: "test.idle"))
        worker.start()
        #expect(Self.eventually { worker.threadID != 0 })
        let release = DispatchSemaphore(value: 0)
        worker.submit { _ = release.wait(timeout: .now() + 10) }
        for _ in 0..<IdleWorker.backlogBoost { worker.submit {} }
        #expect(cberth_thread_is_idle(worker.threadID) == 0)
        release.signal()
        worker.stop()
        let ran = Locked(false)
        worker.submit { ran.set(true) }
        #expect(ran.get(), "stopped: at once, on the caller's thread")
    }
}
