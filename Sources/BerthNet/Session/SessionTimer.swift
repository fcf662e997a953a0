import NIOCore

/// The timer that enforces a session's `SessionDeadline` on its event loop: the SMTP, POP3
/// and IMAP handlers each own one. One scheduled check at a time: moving the deadline
/// later costs nothing (the check runs at the old time, finds the deadline moved and
/// schedules itself again); only an earlier deadline replaces the scheduled check.
///
/// The owner passes `onCheck`, the closure the check runs, to `arm` and `checkDue`; the
/// closure calls `checkDue` and acts on what expired. The closure is not kept here, so the
/// timer holds no reference to its handler. Event-loop bound: every call comes from the loop.
public struct SessionTimer {
    public private(set) var deadline = SessionDeadline()
    private var check: Scheduled<Void>?
    private var checkAt: NIODeadline = .distantFuture

    public init() {}

    /// The kind of deadline the session runs against, nil while it waits for the server.
    public var kind: SessionDeadline.Kind? { deadline.kind }

    /// Starts the clock for `kind` at the loop's `now`.
    public mutating func arm(
        _ kind: SessionDeadline.Kind, timeouts: SessionTimeouts, on eventLoop: any EventLoop,
        onCheck: @escaping () -> Void
    ) {
        deadline.arm(kind, now: eventLoop.now, timeouts: timeouts)
        if deadline.deadline < checkAt {
            check?.cancel()
            schedule(on: eventLoop, onCheck)
        }
    }

    /// The session waits for the server, not the client: no client deadline runs.
    public mutating func disarm() {
        deadline.disarm()
    }

    /// The connection is gone: the scheduled check never runs.
    public mutating func cancel() {
        check?.cancel()
        check = nil
    }

    /// Called first thing by `onCheck`: what expired, if anything. A deadline moved later
    /// gets a check of its own. A session already over (`sessionOpen` false) expires
    /// nothing and is not checked again.
    public mutating func checkDue(
        sessionOpen: Bool, on eventLoop: any EventLoop, onCheck: @escaping () -> Void
    ) -> SessionDeadline.Kind? {
        check = nil
        checkAt = .distantFuture
        guard sessionOpen else { return nil }
        guard let expired = deadline.expired(at: eventLoop.now) else {
            if deadline.kind != nil { schedule(on: eventLoop, onCheck) }
            return nil
        }
        return expired
    }

    private mutating func schedule(on eventLoop: any EventLoop, _ onCheck: @escaping () -> Void) {
        checkAt = deadline.deadline
        check = eventLoop.assumeIsolated().scheduleTask(deadline: checkAt, onCheck)
    }
}
