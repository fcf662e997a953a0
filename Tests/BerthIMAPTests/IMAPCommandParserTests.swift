import BerthTestSupport
import Testing

@testable import BerthIMAP

/// A command and what it parses to; the test is named by the command.
struct ParseFixture: CustomTestStringConvertible, Sendable {
    let input: String
    let expected: IMAPCommand.Kind
    var testDescription: String { input.debugDescription }

    init(_ input: String, _ expected: IMAPCommand.Kind) {
        self.input = input
        self.expected = expected
    }
}

/// A command that must be refused, the tag the error carries, and a fragment of its reason.
struct ParseErrorFixture: CustomTestStringConvertible, Sendable {
    let input: String
    let tag: String?
    let reason: String
    var testDescription: String { input.debugDescription }

    init(_ input: String, tag: String? = "a", _ reason: String) {
        self.input = input
        self.tag = tag
        self.reason = reason
    }
}

private func mailbox(_ name: String) -> IMAPMailboxName { IMAPMailboxName(name) }
private func set(_ ranges: IMAPSequenceRange...) -> IMAPSequenceSet { .ranges(ranges) }
private func date(_ year: Int, _ month: Int, _ day: Int) -> IMAPDate { IMAPDate(year: year, month: month, day: day)! }
private func search(_ key: IMAPSearchKey, charset: String? = nil, returning: [IMAPSearchReturnOption]? = nil,
                    uid: Bool = false) -> IMAPCommand.Kind {
    .search(IMAPSearchCommand(charset: charset, returnOptions: returning, key: key), uid: uid)
}
private func fetch(_ set: IMAPSequenceSet, _ attributes: [IMAPFetchAttribute], modifiers: [IMAPFetchModifier] = [],
                   uid: Bool = false) -> IMAPCommand.Kind {
    .fetch(set, attributes, modifiers: modifiers, uid: uid)
}

struct IMAPCommandParserTests {
    static let valid: [ParseFixture] = [
        // Any state.
        ParseFixture("a CAPABILITY", .capability),
        ParseFixture("a noop", .noop),
        ParseFixture("A001 LOGOUT", .logout),
        ParseFixture("a]1.x NOOP", .noop),
        ParseFixture("a ID NIL", .id(nil)),
        ParseFixture("a ID (\"name\" \"sodr\" \"version\" \"19.34\" \"os\" NIL)",
                     .id([IMAPIDField("name", "sodr"), IMAPIDField("version", "19.34"), IMAPIDField("os", nil)])),
        ParseFixture("a ID ()", .id([])),
        // Not authenticated.
        ParseFixture("a STARTTLS", .startTLS),
        ParseFixture("a AUTHENTICATE plain", .authenticate(mechanism: "PLAIN", initialResponse: nil)),
        ParseFixture("a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
                     .authenticate(mechanism: "PLAIN", initialResponse: "dGVzdAB0ZXN0AHRlc3Q=")),
        ParseFixture("a AUTHENTICATE PLAIN =", .authenticate(mechanism: "PLAIN", initialResponse: "")),
        ParseFixture("a AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=",
                     .authenticate(mechanism: "SCRAM-SHA-256", initialResponse: "biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=")),
        ParseFixture("a LOGIN alice secret", .login(user: "alice", password: "secret")),
        ParseFixture("a login \"alice@example.com\" \"p\\\\a\\\"ss word\"",
                     .login(user: "alice@example.com", password: "p\\a\"ss word")),
        ParseFixture("a LOGIN {5}\r\nalice {6}\r\nsecret", .login(user: "alice", password: "secret")),
        ParseFixture("a LOGIN {5+}\r\nalice \"x y\"", .login(user: "alice", password: "x y")),
        ParseFixture("a LOGIN {5}\r\nj\u{F6}rg {4}\r\n\"\r\n\\", .login(user: "jörg", password: "\"\r\n\\")),
        ParseFixture("a LOGIN \"\" \"\"", .login(user: "", password: "")),
        // Authenticated.
        ParseFixture("a SELECT inbox", .select(.inbox, parameters: [])),
        ParseFixture("a SELECT \"InBoX\"", .select(.inbox, parameters: [])),
        ParseFixture("a SELECT INBOX (CONDSTORE)", .select(.inbox, parameters: [.condStore])),
        ParseFixture("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
                     .select(.inbox, parameters: [.qresync(IMAPQResyncParameter(
                         uidValidity: 67890007, modSeq: 20050715194045000,
                         knownUIDs: set(IMAPSequenceRange(41), IMAPSequenceRange(43...211), IMAPSequenceRange(214...541))))])),
        ParseFixture("a EXAMINE \"Sent Items\" (QRESYNC (67890007 90060115194045000 1:* (1:20 41:60)))",
                     .examine(mailbox("Sent Items"), parameters: [.qresync(IMAPQResyncParameter(
                         uidValidity: 67890007, modSeq: 90060115194045000,
                         knownUIDs: set(IMAPSequenceRange(.number(1), .last)),
                         sequenceMatch: .init(sequenceNumbers: set(IMAPSequenceRange(1...20)),
                                              uids: set(IMAPSequenceRange(41...60)))))])),
        ParseFixture("a EXAMINE x (QRESYNC (1 2))", .examine(mailbox("x"), parameters: [.qresync(.init(uidValidity: 1, modSeq: 2))])),
        ParseFixture("a CREATE &ZeVnLIqe-", .create(mailbox("日本語"))),
        ParseFixture("a CREATE Foo&-Bar", .create(mailbox("Foo&Bar"))),
        ParseFixture("a CREATE &-", .create(mailbox("&"))),
        ParseFixture("a CREATE {7}\r\nTrä\u{F6}t", .create(mailbox("Trä\u{F6}t"))),
        ParseFixture("a DELETE \"a b\"", .delete(mailbox("a b"))),
        ParseFixture("a RENAME old ~peter/mail/&U,BTFw-", .rename(from: mailbox("old"), to: mailbox("~peter/mail/台北"))),
        ParseFixture("a SUBSCRIBE #news.comp.mail.misc", .subscribe(mailbox("#news.comp.mail.misc"))),
        ParseFixture("a UNSUBSCRIBE x]y", .unsubscribe(mailbox("x]y"))),
        ParseFixture("a LIST \"\" \"*\"", .list(IMAPListCommand(reference: mailbox(""), patterns: ["*"]))),
        ParseFixture("a LIST \"\" %", .list(IMAPListCommand(reference: mailbox(""), patterns: ["%"]))),
        ParseFixture("a LIST ~/Mail/ %/&ZeVnLIqe-*", .list(IMAPListCommand(reference: mailbox("~/Mail/"), patterns: ["%/日本語*"]))),
        ParseFixture("a LIST (SPECIAL-USE) \"\" \"*\"",
                     .list(IMAPListCommand(selectOptions: [.specialUse], reference: mailbox(""), patterns: ["*"]))),
        ParseFixture("a LIST \"\" \"*\" RETURN (SPECIAL-USE)",
                     .list(IMAPListCommand(reference: mailbox(""), patterns: ["*"], returnOptions: [.specialUse]))),
        ParseFixture("a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX\" \"Lists/%\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
                     .list(IMAPListCommand(selectOptions: [.subscribed, .recursiveMatch], reference: mailbox(""),
                                           patterns: ["INBOX", "Lists/%"],
                                           returnOptions: [.children, .status([.messages, .unseen])]))),
        ParseFixture("a LIST () \"\" x RETURN ()", .list(IMAPListCommand(reference: mailbox(""), patterns: ["x"]))),
        ParseFixture("a LSUB \"#news.\" \"comp.mail.*\"", .lsub(reference: mailbox("#news."), pattern: "comp.mail.*")),
        ParseFixture("a STATUS blurdybloop (UIDNEXT MESSAGES HIGHESTMODSEQ)",
                     .status(mailbox("blurdybloop"), [.uidNext, .messages, .highestModSeq])),
        ParseFixture("a APPEND saved-messages (\\Seen) {5}\r\nhello",
                     .append(IMAPAppendCommand(mailbox: mailbox("saved-messages"), flags: [.seen], message: .inline(Array("hello".utf8))))),
        ParseFixture("a APPEND INBOX (\\seen \\Draft $Label) \" 7-Feb-1994 21:52:25 -0800\" {3+}\r\nabc",
                     .append(IMAPAppendCommand(mailbox: .inbox, flags: [.seen, .draft, IMAPFlag("$Label")],
                                               date: IMAPDateTime(date: date(1994, 2, 7), hour: 21, minute: 52, second: 25, zoneMinutes: -480),
                                               message: .inline(Array("abc".utf8))))),
        ParseFixture("a APPEND INBOX \"17-Jul-1996 02:44:25 +0130\" {0}\r\n",
                     .append(IMAPAppendCommand(mailbox: .inbox,
                                               date: IMAPDateTime(date: date(1996, 7, 17), hour: 2, minute: 44, second: 25, zoneMinutes: 90),
                                               message: .inline([])))),
        ParseFixture("a APPEND {5}\r\nDraft () {2}\r\nhi",
                     .append(IMAPAppendCommand(mailbox: mailbox("Draft"), message: .inline(Array("hi".utf8))))),
        ParseFixture("a NAMESPACE", .namespace),
        ParseFixture("a ENABLE condstore QRESYNC", .enable(["CONDSTORE", "QRESYNC"])),
        ParseFixture("a IDLE", .idle),
        ParseFixture("a GETQUOTA \"\"", .getQuota(root: "")),
        ParseFixture("a GETQUOTAROOT INBOX", .getQuotaRoot(.inbox)),
        ParseFixture("a SETQUOTA \"\" (STORAGE 512 message 1000)",
                     .setQuota(root: "", limits: [IMAPQuotaLimit(resource: "STORAGE", limit: 512),
                                                  IMAPQuotaLimit(resource: "MESSAGE", limit: 1000)])),
        ParseFixture("a SETQUOTA user.x ()", .setQuota(root: "user.x", limits: [])),
        // Selected.
        ParseFixture("a CHECK", .check),
        ParseFixture("a CLOSE", .close),
        ParseFixture("a UNSELECT", .unselect),
        ParseFixture("a EXPUNGE", .expunge),
        ParseFixture("a UID EXPUNGE 3000:3002", .uidExpunge(set(IMAPSequenceRange(3000...3002)))),
        ParseFixture("a SEARCH ALL", search(.all)),
        ParseFixture("a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
                     search(.and([.flagged, .since(date(1994, 2, 1)), .not(.from("Smith"))]))),
        ParseFixture("a SEARCH CHARSET UTF-8 SUBJECT {6}\r\n日本", search(.subject("日本"), charset: "UTF-8")),
        ParseFixture("a SEARCH charset us-ascii TEXT \"x\"", search(.text("x"), charset: "US-ASCII")),
        ParseFixture("a SEARCH OR (FROM alice SUBJECT \"re: x\") NOT (SEEN UNDELETED) 1:5,7 UID 10:*",
                     search(.and([.or(.and([.from("alice"), .subject("re: x")]), .not(.and([.seen, .undeleted]))),
                                  .sequenceSet(set(IMAPSequenceRange(1...5), IMAPSequenceRange(7))),
                                  .uid(set(IMAPSequenceRange(.number(10), .last)))]))),
        ParseFixture("a SEARCH OR OR ANSWERED DRAFT OR NEW OLD", search(.or(.or(.answered, .draft), .or(.new, .old)))),
        ParseFixture("a SEARCH ((((DELETED))))", search(.deleted)),
        ParseFixture("a SEARCH HEADER Message-ID \"<x@y>\" LARGER 1000 SMALLER 4294967295",
                     search(.and([.header("Message-ID", "<x@y>"), .larger(1000), .smaller(4294967295)]))),
        ParseFixture("a SEARCH BEFORE \"1-Jan-2000\" ON 29-Feb-2024 SENTBEFORE 31-Dec-1999 SENTON 01-Mar-2001 SENTSINCE 9-Sep-2009",
                     search(.and([.before(date(2000, 1, 1)), .on(date(2024, 2, 29)), .sentBefore(date(1999, 12, 31)),
                                  .sentOn(date(2001, 3, 1)), .sentSince(date(2009, 9, 9))]))),
        ParseFixture("a SEARCH KEYWORD $Forwarded UNKEYWORD Junk BCC b CC c TO t BODY {4}\r\nbody",
                     search(.and([.keyword(IMAPFlag("$Forwarded")), .unkeyword(IMAPFlag("Junk")), .bcc("b"), .cc("c"),
                                  .to("t"), .body("body")]))),
        ParseFixture("a SEARCH RECENT UNANSWERED UNDRAFT UNFLAGGED UNSEEN",
                     search(.and([.recent, .unanswered, .undraft, .unflagged, .unseen]))),
        ParseFixture("a SEARCH RETURN (MIN MAX COUNT) UNSEEN", search(.unseen, returning: [.min, .max, .count])),
        ParseFixture("a SEARCH RETURN () CHARSET UTF-8 ALL", search(.all, charset: "UTF-8", returning: [])),
        ParseFixture("a UID SEARCH RETURN (SAVE) DELETED", search(.deleted, returning: [.save], uid: true)),
        ParseFixture("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338",
                     search(.modSeq(IMAPSearchModSeq(entry: .init(flag: .draft, type: "all"), value: 620162338)))),
        ParseFixture("a SEARCH MODSEQ 0", search(.modSeq(IMAPSearchModSeq(value: 0)))),
        ParseFixture("a SEARCH $", search(.sequenceSet(.lastSearchResult))),
        ParseFixture("a UID SEARCH UID $ SEEN", search(.and([.uid(.lastSearchResult), .seen]), uid: true)),
        ParseFixture("a FETCH 12 FULL", fetch(set(IMAPSequenceRange(12)), IMAPFetchAttribute.full)),
        ParseFixture("a FETCH 2:4 all", fetch(set(IMAPSequenceRange(2...4)), IMAPFetchAttribute.all)),
        ParseFixture("a FETCH 1 FAST", fetch(set(IMAPSequenceRange(1)), IMAPFetchAttribute.fast)),
        ParseFixture("a FETCH 1 UID", fetch(set(IMAPSequenceRange(1)), [.uid])),
        ParseFixture("a FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
                     fetch(set(IMAPSequenceRange(2...4)), [.flags, .bodySection(IMAPSection(text: .headerFields(["DATE", "FROM"])), partial: nil, peek: false)])),
        ParseFixture("a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From Subject)]<0.1024>)",
                     fetch(set(IMAPSequenceRange(1)), [.bodySection(IMAPSection(text: .headerFields(["FROM", "SUBJECT"])),
                                                                    partial: IMAPPartial(offset: 0, length: 1024), peek: true)])),
        ParseFixture("a FETCH 1 BODY[1.2.3.MIME]", fetch(set(IMAPSequenceRange(1)), [.bodySection(IMAPSection(part: [1, 2, 3], text: .mime), partial: nil, peek: false)])),
        ParseFixture("a FETCH 1 BODY[]", fetch(set(IMAPSequenceRange(1)), [.bodySection(.complete, partial: nil, peek: false)])),
        ParseFixture("a FETCH 1 BODY.PEEK[TEXT]<100.200>",
                     fetch(set(IMAPSequenceRange(1)), [.bodySection(IMAPSection(text: .text), partial: IMAPPartial(offset: 100, length: 200), peek: true)])),
        ParseFixture("a FETCH 1 BODY[2]", fetch(set(IMAPSequenceRange(1)), [.bodySection(IMAPSection(part: [2]), partial: nil, peek: false)])),
        ParseFixture("a FETCH 1 BODY[3.HEADER.FIELDS.NOT (Received \"X-Spam\")]",
                     fetch(set(IMAPSequenceRange(1)), [.bodySection(IMAPSection(part: [3], text: .headerFieldsNot(["RECEIVED", "X-SPAM"])), partial: nil, peek: false)])),
        ParseFixture("a FETCH * (RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT ENVELOPE BODY BODYSTRUCTURE UID INTERNALDATE MODSEQ)",
                     fetch(set(IMAPSequenceRange(.last)), [.rfc822, .rfc822Header, .rfc822Size, .rfc822Text, .envelope, .body,
                                                          .bodyStructure, .uid, .internalDate, .modSeq])),
        ParseFixture("a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)",
                     fetch(set(IMAPSequenceRange(.number(1), .last)), [.flags], modifiers: [.changedSince(12345)])),
        ParseFixture("a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
                     fetch(set(IMAPSequenceRange(300...500)), [.flags], modifiers: [.changedSince(12345), .vanished], uid: true)),
        ParseFixture("a UID FETCH *:4,5:7 FLAGS",
                     fetch(set(IMAPSequenceRange(.last, .number(4)), IMAPSequenceRange(5...7)), [.flags], uid: true)),
        ParseFixture("a STORE 2:4 +FLAGS (\\Deleted)",
                     .store(set(IMAPSequenceRange(2...4)), IMAPStoreAction(.add, flags: [.deleted]), unchangedSince: nil, uid: false)),
        ParseFixture("a STORE 1 FLAGS.SILENT \\Seen $Label1",
                     .store(set(IMAPSequenceRange(1)), IMAPStoreAction(.replace, silent: true, flags: [.seen, IMAPFlag("$Label1")]), unchangedSince: nil, uid: false)),
        ParseFixture("a STORE 1 -FLAGS ()", .store(set(IMAPSequenceRange(1)), IMAPStoreAction(.remove, flags: []), unchangedSince: nil, uid: false)),
        ParseFixture("a STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)",
                     .store(set(IMAPSequenceRange(7), IMAPSequenceRange(5), IMAPSequenceRange(9)),
                            IMAPStoreAction(.add, silent: true, flags: [.deleted]), unchangedSince: 320162338, uid: false)),
        ParseFixture("a UID STORE 1 +FLAGS (\\Seen)", .store(set(IMAPSequenceRange(1)), IMAPStoreAction(.add, flags: [.seen]), unchangedSince: nil, uid: true)),
        ParseFixture("a COPY 2:4 MEETING", .copy(set(IMAPSequenceRange(2...4)), mailbox("MEETING"), uid: false)),
        ParseFixture("a UID COPY 1:* Trash", .copy(set(IMAPSequenceRange(.number(1), .last)), mailbox("Trash"), uid: true)),
        ParseFixture("a MOVE 1 &AMQ-rger", .move(set(IMAPSequenceRange(1)), mailbox("Ärger"), uid: false)),
        ParseFixture("a UID MOVE 4294967295 x", .move(set(IMAPSequenceRange(4294967295)), mailbox("x"), uid: true)),
        ParseFixture("a COPY $ inbox", .copy(.lastSearchResult, .inbox, uid: false)),
    ]

    @Test(arguments: valid)
    func parses(_ fixture: ParseFixture) {
        let result = IMAPCommandParser.parse(Array(fixture.input.utf8))
        #expect(result == .success(IMAPCommand(tag: result.tag, fixture.expected)))
    }

    static let invalid: [ParseErrorFixture] = [
        ParseErrorFixture("", tag: nil, "missing tag"),
        ParseErrorFixture(" NOOP", tag: nil, "missing tag"),
        ParseErrorFixture("a", "missing command"),
        ParseErrorFixture("a ", "missing command"),
        ParseErrorFixture("a+b NOOP", tag: nil, "invalid character in tag"),
        ParseErrorFixture("a(b NOOP", tag: nil, "invalid character in tag"),
        ParseErrorFixture("a\"b NOOP", tag: nil, "invalid character in tag"),
        ParseErrorFixture("t\u{E9}g NOOP", tag: nil, "8-bit character in tag"),
        ParseErrorFixture("a FOO", "unknown command FOO"),
        ParseErrorFixture("a UID FOO 1", "unknown command UID FOO"),
        ParseErrorFixture("a  NOOP", "extra space"),
        ParseErrorFixture("a NOOP ", "extra space"),
        ParseErrorFixture("a NOOP x", "unexpected argument"),
        ParseErrorFixture("a NOOP\u{0}", "unexpected characters"),
        ParseErrorFixture("a SELECT", "unexpected end of command"),
        ParseErrorFixture("a SELECT  INBOX", "extra space"),
        ParseErrorFixture("a LOGIN alice", "unexpected end of command"),
        ParseErrorFixture("a LOGIN caf\u{E9} pw", "8-bit character in user name"),
        ParseErrorFixture("a LOGIN \"unterminated", "unterminated quoted string"),
        ParseErrorFixture("a LOGIN \"bad\\escape\" x", "invalid escape"),
        ParseErrorFixture("a LOGIN {10}\r\nabc", "literal length mismatch"),
        ParseErrorFixture("a LOGIN {3}\r\na\u{0}c pw", "NUL octet in literal"),
        ParseErrorFixture("a LOGIN {3}\nabc pw", "expected CRLF"),
        ParseErrorFixture("a LOGIN {4294967296}\r\nabc pw", "number too large"),
        ParseErrorFixture("a AUTHENTICATE PLAIN abc", "bad base64"),
        ParseErrorFixture("a AUTHENTICATE PLAIN a=bc", "bad base64"),
        ParseErrorFixture("a CREATE &Jjo", "not valid modified UTF-7"),
        ParseErrorFixture("a CREATE &AGE-", "not valid modified UTF-7"),
        ParseErrorFixture("a CREATE a*b", "unexpected characters"),
        ParseErrorFixture("a SEARCH", "unexpected end of command"),
        ParseErrorFixture("a SEARCH (ALL", ") after search keys"),
        ParseErrorFixture("a SEARCH ALL)", "unexpected characters"),
        ParseErrorFixture("a SEARCH ()", "expected search key"),
        ParseErrorFixture("a SEARCH " + String(repeating: "(", count: 40) + "ALL" + String(repeating: ")", count: 40), "nested too deeply"),
        ParseErrorFixture("a SEARCH " + String(repeating: "NOT ", count: 40) + "ALL", "nested too deeply"),
        ParseErrorFixture("a SEARCH BOGUS", "unknown search key BOGUS"),
        ParseErrorFixture("a SEARCH OR SEEN", "unexpected end of command"),
        ParseErrorFixture("a SEARCH SINCE 30-Feb-2024", "bad date"),
        ParseErrorFixture("a SEARCH SINCE 29-Feb-2023", "bad date"),
        ParseErrorFixture("a SEARCH SINCE 1-Foo-2024", "bad date"),
        ParseErrorFixture("a SEARCH SINCE 1-Feb-24", "bad date"),
        ParseErrorFixture("a SEARCH SINCE 123-Feb-2024", "bad date"),
        ParseErrorFixture("a SEARCH SINCE \"1-Feb-2024", "DQUOTE after date"),
        ParseErrorFixture("a SEARCH LARGER 99999999999999999999", "number too large"),
        ParseErrorFixture("a SEARCH LARGER 4294967296", "number too large"),
        ParseErrorFixture("a SEARCH UID 1:2:3", "bad sequence set"),
        ParseErrorFixture("a SEARCH CHARSET UTF-8", "unexpected end of command"),
        ParseErrorFixture("a SEARCH RETURN (FIRST) ALL", "unknown SEARCH return option"),
        ParseErrorFixture("a SEARCH MODSEQ \"/x/y\" all 1", "MODSEQ entry name"),
        ParseErrorFixture("a SEARCH MODSEQ \"/flags/\\\\Seen\" mine 1", "priv, shared or all"),
        ParseErrorFixture("a SEARCH MODSEQ 9223372036854775808", "mod-sequence too large"),
        ParseErrorFixture("a SEARCH SUBJECT caf\u{E9}", "8-bit character in search string"),
        ParseErrorFixture("a FETCH 1:2: FLAGS", "bad sequence set"),
        ParseErrorFixture("a FETCH 0 FLAGS", "bad sequence set"),
        ParseErrorFixture("a FETCH 1,,2 FLAGS", "bad sequence set"),
        ParseErrorFixture("a FETCH 1, FLAGS", "bad sequence set"),
        ParseErrorFixture("a FETCH -1 FLAGS", "bad sequence set"),
        ParseErrorFixture("a FETCH 4294967296 FLAGS", "number too large"),
        ParseErrorFixture("a FETCH 1 BODY[HEADER.FIELDS]", "expected SP"),
        ParseErrorFixture("a FETCH 1 BODY[HEADER.FIELDS ()]", "expected header field name"),
        ParseErrorFixture("a FETCH 1 BODY[MIME]", "bad section"),
        ParseErrorFixture("a FETCH 1 BODY[0]", "zero is not allowed"),
        ParseErrorFixture("a FETCH 1 BODY[1.]", "bad section"),
        ParseErrorFixture("a FETCH 1 BODY[TEXT", "] after section"),
        ParseErrorFixture("a FETCH 1 BODY[]<0.0>", "zero is not allowed"),
        ParseErrorFixture("a FETCH 1 BODY[]<5>", ". in partial range"),
        ParseErrorFixture("a FETCH 1 BODY.PEEK", "expected [section]"),
        ParseErrorFixture("a FETCH 1 (FLAGS", ") after fetch attributes"),
        ParseErrorFixture("a FETCH 1 (FLAGS))", "unexpected characters"),
        ParseErrorFixture("a FETCH 1 ()", "expected fetch attribute"),
        ParseErrorFixture("a FETCH 1 (ALL)", "unknown fetch attribute ALL"),
        ParseErrorFixture("a FETCH 1 FOO", "unknown fetch attribute FOO"),
        ParseErrorFixture("a FETCH 1 FLAGS (VANISHED)", "only allowed in UID FETCH"),
        ParseErrorFixture("a UID FETCH 1 FLAGS (VANISHED)", "VANISHED needs CHANGEDSINCE"),
        ParseErrorFixture("a FETCH 1 FLAGS (CHANGEDSINCE 0)", "zero is not a mod-sequence"),
        ParseErrorFixture("a STORE 1 FLAGS", "unexpected end of command"),
        ParseErrorFixture("a STORE 1 XFLAGS (\\Seen)", "expected FLAGS"),
        ParseErrorFixture("a STORE 1 +FLAGS (\\Seen", "expected )"),
        ParseErrorFixture("a STORE 1 (FOO 1) FLAGS \\Seen", "unknown STORE modifier"),
        ParseErrorFixture("a STORE 1 FLAGS (\\)", "expected flag"),
        ParseErrorFixture("a STORE 1 FLAGS (caf\u{E9})", "8-bit character in flag"),
        ParseErrorFixture("a STATUS INBOX (MESSAGES BOGUS)", "unknown status attribute"),
        ParseErrorFixture("a STATUS INBOX ()", "unknown status attribute"),
        ParseErrorFixture("a LIST (BOGUS) \"\" *", "unknown LIST selection option"),
        ParseErrorFixture("a LIST (RECURSIVEMATCH) \"\" *", "RECURSIVEMATCH needs"),
        ParseErrorFixture("a LIST \"\" * RETURN (BOGUS)", "unknown LIST return option"),
        ParseErrorFixture("a LIST \"\" * FOO", "expected RETURN"),
        ParseErrorFixture("a LIST \"\" (\"a\" \"b\"", ") after mailbox patterns"),
        ParseErrorFixture("a SELECT INBOX (QRESYNC (0 1))", "zero is not allowed"),
        ParseErrorFixture("a SELECT INBOX (QRESYNC (1 9223372036854775808))", "mod-sequence too large"),
        ParseErrorFixture("a SELECT INBOX (BOGUS)", "unknown SELECT parameter"),
        ParseErrorFixture("a SELECT INBOX ()", "expected SELECT parameter"),
        ParseErrorFixture("a APPEND INBOX \"31-Jun-2024 00:00:00 +0000\" {1}\r\nx", "bad date-time"),
        ParseErrorFixture("a APPEND INBOX \"1-Jun-2024 24:00:00 +0000\" {1}\r\nx", "bad date-time"),
        ParseErrorFixture("a APPEND INBOX \"1-Jun-2024 00:00:00 0000\" {1}\r\nx", "expected zone"),
        ParseErrorFixture("a APPEND INBOX (\\Seen) hello", "expected message literal"),
        ParseErrorFixture("a APPEND INBOX {5}\r\nhi", "literal length mismatch"),
        ParseErrorFixture("a APPEND INBOX {2}\r\nhi extra", "unexpected argument"),
        ParseErrorFixture("a ENABLE", "unexpected end of command"),
        ParseErrorFixture("a ID (\"name\")", "expected SP"),
        ParseErrorFixture("a ID (name \"x\")", "expected ID field name"),
        ParseErrorFixture("a SETQUOTA \"\" (STORAGE 99999999999999999999)", "number too large"),
        ParseErrorFixture("a RENAME a", "unexpected end of command"),
    ]

    @Test(arguments: invalid)
    func refuses(_ fixture: ParseErrorFixture) {
        switch IMAPCommandParser.parse(Array(fixture.input.utf8)) {
        case .success(let command):
            Issue.record("parsed as \(command)")
        case .failure(let error):
            #expect(error.tag == fixture.tag)
            #expect(error.reason.contains(fixture.reason), "reason: \(error.reason)")
        }
    }

    /// Errors never repeat the command's strings: a password stays out of logs and replies.
    @Test func errorsDoNotEchoPasswords() {
        let result = IMAPCommandParser.parse(Array("a LOGIN alice hunter2 extra".utf8))
        guard case .failure(let error) = result else {
            Issue.record("accepted")
            return
        }
        #expect(!error.reason.contains("hunter2"))
    }

    @Test func idleDone() {
        #expect(IMAPCommandParser.isIdleDone(IMAPCommandBytes("DONE")))
        #expect(IMAPCommandParser.isIdleDone(IMAPCommandBytes("done")))
        #expect(!IMAPCommandParser.isIdleDone(IMAPCommandBytes("DONE ")))
        #expect(!IMAPCommandParser.isIdleDone(IMAPCommandBytes("a NOOP")))
    }

    @Test func authenticationResponses() {
        #expect(IMAPCommandParser.parseAuthenticationResponse(IMAPCommandBytes("*")) == .success(.cancel))
        #expect(IMAPCommandParser.parseAuthenticationResponse(IMAPCommandBytes("")) == .success(.response("")))
        #expect(IMAPCommandParser.parseAuthenticationResponse(IMAPCommandBytes("AGFsaWNlAHNlY3JldA==")) == .success(.response("AGFsaWNlAHNlY3JldA==")))
        guard case .failure = IMAPCommandParser.parseAuthenticationResponse(IMAPCommandBytes("not base64!")) else {
            Issue.record("accepted")
            return
        }
    }

    /// The message literal the framer streamed out is a placeholder in the command.
    @Test func streamedAppendLiteral() {
        let bytes = Array("a APPEND INBOX (\\Seen) {1000}\r\n".utf8)
        let command = IMAPCommandBytes(bytes, streamedLiteral: .init(offset: bytes.count, size: 1000))
        #expect(IMAPCommandParser.parse(command)
            == .success(IMAPCommand(tag: "a", .append(IMAPAppendCommand(mailbox: .inbox, flags: [.seen], message: .streamed(size: 1000))))))
        // Anywhere else, a streamed literal is an error, not a crash.
        let login = Array("a LOGIN {3}\r\n".utf8)
        let misplaced = IMAPCommandBytes(login, streamedLiteral: .init(offset: login.count, size: 3))
        guard case .failure(let error) = IMAPCommandParser.parse(misplaced) else {
            Issue.record("accepted")
            return
        }
        #expect(error.reason.contains("message literal is not allowed"))
    }

    /// Strings must be UTF-8 (the bytes of a literal are not checked by the framer).
    @Test func invalidUTF8IsRefused() {
        let login = Array("a LOGIN {2}\r\n".utf8) + [0xFF, 0xFE] + Array(" pw".utf8)
        guard case .failure(let error) = IMAPCommandParser.parse(login) else {
            Issue.record("accepted")
            return
        }
        #expect(error.reason.contains("not valid UTF-8"))
        let mailbox = Array("a CREATE {1}\r\n".utf8) + [0xE9]
        guard case .failure(let error) = IMAPCommandParser.parse(mailbox) else {
            Issue.record("accepted")
            return
        }
        #expect(error.reason.contains("not valid UTF-8"))
    }

    /// Numbers at the edges of their ranges.
    @Test func numberLimits() {
        #expect(IMAPCommandParser.parse(Array("a FETCH 4294967295 FLAGS".utf8)).isSuccess)
        #expect(IMAPCommandParser.parse(Array("a SEARCH MODSEQ 9223372036854775807".utf8)).isSuccess)
        #expect(IMAPCommandParser.parse(Array("a FETCH 0004294967295 FLAGS".utf8)).isSuccess)
        #expect(!IMAPCommandParser.parse(Array("a FETCH 18446744073709551616 FLAGS".utf8)).isSuccess)
    }
}

extension Result where Success == IMAPCommand, Failure == IMAPParseError {
    /// The tag of the parsed command, so fixtures need not repeat it.
    var tag: String {
        switch self {
        case .success(let command): command.tag
        case .failure(let error): error.tag ?? ""
        }
    }

    var isSuccess: Bool {
        if case .success = self { true } else { false }
    }
}
