import BerthCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Bringing the index and the Maildir back together: at every start (after a crash, or
/// files changed by another program such as mutt) and for `berth reindex`.
extension MaildirMailboxStore {
    public struct ReconcileReport: Sendable, Hashable {
        /// Files that had no row, now indexed (full paths).
        public var indexed: [String] = []
        /// Rows whose file is gone, dropped (full paths they named).
        public var dropped: [String] = []
        /// Rows whose file had been renamed (flags changed by another program), followed.
        public var relocated = 0
        /// Folders found on disk without a row, now indexed.
        public var foldersAdded: [String] = []

        public init() {}
    }

    /// What a rebuilt index takes over from the one it replaces (`berth reindex`): the
    /// state only the index holds. Flags are in the file names, but keywords, a folder's
    /// special use (a renamed Sent keeps `\Sent`; only default names get one from files)
    /// and whether it is subscribed are not.
    public struct CarryOver: Sendable {
        public struct Folder: Sendable, Hashable {
            public var specialUse: SpecialUse?
            public var subscribed: Bool
        }

        /// By folder name.
        public var folders: [String: Folder] = [:]
        /// Keywords by folder name, then by the file's Maildir base name (what stays the
        /// same when its flags change).
        public var keywords: [String: [String: [String]]] = [:]
        /// Keywords by base name alone, for a file another program moved to another folder.
        public var keywordsAnywhere: [String: [String]] = [:]

        public init() {}

        /// The old index rows of `account`; throws when they cannot be read.
        public static func read(_ account: MailAccount, index: any MailIndex) throws -> CarryOver {
            var carry = CarryOver()
            for folder in try index.mailboxes(of: account) {
                carry.folders[folder.name] = Folder(specialUse: folder.specialUse, subscribed: folder.subscribed)
                for message in try index.messages(in: folder.id) where !message.record.flags.keywords.isEmpty {
                    let base = MaildirFileName(MaildirMailboxStore.lastComponent(message.file)).base
                    carry.keywords[folder.name, default: [:]][base] = message.record.flags.keywords
                    carry.keywordsAnywhere[base] = message.record.flags.keywords
                }
            }
            return carry
        }

        func keywords(folder: String, base: String) -> [String] {
            keywords[folder]?[base] ?? keywordsAnywhere[base] ?? []
        }
    }

    /// `berth reindex` for one account: its folder rows go and are built again from the
    /// files, each folder with a UIDVALIDITY above any it had (RFC 3501 §2.3.1.1: clients
    /// must not trust cached UIDs). What only the index holds is carried over from the old
    /// rows when they can be read; `lost` is why it could not be.
    public static func reindex(
        _ account: MailAccount, layout: MaildirLayout, index: any MailIndex
    ) throws -> (report: ReconcileReport, lost: (any Error)?) {
        var carryOver: CarryOver?
        var lost: (any Error)?
        do {
            carryOver = try CarryOver.read(account, index: index)
        } catch {
            lost = error
        }
        for folder in try index.mailboxes(of: account) {
            SQLiteMailIndex.raiseUIDValidity(above: folder.uidValidity)
            try index.deleteMailbox(id: folder.id)
        }
        return (try reconcile(account, layout: layout, index: index, carryOver: carryOver), lost)
    }

    /// Every account with a directory under `mail/` or a folder in the index.
    public static func accounts(layout: MaildirLayout, index: any MailIndex) throws -> [MailAccount] {
        var found = Set(try index.accounts())
        for domain in subdirectories(of: layout.mailRoot) {
            for user in subdirectories(of: layout.mailRoot + "/" + domain) {
                found.insert(MailAccount(domain: domain, user: user))
            }
        }
        return found.sorted { ($0.domain, $0.user) < ($1.domain, $1.user) }
    }

    /// The folders of an account on disk: INBOX (the account's Maildir) and each Maildir++
    /// subfolder. Finishes deletions a crash interrupted (`.DELETED.` directories).
    static func folderDirectories(of account: MailAccount, layout: MaildirLayout) -> [(name: String, directory: String)] {
        let root = layout.accountDirectory(account)
        var folders: [(String, String)] = [(DefaultMailboxes.inbox, root)]
        for entry in subdirectories(of: root, includeHidden: true) {
            if entry.hasPrefix(MaildirLayout.deletingPrefix) {
                try? FileManager.default.removeItem(atPath: root + "/" + entry)
                continue
            }
            if let name = MaildirLayout.folderName(ofDirectory: entry) { folders.append((name, root + "/" + entry)) }
        }
        return folders
    }

    /// Makes the index of `account` agree with its Maildir: folders on disk get rows,
    /// folders in the index get directories, files without rows are indexed (UIDs in
    /// name order, which is arrival order), rows without files are dropped, rows of
    /// renamed files follow them. `carryOver` gives new folder rows their special use and
    /// subscription, and new message rows their keywords, from an index being replaced.
    @discardableResult
    public static func reconcile(
        _ account: MailAccount, layout: MaildirLayout, index: any MailIndex, carryOver: CarryOver? = nil
    ) throws -> ReconcileReport {
        var report = ReconcileReport()
        let onDisk = folderDirectories(of: account, layout: layout)
        var folders = Dictionary(uniqueKeysWithValues: try index.mailboxes(of: account).map { ($0.name, $0) })
        for (name, _) in onDisk where folders[name] == nil {
            // A folder the old index knew keeps exactly its special use (none included: a
            // new "Sent" beside a renamed one must not become a second `\Sent`).
            let previous = carryOver?.folders[name]
            let specialUse = previous.map(\.specialUse) ?? DefaultMailboxes.all.first { $0.name == name }?.specialUse
            let created = try index.createMailbox(
                name, specialUse: specialUse, uidValidity: SQLiteMailIndex.newUIDValidity(), of: account)
            if previous?.subscribed == false { try index.setSubscribed(id: created.id, false) }
            folders[name] = created
            report.foldersAdded.append(name)
        }
        for folder in folders.values.sorted(by: { $0.name < $1.name }) {
            let directory = layout.directory(of: folder.name, in: account)
            if !onDisk.contains(where: { $0.name == folder.name }) {
                try makeMaildir(directory, isFolder: folder.name != DefaultMailboxes.inbox)
            }
            var rows: [String: IndexedMessage] = [:]
            for message in try index.messages(in: folder.id) {
                rows[MaildirFileName(lastComponent(message.file)).base] = message
            }
            var added: [NewIndexedMessage] = []
            var relocations: [(uid: UInt32, file: String)] = []
            var reflagged: [(uid: UInt32, flags: MessageFlags, file: String)] = []
            var seen: Set<String> = []
            for sub in ["new", "cur"] {
                for name in files(in: directory + "/" + sub) {
                    let parsed = MaildirFileName(name)
                    let file = sub + "/" + name
                    guard seen.insert(parsed.base).inserted else { continue }
                    if let row = rows[parsed.base] {
                        guard row.file != file else { continue }
                        // Renamed by another program (mutt marking it read): its flags win.
                        let system = MessageFlags.system(fromMaildirInfo: parsed.info ?? "")
                        if parsed.info != nil && system != row.record.flags.system {
                            reflagged.append((row.uid, MessageFlags(system: system, keywords: row.record.flags.keywords), file))
                        } else {
                            relocations.append((row.uid, file))
                        }
                        continue
                    }
                    let path = directory + "/" + file
                    var info = stat()
                    let found = stat(path, &info) == 0
                    let modified = found ? Double(info.st_mtim.tv_sec) : Date().timeIntervalSince1970
                    // The name's W= only when its S= is the file's size and W= is plausible
                    // for it; a name another program made may say anything.
                    let fileSize = found ? Int(info.st_size) : -1
                    let named = parsed.crlfSize.flatMap { w in
                        parsed.fileSize == fileSize && w >= fileSize && w <= 2 * fileSize ? w : nil
                    }
                    let size = try named ?? crlfSize(ofFile: path)
                    let flags = MessageFlags(
                        system: MessageFlags.system(fromMaildirInfo: parsed.info ?? ""),
                        keywords: carryOver?.keywords(folder: folder.name, base: parsed.base) ?? [])
                    added.append(NewIndexedMessage(file: file, flags: flags, internalDate: modified, size: size))
                }
            }
            added.sort { $0.file.split(separator: "/").last! < $1.file.split(separator: "/").last! }
            if !added.isEmpty {
                _ = try index.insert(added, into: folder.id)
                report.indexed += added.map { directory + "/" + $0.file }
            }
            if !relocations.isEmpty {
                try index.relocate(relocations, in: folder.id)
                report.relocated += relocations.count
            }
            if !reflagged.isEmpty {
                _ = try index.update(reflagged, in: folder.id)
                report.relocated += reflagged.count
            }
            let gone = rows.filter { !seen.contains($0.key) }.map(\.value)
            if !gone.isEmpty {
                _ = try index.remove(uids: gone.map(\.uid), from: folder.id)
                report.dropped += gone.map { directory + "/" + $0.file }.sorted()
            }
        }
        return report
    }

    static func files(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    static func subdirectories(of directory: String, includeHidden: Bool = false) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted().filter { name in
            var isDirectory: ObjCBool = false
            return (includeHidden || !name.hasPrefix(".")) && name != "." && name != ".."
                && FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }
}
