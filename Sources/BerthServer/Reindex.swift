import BerthCore
import BerthStore
import Foundation
import Logging

/// `berth reindex`: throws the mail index away and builds it again from the Maildir
/// folders. Every folder gets a new UIDVALIDITY, so IMAP clients resynchronise instead of
/// trusting UIDs they cached (RFC 3501 §2.3.1.1); flags come back from the file names.
/// What only the index holds (keywords, by the file's Maildir base name; each folder's
/// special use and subscription, by its name) is carried over from the old rows when they
/// can be read, and lost when they cannot. The server must be stopped: the command takes
/// the data directory's lock like `berth serve`.
public enum Reindex {
    public struct Result: Sendable {
        public var accounts: Int
        public var folders: Int
        public var messages: Int
    }

    public static func run(dataDirectory: String, account: MailAccount?) throws -> Result {
        BerthLogHandler.bootstrap(level: .info, format: .text)
        let logger = Logger(label: "berth.reindex")
        let lock = try DataDirectoryLock(directory: dataDirectory)
        defer { lock.release() }
        let store = try ConfigStore(path: dataDirectory + "/berth.sqlite")
        // Leftovers first (tmp/, truncated files, deletions a crash cut short), as at start.
        try MailStore.recover(dataDirectory: dataDirectory, store: store, logger: logger)
        let index = SQLiteMailIndex(database: store.database)
        let layout = MaildirLayout(mailRoot: dataDirectory + "/mail")
        let accounts = try account.map { [$0] } ?? MaildirMailboxStore.accounts(layout: layout, index: index)
        var result = Result(accounts: 0, folders: 0, messages: 0)
        for account in accounts {
            let (report, lost) = try MaildirMailboxStore.reindex(account, layout: layout, index: index)
            if let lost {
                logger.warning("\(account): old index rows unreadable, its keywords, special use and subscriptions are lost: \(lost)")
            }
            result.accounts += 1
            result.folders += report.foldersAdded.count
            result.messages += report.indexed.count
            logger.info("reindexed \(account): \(report.foldersAdded.count) folder(s), \(report.indexed.count) message(s)")
        }
        return result
    }
}
