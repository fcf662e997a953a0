import Testing

@testable import BerthIMAP

/// A response and its exact bytes; the test is named by the bytes.
struct EncodeFixture: CustomTestStringConvertible, Sendable {
    let response: IMAPResponse
    let expected: String
    var testDescription: String { expected.count > 100 ? String(expected.prefix(100)).debugDescription + "…" : expected.debugDescription }

    init(_ response: IMAPResponse, _ expected: String) {
        self.response = response
        self.expected = expected
    }
}

private func set(_ ranges: IMAPSequenceRange...) -> IMAPSequenceSet { .ranges(ranges) }

/// RFC 3501 §8: the envelope of message 12 in the sample session.
let sampleEnvelope = IMAPEnvelope(
    date: "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
    subject: "IMAP4rev1 WG mtg summary and minutes",
    from: [IMAPAddress(name: "Terry Gray", mailbox: "gray", host: "cac.washington.edu")],
    sender: [IMAPAddress(name: "Terry Gray", mailbox: "gray", host: "cac.washington.edu")],
    replyTo: [IMAPAddress(name: "Terry Gray", mailbox: "gray", host: "cac.washington.edu")],
    to: [IMAPAddress(name: nil, mailbox: "imap", host: "cac.washington.edu")],
    cc: [IMAPAddress(name: nil, mailbox: "minutes", host: "CNRI.Reston.VA.US"),
         IMAPAddress(name: "John Klensin", mailbox: "KLENSIN", host: "MIT.EDU")],
    messageID: "<B27397-0100000@cac.washington.edu>"
)

let sampleEnvelopeText = "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "
    + "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
    + "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) "
    + "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
    + "\"<B27397-0100000@cac.washington.edu>\")"

let plainText = IMAPBodyStructure.singlePart(IMAPBodyPart(
    type: "TEXT", subtype: "PLAIN",
    fields: IMAPBodyFields(parameters: [IMAPBodyParameter("CHARSET", "US-ASCII")], encoding: "7BIT", octets: 3028),
    kind: .text(lines: 92)))

/// RFC 3501 §7.4.2's BODY example: a multipart/mixed with two text parts.
let mixed = IMAPBodyStructure.multipart(IMAPMultipartBody(parts: [
    .singlePart(IMAPBodyPart(type: "TEXT", subtype: "PLAIN",
                             fields: IMAPBodyFields(parameters: [IMAPBodyParameter("CHARSET", "US-ASCII")], encoding: "7BIT", octets: 1152),
                             kind: .text(lines: 23))),
    .singlePart(IMAPBodyPart(type: "TEXT", subtype: "PLAIN",
                             fields: IMAPBodyFields(parameters: [IMAPBodyParameter("CHARSET", "US-ASCII"), IMAPBodyParameter("NAME", "cc.diff")],
                                                    id: "<960723163407.20117h@cac.washington.edu>", description: "Compiler diff",
                                                    encoding: "BASE64", octets: 4554),
                             kind: .text(lines: 73))),
], subtype: "MIXED"))

/// A BODYSTRUCTURE with every extension field: multipart/alternative, an attachment and
/// an encapsulated message.
let withExtensions = IMAPBodyStructure.multipart(IMAPMultipartBody(parts: [
    .singlePart(IMAPBodyPart(type: "TEXT", subtype: "PLAIN",
                             fields: IMAPBodyFields(parameters: [IMAPBodyParameter("CHARSET", "UTF-8")], encoding: "QUOTED-PRINTABLE", octets: 120),
                             kind: .text(lines: 4),
                             extensionData: .init(md5: nil, disposition: IMAPBodyDisposition(type: "INLINE"), language: ["EN"], location: nil))),
    .singlePart(IMAPBodyPart(type: "APPLICATION", subtype: "PDF",
                             fields: IMAPBodyFields(encoding: "BASE64", octets: 2048),
                             extensionData: .init(md5: "Q2hlY2sgSW50ZWdyaXR5IQ==",
                                                  disposition: IMAPBodyDisposition(type: "ATTACHMENT", parameters: [IMAPBodyParameter("FILENAME", "a b.pdf")]),
                                                  language: ["EN", "DE"], location: "http://x.example/a.pdf"))),
    .singlePart(IMAPBodyPart(type: "MESSAGE", subtype: "RFC822",
                             fields: IMAPBodyFields(encoding: "7BIT", octets: 500),
                             kind: .message(envelope: IMAPEnvelope(subject: "inner"), body: plainText, lines: 10),
                             extensionData: .init())),
], subtype: "ALTERNATIVE", extensionData: .init(parameters: [IMAPBodyParameter("BOUNDARY", "xyz")])))

struct IMAPResponseEncoderTests {
    static let fixtures: [EncodeFixture] = [
        // Tagged and untagged status responses, with response codes.
        EncodeFixture(.tagged(tag: "a001", .ok, text: "LOGIN completed"), "a001 OK LOGIN completed\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .tryCreate, text: "no such mailbox"), "a NO [TRYCREATE] no such mailbox\r\n"),
        EncodeFixture(.tagged(tag: "a", .bad, text: "bad\r\nline é"), "a BAD bad??line ??\r\n"),
        EncodeFixture(.tagged(tag: "a", .ok, code: .readWrite, text: ""), "a OK [READ-WRITE]\r\n"),
        EncodeFixture(.tagged(tag: "A003", .ok, code: .appendUID(uidValidity: 38505, uids: set(IMAPSequenceRange(3955))), text: "APPEND completed"),
                      "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
        EncodeFixture(.tagged(tag: "A004", .ok, code: .copyUID(uidValidity: 38505, source: set(IMAPSequenceRange(304), IMAPSequenceRange(319...320)),
                                                               destination: set(IMAPSequenceRange(3956...3958))), text: "Done"),
                      "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"),
        EncodeFixture(.untagged(.ok, code: .permanentFlags([.deleted, .seen, .wildcard]), text: "Limited"),
                      "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"),
        EncodeFixture(.untagged(.ok, code: .uidValidity(3857529045), text: "UIDs valid"), "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
        EncodeFixture(.untagged(.ok, code: .unseen(17), text: "Message 17 is the first unseen message"),
                      "* OK [UNSEEN 17] Message 17 is the first unseen message\r\n"),
        EncodeFixture(.untagged(.ok, code: .uidNext(4392), text: "Predicted next UID"), "* OK [UIDNEXT 4392] Predicted next UID\r\n"),
        EncodeFixture(.untagged(.ok, code: .highestModSeq(715194045007), text: "Highest"), "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"),
        EncodeFixture(.untagged(.ok, code: .noModSeq, text: "Sorry"), "* OK [NOMODSEQ] Sorry\r\n"),
        EncodeFixture(.tagged(tag: "d105", .ok, code: .modified(set(IMAPSequenceRange(7), IMAPSequenceRange(9))), text: "Conditional STORE failed"),
                      "d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n"),
        EncodeFixture(.untagged(.ok, code: .closed, text: "Previous mailbox is now closed"), "* OK [CLOSED] Previous mailbox is now closed\r\n"),
        EncodeFixture(.untagged(.ok, code: .capability(["IMAP4rev1", "IDLE", "AUTH=PLAIN"]), text: "Berth ready"),
                      "* OK [CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN] Berth ready\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .badCharset(["UTF-8", "US-ASCII"]), text: "charset"),
                      "a NO [BADCHARSET (UTF-8 US-ASCII)] charset\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .badCharset([]), text: "charset"), "a NO [BADCHARSET] charset\r\n"),
        EncodeFixture(.untagged(.ok, code: .alert, text: "System shutdown in 10 minutes"), "* OK [ALERT] System shutdown in 10 minutes\r\n"),
        EncodeFixture(.tagged(tag: "a", .bad, code: .parse, text: "x"), "a BAD [PARSE] x\r\n"),
        EncodeFixture(.tagged(tag: "a", .ok, code: .readOnly, text: "EXAMINE completed"), "a OK [READ-ONLY] EXAMINE completed\r\n"),
        EncodeFixture(.tagged(tag: "a", .bad, code: .tooBig, text: "literal too large"), "a BAD [TOOBIG] literal too large\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .overQuota, text: "quota"), "a NO [OVERQUOTA] quota\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .limit, text: "limit"), "a NO [LIMIT] limit\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .alreadyExists, text: "exists"), "a NO [ALREADYEXISTS] exists\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .nonExistent, text: "none"), "a NO [NONEXISTENT] none\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .authenticationFailed, text: "Authentication failed"),
                      "a NO [AUTHENTICATIONFAILED] Authentication failed\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .unavailable, text: "try later"), "a NO [UNAVAILABLE] try later\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .uidNotSticky, text: "x"), "a NO [UIDNOTSTICKY] x\r\n"),
        EncodeFixture(.tagged(tag: "a", .no, code: .other("X-THING", "a]b\r"), text: "x"), "a NO [X-THING a?b?] x\r\n"),
        EncodeFixture(.untagged(.bye, text: "Autologout; idle for too long"), "* BYE Autologout; idle for too long\r\n"),
        EncodeFixture(.untagged(.preauth, text: "IMAP4rev1 server logged in as Smith"), "* PREAUTH IMAP4rev1 server logged in as Smith\r\n"),
        EncodeFixture(.untagged(.bad, text: "line too long"), "* BAD line too long\r\n"),
        // Continuation requests.
        EncodeFixture(.continuation("Ready"), "+ Ready\r\n"),
        EncodeFixture(.continuation(""), "+ \r\n"),
        // Untagged data.
        EncodeFixture(.data(.capability(["IMAP4rev1", "STARTTLS", "LOGINDISABLED"])), "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n"),
        EncodeFixture(.data(.list(IMAPListItem(attributes: ["\\Noselect"], delimiter: "/", mailbox: IMAPMailboxName("~/Mail/foo")))),
                      "* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n"),
        EncodeFixture(.data(.list(IMAPListItem(attributes: [], delimiter: ".", mailbox: IMAPMailboxName("Sent Items")))),
                      "* LIST () \".\" \"Sent Items\"\r\n"),
        EncodeFixture(.data(.list(IMAPListItem(attributes: ["\\HasNoChildren", "\\Sent"], delimiter: "/", mailbox: IMAPMailboxName("日本語")))),
                      "* LIST (\\HasNoChildren \\Sent) \"/\" &ZeVnLIqe-\r\n"),
        EncodeFixture(.data(.list(IMAPListItem(attributes: [], delimiter: "\\", mailbox: IMAPMailboxName("NIL")))),
                      "* LIST () \"\\\\\" \"NIL\"\r\n"),
        EncodeFixture(.data(.list(IMAPListItem(attributes: ["\\Noselect"], delimiter: nil, mailbox: IMAPMailboxName("")))),
                      "* LIST (\\Noselect) NIL \"\"\r\n"),
        EncodeFixture(.data(.lsub(IMAPListItem(attributes: [], delimiter: ".", mailbox: IMAPMailboxName("#news.comp.mail.misc")))),
                      "* LSUB () \".\" #news.comp.mail.misc\r\n"),
        // RFC 5258 §5 example 6.
        EncodeFixture(.data(.list(IMAPListItem(attributes: [], delimiter: "/", mailbox: IMAPMailboxName("Foo"), childInfo: ["SUBSCRIBED"]))),
                      "* LIST () \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        EncodeFixture(.data(.status(IMAPMailboxName("blurdybloop"), [IMAPStatusValue(.messages, 231), IMAPStatusValue(.uidNext, 44292)])),
                      "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"),
        EncodeFixture(.data(.search([2, 3, 6])), "* SEARCH 2 3 6\r\n"),
        EncodeFixture(.data(.search([])), "* SEARCH\r\n"),
        EncodeFixture(.data(.search([2, 5, 6], modSeq: 917162500)), "* SEARCH 2 5 6 (MODSEQ 917162500)\r\n"),
        EncodeFixture(.data(.esearch(IMAPESearchResponse(tag: "A282", uid: false, min: 2, count: 3))), "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"),
        EncodeFixture(.data(.esearch(IMAPESearchResponse(tag: "A283", uid: true, all: set(IMAPSequenceRange(4...6), IMAPSequenceRange(10)), modSeq: 7))),
                      "* ESEARCH (TAG \"A283\") UID ALL 4:6,10 MODSEQ 7\r\n"),
        EncodeFixture(.data(.esearch(IMAPESearchResponse(tag: nil, uid: false))), "* ESEARCH\r\n"),
        EncodeFixture(.data(.flags([.answered, .flagged, .deleted, .seen, .draft])), "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"),
        EncodeFixture(.data(.exists(18)), "* 18 EXISTS\r\n"),
        EncodeFixture(.data(.recent(2)), "* 2 RECENT\r\n"),
        EncodeFixture(.data(.expunge(44)), "* 44 EXPUNGE\r\n"),
        EncodeFixture(.data(.vanished(earlier: true, set(IMAPSequenceRange(41), IMAPSequenceRange(43...116)))), "* VANISHED (EARLIER) 41,43:116\r\n"),
        EncodeFixture(.data(.vanished(earlier: false, set(IMAPSequenceRange(405)))), "* VANISHED 405\r\n"),
        EncodeFixture(.data(.namespace(personal: [IMAPNamespace(prefix: "", delimiter: "/")], otherUsers: [],
                                       shared: [IMAPNamespace(prefix: "Public Folders/", delimiter: "/")])),
                      "* NAMESPACE ((\"\" \"/\")) NIL ((\"Public Folders/\" \"/\"))\r\n"),
        EncodeFixture(.data(.id([IMAPIDField("name", "Berth"), IMAPIDField("version", nil)])), "* ID (\"name\" \"Berth\" \"version\" NIL)\r\n"),
        EncodeFixture(.data(.id(nil)), "* ID NIL\r\n"),
        EncodeFixture(.data(.enabled(["CONDSTORE", "QRESYNC"])), "* ENABLED CONDSTORE QRESYNC\r\n"),
        EncodeFixture(.data(.enabled([])), "* ENABLED\r\n"),
        EncodeFixture(.data(.quota(root: "", [IMAPQuotaResource(name: "STORAGE", usage: 10, limit: 512)])), "* QUOTA \"\" (STORAGE 10 512)\r\n"),
        EncodeFixture(.data(.quotaRoot(.inbox, roots: [""])), "* QUOTAROOT INBOX \"\"\r\n"),
        EncodeFixture(.data(.quotaRoot(IMAPMailboxName("comp.mail.mime"), roots: [])), "* QUOTAROOT comp.mail.mime\r\n"),
        // FETCH: RFC 3501 §8's sample response (one line here: the RFC breaks it for print).
        EncodeFixture(.data(.fetch(12, [
            .flags([.seen]),
            .internalDate(IMAPDateTime(date: IMAPDate(year: 1996, month: 7, day: 17)!, hour: 2, minute: 44, second: 25, zoneMinutes: -420)!),
            .rfc822Size(4286),
            .envelope(sampleEnvelope),
            .body(plainText),
        ])), "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE " + sampleEnvelopeText
            + " BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"),
        EncodeFixture(.data(.fetch(12, [.bodySection(IMAPSection(text: .header), data: Array("Subject: x\r\n\r\n".utf8))])),
                      "* 12 FETCH (BODY[HEADER] {14}\r\nSubject: x\r\n\r\n)\r\n"),
        EncodeFixture(.data(.fetch(1, [.bodySection(.complete, origin: 0, data: Array("abc".utf8)), .uid(4827313)])),
                      "* 1 FETCH (BODY[]<0> {3}\r\nabc UID 4827313)\r\n"),
        EncodeFixture(.data(.fetch(1, [.bodySection(IMAPSection(part: [1, 2], text: .headerFields(["FROM", "X SPAM"])), data: nil)])),
                      "* 1 FETCH (BODY[1.2.HEADER.FIELDS (FROM \"X SPAM\")] NIL)\r\n"),
        EncodeFixture(.data(.fetch(1, [.bodySection(IMAPSection(part: [3], text: .mime), data: []),
                                       .bodySection(IMAPSection(part: [4]), data: []),
                                       .bodySection(IMAPSection(text: .headerFieldsNot(["RECEIVED"])), data: [])])),
                      "* 1 FETCH (BODY[3.MIME] {0}\r\n BODY[4] {0}\r\n BODY[HEADER.FIELDS.NOT (RECEIVED)] {0}\r\n)\r\n"),
        EncodeFixture(.data(.fetch(7, [.flags([.seen, IMAPFlag("$Junk")]), .uid(3), .modSeq(12121231000)])),
                      "* 7 FETCH (FLAGS (\\Seen $Junk) UID 3 MODSEQ (12121231000))\r\n"),
        EncodeFixture(.data(.fetch(2, [.rfc822(Array("x".utf8)), .rfc822Header(nil), .rfc822Text([])])),
                      "* 2 FETCH (RFC822 {1}\r\nx RFC822.HEADER NIL RFC822.TEXT {0}\r\n)\r\n"),
        EncodeFixture(.data(.fetch(3, [.internalDate(IMAPDateTime(date: IMAPDate(year: 2024, month: 2, day: 5)!, hour: 9, minute: 5, second: 0, zoneMinutes: 330)!)])),
                      "* 3 FETCH (INTERNALDATE \" 5-Feb-2024 09:05:00 +0530\")\r\n"),
        // BODY and BODYSTRUCTURE.
        EncodeFixture(.data(.fetch(1, [.body(mixed)])),
                      "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)(\"TEXT\" \"PLAIN\" "
                        + "(\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" "
                        + "\"BASE64\" 4554 73) \"MIXED\"))\r\n"),
        EncodeFixture(.data(.fetch(1, [.bodyStructure(withExtensions)])),
                      "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 120 4 NIL (\"INLINE\" NIL) \"EN\" NIL)"
                        + "(\"APPLICATION\" \"PDF\" NIL NIL NIL \"BASE64\" 2048 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"ATTACHMENT\" (\"FILENAME\" \"a b.pdf\")) "
                        + "(\"EN\" \"DE\") \"http://x.example/a.pdf\")"
                        + "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 500 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
                        + "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92) 10 NIL NIL NIL NIL)"
                        + " \"ALTERNATIVE\" (\"BOUNDARY\" \"xyz\") NIL NIL NIL))\r\n"),
        // The same structure as BODY drops every extension field.
        EncodeFixture(.data(.fetch(1, [.body(withExtensions)])),
                      "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 120 4)"
                        + "(\"APPLICATION\" \"PDF\" NIL NIL NIL \"BASE64\" 2048)"
                        + "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 500 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
                        + "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92) 10)"
                        + " \"ALTERNATIVE\"))\r\n"),
        // Envelope strings that cannot be quoted, and a group.
        EncodeFixture(.data(.fetch(4, [.envelope(IMAPEnvelope(subject: "Grüße", to: [.groupStart("undisclosed-recipients"), .groupEnd],
                                                              messageID: "a\"b\\c"))])),
                      "* 4 FETCH (ENVELOPE (NIL {7}\r\nGrüße NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL \"a\\\"b\\\\c\"))\r\n"),
    ]

    @Test(arguments: fixtures)
    func encodes(_ fixture: EncodeFixture) {
        #expect(String(decoding: IMAPResponseEncoder.encode(fixture.response), as: UTF8.self) == fixture.expected)
    }

    struct StringCase: CustomTestStringConvertible, Sendable {
        let value: String
        let astring: String
        let string: String
        var testDescription: String { value.count > 40 ? "\(value.count) octets" : value.debugDescription }
    }

    /// Atom when it can be, quoted when short 7-bit text, a literal otherwise.
    static let strings: [StringCase] = [
        StringCase(value: "abc", astring: "abc", string: "\"abc\""),
        StringCase(value: "a]b", astring: "a]b", string: "\"a]b\""),
        StringCase(value: "a b", astring: "\"a b\"", string: "\"a b\""),
        StringCase(value: "", astring: "\"\"", string: "\"\""),
        StringCase(value: "nil", astring: "\"nil\"", string: "\"nil\""),
        StringCase(value: "a\"b\\", astring: "\"a\\\"b\\\\\"", string: "\"a\\\"b\\\\\""),
        StringCase(value: "x(y)", astring: "\"x(y)\"", string: "\"x(y)\""),
        StringCase(value: "50%*", astring: "\"50%*\"", string: "\"50%*\""),
        StringCase(value: "{5}", astring: "\"{5}\"", string: "\"{5}\""),
        StringCase(value: "line\r\nx", astring: "{7}\r\nline\r\nx", string: "{7}\r\nline\r\nx"),
        StringCase(value: "café", astring: "{5}\r\ncafé", string: "{5}\r\ncafé"),
        StringCase(value: "a\u{0}b", astring: "{3}\r\na\u{0}b", string: "{3}\r\na\u{0}b"),
        StringCase(value: String(repeating: "q", count: 1024), astring: String(repeating: "q", count: 1024),
                   string: "\"" + String(repeating: "q", count: 1024) + "\""),
        StringCase(value: String(repeating: "q ", count: 600), astring: "{1200}\r\n" + String(repeating: "q ", count: 600),
                   string: "{1200}\r\n" + String(repeating: "q ", count: 600)),
    ]

    @Test(arguments: strings)
    func chooseStringForms(_ fixture: StringCase) {
        var encoder = IMAPResponseEncoder()
        encoder.writeAString(fixture.value)
        #expect(String(decoding: encoder.take(), as: UTF8.self) == fixture.astring)
        encoder.writeString(fixture.value)
        #expect(String(decoding: encoder.take(), as: UTF8.self) == fixture.string)
        #expect(encoder.bytes.isEmpty)
    }

    /// An encoder accumulates responses until taken.
    @Test func accumulates() {
        var encoder = IMAPResponseEncoder()
        encoder.encode(.data(.exists(1)))
        encoder.encode(.tagged(tag: "a", .ok, text: "done"))
        #expect(String(decoding: encoder.take(), as: UTF8.self) == "* 1 EXISTS\r\na OK done\r\n")
        #expect(encoder.take().isEmpty)
    }

    /// What the encoder writes, the parser reads back (mailbox names and flags through
    /// modified UTF-7 and astring forms).
    @Test func mailboxNamesRoundTrip() {
        for name in ["INBOX", "Sent Items", "日本語", "a&b", "\"quoted\"", "x\\y", "NIL", "~peter/mail/台北", "Ärger & Ölkanne"] {
            var encoder = IMAPResponseEncoder()
            encoder.writeRaw("a SELECT ")
            encoder.writeMailbox(IMAPMailboxName(name))
            #expect(IMAPCommandParser.parse(encoder.bytes) == .success(IMAPCommand(tag: "a", .select(IMAPMailboxName(name), parameters: []))),
                    "name: \(name)")
        }
    }
}
