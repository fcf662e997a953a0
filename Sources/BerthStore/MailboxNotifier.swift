import BerthCore
import Foundation

/// Tells sessions that a folder changed (IDLE push, EXISTS on NOOP, another session's
/// flags and expunges). In-process: every change goes through this server's store or its
/// Maildir writer, which both call `notify` after their commit.
public final class MailboxNotifier: @unchecked Sendable {
    private let lock = NSLock()
    private var observers: [Int64: [ObjectIdentifier: @Sendable () -> Void]] = [:]

    public init() {}

    public func observe(_ mailboxID: Int64, onChange: @escaping @Sendable () -> Void) -> any MailboxObservation {
        let observation = Observation(notifier: self, mailboxID: mailboxID)
        lock.withLock { observers[mailboxID, default: [:]][ObjectIdentifier(observation)] = onChange }
        return observation
    }

    /// Calls every observer of the folders, outside the lock.
    public func notify(_ mailboxIDs: some Sequence<Int64>) {
        let callbacks = lock.withLock { Set(mailboxIDs).flatMap { observers[$0].map { Array($0.values) } ?? [] } }
        for callback in callbacks { callback() }
    }

    public func notify(_ mailboxID: Int64) { notify([mailboxID]) }

    var observerCount: Int { lock.withLock { observers.values.reduce(0) { $0 + $1.count } } }

    fileprivate func remove(_ observation: Observation) {
        lock.withLock {
            observers[observation.mailboxID]?[ObjectIdentifier(observation)] = nil
            if observers[observation.mailboxID]?.isEmpty == true { observers[observation.mailboxID] = nil }
        }
    }

    fileprivate final class Observation: MailboxObservation, @unchecked Sendable {
        weak var notifier: MailboxNotifier?
        let mailboxID: Int64

        init(notifier: MailboxNotifier, mailboxID: Int64) {
            self.notifier = notifier
            self.mailboxID = mailboxID
        }

        func cancel() { notifier?.remove(self) }

        deinit { notifier?.remove(self) }
    }
}

/// RFC 1939 §8: one POP3 session per maildrop, held until the session ends.
final class MaildropLocks: @unchecked Sendable {
    private let lock = NSLock()
    private var held: Set<MailAccount> = []

    func acquire(_ account: MailAccount) -> (any MailboxObservation)? {
        let acquired = lock.withLock { held.insert(account).inserted }
        return acquired ? Hold(locks: self, account: account) : nil
    }

    fileprivate func release(_ account: MailAccount) {
        _ = lock.withLock { held.remove(account) }
    }

    private final class Hold: MailboxObservation, @unchecked Sendable {
        private let locks: MaildropLocks
        private let account: MailAccount
        private let released = NSLock()
        private var done = false

        init(locks: MaildropLocks, account: MailAccount) {
            self.locks = locks
            self.account = account
        }

        func cancel() {
            let first = released.withLock { () -> Bool in
                defer { done = true }
                return !done
            }
            if first { locks.release(account) }
        }

        deinit { cancel() }
    }
}
