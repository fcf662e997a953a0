import BerthCore
import BerthIMAP
import BerthNet
import Foundation
import NIOCore

/// The authenticated state (RFC 3501 §6.3) and its extensions: folders, APPEND, ENABLE,
/// IDLE, QUOTA.
extension IMAPServerHandler {
    // MARK: SELECT / EXAMINE (§6.3.1, §6.3.2; RFC 7162 §3.1.8, §3.2.5)

    func select(tag: String, name: IMAPMailboxName, parameters: [IMAPSelectParameter], readOnly: Bool) {
        guard let account else { return }
        var qresync: IMAPQResyncParameter?
        for parameter in parameters {
            switch parameter {
            case .condStore: condStoreEnabled = true
            case .qresync(let value):
                // RFC 7162 §3.2.5: only after ENABLE QRESYNC.
                guard qresyncEnabled else { return bad(tag, "QRESYNC must be enabled first") }
                qresync = value
            }
        }
        if selected != nil {
            deselect()
            // RFC 7162 §3.2.11: tells a QRESYNC client where the old folder's responses end.
            if qresyncEnabled { write(.untagged(.ok, code: .closed, text: "Previous mailbox closed")) }
        }
        let mailboxName = IMAPMailboxList.canonical(name)
        let store = server.store
        let resync = qresync
        storeCommand(tag, { () throws -> (MailboxSnapshot, MailboxChanges?, [UInt32], Int) in
            let snapshot = try store.snapshot(mailboxName, of: account)
            var changes: MailboxChanges?
            if let resync, resync.uidValidity == snapshot.mailbox.uidValidity {
                changes = try store.changes(in: snapshot.mailbox.id, of: account, since: resync.modSeq)
            }
            // RFC 3501 §6.3.2: EXAMINE leaves \Recent as it is (it reports, claims nothing).
            let unclaimed = snapshot.unclaimedRecent
            let claimed = readOnly || unclaimed == 0 ? [] : try store.claimRecent(in: snapshot.mailbox.id, of: account)
            return (snapshot, changes, claimed, readOnly ? unclaimed : 0)
        }) { snapshot, changes, claimed, unclaimed in
            var view = SelectedMailbox(snapshot: snapshot, readOnly: readOnly)
            let known = Set(snapshot.messages.map(\.uid))
            view.recent = Set(claimed.filter { known.contains($0) })
            view.condStore = self.condStoreEnabled
            view.qresync = self.qresyncEnabled
            self.selected = view
            self.changesNoticed = false
            self.observe(view.mailboxID, account)
            self.writeSelectResponses(view, recent: readOnly ? unclaimed : view.recent.count)
            if let resync, let changes { self.writeQResync(resync, changes, view) }
            self.log.event(readOnly ? "examine" : "select", [
                "mailbox": .string(view.name), "messages": .stringConvertible(view.count),
            ])
            self.complete(tag, .ok, code: readOnly ? .readOnly : .readWrite, text: readOnly ? "EXAMINE completed" : "SELECT completed")
        }
    }

    private func writeSelectResponses(_ view: SelectedMailbox, recent: Int) {
        write(view.flagResponses)
        write(.data(.exists(UInt32(view.count))))
        write(.data(.recent(UInt32(recent))))
        if let first = view.messages.firstIndex(where: { !$0.flags.system.contains(.seen) }) {
            write(.untagged(.ok, code: .unseen(UInt32(first + 1)), text: "First unseen"))
        }
        write(.untagged(.ok, code: .uidValidity(view.uidValidity), text: "UIDs valid"))
        write(.untagged(.ok, code: .uidNext(view.uidNext), text: "Predicted next UID"))
        write(.untagged(.ok, code: .highestModSeq(view.highestModSeq), text: "Highest"))
    }

    /// RFC 7162 §3.2.5.1: what changed since the client's MODSEQ: `VANISHED (EARLIER)` for
    /// expunged UIDs (of those the client says it knows), FETCH for changed messages.
    private func writeQResync(_ parameter: IMAPQResyncParameter, _ changes: MailboxChanges, _ view: SelectedMailbox) {
        var vanished = changes.expunged
        if let known = parameter.knownUIDs {
            let last = vanished.max() ?? 0
            vanished = vanished.filter { IMAPSearch.contains(known, $0, last: max(last, view.uidNext)) }
        }
        if !vanished.isEmpty { write(.data(.vanished(earlier: true, SelectedMailbox.sequenceSet(vanished)))) }
        for record in changes.changed {
            guard let seq = view.sequenceNumber(of: record.uid), let current = view.record(uid: record.uid) else { continue }
            write(.data(.fetch(UInt32(seq), [.uid(current.uid), .flags(IMAPFlags.imapFlags(current.flags)), .modSeq(current.modSeq)])))
        }
    }

    /// Watches the selected folder; changes are reported in IDLE at once, otherwise at the
    /// end of the next command. Only while selected (`deselect` cancels it).
    private func observe(_ mailboxID: Int64, _ account: MailAccount) {
        observation?.cancel()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        observation = server.store.observe(mailboxID, of: account) {
            eventLoop.execute { bound.value.changeNoticed() }
        }
    }

    func deselect() {
        observation?.cancel()
        observation = nil
        selected = nil
        messageCache = nil
        changesNoticed = false
    }

    // MARK: CREATE, DELETE, RENAME, SUBSCRIBE (§6.3.3-§6.3.7)

    func create(tag: String, name: IMAPMailboxName) {
        guard let account else { return }
        let mailboxName = IMAPMailboxList.canonical(name)
        guard mailboxName != "INBOX" else {
            return complete(tag, .no, code: .alreadyExists, text: "INBOX always exists")
        }
        let store = server.store
        storeCommand(tag, { try store.createMailbox(mailboxName, of: account) }) { _ in
            self.log.event("create", ["mailbox": .string(mailboxName)])
            self.complete(tag, .ok, text: "CREATE completed")
        }
    }

    func delete(tag: String, name: IMAPMailboxName) {
        guard let account else { return }
        let mailboxName = IMAPMailboxList.canonical(name)
        let store = server.store
        storeCommand(tag, { try store.deleteMailbox(mailboxName, of: account) }) { _ in
            self.log.event("delete", ["mailbox": .string(mailboxName)])
            if self.selected?.name == mailboxName { self.deselect() }
            self.complete(tag, .ok, text: "DELETE completed")
        }
    }

    func rename(tag: String, from: IMAPMailboxName, to: IMAPMailboxName) {
        guard let account else { return }
        let old = IMAPMailboxList.canonical(from), new = IMAPMailboxList.canonical(to)
        let store = server.store
        storeCommand(tag, { try store.renameMailbox(old, to: new, of: account) }) { _ in
            self.log.event("rename", ["mailbox": .string(old), "to": .string(new)])
            self.complete(tag, .ok, text: "RENAME completed")
        }
    }

    func subscribe(tag: String, name: IMAPMailboxName, _ subscribed: Bool) {
        guard let account else { return }
        let mailboxName = IMAPMailboxList.canonical(name)
        let store = server.store
        storeCommand(tag, { try store.setSubscribed(mailboxName, subscribed, of: account) }) { _ in
            self.complete(tag, .ok, text: subscribed ? "SUBSCRIBE completed" : "UNSUBSCRIBE completed")
        }
    }

    // MARK: LIST, LSUB, STATUS (§6.3.8-§6.3.10; RFC 5258, RFC 5819)

    func list(tag: String, _ command: IMAPListCommand) {
        guard let account else { return }
        // RFC 3501 §6.3.8: an empty pattern asks for the delimiter and the root.
        if command.patterns == [""] && command.selectOptions.isEmpty {
            write(.data(.list(IMAPListItem(attributes: ["\\Noselect"], delimiter: IMAPMailboxList.delimiter, mailbox: IMAPMailboxName("")))))
            return complete(tag, .ok, text: "LIST completed")
        }
        var requested: [IMAPStatusAttribute]?
        for option in command.returnOptions {
            if case .status(let attributes) = option { requested = attributes }
        }
        let statusAttributes = requested
        let store = server.store
        storeCommand(tag, { () throws -> ([IMAPMailboxList.Entry], [String: MailboxStatus]) in
            let entries = IMAPMailboxList.list(try store.mailboxes(of: account), command)
            var statuses: [String: MailboxStatus] = [:]
            if statusAttributes != nil {
                for entry in entries {
                    guard let mailbox = entry.mailbox else { continue }
                    statuses[mailbox.name] = try? store.status(mailbox.name, of: account)
                }
            }
            return (entries, statuses)
        }) { entries, statuses in
            for entry in entries {
                self.write(.data(.list(entry.item)))
                if let statusAttributes, let mailbox = entry.mailbox, let status = statuses[mailbox.name] {
                    self.write(.data(.status(IMAPMailboxName(mailbox.name), IMAPMailboxList.statusValues(status, statusAttributes))))
                }
            }
            self.complete(tag, .ok, text: "LIST completed")
        }
    }

    func lsub(tag: String, reference: IMAPMailboxName, pattern: String) {
        guard let account else { return }
        let store = server.store
        storeCommand(tag, { try store.mailboxes(of: account) }) { mailboxes in
            for item in IMAPMailboxList.lsub(mailboxes, reference: reference.name, pattern: pattern) {
                self.write(.data(.lsub(item)))
            }
            self.complete(tag, .ok, text: "LSUB completed")
        }
    }

    func status(tag: String, name: IMAPMailboxName, attributes: [IMAPStatusAttribute]) {
        guard let account else { return }
        let mailboxName = IMAPMailboxList.canonical(name)
        let store = server.store
        storeCommand(tag, { try store.status(mailboxName, of: account) }) { status in
            self.write(.data(.status(IMAPMailboxName(mailboxName), IMAPMailboxList.statusValues(status, attributes))))
            self.complete(tag, .ok, text: "STATUS completed")
        }
    }

    // MARK: ENABLE (RFC 5161), IDLE (RFC 2177)

    func enable(tag: String, _ names: [String]) {
        var enabled: [String] = []
        for name in names.map({ $0.uppercased() }) {
            switch name {
            case "CONDSTORE" where !condStoreEnabled:
                condStoreEnabled = true
                enabled.append(name)
            case "QRESYNC" where !qresyncEnabled:
                // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                qresyncEnabled = true
                condStoreEnabled = true
                enabled.append(name)
            default: break
            }
        }
        selected?.condStore = condStoreEnabled
        selected?.qresync = qresyncEnabled
        write(.data(.enabled(enabled)))
        complete(tag, .ok, text: "ENABLE completed")
    }

    func idle(tag: String) {
        mode = .idle(tag: tag)
        // An IDLE session may stay for hours: it keeps no message in memory meanwhile.
        messageCache = nil
        write(.continuation("idling"))
        // What is pending goes out now; later changes as they happen.
        if selected != nil {
            changesNoticed = true
            pushIfIdle()
        }
        settle(commandDone: true)
    }

    // MARK: QUOTA (RFC 9208): one root "" over the whole account, STORAGE in KiB

    func getQuota(tag: String, root: String) {
        guard let account else { return }
        guard root.isEmpty else { return complete(tag, .no, code: .nonExistent, text: "No such quota root") }
        let store = server.store
        storeCommand(tag, { try store.quota(of: account) }) { usage in
            guard let resource = Self.storage(usage) else {
                return self.complete(tag, .no, code: .nonExistent, text: "No quota is set")
            }
            self.write(.data(.quota(root: "", [resource])))
            self.complete(tag, .ok, text: "GETQUOTA completed")
        }
    }

    func getQuotaRoot(tag: String, name: IMAPMailboxName) {
        guard let account else { return }
        let store = server.store
        storeCommand(tag, { try store.quota(of: account) }) { usage in
            let resource = Self.storage(usage)
            self.write(.data(.quotaRoot(name, roots: resource == nil ? [] : [""])))
            if let resource { self.write(.data(.quota(root: "", [resource]))) }
            self.complete(tag, .ok, text: "GETQUOTAROOT completed")
        }
    }

    private static func storage(_ usage: QuotaUsage) -> IMAPQuotaResource? {
        guard let limit = usage.limitBytes else { return nil }
        return IMAPQuotaResource(name: "STORAGE", usage: UInt64((usage.usedBytes + 1023) / 1024), limit: UInt64(limit / 1024))
    }

    // MARK: APPEND (§6.3.11; RFC 4315 APPENDUID)

    /// The message literal begins: spool it while it arrives (a few KiB of memory whatever
    /// its size), or read and drop it when the client may not append.
    func beginAppend(tag: String?, size: Int) {
        appendNumber += 1
        var spool: MessageSpool?
        if account != nil {
            spool = MessageSpool(
                directory: server.configuration.spoolDirectory, name: "\(connection.sessionID).imap.\(appendNumber)",
                prefix: [], eventLoop: context.eventLoop, pool: server.configuration.threadPool ?? .singleton,
                refusesNUL: true)
            spool?.onWritten = { [weak self] in self?.process() }
        }
        append = AppendState(tag: tag, spool: spool, size: size)
    }

    func appendPiece(_ bytes: [UInt8]) {
        guard var state = append, let spool = state.spool, !bytes.isEmpty else { return }
        var piece = bytes
        if state.heldCR { piece.insert(ASCII.cr, at: 0) }
        state.heldCR = piece.last == ASCII.cr
        if state.heldCR { piece.removeLast() }
        append = state
        spool.append(ByteBuffer(bytes: piece))
    }

    func discardAppend() {
        append?.spool?.discard()
        append = nil
    }

    func finishAppend(tag: String, _ command: IMAPAppendCommand) {
        guard let account, let state = append, let spool = state.spool else {
            discardAppend()
            return bad(tag, "APPEND without a message")
        }
        append = nil
        spool.onWritten = nil
        // RFC 3501 §4.3, §9: `CHAR8` (any octet but NUL) in a literal; the spool is
        // already discarded.
        guard !spool.sawNUL else {
            log.event("refused", ["reason": "NUL octet in an APPEND message"], level: .notice)
            return complete(tag, .no, text: "Message refused: it contains a NUL octet, which IMAP literals may not hold")
        }
        guard let flags = IMAPFlags.messageFlags(command.flags) else {
            spool.discard()
            return bad(tag, "Unknown system flag")
        }
        let mailboxName = IMAPMailboxList.canonical(command.mailbox)
        let date = command.date.map(IMAPDates.seconds)
        let store = server.store
        busy = true
        spool.finish().assumeIsolated().whenComplete { spooled in
            guard self.mode != .closed else {
                // The client left while the spool was being closed: nothing of it stays.
                if case .success(.file(let path, _)) = spooled { unlink(path) }
                return
            }
            switch spooled {
            case .failure(let error):
                self.log.event("append spool failed", ["error": "\(error)"], level: .error)
                self.busy = false
                self.complete(tag, .no, code: .serverBug, text: "Could not save the message")
            case .success(let body):
                self.storeCommand(tag, tryCreate: true, { () throws -> (uidValidity: UInt32, uid: UInt32) in
                    do {
                        return try store.append(body, to: mailboxName, flags: flags, internalDate: date, of: account)
                    } catch {
                        // The store takes the spool file over only when it succeeds.
                        if case .file(let path, _) = body { unlink(path) }
                        throw error
                    }
                }) { stored in
                    self.stats.appended += 1
                    self.log.event("append", [
                        "mailbox": .string(mailboxName), "uid": .stringConvertible(stored.uid),
                        "size": .stringConvertible(body.size),
                    ])
                    if self.selected?.name == mailboxName { self.changesNoticed = true }
                    self.complete(
                        tag, .ok, code: .appendUID(uidValidity: stored.uidValidity, uids: SelectedMailbox.sequenceSet([stored.uid])),
                        text: "APPEND completed")
                }
            }
        }
        settle(commandDone: false)
    }
}
