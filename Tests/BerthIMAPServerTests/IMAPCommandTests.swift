import BerthCore
import BerthIMAP
import BerthMIME
import BerthNet
import Foundation
import Logging
import NIOCore
import Testing

@testable import BerthIMAPServer

/// Commands and edge cases beyond the main session tests.
struct IMAPCommandTests {
    static let message = IMAPServerHandlerTests.message

    static func session(_ store: FakeMailboxStore, messages: Int = 0) throws -> IMAPTestClient {
        for _ in 0..<messages { try store.deliver(Self.message) }
        let client = try IMAPTestClient(store)
        try client.login()
        return client
    }

    @Test func uidExpungeOnlyTouchesTheGivenUIDs() throws {
        let store = try FakeMailboxStore()
        let client = try Self.session(store, messages: 3)
        _ = try client.select()
        _ = try client.command("a STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        #expect(try client.command("b UID EXPUNGE 2:3") == "* 3 EXPUNGE\r\n* 2 EXPUNGE\r\nb OK EXPUNGE completed\r\n")
        #expect(store.records("INBOX").map(\.uid) == [1])
        // CLOSE expunges the rest without a word (RFC 3501 §6.4.2).
        #expect(try client.command("c CLOSE") == "c OK CLOSE completed\r\n")
        #expect(store.records("INBOX").isEmpty)
        #expect(try client.command("d FETCH 1 FLAGS") == "d BAD No mailbox selected\r\n")
    }

    @Test func examineIsReadOnly() throws {
        let store = try FakeMailboxStore()
        let client = try Self.session(store, messages: 1)
        _ = try client.command("a EXAMINE INBOX")
        #expect(try client.command("b STORE 1 +FLAGS (\\Deleted)") == "b NO Mailbox is read-only\r\n")
        #expect(try client.command("c EXPUNGE") == "c NO Mailbox is read-only\r\n")
        #expect(try client.command("d MOVE 1 Trash") == "d NO Mailbox is read-only\r\n")
        #expect(try client.command("e CLOSE") == "e OK CLOSE completed\r\n")
        #expect(store.records("INBOX").count == 1)
    }

    @Test func uidFetchVanishedUnderQResync() throws {
        let store = try FakeMailboxStore()
        let client = try Self.session(store, messages: 3)
        _ = try client.command("a ENABLE QRESYNC")
        _ = try client.select()
        #expect(try client.command("b UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)").hasPrefix("* 1 FETCH (UID 1 FLAGS () MODSEQ (2))"))
        _ = try store.expunge(uids: [2], in: 1, of: FakeAuthenticator.alice)
        // Held during FETCH? No: under QRESYNC a UID FETCH may be told at once (RFC 7162 §3.2.10).
        let reply = try client.command("c UID FETCH 1:* FLAGS (CHANGEDSINCE 4 VANISHED)")
        #expect(reply == "* VANISHED (EARLIER) 2\r\n* VANISHED 2\r\nc OK FETCH completed\r\n")
        #expect(try client.command("d FETCH 1 FLAGS (VANISHED)").hasPrefix("d BAD"))
    }

    @Test func subscriptions() throws {
        let store = try FakeMailboxStore()
        let client = try Self.session(store)
        #expect(try client.command("a UNSUBSCRIBE Junk") == "a OK UNSUBSCRIBE completed\r\n")
        let lsub = try client.command("b LSUB \"\" *")
        #expect(lsub.contains("* LSUB () \"/\" Sent\r\n") && !lsub.contains("Junk"))
        let list = try client.command("c LIST (SUBSCRIBED) \"\" *")
        #expect(list.contains("* LIST (\\HasNoChildren \\Sent \\Subscribed) \"/\" Sent\r\n") && !list.contains("Junk"))
        #expect(try client.command("d SUBSCRIBE Nope").hasPrefix("d NO [NONEXISTENT]"))
    }

    @Test func appendOverQuota() throws {
        let store = try FakeMailboxStore()
        store.quotaLimit = 10
        let client = try Self.session(store)
        #expect(try client.send("a APPEND INBOX {20+}\r\nSubject: x\r\n\r\nbodyyy\r\n") == "a NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n")
    }

    @Test func selectedMailboxDeletedElsewhereEndsTheSession() throws {
        let store = try FakeMailboxStore()
        let client = try Self.session(store)
        _ = try client.command("a CREATE Work")
        _ = try client.select("Work")
        try store.deleteMailbox("Work", of: FakeAuthenticator.alice)
        #expect(try client.command("b NOOP") == "* BYE Selected mailbox was deleted or renamed\r\n")
        #expect(!client.isActive)
    }

    @Test func bannedClientGetsBye() throws {
        let authGuard = AuthGuard(logger: Logger(label: "test.ban"))
        var policy = BanTable.Policy()
        policy.threshold = 2
        authGuard.policy = policy
        let client = try IMAPTestClient(try FakeMailboxStore(), clientAddress: "198.51.100.7", authGuard: authGuard)
        _ = try client.output()
        _ = try client.command("a LOGIN alice@example.com wrong")
        client.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try client.output() == "a NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
        #expect(try client.command("b LOGIN alice@example.com wrong") == "* BYE Too many authentication failures; try again later\r\n")
        #expect(!client.isActive)
    }

    @Test func saslInitialResponseAndBadBase64() throws {
        let client = try IMAPTestClient(try FakeMailboxStore())
        _ = try client.output()
        #expect(try client.command("a AUTHENTICATE CRAM-MD5") == "a NO Unsupported authentication mechanism\r\n")
        _ = try client.command("b AUTHENTICATE PLAIN")
        #expect(try client.command("!!!") == "b BAD Invalid base64 in authentication response\r\n")
        #expect(try client.command("c AUTHENTICATE PLAIN =").hasPrefix("c BAD"), "an empty response has no user")
        #expect(try client.command("d NOOP") == "d OK NOOP completed\r\n")
    }

    @Test func drainWaitsForTheCommandThenSaysBye() throws {
        let store = try FakeMailboxStore()
        let client = try Self.session(store, messages: 1)
        _ = try client.select()
        _ = try client.command("a IDLE")
        client.channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        #expect(try client.output() == "* BYE Server shutting down\r\n", "IDLE ends at once")
        #expect(!client.isActive)
    }

    @Test func idRespondsAndEnableIgnoresUnknown() throws {
        let client = try IMAPTestClient(try FakeMailboxStore())
        _ = try client.output()
        #expect(try client.command("a ID (\"name\" \"test\")") == "* ID (\"name\" \"Berth\")\r\na OK ID completed\r\n")
        try client.login()
        #expect(try client.command("b ENABLE FOO CONDSTORE") == "* ENABLED CONDSTORE\r\nb OK ENABLE completed\r\n")
        #expect(try client.command("c GETQUOTA \"\"") == "c NO [NONEXISTENT] No quota is set\r\n")
        #expect(try client.command("d STATUS Nope (MESSAGES)").hasPrefix("d NO [NONEXISTENT]"))
    }

    /// Headers are read from disk once for every session of the server.
    @Test func headersComeFromTheSharedCache() throws {
        let store = try FakeMailboxStore()
        let client = try Self.session(store, messages: 2)
        _ = try client.select()
        let first = try client.command("a FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        for record in store.records("INBOX") {
            unlink(try #require(try store.messagePath(uid: record.uid, in: 1, of: FakeAuthenticator.alice)))
        }
        let again = try client.command("a FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        #expect(again == first && first.contains("* 2 FETCH"))
        #expect(try client.command("b SEARCH SUBJECT hello") == "* SEARCH 1 2\r\nb OK SEARCH completed\r\n")
        #expect(try client.command("c FETCH 1 BODY.PEEK[TEXT]") == "c NO [EXPUNGEISSUED] Some messages were expunged\r\n", "bodies are not cached")
    }

    @Test func headerCacheStaysWithinItsSize() {
        let cache = IMAPHeaderCache(capacity: 64 * 1024)
        let message = MIMEMessage(Array("Subject: x\n\n".utf8))
        for uid in 1...2000 as ClosedRange<UInt32> {
            cache.put(IMAPHeaderCache.Key(account: FakeAuthenticator.alice, mailboxID: 1, uidValidity: 1, uid: uid), message)
        }
        #expect(cache.count < 2000 && cache.count > 50)
        #expect(cache.get(IMAPHeaderCache.Key(account: FakeAuthenticator.alice, mailboxID: 1, uidValidity: 1, uid: 2000)) != nil)
        #expect(cache.get(IMAPHeaderCache.Key(account: FakeAuthenticator.alice, mailboxID: 1, uidValidity: 1, uid: 1)) == nil)
    }

    @Test func pipelinedCommandsRunInOrder() throws {
        let store = try FakeMailboxStore()
        let client = try Self.session(store, messages: 2)
        let reply = try client.send("a SELECT INBOX\r\nb STORE 1 +FLAGS (\\Seen)\r\nc SEARCH SEEN\r\nd NOOP\r\n")
        let order = ["a OK", "* 1 FETCH (FLAGS (\\Seen))", "* SEARCH 1\r\n", "c OK", "d OK"].map { reply.range(of: $0)?.lowerBound }
        #expect(order.allSatisfy { $0 != nil })
        #expect(order.compactMap { $0 } == order.compactMap { $0 }.sorted())
    }
}
