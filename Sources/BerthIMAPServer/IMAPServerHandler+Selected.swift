import BerthCore
import BerthIMAP
import BerthMIME
import Foundation
import NIOCore

/// The selected state (RFC 3501 §6.4): FETCH, SEARCH, STORE, COPY, MOVE, EXPUNGE, CLOSE.
extension IMAPServerHandler {
    /// A FETCH in progress: one message at a time when messages are read from disk, so a
    /// `FETCH 1:* BODY[]` never holds more than one message, and output waits for the
    /// client to read (writability) between messages.
    struct FetchJob {
        var tag: String
        var uid: Bool
        var attributes: [IMAPFetchAttribute]
        /// UIDs, in sequence order.
        var targets: [UInt32]
        var next = 0
        var content: IMAPFetch.Content
        var modSeq: Bool
        /// UIDs whose \Seen this FETCH set.
        var seenSet: Set<UInt32> = []
        /// Some messages were expunged meanwhile (RFC 2180 §4.1.3).
        var missing = false
    }

    // MARK: FETCH (§6.4.5; RFC 7162 §3.1.4, §3.2.6)

    /// Body sections one FETCH may ask for: each is built in memory for a message before
    /// backpressure applies, so a command repeating `BODY[]` hundreds of times would make
    /// one connection hold hundreds of copies of a large message.
    static let maxBodySectionsPerFetch = 16

    func fetch(tag: String, set: IMAPSequenceSet, attributes: [IMAPFetchAttribute], modifiers: [IMAPFetchModifier], uid: Bool) {
        guard let view = selected, let account else { return }
        // The same item asked twice is answered once (as Dovecot does).
        var attributes = attributes
        var seenAttributes: Set<IMAPFetchAttribute> = []
        attributes = attributes.filter { seenAttributes.insert($0).inserted }
        let sections = attributes.filter { attribute in
            switch attribute {
            case .bodySection, .rfc822, .rfc822Header, .rfc822Text: return true
            default: return false
            }
        }
        if sections.count > Self.maxBodySectionsPerFetch {
            return bad(tag, "Too many body sections in one FETCH (at most \(Self.maxBodySectionsPerFetch)); ask in several")
        }
        if let problem = view.sequenceProblem(set, uid: uid) { return bad(tag, problem) }
        guard let indexes = view.indexes(of: set, uid: uid) else { return bad(tag, "Saved search results are not supported") }
        var changedSince: UInt64?
        var vanished = false
        for modifier in modifiers {
            switch modifier {
            case .changedSince(let modSeq):
                changedSince = modSeq
            case .vanished:
                // RFC 7162 §3.2.6: UID FETCH only, with CHANGEDSINCE, after ENABLE QRESYNC.
                guard uid, qresyncEnabled else { return bad(tag, "VANISHED needs UID FETCH and QRESYNC") }
                vanished = true
            }
        }
        if vanished && changedSince == nil { return bad(tag, "VANISHED needs CHANGEDSINCE") }
        if changedSince != nil || attributes.contains(.modSeq) { enableCondStore() }
        var records = indexes.map { view.messages[$0] }
        if let changedSince { records = records.filter { $0.modSeq > changedSince } }
        var job = FetchJob(
            tag: tag, uid: uid, attributes: attributes, targets: records.map(\.uid),
            content: IMAPFetch.content(attributes), modSeq: attributes.contains(.modSeq) || changedSince != nil)
        let store = server.store
        let mailboxID = view.mailboxID

        let start = {
            self.fetchJob = job
            self.continueFetch()
        }
        let markSeen = {
            let unseen = records.filter { !$0.flags.system.contains(.seen) }.map(\.uid)
            guard IMAPFetch.setsSeen(attributes), !view.readOnly, !unseen.isEmpty else { return start() }
            let seen = FlagChange.add(MessageFlags(system: .seen))
            self.storeCommand(tag, {
                try store.storeFlags(seen, uids: unseen, in: mailboxID, of: account, unchangedSince: nil)
            }) { result in
                self.selected?.update(result.updated)
                job.seenSet = Set(result.updated.map(\.uid))
                start()
            }
        }
        guard vanished, let changedSince else { return markSeen() }
        // RFC 7162 §3.2.6: the UIDs in the set expunged since CHANGEDSINCE, before the FETCHes.
        let lastUID = view.messages.last?.uid ?? 0
        storeCommand(tag, { try store.changes(in: mailboxID, of: account, since: changedSince) }) { changes in
            let gone = changes.expunged.filter { IMAPSearch.contains(set, $0, last: max(lastUID, $0)) }
            if !gone.isEmpty { self.write(.data(.vanished(earlier: true, SelectedMailbox.sequenceSet(gone)))) }
            markSeen()
        }
    }

    func enableCondStore() {
        condStoreEnabled = true
        selected?.condStore = true
    }

    /// Writes the FETCH job's next responses until it ends, output backs up, or messages
    /// must be read from disk.
    func continueFetch() {
        guard var job = fetchJob, mode != .closed else { return }
        busy = true
        var batch = 0
        while job.next < job.targets.count {
            guard context.channel.isWritable else {
                fetchJob = job
                waitingForWritability = true
                settle(commandDone: false)
                return
            }
            if job.content != .none {
                fetchJob = job
                readAndWrite(job)
                return
            }
            let uid = job.targets[job.next]
            job.next += 1
            guard let view = selected, let index = view.index(of: uid) else {
                job.missing = true
                continue
            }
            write(.data(.fetch(UInt32(index + 1), IMAPFetch.items(
                job.attributes, record: view.messages[index], message: nil, uid: job.uid, modSeq: job.modSeq,
                flagsChanged: job.seenSet.contains(uid), recent: view.recent.contains(uid)))))
            batch += 1
            if batch >= Self.fetchBatch && job.next < job.targets.count {
                // Let the loop (and the socket) breathe between batches of a long FETCH.
                fetchJob = job
                flushIfNeeded()
                context.eventLoop.assumeIsolated().execute { self.continueFetch() }
                return
            }
        }
        fetchJob = nil
        busy = false
        stats.fetched += job.targets.count
        complete(
            job.tag, job.missing ? .no : .ok, code: job.missing ? .expungeIssued : nil,
            text: job.missing ? "Some messages were expunged" : "FETCH completed", expungeAllowed: job.uid)
    }

    /// Messages read in one trip to the thread pool: up to this many, or this many octets
    /// (the first message whatever its size), so memory stays bounded.
    static let readBatchMessages = 32
    static let readBatchOctets = 1024 * 1024

    /// Reads, parses and encodes the next messages' FETCH responses off the event loop,
    /// writes them, and carries on.
    private func readAndWrite(_ job: FetchJob) {
        guard let account, let view = selected else { return }
        struct Target: Sendable {
            var record: MessageRecord
            var sequence: UInt32
            var flagsChanged: Bool
        }
        var targets: [Target] = []
        var octets = 0
        var index = job.next
        while index < job.targets.count && targets.count < Self.readBatchMessages {
            let uid = job.targets[index]
            guard let position = view.index(of: uid), !view.pendingExpunges.contains(uid) else { break }
            let record = view.messages[position]
            if !targets.isEmpty && octets + record.size > Self.readBatchOctets { break }
            octets += job.content == .full ? record.size : 4096
            targets.append(Target(record: record, sequence: UInt32(position + 1), flagsChanged: job.seenSet.contains(uid)))
            index += 1
        }
        guard !targets.isEmpty else {
            // Gone from the view, or expunged meanwhile: its file may be gone too.
            fetchJob?.missing = true
            fetchJob?.next += 1
            return continueFetch()
        }
        let server = self.server
        let mailboxID = view.mailboxID, folder = (mailboxID: view.mailboxID, uidValidity: view.uidValidity)
        let attributes = job.attributes, uid = job.uid, modSeq = job.modSeq, content = job.content
        let cached = messageCache
        let batch = targets
        let octetsOnly = IMAPFetch.onlyOctets(attributes)
        blocking(content: true, { () throws -> (responses: [[UInt8]?], last: CachedMessage?) in
            var responses: [[UInt8]?] = []
            var last = cached
            let files = MessageFiles(server.store, batch.map(\.record.uid), in: folder, of: account)
            for target in batch {
                if octetsOnly, !(cached?.serves(mailboxID, target.record.uid, content) ?? false) {
                    guard let raw = IMAPFetch.loadOctets(path: try files.path(target.record.uid)) else {
                        responses.append(nil)
                        continue
                    }
                    let items = IMAPFetch.items(
                        attributes, record: target.record, message: nil, uid: uid, modSeq: modSeq,
                        flagsChanged: target.flagsChanged, raw: raw)
                    responses.append(IMAPResponseEncoder.encode(.data(.fetch(target.sequence, items))))
                    continue
                }
                let message: MIMEMessage?
                if let cached, cached.serves(mailboxID, target.record.uid, content) {
                    message = cached.message
                } else {
                    message = try server.message(uid: target.record.uid, content, files: files)
                    if let message { last = CachedMessage(mailboxID: mailboxID, uid: target.record.uid, message: message, content: content) }
                }
                guard let message else {
                    responses.append(nil)
                    continue
                }
                let items = IMAPFetch.items(
                    attributes, record: target.record, message: message, uid: uid, modSeq: modSeq, flagsChanged: target.flagsChanged)
                responses.append(IMAPResponseEncoder.encode(.data(.fetch(target.sequence, items))))
            }
            return (responses, last)
        }) { result in
            switch result {
            case .success(let read):
                self.messageCache = read.last
                for response in read.responses {
                    if let response { self.writeRaw(response) } else { self.fetchJob?.missing = true }
                }
                self.flushIfNeeded()
            case .failure(let error):
                self.log.event("fetch read failed", ["error": "\(error)"], level: .error)
                self.fetchJob?.missing = true
            }
            self.fetchJob?.next += batch.count
            self.continueFetch()
        }
    }

    func writeRaw(_ bytes: [UInt8]) {
        guard mode != .closed else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
        pendingWrites = true
    }

    // MARK: SEARCH (§6.4.4; RFC 4731 ESEARCH; RFC 7162 §3.1.5 MODSEQ)

    func search(tag: String, _ search: IMAPSearchCommand, uid: Bool) {
        guard let view = selected, let account else { return }
        if let charset = search.charset, !IMAPSearch.charsets.contains(charset.uppercased()) {
            return complete(tag, .no, code: .badCharset(IMAPSearch.charsets), text: "Unsupported charset", expungeAllowed: uid)
        }
        let usesModSeq = IMAPSearch.usesModSeq(search.key)
        if usesModSeq { enableCondStore() }
        let candidates = view.messages.enumerated().map {
            IMAPSearch.Candidate(record: $1, sequenceNumber: $0 + 1, recent: view.recent.contains($1.uid))
        }
        let lastSequence = UInt32(view.count), lastUID = view.messages.last?.uid ?? 0
        let key = IMAPSearch.cheapFirst(search.key)
        let mailboxID = view.mailboxID
        let answer = { (matched: [IMAPSearch.Candidate]) in
            let numbers = matched.map { uid ? $0.record.uid : UInt32($0.sequenceNumber) }
            let modSeq = usesModSeq ? matched.map(\.record.modSeq).max() : nil
            if let options = search.returnOptions {
                let wanted: [IMAPSearchReturnOption] = options.isEmpty ? [.all] : options
                var response = IMAPESearchResponse(tag: tag, uid: uid, modSeq: modSeq)
                if wanted.contains(.min) { response.min = numbers.min() }
                if wanted.contains(.max) { response.max = numbers.max() }
                if wanted.contains(.count) { response.count = UInt32(numbers.count) }
                if wanted.contains(.all), !numbers.isEmpty { response.all = SelectedMailbox.sequenceSet(numbers) }
                self.write(.data(.esearch(response)))
            } else {
                self.write(.data(.search(numbers, modSeq: modSeq)))
            }
            self.complete(tag, .ok, text: "SEARCH completed", expungeAllowed: uid)
        }
        let content = IMAPSearch.content(key)
        guard content != .none else {
            let nothing = IMAPSearch.Content { nil }
            return answer(candidates.filter {
                IMAPSearch.matches(key, $0, lastSequence: lastSequence, lastUID: lastUID, content: nothing)
            })
        }
        let server = self.server
        let folder = (mailboxID: mailboxID, uidValidity: view.uidValidity)
        storeCommand(tag, content: true, {
            let files = MessageFiles(server.store, candidates.map(\.record.uid), in: folder, of: account)
            return candidates.filter { candidate in
                let content = IMAPSearch.Content({
                    (try? server.message(uid: candidate.record.uid, content, files: files)) ?? nil
                }, raw: content == .full ? {
                    (try? files.path(candidate.record.uid)).flatMap { $0 }.flatMap { FileManager.default.contents(atPath: $0) }.map { Array($0) }
                } : nil)
                return IMAPSearch.matches(key, candidate, lastSequence: lastSequence, lastUID: lastUID, content: content)
            }
        }) { matched in answer(matched) }
    }

    // MARK: STORE (§6.4.6; RFC 7162 §3.1.3 UNCHANGEDSINCE)

    func store(tag: String, set: IMAPSequenceSet, action: IMAPStoreAction, unchangedSince: UInt64?, uid: Bool) {
        guard let view = selected, let account else { return }
        guard !view.readOnly else { return complete(tag, .no, text: "Mailbox is read-only", expungeAllowed: uid) }
        if let problem = view.sequenceProblem(set, uid: uid) { return bad(tag, problem) }
        guard let indexes = view.indexes(of: set, uid: uid) else { return bad(tag, "Saved search results are not supported") }
        guard let flags = IMAPFlags.messageFlags(action.flags) else { return bad(tag, "Unknown system flag") }
        if unchangedSince != nil { enableCondStore() }
        let change: FlagChange
        switch action.operation {
        case .add: change = .add(flags)
        case .remove: change = .remove(flags)
        case .replace: change = .replace(flags)
        }
        let uids = indexes.map { view.messages[$0].uid }
        let store = server.store
        let mailboxID = view.mailboxID
        storeCommand(tag, {
            try store.storeFlags(change, uids: uids, in: mailboxID, of: account, unchangedSince: unchangedSince)
        }) { result in
            self.write(self.selected?.update(result.updated) ?? [])
            if !action.silent, let view = self.selected {
                for record in result.updated {
                    guard let sequence = view.sequenceNumber(of: record.uid) else { continue }
                    var items: [IMAPFetchItem] = []
                    if uid || view.qresync { items.append(.uid(record.uid)) }
                    items.append(.flags(IMAPFlags.imapFlags(record.flags)))
                    if self.condStoreEnabled { items.append(.modSeq(record.modSeq)) }
                    self.write(.data(.fetch(UInt32(sequence), items)))
                }
            }
            var code: IMAPResponseCode?
            if !result.modified.isEmpty {
                let numbers = uid ? result.modified : result.modified.compactMap { uid in self.selected?.sequenceNumber(of: uid).map { UInt32($0) } }
                code = .modified(SelectedMailbox.sequenceSet(numbers))
            }
            self.complete(tag, .ok, code: code, text: code == nil ? "STORE completed" : "Conditional STORE failed", expungeAllowed: uid)
        }
    }

    // MARK: COPY (§6.4.7; RFC 4315 COPYUID), MOVE (RFC 6851)

    func copy(tag: String, set: IMAPSequenceSet, to name: IMAPMailboxName, uid: Bool, move: Bool) {
        guard let view = selected, let account else { return }
        if move && view.readOnly { return complete(tag, .no, text: "Mailbox is read-only") }
        if let problem = view.sequenceProblem(set, uid: uid) { return bad(tag, problem) }
        guard let indexes = view.indexes(of: set, uid: uid) else { return bad(tag, "Saved search results are not supported") }
        let uids = indexes.map { view.messages[$0].uid }.filter { !view.pendingExpunges.contains($0) }
        let verb = move ? "MOVE" : "COPY"
        guard !uids.isEmpty else { return complete(tag, .ok, text: "\(verb) completed: no messages") }
        let destination = IMAPMailboxList.canonical(name)
        let store = server.store
        let mailboxID = view.mailboxID
        storeCommand(tag, tryCreate: true, {
            try store.copy(uids: uids, from: mailboxID, to: destination, move: move, of: account)
        }) { result in
            self.log.event(move ? "move" : "copy", ["to": .string(destination), "messages": .stringConvertible(result.uids.count)])
            // Every message was expunged by another session meanwhile: nothing was copied,
            // and RFC 4315 §3's COPYUID needs two non-empty sets.
            guard !result.uids.isEmpty else { return self.complete(tag, .ok, text: "\(verb) completed: no messages") }
            let code = IMAPResponseCode.copyUID(
                uidValidity: result.uidValidity, source: SelectedMailbox.sequenceSet(result.uids.map { $0.source }),
                destination: SelectedMailbox.sequenceSet(result.uids.map { $0.destination }))
            guard move else { return self.complete(tag, .ok, code: code, text: "COPY completed") }
            // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges, then the tagged OK.
            self.write(.untagged(.ok, code: code, text: "Moved"))
            self.write(self.selected?.expunged(result.uids.map { $0.source }) ?? [])
            self.complete(tag, .ok, text: "MOVE completed")
        }
    }

    // MARK: EXPUNGE (§6.4.3), UID EXPUNGE (RFC 4315 §2.1), CLOSE (§6.4.2)

    func expunge(tag: String, only: IMAPSequenceSet?) {
        guard let view = selected else { return }
        guard !view.readOnly else { return complete(tag, .no, text: "Mailbox is read-only") }
        expungeDeleted(tag: tag, only: only, silent: false) { removed in
            self.complete(tag, .ok, text: "EXPUNGE completed")
        }
    }

    func close(tag: String) {
        guard let view = selected else { return }
        guard !view.readOnly else {
            deselect()
            return complete(tag, .ok, text: "CLOSE completed")
        }
        // RFC 3501 §6.4.2: \Deleted messages go, without untagged EXPUNGE responses.
        expungeDeleted(tag: tag, only: nil, silent: true) { _ in
            self.deselect()
            self.complete(tag, .ok, text: "CLOSE completed")
        }
    }

    /// Expunges the messages flagged \Deleted (as the store has them now), optionally only
    /// those of a UID set; reports the changes and the expunges unless `silent`.
    private func expungeDeleted(tag: String, only: IMAPSequenceSet?, silent: Bool, then: @escaping ([UInt32]) -> Void) {
        guard let view = selected, let account else { return }
        let store = server.store
        let mailboxID = view.mailboxID, since = view.highestModSeq
        let known = view.messages
        let lastUID = max(view.messages.last?.uid ?? 0, view.uidNext)
        changesNoticed = false
        storeCommand(tag, { () throws -> (MailboxChanges, [UInt32]) in
            let changes = try store.changes(in: mailboxID, of: account, since: since)
            var deleted: [UInt32: Bool] = [:]
            for record in known { deleted[record.uid] = record.flags.system.contains(.deleted) }
            for record in changes.changed { deleted[record.uid] = record.flags.system.contains(.deleted) }
            for uid in changes.expunged { deleted[uid] = nil }
            var uids = deleted.filter { $0.value }.map { $0.key }.sorted()
            if let only { uids = uids.filter { IMAPSearch.contains(only, $0, last: lastUID) } }
            let removed = uids.isEmpty ? [] : try store.expunge(uids: uids, in: mailboxID, of: account)
            return (changes, removed)
        }) { changes, removed in
            if self.selected?.mailboxID == mailboxID {
                let updates = self.selected!.apply(changes, expungeAllowed: true)
                let expunges = self.selected!.expunged(removed)
                if !silent {
                    self.write(updates)
                    self.write(expunges)
                }
            }
            self.stats.expunged += removed.count
            if !removed.isEmpty {
                self.log.event("expunge", ["mailbox": .string(view.name), "messages": .stringConvertible(removed.count)])
            }
            then(removed)
        }
    }
}
