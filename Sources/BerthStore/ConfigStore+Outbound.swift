import BerthCore
import Foundation
import GRDB

/// One pending recipient of a queued message, as the delivery engine loads it.
public struct QueueEntry: Sendable, Hashable {
    /// `queue.id`.
    public var row: Int64
    public var queueID: String
    /// The message file under `queue/new/` (LF line ends, `Return-Path:` and `Received:` first).
    public var path: String
    public var sender: String
    public var size: Int
    public var receivedAt: Date
    public var recipients: [QueueRecipient]

    public init(row: Int64, queueID: String, path: String, sender: String, size: Int, receivedAt: Date, recipients: [QueueRecipient]) {
        self.row = row
        self.queueID = queueID
        self.path = path
        self.sender = sender
        self.size = size
        self.receivedAt = receivedAt
        self.recipients = recipients
    }
}

public struct QueueRecipient: Sendable, Hashable {
    /// `queueRecipient.id`.
    public var row: Int64
    public var address: String
    public var attempts: Int
    public var nextAttemptAt: Date
    public var lastError: String?
    /// A "delayed" DSN has been sent for it.
    public var warned: Bool

    public init(row: Int64, address: String, attempts: Int = 0, nextAttemptAt: Date, lastError: String? = nil, warned: Bool = false) {
        self.row = row
        self.address = address
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.warned = warned
    }
}

/// What became of one recipient after a delivery attempt.
public struct RecipientUpdate: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        case delivered
        case bounced
        case deferred(until: Date)
    }

    public var row: Int64
    public var outcome: Outcome
    public var attempts: Int
    public var lastError: String?
    public var warned: Bool

    public init(row: Int64, outcome: Outcome, attempts: Int, lastError: String?, warned: Bool) {
        self.row = row
        self.outcome = outcome
        self.attempts = attempts
        self.lastError = lastError
        self.warned = warned
    }
}

/// A stored DKIM key (the private key is the store's; BerthDKIM reads it).
public struct StoredDKIMKey: Sendable, Hashable {
    public var domain: String
    public var selector: String
    public var algorithm: String
    public var privateKey: String
    public var createdAt: Date

    public init(domain: String, selector: String, algorithm: String, privateKey: String, createdAt: Date) {
        self.domain = domain
        self.selector = selector
        self.algorithm = algorithm
        self.privateKey = privateKey
        self.createdAt = createdAt
    }
}

// MARK: Queue

extension ConfigStore {
    /// Every queued message with at least one pending recipient, oldest first; only the
    /// pending recipients are in `recipients`.
    public func pendingQueue() throws -> [QueueEntry] {
        try database.read { db in
            var entries: [Int64: QueueEntry] = [:]
            var order: [Int64] = []
            let rows = try Row.fetchAll(db, sql: """
                SELECT q.id AS qid, q.queueID, q.path, q.sender, q.size, q.receivedAt,
                       r.id AS rid, r.address, r.attempts, r.nextAttemptAt, r.lastError, r.warned
                FROM queue q JOIN queueRecipient r ON r.queue = q.id
                WHERE r.state = 'pending' ORDER BY q.id, r.id
                """)
            for row in rows {
                let qid: Int64 = row["qid"]
                if entries[qid] == nil {
                    order.append(qid)
                    entries[qid] = QueueEntry(
                        row: qid, queueID: row["queueID"], path: row["path"], sender: row["sender"], size: row["size"],
                        receivedAt: Date(timeIntervalSince1970: row["receivedAt"]), recipients: [])
                }
                entries[qid]!.recipients.append(QueueRecipient(
                    row: row["rid"], address: row["address"], attempts: row["attempts"],
                    nextAttemptAt: Date(timeIntervalSince1970: row["nextAttemptAt"]), lastError: row["lastError"],
                    warned: row["warned"]))
            }
            return order.map { entries[$0]! }
        }
    }

    /// The queue as the admin API shows it: messages with a pending recipient, every
    /// recipient with its state.
    public func queuedMessages(queueID: String? = nil) throws -> [QueuedMessage] {
        try database.read { db in
            let filter = queueID == nil ? "" : "AND q.queueID = ?"
            let rows = try Row.fetchAll(db, sql: """
                SELECT q.id AS qid, q.queueID, q.sender, q.size, q.receivedAt,
                       r.address, r.state, r.attempts, r.nextAttemptAt, r.lastError
                FROM queue q JOIN queueRecipient r ON r.queue = q.id
                WHERE EXISTS (SELECT 1 FROM queueRecipient p WHERE p.queue = q.id AND p.state = 'pending') \(filter)
                ORDER BY q.id, r.id
                """, arguments: StatementArguments(queueID.map { [$0] } ?? []))
            var messages: [QueuedMessage] = []
            var last: Int64?
            for row in rows {
                let qid: Int64 = row["qid"]
                if qid != last {
                    last = qid
                    messages.append(QueuedMessage(
                        id: row["queueID"], sender: row["sender"], size: row["size"],
                        receivedAt: Date(timeIntervalSince1970: row["receivedAt"]), recipients: []))
                }
                let state = RecipientState(rawValue: row["state"]) ?? .pending
                messages[messages.count - 1].recipients.append(QueuedMessage.Recipient(
                    address: row["address"], state: state, attempts: row["attempts"],
                    nextAttemptAt: state == .pending ? Date(timeIntervalSince1970: row["nextAttemptAt"]) : nil,
                    lastError: row["lastError"]))
            }
            return messages
        }
    }

    /// Applies delivery results in one transaction. Messages left with no pending recipient
    /// leave the queue; their file paths are returned for the caller to remove, after the
    /// commit (a crash in between leaves a file recovery reports, never a lost recipient).
    public func applyDeliveryResults(_ updates: [RecipientUpdate]) throws -> [String] {
        guard !updates.isEmpty else { return [] }
        return try database.write { db in
            var touched: Set<Int64> = []
            for update in updates {
                let state: String, next: Double?
                switch update.outcome {
                case .delivered: (state, next) = ("delivered", nil)
                case .bounced: (state, next) = ("bounced", nil)
                case .deferred(let until): (state, next) = ("pending", until.timeIntervalSince1970)
                }
                try db.cachedStatement(sql: """
                    UPDATE queueRecipient SET state = ?, attempts = ?, lastError = ?, warned = ?,
                        nextAttemptAt = COALESCE(?, nextAttemptAt)
                    WHERE id = ?
                    """).execute(arguments: [state, update.attempts, update.lastError, update.warned, next, update.row])
                if let queue = try Int64.fetchOne(db, sql: "SELECT queue FROM queueRecipient WHERE id = ?", arguments: [update.row]) {
                    touched.insert(queue)
                }
            }
            return try Self.removeFinished(db, among: touched)
        }
    }

    static func removeFinished(_ db: Database, among queues: Set<Int64>) throws -> [String] {
        var paths: [String] = []
        for queue in queues {
            let pending = try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM queueRecipient WHERE queue = ? AND state = 'pending'", arguments: [queue]) ?? 0
            guard pending == 0 else { continue }
            if let path = try String.fetchOne(db, sql: "SELECT path FROM queue WHERE id = ?", arguments: [queue]) {
                paths.append(path)
            }
            try db.execute(sql: "DELETE FROM queue WHERE id = ?", arguments: [queue])
        }
        return paths
    }

    /// `berth queue retry`: every pending recipient of the message (or of all) is due now.
    /// Returns how many recipients were rescheduled; throws not-found for an unknown id.
    @discardableResult
    public func retryQueued(queueID: String?, at now: Date = Date()) throws -> Int {
        try database.write { db in
            if let queueID, try Int64.fetchOne(db, sql: "SELECT id FROM queue WHERE queueID = ?", arguments: [queueID]) == nil {
                throw BindingsError.notFound("no queued message '\(queueID)'")
            }
            try db.execute(
                sql: """
                    UPDATE queueRecipient SET nextAttemptAt = ? WHERE state = 'pending'
                    AND (? IS NULL OR queue = (SELECT id FROM queue WHERE queueID = ?))
                    """,
                arguments: [now.timeIntervalSince1970, queueID, queueID])
            return db.changesCount
        }
    }

    /// `berth queue delete`: the message leaves the queue without a DSN. Returns its file.
    public func deleteQueued(queueID: String) throws -> String {
        try database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id, path FROM queue WHERE queueID = ?", arguments: [queueID]) else {
                throw BindingsError.notFound("no queued message '\(queueID)'")
            }
            try db.execute(sql: "DELETE FROM queue WHERE id = ?", arguments: [row["id"] as Int64])
            return row["path"]
        }
    }

    /// Queue depth: messages and pending recipients.
    public func queueDepth() throws -> (messages: Int, recipients: Int) {
        try database.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(DISTINCT queue) AS m, COUNT(*) AS r FROM queueRecipient WHERE state = 'pending'
                """)
            return (row?["m"] ?? 0, row?["r"] ?? 0)
        }
    }
}

// MARK: Routes

extension ConfigStore {
    public func routes() throws -> [OutboundRoute] {
        try database.read { db in
            try String.fetchAll(db, sql: "SELECT body FROM route ORDER BY domain").map {
                try JSONDecoder().decode(OutboundRoute.self, from: Data($0.utf8))
            }
        }
    }

    public func saveRoute(_ route: OutboundRoute) throws {
        let body = String(decoding: try JSONEncoder().encode(route), as: UTF8.self)
        try database.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO route(domain, body) VALUES (?, ?)", arguments: [route.domain, body])
        }
        changes.notify()
    }

    public func deleteRoute(domain: String) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM route WHERE domain = ?", arguments: [domain.lowercased()])
            if db.changesCount == 0 { throw BindingsError.notFound("no route for '\(domain)'") }
        }
        changes.notify()
    }
}

// MARK: DKIM keys

extension ConfigStore {
    /// The keys a domain signs with now, oldest first.
    public func dkimKeys(domain: String) throws -> [StoredDKIMKey] {
        try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM dkimKey WHERE domain = ? ORDER BY createdAt, selector", arguments: [domain.lowercased()]
            ).map {
                StoredDKIMKey(
                    domain: $0["domain"], selector: $0["selector"], algorithm: $0["algorithm"], privateKey: $0["privateKey"],
                    createdAt: Date(timeIntervalSince1970: $0["createdAt"]))
            }
        }
    }

    /// Replaces a domain's keys (creation, rotation). Not-found if the domain is gone.
    public func replaceDKIMKeys(domain: String, with keys: [StoredDKIMKey]) throws {
        try database.write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM domain WHERE name = ?", arguments: [domain.lowercased()]) ?? false else {
                throw BindingsError.notFound("no domain '\(domain)'")
            }
            try db.execute(sql: "DELETE FROM dkimKey WHERE domain = ?", arguments: [domain.lowercased()])
            for key in keys {
                try db.execute(
                    sql: "INSERT INTO dkimKey(domain, selector, algorithm, privateKey, createdAt) VALUES (?, ?, ?, ?, ?)",
                    arguments: [domain.lowercased(), key.selector, key.algorithm, key.privateKey, key.createdAt.timeIntervalSince1970])
            }
        }
        changes.notify()
    }
}
