import CBerthSystem
import Foundation
import Logging

/// One thread that runs submitted work in order, at the lowest CPU priority (SCHED_IDLE)
/// while it keeps up: it gets the processor only when no session thread wants it. For work
/// that follows an acknowledgement (a journaled message's files and rows), so that on a
/// busy machine it waits for a spare moment instead of delaying the next reply.
///
/// It must not starve, though (a flood of TLS handshakes would keep it off the processor
/// for good, and with it delivery): `boost` puts it back at normal priority, and whoever
/// waits for it calls that, as does `submit` once a backlog builds; it drops back when its
/// queue is empty. Where a thread may not return to normal priority (no CAP_SYS_NICE),
/// it runs at normal priority throughout.
final class IdleWorker: @unchecked Sendable {
    /// Queued batches at which `submit` boosts the worker.
    static let backlogBoost = 16

    private let name: String
    private let condition = NSCondition()
    private var work: [@Sendable () -> Void] = []
    private var stopping = false
    private var started = false
    private var tid: Int32 = 0
    /// The worker thread's id once it runs (0 before).
    var threadID: Int32 { condition.withLock { tid } }
    private var idle = false
    /// The thread went to SCHED_IDLE at start (and may come back from it).
    private var mayIdle = false
    /// `boost` asked for normal priority until the queue is empty.
    private var boosted = false
    private let logger: Logger

    init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger
    }

    func start() {
        condition.withLock { started = true }
        let mayIdle = Self.canLeaveIdle()
        if !mayIdle {
            logger.notice("\(name): runs at normal CPU priority (leaving SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE 20)")
        }
        let thread = Thread { [self] in
            let tid = cberth_gettid()
            let idle = mayIdle && cberth_set_thread_idle(tid, 1) == 0
            condition.withLock {
                self.tid = tid
                self.idle = idle
                self.mayIdle = idle
            }
            run()
        }
        thread.name = name
        thread.start()
    }

    /// Whether a thread of this process may return from SCHED_IDLE to normal priority (an
    /// unprivileged one may not: it would need CAP_SYS_NICE or an RLIMIT_NICE of 20). Tried
    /// on a throwaway thread, since one that could not return would stay idle for good.
    static func canLeaveIdle() -> Bool {
        let result = LockedFlag()
        let done = DispatchSemaphore(value: 0)
        let probe = Thread {
            let tid = cberth_gettid()
            result.set(cberth_set_thread_idle(tid, 1) == 0 && cberth_set_thread_idle(tid, 0) == 0)
            done.signal()
        }
        probe.start()
        done.wait()
        return result.get()
    }

    /// Runs `body` after everything submitted before it (at once on the caller's thread
    /// once stopping, or if never started).
    func submit(_ body: @escaping @Sendable () -> Void) {
        let queued: Bool = condition.withLock {
            guard started, !stopping else { return false }
            work.append(body)
            if work.count >= Self.backlogBoost { boostLocked() }
            condition.signal()
            return true
        }
        if !queued { body() }
    }

    /// Back to normal priority until the queue is empty: someone waits for the work.
    func boost() {
        condition.withLock { boostLocked() }
    }

    private func boostLocked() {
        boosted = true
        guard idle, tid != 0 else { return }
        if cberth_set_thread_idle(tid, 0) == 0 { idle = false }
    }

    /// Runs `body` (on the worker's thread) at normal priority: for parts that hold locks
    /// session threads take (the database's writer, the journal's, an event loop's task
    /// queue), which an idle thread could be preempted inside, leaving a session waiting.
    func atNormalPriority<T>(_ body: () throws -> T) rethrows -> T {
        let lowered: Bool = condition.withLock {
            guard idle, cberth_set_thread_idle(tid, 0) == 0 else { return false }
            idle = false
            return true
        }
        defer {
            if lowered {
                condition.withLock {
                    if !boosted && cberth_set_thread_idle(tid, 1) == 0 { idle = true }
                }
            }
        }
        return try body()
    }

    /// Runs what is queued, then ends the thread.
    func stop() {
        condition.withLock {
            stopping = true
            boostLocked()
            condition.signal()
        }
    }

    private func run() {
        while true {
            let batch: [@Sendable () -> Void] = condition.withLock {
                if work.isEmpty && !stopping && mayIdle {
                    boosted = false
                    if !idle && cberth_set_thread_idle(tid, 1) == 0 { idle = true }
                }
                while work.isEmpty && !stopping { condition.wait() }
                defer { work.removeAll(keepingCapacity: true) }
                return work
            }
            if batch.isEmpty { return }
            for body in batch { body() }
        }
    }
}

private final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set(_ new: Bool) { lock.withLock { value = new } }
    func get() -> Bool { lock.withLock { value } }
}
