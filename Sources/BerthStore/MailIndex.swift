import BerthCore

/// A message as the index holds it: its record and its file, relative to the folder's
/// Maildir (`new/NAME` or `cur/NAME:2,FLAGS`).
public struct IndexedMessage: Sendable, Hashable {
    public var record: MessageRecord
    public var file: String

    public init(record: MessageRecord, file: String) {
        self.record = record
        self.file = file
    }

    public var uid: UInt32 { record.uid }
}

/// A message to add to a folder; the index gives it its UID and MODSEQ.
public struct NewIndexedMessage: Sendable, Hashable {
    public var file: String
    public var flags: MessageFlags
    public var internalDate: Double
    public var size: Int

    public init(file: String, flags: MessageFlags, internalDate: Double, size: Int) {
        self.file = file
        self.flags = flags
        self.internalDate = internalDate
        self.size = size
    }
}

/// The mail index: folders, UIDVALIDITY, UIDNEXT, and per message its UID, flags,
/// keywords, internal date, size, MODSEQ and file. Every call is one atomic change, and
/// each change that touches a folder raises its HIGHESTMODSEQ (RFC 7162 §3.1.1).
/// Nothing here assumes SQLite: `SQLiteMailIndex` is the embedded implementation; a
/// server-database one implements the same calls. The Maildir stays the truth for
/// message content: the index can always be rebuilt from it (`MaildirMailboxStore.reconcile`).
public protocol MailIndex: Sendable {
    func accounts() throws -> [MailAccount]
    func mailboxes(of account: MailAccount) throws -> [MailboxInfo]
    func mailbox(named name: String, of account: MailAccount) throws -> MailboxInfo?
    func mailbox(id: Int64, of account: MailAccount) throws -> MailboxInfo?
    /// `.mailboxExists` if the name is taken.
    func createMailbox(_ name: String, specialUse: SpecialUse?, uidValidity: UInt32, of account: MailAccount) throws -> MailboxInfo
    /// Removes the folder, its messages and their expunge records.
    func deleteMailbox(id: Int64) throws
    /// Renames folders in one step (a folder and its children).
    func renameMailboxes(_ renames: [(id: Int64, name: String)]) throws
    func setSubscribed(id: Int64, _ subscribed: Bool) throws

    func messages(in mailboxID: Int64) throws -> [IndexedMessage]
    /// Folder `name` and all its messages (UID order), read together: a delivery in
    /// between cannot leave UIDNEXT at or below a UID in the list. nil when there is no
    /// such folder.
    func contents(ofMailboxNamed name: String, of account: MailAccount) throws -> (mailbox: MailboxInfo, messages: [IndexedMessage])?
    /// Folder `id` and those of `uids` it holds (UID order), read together. nil when the
    /// folder is gone.
    func messages(_ uids: [UInt32], inMailbox id: Int64, of account: MailAccount) throws -> (mailbox: MailboxInfo, messages: [IndexedMessage])?
    /// Messages whose file is still in `new/`.
    func unclaimedMessages(in mailboxID: Int64) throws -> [IndexedMessage]
    /// Folder `id` with its messages of MODSEQ above `modSeq` and the UIDs expunged after
    /// it, read together. nil when the folder is gone.
    func changes(
        inMailbox id: Int64, of account: MailAccount, since modSeq: UInt64
    ) throws -> (mailbox: MailboxInfo, changed: [MessageRecord], expunged: [UInt32])?
    /// `recent`: messages whose file is still in `new/` (seen by no session).
    func status(of mailboxID: Int64) throws -> (messages: Int, unseen: Int, deleted: Int, size: Int, recent: Int)

    /// Adds messages in order; returns their UIDs.
    func insert(_ messages: [NewIndexedMessage], into mailboxID: Int64) throws -> [UInt32]
    /// Sets flags and file of existing messages, each getting a new MODSEQ; returns the records.
    func update(_ changes: [(uid: UInt32, flags: MessageFlags, file: String)], in mailboxID: Int64) throws -> [MessageRecord]
    /// Only the file name changes (a Maildir rename seen by recovery); no MODSEQ change.
    func relocate(_ changes: [(uid: UInt32, file: String)], in mailboxID: Int64) throws
    /// Adds `copies` to `destination` and, with `removeFromSource`, removes the source
    /// messages, in one transaction (RFC 6851 MOVE is atomic). Returns the new UIDs.
    func transfer(
        _ copies: [(source: UInt32, copy: NewIndexedMessage)], from source: Int64, to destination: Int64, removeFromSource: Bool
    ) throws -> [UInt32]
    /// Removes messages, recording their expunge (for QRESYNC VANISHED); returns the UIDs removed.
    func remove(uids: [UInt32], from mailboxID: Int64) throws -> [UInt32]
    /// Octets and messages over all of an account's folders.
    func usage(of account: MailAccount) throws -> (bytes: Int, messages: Int)
}
