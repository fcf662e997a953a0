import CBerthSystem
import Foundation
import Logging

/// One thread that runs submitted work in order, with `whileIdle` sections at the lowest
/// CPU priority (SCHED_IDLE): there it gets the processor only when no session thread wants
/// it. For work that follows an acknowledgement (a journaled message's files), so that on a
/// busy machine it waits for a spare moment instead of delaying the next reply.
///
/// Only system calls that hold no lock a session thread takes belong in such a section:
/// the thread runs at normal priority everywhere else (the index rows, freeing memory other
/// threads allocated), so a session never waits behind it while it is preempted. And it must
/// not starve (a flood of TLS handshakes would keep it off the processor for good): `boost`,
/// called by whoever waits for it and by `submit` once a backlog builds, keeps it at normal
/// priority until its queue is empty. Where a thread may not return to normal priority (no
/// CAP_SYS_NICE), it never leaves it.
final class IdleWorker: @unchecked Sendable {
    /// Queued batches at which `submit` boosts the worker.
    static let backlogBoost = 16

    private let name: String
    private let condition = NSCondition()
    private var work: [@Sendable () -> Void] = []
    private var started = false
    private var stopping = false
    private var exited = false
    private let finished = DispatchSemaphore(value: 0)
    private var tid: Int32 = 0
    /// SCHED_IDLE is allowed (the thread can come back from it).
    private var mayIdle = false
    /// Inside a `whileIdle` section, at SCHED_IDLE.
    private var idle = false
    /// `boost` asked for normal priority until the queue is empty.
    private var boosted = false
    private let logger: Logger

    /// The worker thread's id once it runs (0 before).
    var threadID: Int32 { condition.withLock { tid } }

    init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger
    }

    func start() {
        let mayIdle = Self.canLeaveIdle()
        if !mayIdle {
            logger.notice("\(name): runs at normal CPU priority (leaving SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE 20)")
        }
        condition.withLock {
            started = true
            self.mayIdle = mayIdle
        }
        let thread = Thread { [self] in
            condition.withLock { tid = cberth_gettid() }
            run()
            finished.signal()
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

    /// Runs `body` after everything submitted before it; on the caller's thread, at once,
    /// when the worker never started or has ended.
    func submit(_ body: @escaping @Sendable () -> Void) {
        let queued: Bool = condition.withLock {
            guard started, !exited else { return false }
            work.append(body)
            if work.count >= Self.backlogBoost { boostLocked() }
            condition.signal()
            return true
        }
        if !queued { body() }
    }

    /// Normal priority until the queue is empty: someone waits for the work.
    func boost() {
        condition.withLock { boostLocked() }
    }

    private func boostLocked() {
        boosted = true
        if idle, cberth_set_thread_idle(tid, 0) == 0 { idle = false }
    }

    /// Runs `body` (on the worker's thread) at SCHED_IDLE unless boosted: only for system
    /// calls that hold no lock a session thread takes.
    func whileIdle<T>(_ body: () throws -> T) rethrows -> T {
        condition.withLock {
            if mayIdle, !boosted, cberth_set_thread_idle(tid, 1) == 0 { idle = true }
        }
        defer {
            condition.withLock {
                if idle, cberth_set_thread_idle(tid, 0) == 0 { idle = false }
            }
        }
        return try body()
    }

    /// Runs what is queued, then ends the thread; returns when it has (at most `timeout`).
    func stop(timeout: TimeInterval = 30) {
        let running: Bool = condition.withLock {
            stopping = true
            boostLocked()
            condition.signal()
            return started && !exited
        }
        if running, finished.wait(timeout: .now() + timeout) == .timedOut {
            logger.error("\(name) did not finish within \(Int(timeout)) s of the stop")
        }
    }

    private func run() {
        while true {
            let batch: [@Sendable () -> Void] = condition.withLock {
                if work.isEmpty { boosted = false }
                while work.isEmpty && !stopping { condition.wait() }
                if work.isEmpty { exited = true }  // stopping, drained; later work runs inline
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
