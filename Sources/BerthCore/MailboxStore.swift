/// One user's mail as IMAP and POP3 see it: folders of messages with UIDs, flags and
/// modification sequences. The protocols ask through `MailboxStore` and assume nothing of
/// how it is kept (Maildir files plus a SQLite index by default; PostgreSQL comes next).
///
/// Every call may block on disk or a database: call it off the event loop.

/// Whose mail: a user of a local domain (`RecipientClass.local`).
public struct MailAccount: Sendable, Hashable, CustomStringConvertible {
    public var domain: String
    public var user: String

    public init(domain: String, user: String) {
        self.domain = domain
        self.user = user
    }

    public var address: String { "\(user)@\(domain)" }
    public var description: String { address }
}

/// RFC 6154 special-use attributes of the default folders.
public enum SpecialUse: String, Sendable, Hashable, CaseIterable, Codable {
    case sent = "\\Sent"
    case drafts = "\\Drafts"
    case trash = "\\Trash"
    case junk = "\\Junk"
    case archive = "\\Archive"
    case all = "\\All"
    case flagged = "\\Flagged"
}

/// The folders every account has (RFC 6154 §2 defaults), created on first use.
public enum DefaultMailboxes {
    public static let inbox = "INBOX"
    public static let all: [(name: String, specialUse: SpecialUse?)] = [
        ("INBOX", nil), ("Sent", .sent), ("Drafts", .drafts), ("Trash", .trash), ("Junk", .junk), ("Archive", .archive),
    ]
}

/// System flags (RFC 3501 §2.3.2) as Maildir info letters, plus keywords.
public struct MessageFlags: Sendable, Hashable {
    public struct System: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        public static let seen = System(rawValue: 1 << 0)
        public static let answered = System(rawValue: 1 << 1)
        public static let flagged = System(rawValue: 1 << 2)
        public static let deleted = System(rawValue: 1 << 3)
        public static let draft = System(rawValue: 1 << 4)
        /// `$Forwarded` keyword in IMAP; Maildir's `P` (passed).
        public static let forwarded = System(rawValue: 1 << 5)
    }

    public var system: System
    /// IMAP keywords (atoms, case kept, compared case-insensitively by the protocol), sorted,
    /// without duplicates.
    public var keywords: [String]

    public init(system: System = [], keywords: [String] = []) {
        self.system = system
        self.keywords = keywords.count < 2 ? keywords : Array(Set(keywords)).sorted()
    }

    public static let none = MessageFlags()

    /// The letters after `:2,` in a Maildir file name, in ASCII order as the spec asks
    /// (cr.yp.to/proto/maildir.html): D draft, F flagged, P passed, R replied, S seen, T trashed.
    public var maildirInfo: String {
        var letters = ""
        if system.contains(.draft) { letters += "D" }
        if system.contains(.flagged) { letters += "F" }
        if system.contains(.forwarded) { letters += "P" }
        if system.contains(.answered) { letters += "R" }
        if system.contains(.seen) { letters += "S" }
        if system.contains(.deleted) { letters += "T" }
        return letters
    }

    public static func system(fromMaildirInfo info: some StringProtocol) -> System {
        var system: System = []
        for letter in info {
            switch letter {
            case "D": system.insert(.draft)
            case "F": system.insert(.flagged)
            case "P": system.insert(.forwarded)
            case "R": system.insert(.answered)
            case "S": system.insert(.seen)
            case "T": system.insert(.deleted)
            default: break
            }
        }
        return system
    }
}

/// How a STORE changes flags (RFC 3501 §6.4.6 FLAGS, +FLAGS, -FLAGS).
public enum FlagChange: Sendable, Hashable {
    case add(MessageFlags)
    case remove(MessageFlags)
    case replace(MessageFlags)

    public func applied(to flags: MessageFlags) -> MessageFlags {
        switch self {
        case .add(let change):
            return MessageFlags(system: flags.system.union(change.system), keywords: flags.keywords + change.keywords)
        case .remove(let change):
            let removed = Set(change.keywords.map { $0.lowercased() })
            return MessageFlags(
                system: flags.system.subtracting(change.system),
                keywords: flags.keywords.filter { !removed.contains($0.lowercased()) })
        case .replace(let change):
            return change
        }
    }
}

/// A folder of an account. `name` is the IMAP name in UTF-8 with `/` as the hierarchy
/// delimiter; "INBOX" is always spelt so.
public struct MailboxInfo: Sendable, Hashable {
    /// Stable for the folder's life (a rename keeps it).
    public var id: Int64
    public var name: String
    public var specialUse: SpecialUse?
    public var subscribed: Bool
    public var uidValidity: UInt32
    public var uidNext: UInt32
    /// RFC 7162 HIGHESTMODSEQ: the largest MODSEQ any message or expunge of it has had.
    public var highestModSeq: UInt64

    public init(
        id: Int64, name: String, specialUse: SpecialUse? = nil, subscribed: Bool = true, uidValidity: UInt32,
        uidNext: UInt32 = 1, highestModSeq: UInt64 = 1
    ) {
        self.id = id
        self.name = name
        self.specialUse = specialUse
        self.subscribed = subscribed
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModSeq = highestModSeq
    }
}

/// One message of a folder as the index knows it.
public struct MessageRecord: Sendable, Hashable {
    public var uid: UInt32
    public var flags: MessageFlags
    /// IMAP INTERNALDATE, seconds since 1970.
    public var internalDate: Double
    /// RFC822.SIZE: octets as served, with CRLF line ends whatever the file holds.
    public var size: Int
    /// RFC 7162 MODSEQ of its last change (arrival or flags).
    public var modSeq: UInt64

    public init(uid: UInt32, flags: MessageFlags, internalDate: Double, size: Int, modSeq: UInt64) {
        self.uid = uid
        self.flags = flags
        self.internalDate = internalDate
        self.size = size
        self.modSeq = modSeq
    }
}

/// A folder opened for a session: its state and every message, in UID order.
public struct MailboxSnapshot: Sendable, Hashable {
    public var mailbox: MailboxInfo
    public var messages: [MessageRecord]
    /// Messages no session has claimed yet (`\Recent`, see `MailboxStore.claimRecent`).
    public var unclaimedRecent: Int

    public init(mailbox: MailboxInfo, messages: [MessageRecord], unclaimedRecent: Int = 0) {
        self.mailbox = mailbox
        self.messages = messages
        self.unclaimedRecent = unclaimedRecent
    }
}

/// What changed in a folder after a MODSEQ: messages added or re-flagged (UID order) and
/// UIDs expunged. A session applies them to its view (EXISTS, FETCH FLAGS, EXPUNGE or
/// VANISHED).
public struct MailboxChanges: Sendable, Hashable {
    public var mailbox: MailboxInfo
    public var changed: [MessageRecord]
    public var expunged: [UInt32]

    public init(mailbox: MailboxInfo, changed: [MessageRecord], expunged: [UInt32]) {
        self.mailbox = mailbox
        self.changed = changed
        self.expunged = expunged
    }
}

/// RFC 3501 STATUS items of a folder.
public struct MailboxStatus: Sendable, Hashable {
    public var mailbox: MailboxInfo
    public var messages: Int
    public var unseen: Int
    public var deleted: Int
    /// Sum of RFC822.SIZE (RFC 8438 STATUS SIZE).
    public var size: Int
    /// Messages no session has seen yet (`\Recent`, see `MailboxStore.claimRecent`).
    public var recent: Int

    public init(mailbox: MailboxInfo, messages: Int, unseen: Int, deleted: Int, size: Int, recent: Int = 0) {
        self.mailbox = mailbox
        self.messages = messages
        self.unseen = unseen
        self.deleted = deleted
        self.size = size
        self.recent = recent
    }
}

/// The result of STORE: the records as they are now, and (RFC 7162 §3.2 UNCHANGEDSINCE)
/// the UIDs not changed because they had changed after the given MODSEQ.
public struct FlagStoreResult: Sendable, Hashable {
    public var updated: [MessageRecord]
    public var modified: [UInt32]

    public init(updated: [MessageRecord], modified: [UInt32]) {
        self.updated = updated
        self.modified = modified
    }
}

/// RFC 4315 COPYUID / APPENDUID material.
public struct CopyResult: Sendable, Hashable {
    public var uidValidity: UInt32
    /// (source UID, new UID), in source UID order.
    public var uids: [(source: UInt32, destination: UInt32)]

    public init(uidValidity: UInt32, uids: [(source: UInt32, destination: UInt32)]) {
        self.uidValidity = uidValidity
        self.uids = uids
    }

    public static func == (a: CopyResult, b: CopyResult) -> Bool {
        a.uidValidity == b.uidValidity && a.uids.elementsEqual(b.uids) { $0 == $1 }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(uidValidity)
        for pair in uids {
            hasher.combine(pair.source)
            hasher.combine(pair.destination)
        }
    }
}

public struct QuotaUsage: Sendable, Hashable {
    /// Octets stored over all folders (RFC 9208 STORAGE counts KiB: divide when reporting).
    public var usedBytes: Int
    public var messages: Int
    /// nil: no limit.
    public var limitBytes: Int?

    public init(usedBytes: Int, messages: Int, limitBytes: Int?) {
        self.usedBytes = usedBytes
        self.messages = messages
        self.limitBytes = limitBytes
    }
}

/// Why a store call failed; `description` is fit for an IMAP `NO` / POP3 `-ERR` text.
public enum MailboxStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// RFC 3501 `[TRYCREATE]` for APPEND/COPY/MOVE.
    case noSuchMailbox(String)
    case mailboxExists(String)
    /// Names that cannot be created: empty, `.`/`..` parts, control characters, too long.
    case invalidName(String, reason: String)
    /// INBOX cannot be deleted; a folder with children cannot be deleted (RFC 3501 §6.3.4).
    case cannotDelete(String, reason: String)
    /// RFC 9208 `[OVERQUOTA]`.
    case overQuota
    /// The selected folder was deleted or renamed away by another session.
    case mailboxGone
    /// Disk or database trouble; logged by the store.
    case storage(String)

    public var description: String {
        switch self {
        case .noSuchMailbox(let name): return "Mailbox doesn't exist: \(name)"
        case .mailboxExists(let name): return "Mailbox already exists: \(name)"
        case .invalidName(let name, let reason): return "Invalid mailbox name \(name): \(reason)"
        case .cannotDelete(let name, let reason): return "Cannot delete \(name): \(reason)"
        case .overQuota: return "Quota exceeded (mailbox for user is full)"
        case .mailboxGone: return "Mailbox was deleted or renamed"
        case .storage(let text): return "Internal error: \(text)"
        }
    }
}

/// Ends an observation when cancelled or released.
public protocol MailboxObservation: AnyObject, Sendable {
    func cancel()
}

/// An account's mail for the IMAP and POP3 servers.
public protocol MailboxStore: Sendable {
    /// Every folder of `account` (the defaults created on first call), INBOX first, then
    /// by name.
    func mailboxes(of account: MailAccount) throws -> [MailboxInfo]
    func createMailbox(_ name: String, of account: MailAccount) throws -> MailboxInfo
    /// Deletes the folder and its messages. Children stay (RFC 3501 §6.3.4 allows it when
    /// they exist, the folder is then refused: `.cannotDelete`).
    func deleteMailbox(_ name: String, of account: MailAccount) throws
    /// Renames the folder and its children. Renaming INBOX moves its messages into a new
    /// folder and leaves INBOX empty (RFC 3501 §6.3.5).
    func renameMailbox(_ name: String, to newName: String, of account: MailAccount) throws
    func setSubscribed(_ name: String, _ subscribed: Bool, of account: MailAccount) throws
    func status(_ name: String, of account: MailAccount) throws -> MailboxStatus

    /// The folder and all its messages, for SELECT/EXAMINE and POP3's maildrop.
    func snapshot(_ name: String, of account: MailAccount) throws -> MailboxSnapshot
    /// What changed after `modSeq` in folder `mailboxID` (`.mailboxGone` if it no longer exists).
    func changes(in mailboxID: Int64, of account: MailAccount, since modSeq: UInt64) throws -> MailboxChanges

    /// Stores a new message (the body as the IMAP client sent it: CRLF or LF). Returns the
    /// folder's UIDVALIDITY and the new UID; durable before it returns. `.noSuchMailbox`
    /// when the folder does not exist, `.overQuota` when it would exceed the quota.
    func append(
        _ body: MessageBody, to name: String, flags: MessageFlags, internalDate: Double?, of account: MailAccount
    ) throws -> (uidValidity: UInt32, uid: UInt32)
    /// Changes flags; messages not in the folder are skipped. `unchangedSince`: RFC 7162.
    func storeFlags(
        _ change: FlagChange, uids: [UInt32], in mailboxID: Int64, of account: MailAccount, unchangedSince: UInt64?
    ) throws -> FlagStoreResult
    /// Copies (or, with `move`, moves: RFC 6851 atomically) messages into folder `name`.
    func copy(
        uids: [UInt32], from mailboxID: Int64, to name: String, move: Bool, of account: MailAccount
    ) throws -> CopyResult
    /// Removes messages for good; returns the UIDs removed (those still present), ascending.
    func expunge(uids: [UInt32], in mailboxID: Int64, of account: MailAccount) throws -> [UInt32]
    /// The messages' files, for reading (their line ends may be LF: serve them through CRLF
    /// normalisation), in one index read. A message expunged meanwhile has none.
    func messagePaths(uids: [UInt32], in mailboxID: Int64, of account: MailAccount) throws -> [UInt32: String]

    func quota(of account: MailAccount) throws -> QuotaUsage

    /// Calls `onChange` (on any thread, possibly more than once per change) whenever folder
    /// `mailboxID` of `account` changes: new mail, flags, expunges, from any session or
    /// from delivery. Ends when the observation is cancelled or released.
    func observe(_ mailboxID: Int64, of account: MailAccount, onChange: @escaping @Sendable () -> Void) -> any MailboxObservation

    /// RFC 1939 §8: one POP3 session per maildrop. Returns nil when another session holds it.
    func lockMaildrop(of account: MailAccount) -> (any MailboxObservation)?

    /// RFC 3501 §2.3.2 `\Recent`, the Maildir way: a message no session has seen yet is
    /// recent; the first read-write session to learn of it claims it, and it is recent in
    /// that session alone. Returns the UIDs this call claimed.
    func claimRecent(in mailboxID: Int64, of account: MailAccount) throws -> [UInt32]
}

extension MailboxStore {
    /// One message's file; nil if it was expunged meanwhile.
    public func messagePath(uid: UInt32, in mailboxID: Int64, of account: MailAccount) throws -> String? {
        try messagePaths(uids: [uid], in: mailboxID, of: account)[uid]
    }

    /// A store that keeps no `\Recent` claims none (RFC 9051 dropped the flag).
    public func claimRecent(in mailboxID: Int64, of account: MailAccount) throws -> [UInt32] { [] }
}

/// Logins for IMAP and POP3: a login name (`user@domain`) and password to an account.
public protocol MailAuthenticator: Sendable {
    /// Slow by design (a KDF): call on the auth guard's pool. nil: unknown user or wrong password.
    func authenticate(user: String, password: String) -> MailAccount?
}
