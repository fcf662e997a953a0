import CBerthSystem
import Foundation
import Logging

/// One thread that hands submitted items, in order and gathered into groups, to a handler,
/// with `whileIdle` sections at the lowest CPU priority (SCHED_IDLE): there it gets the
/// processor only when no session thread wants it. For work that follows an
/// acknowledgement (a journaled message's files), so that on a busy machine it waits for a
/// spare moment instead of delaying the next reply.
///
/// Items wait up to `gatherDelay` for others to join them: a group costs one wake-up, one
/// pair of priority switches and, for the mail store, one index transaction, however many
/// messages it holds.
///
/// Only system calls that hold no lock a session thread takes belong in an idle section:
/// the thread runs at normal priority everywhere else (the index rows, freeing memory other
/// threads allocated), so a session never waits behind it while it is preempted. And it must
/// not starve (a flood of TLS handshakes would keep it off the processor for good): `boost`,
/// called by whoever waits for it and by `submit` once a backlog builds, ends the gathering
/// and keeps it at normal priority until its queue is empty. Where a thread may not return
/// to normal priority (no CAP_SYS_NICE), it never leaves it.
final class IdleWorker<Item: Sendable>: @unchecked Sendable {
    private let name: String
    private let gatherDelay: TimeInterval
    /// Items at which a group goes without waiting out the delay.
    private let maxGather: Int
    /// Items queued at which `submit` boosts the worker.
    let backlogBoost: Int
    /// Set once, by `start`, before the thread exists; read-only after.
    private var handle: @Sendable ([Item]) -> Void = { _ in preconditionFailure("IdleWorker: submit before start") }
    private let condition = NSCondition()
    private var work: [Item] = []
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

    init(name: String, gatherDelay: TimeInterval = 0, maxGather: Int = 64, backlogBoost: Int = 256, logger: Logger) {
        self.name = name
        self.gatherDelay = gatherDelay
        self.maxGather = maxGather
        self.backlogBoost = backlogBoost
        self.logger = logger
    }

    /// Starts the thread that hands the groups to `handle`.
    func start(_ handle: @escaping @Sendable ([Item]) -> Void) {
        self.handle = handle
        let mayIdle = IdlePriority.isReversible()
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

    /// Hands `item` over after everything submitted before it; on the caller's thread, at
    /// once, once the worker has ended.
    func submit(_ item: Item) {
        let queued: Bool = condition.withLock {
            precondition(started, "IdleWorker: submit before start")
            guard !exited else { return false }
            work.append(item)
            if work.count >= backlogBoost {
                boostLocked()
            } else if work.count == 1 || work.count == maxGather {
                condition.signal()  // a group starts, or is full; in between, no wake-ups
            }
            return true
        }
        if !queued { handle([item]) }
    }

    /// Now, and at normal priority until the queue is empty: someone waits for the work.
    func boost() {
        condition.withLock { boostLocked() }
    }

    private func boostLocked() {
        boosted = true
        if idle, cberth_set_thread_idle(tid, 0) == 0 { idle = false }
        condition.signal()
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

    /// Hands over what is queued, then ends the thread; returns when it has (at most `timeout`).
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
            let group: [Item] = condition.withLock {
                if work.isEmpty { boosted = false }
                while work.isEmpty && !stopping { condition.wait() }
                let deadline = Date(timeIntervalSinceNow: gatherDelay)
                while !work.isEmpty && work.count < maxGather && !boosted && !stopping {
                    if !condition.wait(until: deadline) { break }
                }
                if work.isEmpty { exited = true }  // stopping, drained; later work runs inline
                defer { work.removeAll(keepingCapacity: true) }
                return work
            }
            if group.isEmpty { return }
            handle(group)
        }
    }
}

enum IdlePriority {
    /// Whether a thread of this process may return from SCHED_IDLE to normal priority (an
    /// unprivileged one may not: it would need CAP_SYS_NICE or an RLIMIT_NICE of 20). Tried
    /// on a throwaway thread, since one that could not return would stay idle for good.
    static func isReversible() -> Bool {
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
}

private final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set(_ new: Bool) { lock.withLock { value = new } }
    func get() -> Bool { lock.withLock { value } }
}
