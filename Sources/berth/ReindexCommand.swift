import ArgumentParser
import BerthCore
import BerthServer
import Foundation

struct ReindexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Rebuild the mail index from the Maildir folders (stop the server first).",
        discussion: """
            Every folder gets a new UIDVALIDITY, so IMAP clients download their view again; \
            flags come back from the Maildir file names; IMAP keywords, special-use folders \
            and subscriptions are kept from the old index when it can be read.
            """)

    @Option(help: "Data directory of the stopped server.")
    var data = "./berth-data"

    @Option(help: "Only this account (user@domain).")
    var user: String?

    func run() throws {
        var account: MailAccount?
        if let user {
            guard let at = user.lastIndex(of: "@"), at != user.startIndex, at != user.index(before: user.endIndex) else {
                throw ValidationError("--user must be user@domain")
            }
            account = MailAccount(domain: String(user[user.index(after: at)...]).lowercased(), user: String(user[..<at]).lowercased())
        }
        do {
            let result = try Reindex.run(dataDirectory: data, account: account)
            print("reindexed \(result.accounts) account(s): \(result.folders) folder(s), \(result.messages) message(s)")
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
