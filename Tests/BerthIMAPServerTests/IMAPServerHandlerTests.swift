import BerthCore
import BerthIMAP
import BerthNet
import Foundation
import NIOCore
import NIOEmbedded
import Testing

@testable import BerthIMAPServer

/// The server on `EmbeddedChannel`s over the fake store: what a client sees.
struct IMAPServerHandlerTests {
    static let message = "From: Bob <bob@example.org>\nTo: alice@example.com\nSubject: Hello there\nDate: Tue, 14 Nov 2023 10:00:00 +0000\n\nLine one\nLine two\n"
    /// The message as served: CRLF line ends.
    static var served: String { message.replacingOccurrences(of: "\n", with: "\r\n") }

    // MARK: Not authenticated

    @Test func greetingNamesTheHostAndCapabilities() throws {
        let client = try IMAPTestClient(FakeMailboxStore())
        let greeting = try client.output()
        #expect(greeting.hasPrefix("* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE"))
        #expect(greeting.contains("AUTH=PLAIN]"))
        #expect(greeting.hasSuffix("] imap.example.com IMAP4rev1 ready\r\n"))
        let capability = try client.command("a CAPABILITY")
        #expect(capability.contains("* CAPABILITY IMAP4rev1 "))
        #expect(capability.contains("CONDSTORE QRESYNC ESEARCH QUOTA"))
        #expect(!capability.contains("STARTTLS"), "no TLS context: no STARTTLS")
        #expect(capability.hasSuffix("a OK CAPABILITY completed\r\n"))
    }

    @Test func loginDisabledOnTLSRequiredPortBeforeTLS() throws {
        let client = try IMAPTestClient(FakeMailboxStore(), encryption: .tls, tlsRequired: true, allowPlaintext: true)
        #expect(try client.output().contains("LOGINDISABLED"))
        let reply = try client.command("a LOGIN alice@example.com secret")
        #expect(reply == "a NO [PRIVACYREQUIRED] TLS required: use STARTTLS first\r\n")
        #expect(try client.command("b NOOP") == "b OK NOOP completed\r\n")
    }

    @Test func loginDisabledWithoutPlaintextAuth() throws {
        let client = try IMAPTestClient(FakeMailboxStore(), allowPlaintext: false)
        let greeting = try client.output()
        #expect(greeting.contains("LOGINDISABLED") && !greeting.contains("AUTH=PLAIN"))
        #expect(try client.command("a LOGIN alice@example.com secret").hasPrefix("a NO [PRIVACYREQUIRED]"))
    }

    @Test func loginAndFailedLogin() throws {
        let client = try IMAPTestClient(FakeMailboxStore(), clientAddress: "192.0.2.10")
        _ = try client.output()
        #expect(try client.command("a LOGIN alice@example.com wrong") == "", "the answer waits for the guard's delay")
        client.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try client.output() == "a NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
        let ok = try client.command("b LOGIN alice@example.com secret")
        #expect(ok.hasPrefix("b OK [CAPABILITY IMAP4rev1 "))
        #expect(!ok.contains("AUTH=PLAIN"))
        #expect(try client.command("c LOGIN alice@example.com secret") == "c BAD Already authenticated\r\n")
    }

    @Test func authenticatePlainWithInitialResponseAndContinuation() throws {
        let credentials = Data("\0alice@example.com\0secret".utf8).base64EncodedString()
        let first = try IMAPTestClient(FakeMailboxStore())
        _ = try first.output()
        #expect(try first.command("a AUTHENTICATE PLAIN \(credentials)").hasPrefix("a OK [CAPABILITY"))

        let second = try IMAPTestClient(FakeMailboxStore())
        _ = try second.output()
        #expect(try second.command("a AUTHENTICATE PLAIN") == "+ \r\n")
        #expect(try second.command(credentials).hasPrefix("a OK [CAPABILITY"))

        let third = try IMAPTestClient(FakeMailboxStore())
        _ = try third.output()
        _ = try third.command("a AUTHENTICATE PLAIN")
        #expect(try third.command("*") == "a BAD Authentication cancelled\r\n")
    }

    @Test func garbageGetsBADAndTheSessionGoesOn() throws {
        let client = try IMAPTestClient(FakeMailboxStore())
        _ = try client.output()
        #expect(try client.command("GET / HTTP/1.1").hasPrefix("GET BAD "))
        #expect(try client.command("a FROB").hasPrefix("a BAD "))
        #expect(try client.command("a SELECT INBOX") == "a BAD Not authenticated: LOGIN first\r\n")
        #expect(try client.send("x NOOP\n").hasPrefix("x BAD"), "bare LF")
        #expect(try client.command("b NOOP") == "b OK NOOP completed\r\n")
        var last = ""
        for _ in 0..<20 where client.isActive { last = try client.command("junk") }
        #expect(last.contains("* BYE Too many invalid commands"))
        #expect(!client.isActive)
    }

    @Test func autologoutBeforeLogin() throws {
        let client = try IMAPTestClient(FakeMailboxStore())
        _ = try client.output()
        client.channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(client.isActive)
        client.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try client.output() == "* BYE Autologout; idle for too long\r\n")
        #expect(!client.isActive)
    }

    @Test func drainSaysBye() throws {
        let client = try IMAPTestClient(FakeMailboxStore())
        try client.login()
        client.channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        #expect(try client.output() == "* BYE Server shutting down\r\n")
        #expect(!client.isActive)
    }

    @Test func logout() throws {
        let client = try IMAPTestClient(FakeMailboxStore())
        _ = try client.output()
        #expect(try client.command("a LOGOUT") == "* BYE Logging out\r\na OK LOGOUT completed\r\n")
        #expect(!client.isActive)
    }

    // MARK: Authenticated

    @Test func selectReportsTheFolder() throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message, flags: MessageFlags(system: .seen))
        try store.deliver(Self.message)
        let client = try IMAPTestClient(store)
        try client.login()
        let reply = try client.select()
        #expect(reply.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"))
        #expect(reply.contains("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)]"))
        #expect(reply.contains("* 2 EXISTS\r\n* 0 RECENT\r\n* OK [UNSEEN 2]"))
        #expect(reply.contains("* OK [UIDVALIDITY 1001]"))
        #expect(reply.contains("* OK [UIDNEXT 3]"))
        #expect(reply.contains("* OK [HIGHESTMODSEQ 3]"))
        #expect(reply.hasSuffix("S1 OK [READ-WRITE] SELECT completed\r\n"))
        #expect(try client.command("e EXAMINE INBOX").hasSuffix("e OK [READ-ONLY] EXAMINE completed\r\n"))
        #expect(try client.command("f SELECT Nope").hasPrefix("f NO [NONEXISTENT]"))
    }

    @Test func listStatusAndFolders() throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message)
        let client = try IMAPTestClient(store)
        try client.login()
        #expect(try client.command("a CREATE Work/Projects/") == "a OK CREATE completed\r\n")
        let list = try client.command("b LIST \"\" *")
        #expect(list.contains("* LIST (\\HasNoChildren) \"/\" INBOX\r\n"))
        #expect(list.contains("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"))
        #expect(list.contains("* LIST (\\Noselect \\HasChildren) \"/\" Work\r\n"))
        #expect(list.contains("* LIST (\\HasNoChildren) \"/\" Work/Projects\r\n"))
        #expect(try client.command("c LIST \"\" \"\"") == "* LIST (\\Noselect) \"/\" \"\"\r\nc OK LIST completed\r\n")
        let percent = try client.command("d LIST \"\" %")
        #expect(!percent.contains("Work/Projects"))
        let status = try client.command("e STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
        #expect(status == "* STATUS INBOX (MESSAGES 1 UNSEEN 1 UIDNEXT 2)\r\ne OK STATUS completed\r\n")
        let extended = try client.command("f LIST (SPECIAL-USE) \"\" * RETURN (STATUS (MESSAGES))")
        #expect(extended.contains("\\Trash) \"/\" Trash\r\n* STATUS Trash (MESSAGES 0)\r\n"))
        #expect(!extended.contains("INBOX"))
        #expect(try client.command("g CREATE Work") == "g OK CREATE completed\r\n")
        #expect(try client.command("h CREATE Work").hasPrefix("h NO [ALREADYEXISTS]"))
        #expect(try client.command("i RENAME Work Play") == "i OK RENAME completed\r\n")
        #expect(try client.command("j DELETE Play") == "j OK DELETE completed\r\n")
        #expect(try client.command("k NAMESPACE") == "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nk OK NAMESPACE completed\r\n")
        #expect(try client.command("l ENABLE QRESYNC") == "* ENABLED QRESYNC\r\nl OK ENABLE completed\r\n")
    }

    @Test func quota() throws {
        let store = try FakeMailboxStore()
        store.quotaLimit = 10 * 1024
        try store.deliver(String(repeating: "x", count: 2000))
        let client = try IMAPTestClient(store)
        try client.login()
        #expect(try client.command("a GETQUOTAROOT INBOX") == "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 2 10)\r\na OK GETQUOTAROOT completed\r\n")
        #expect(try client.command("b SETQUOTA \"\" (STORAGE 1)").hasPrefix("b NO [NOPERM]"))
    }

    // MARK: FETCH

    @Test func fetchServesAnLFFileWithCRLF() throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message)
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.select()
        let size = Self.served.utf8.count
        let reply = try client.command("a FETCH 1 (RFC822.SIZE BODY[])")
        #expect(reply == "* 1 FETCH (RFC822.SIZE \(size) BODY[] {\(size)}\r\n\(Self.served) FLAGS (\\Seen))\r\na OK FETCH completed\r\n")
        #expect(store.records("INBOX").first?.flags.system == .seen, "BODY[] sets \\Seen")
    }

    @Test func fetchHeaderFieldsPartialsAndPeek() throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message)
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.command("s EXAMINE INBOX")
        let subject = try client.command("a UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        #expect(subject == "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {24}\r\nSubject: Hello there\r\n\r\n)\r\na OK FETCH completed\r\n")
        let partial = try client.command("b FETCH 1 BODY.PEEK[TEXT]<5.8>")
        #expect(partial == "* 1 FETCH (BODY[TEXT]<5> {8}\r\none\r\nLin)\r\nb OK FETCH completed\r\n")
        #expect(try client.command("p FETCH 1 BODY.PEEK[]<33.9>") == "* 1 FETCH (BODY[]<33> {9}\r\nalice@exa)\r\np OK FETCH completed\r\n")
        // EXAMINE: BODY[] does not set \Seen.
        _ = try client.command("c FETCH 1 BODY[]")
        #expect(store.records("INBOX").first?.flags.system == [])
        let envelope = try client.command("d FETCH 1 (FLAGS INTERNALDATE ENVELOPE)")
        #expect(envelope.contains("* 1 FETCH (FLAGS () INTERNALDATE \"14-Nov-2023 22:13:20 +0000\" ENVELOPE (\"Tue, 14 Nov 2023 10:00:00 +0000\" \"Hello there\" ((\"Bob\" NIL \"bob\" \"example.org\"))"))
        let structure = try client.command("e FETCH 1 BODYSTRUCTURE")
        #expect(structure.contains("BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 2"))
        // RFC 3501 §9: a sequence number beyond EXISTS is invalid (QA); a UID that is gone is not.
        #expect(try client.command("f FETCH 5 FLAGS").hasPrefix("f BAD Invalid message sequence number 5"))
        #expect(try client.command("g UID FETCH 500 FLAGS") == "g OK FETCH completed\r\n")
        #expect(try client.command("h FETCH 1:* FLAGS").hasSuffix("h OK FETCH completed\r\n"))
    }

    // MARK: STORE, EXPUNGE, two sessions

    @Test func storeAndExpungeRenumber() throws {
        let store = try FakeMailboxStore()
        for _ in 0..<3 { try store.deliver(Self.message) }
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.select()
        #expect(try client.command("a STORE 2 +FLAGS (\\Deleted)") == "* 2 FETCH (FLAGS (\\Deleted))\r\na OK STORE completed\r\n")
        #expect(try client.command("b STORE 1 +FLAGS.SILENT (\\Seen)") == "b OK STORE completed\r\n")
        #expect(try client.command("c EXPUNGE") == "* 2 EXPUNGE\r\nc OK EXPUNGE completed\r\n")
        #expect(try client.command("d FETCH 2 (UID)") == "* 2 FETCH (UID 3)\r\nd OK FETCH completed\r\n")
        let keyword = try client.command("e UID STORE 3 FLAGS (\\Flagged $Label1)")
        // RFC 3501 §7.2.6: a new keyword comes with a new FLAGS.
        #expect(keyword.hasPrefix("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded $Label1)\r\n* OK [PERMANENTFLAGS ("))
        #expect(keyword.hasSuffix("* 2 FETCH (UID 3 FLAGS (\\Flagged $Label1))\r\ne OK STORE completed\r\n"))
        #expect(store.records("INBOX").map(\.uid) == [1, 3])
    }

    @Test func conditionalStore() throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message)
        try store.deliver(Self.message)
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.select()
        _ = try client.command("a STORE 2 +FLAGS (\\Seen)")
        let reply = try client.command("b STORE 1:2 (UNCHANGEDSINCE 2) +FLAGS (\\Flagged)")
        #expect(reply == "* 1 FETCH (FLAGS (\\Flagged) MODSEQ (5))\r\nb OK [MODIFIED 2] Conditional STORE failed\r\n")
        #expect(try client.command("c FETCH 1:* (FLAGS) (CHANGEDSINCE 4)") == "* 1 FETCH (FLAGS (\\Flagged) MODSEQ (5))\r\nc OK FETCH completed\r\n")
    }

    @Test func twoSessionsSeeEachOthersChanges() throws {
        let store = try FakeMailboxStore()
        for _ in 0..<3 { try store.deliver(Self.message) }
        let alpha = try IMAPTestClient(store)
        let beta = try IMAPTestClient(store)
        try alpha.login()
        try beta.login()
        _ = try alpha.select()
        _ = try beta.select()
        _ = try alpha.command("a STORE 1 +FLAGS (\\Seen)")
        #expect(try beta.command("b NOOP") == "* 1 FETCH (FLAGS (\\Seen))\r\nb OK NOOP completed\r\n")
        // An expunge is held while beta FETCHes (RFC 3501 §7.4.1), told at its NOOP.
        _ = try alpha.command("c STORE 2 +FLAGS (\\Deleted)")
        _ = try alpha.command("d EXPUNGE")
        #expect(try beta.command("e FETCH 3 (UID)") == "* 3 FETCH (UID 3)\r\ne OK FETCH completed\r\n")
        #expect(try beta.command("f NOOP") == "* 2 EXPUNGE\r\nf OK NOOP completed\r\n")
        try store.deliver(Self.message)
        #expect(try beta.command("g CHECK") == "* 3 EXISTS\r\n* 0 RECENT\r\ng OK CHECK completed\r\n")
    }

    @Test func idlePushesChanges() throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message)
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.select()
        #expect(try client.command("a IDLE") == "+ idling\r\n")
        try store.deliver(Self.message)
        #expect(try client.output() == "* 2 EXISTS\r\n* 0 RECENT\r\n")
        _ = try store.storeFlags(.add(MessageFlags(system: .flagged)), uids: [1], in: 1, of: FakeAuthenticator.alice, unchangedSince: nil)
        #expect(try client.output() == "* 1 FETCH (FLAGS (\\Flagged))\r\n")
        // Thirty minutes at least (RFC 3501 §5.4): after 29 the session is still there.
        client.channel.embeddedEventLoop.advanceTime(by: .minutes(29))
        #expect(client.isActive)
        #expect(try client.command("DONE") == "a OK IDLE terminated\r\n")
        #expect(store.observerCount() == 1)
        _ = try client.command("b UNSELECT")
        #expect(store.observerCount() == 0, "observed only while selected")
    }

    // MARK: APPEND, COPY, MOVE

    @Test func appendWithSynchronizingLiteralAndLiteralPlus() throws {
        let store = try FakeMailboxStore()
        let client = try IMAPTestClient(store)
        try client.login()
        let body = Self.served
        #expect(try client.command("a APPEND INBOX (\\Seen) {\(body.utf8.count)}") == "+ Ready for literal data\r\n")
        #expect(try client.send(body + "\r\n") == "a OK [APPENDUID 1001 1] APPEND completed\r\n")
        let plus = try client.send("b APPEND Drafts (\\Draft) \"14-Nov-2023 10:00:00 +0100\" {\(body.utf8.count)+}\r\n\(body)\r\n")
        #expect(plus == "b OK [APPENDUID 1003 1] APPEND completed\r\n")
        #expect(store.records("INBOX").first?.flags.system == .seen)
        #expect(store.records("INBOX").first?.size == body.utf8.count)
        #expect(store.records("Drafts").first?.internalDate == 1_699_952_400)
        #expect(try client.send("c APPEND Nope {3+}\r\nabc\r\n") == "c NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n")
        #expect(try client.command("d NOOP") == "d OK NOOP completed\r\n")
    }

    @Test func appendTooBig() throws {
        let client = try IMAPTestClient(try FakeMailboxStore(), maxAppendSize: 100)
        try client.login()
        #expect(try client.command("a APPEND INBOX {500}").hasPrefix("a NO [TOOBIG]"))
        #expect(try client.command("b NOOP") == "b OK NOOP completed\r\n")
    }

    /// RFC 3501 §4.3, §9: a literal's `CHAR8` excludes NUL. The message is refused with
    /// `NO`, nothing is stored, and the session goes on.
    @Test func appendWithNULIsRefused() throws {
        let store = try FakeMailboxStore()
        let client = try IMAPTestClient(store)
        try client.login()
        let body = "Subject: x\r\n\r\nbin\u{0}ary\r\n"
        #expect(try client.command("a APPEND INBOX {\(body.utf8.count)}") == "+ Ready for literal data\r\n")
        let refused = "NO Message refused: it contains a NUL octet, which IMAP literals may not hold\r\n"
        #expect(try client.send(body + "\r\n") == "a " + refused)
        #expect(try client.send("b APPEND INBOX (\\Seen) {\(body.utf8.count)+}\r\n\(body)\r\n") == "b " + refused)
        #expect(store.records("INBOX").isEmpty)
        #expect(try client.send("c APPEND INBOX {3+}\r\nabc\r\n") == "c OK [APPENDUID 1001 1] APPEND completed\r\n")
        #expect(try client.command("d NOOP") == "d OK NOOP completed\r\n")
        #expect(store.records("INBOX").count == 1)
    }

    @Test func copyAndMoveWithCOPYUID() throws {
        let store = try FakeMailboxStore()
        for _ in 0..<3 { try store.deliver(Self.message) }
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.select()
        #expect(try client.command("a COPY 1:2 Archive") == "a OK [COPYUID 1006 1:2 1:2] COPY completed\r\n")
        #expect(try client.command("b UID MOVE 2 Trash") == "* OK [COPYUID 1004 2 1] Moved\r\n* 2 EXPUNGE\r\nb OK MOVE completed\r\n")
        #expect(try client.command("c COPY 1 Nope") == "c NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n")
        #expect(store.records("INBOX").map(\.uid) == [1, 3])
        #expect(store.records("Trash").count == 1)
    }

    // MARK: SEARCH

    @Test func search() throws {
        let store = try FakeMailboxStore()
        try store.deliver(Self.message, flags: MessageFlags(system: .seen))
        try store.deliver(Self.message.replacingOccurrences(of: "Hello there", with: "Invoice 42"))
        try store.deliver(String(repeating: "x", count: 5000))
        let client = try IMAPTestClient(store)
        try client.login()
        _ = try client.select()
        #expect(try client.command("a SEARCH UNSEEN") == "* SEARCH 2 3\r\na OK SEARCH completed\r\n")
        #expect(try client.command("b UID SEARCH SUBJECT invoice") == "* SEARCH 2\r\nb OK SEARCH completed\r\n")
        #expect(try client.command("c SEARCH OR SEEN LARGER 4000") == "* SEARCH 1 3\r\nc OK SEARCH completed\r\n")
        #expect(try client.command("d SEARCH BODY \"line TWO\" NOT 1") == "* SEARCH 2\r\nd OK SEARCH completed\r\n")
        #expect(try client.command("e SEARCH CHARSET UTF-8 FROM bob SENTSINCE 1-Nov-2023") == "* SEARCH 1 2\r\ne OK SEARCH completed\r\n")
        #expect(try client.command("f SEARCH CHARSET KOI8-R ALL") == "f NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n")
        #expect(try client.command("g SEARCH RETURN (MIN MAX COUNT ALL) 2:*") == "* ESEARCH (TAG \"g\") MIN 2 MAX 3 ALL 2:3 COUNT 2\r\ng OK SEARCH completed\r\n")
        #expect(try client.command("h UID SEARCH RETURN () DELETED") == "* ESEARCH (TAG \"h\") UID\r\nh OK SEARCH completed\r\n")
        #expect(try client.command("i SEARCH MODSEQ 2") == "* SEARCH 1 2 3 (MODSEQ 4)\r\ni OK SEARCH completed\r\n")
    }
}
