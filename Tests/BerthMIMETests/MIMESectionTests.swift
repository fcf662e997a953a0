import BerthIMAP
import Testing

@testable import BerthMIME

/// A FETCH BODY[section]<partial> of one of `DovecotMessages` and the octets Dovecot
/// returned; the test is named by the message and the section.
struct SectionFixture: CustomTestStringConvertible, Sendable {
    let message: Int
    let section: String
    let partial: String?
    let expected: String
    var testDescription: String { "message \(message) BODY[\(section)]" + (partial.map { "<\($0)>" } ?? "") }

    init(message: Int, _ section: String, partial: String?, _ expected: String) {
        self.message = message
        self.section = section
        self.partial = partial
        self.expected = expected
    }

    /// Parsed with BerthIMAP's own command parser, as the server will get it.
    var parsed: (IMAPSection, IMAPPartial?)? {
        let command = "a FETCH 1 BODY.PEEK[\(section)]" + (partial.map { "<\($0)>" } ?? "")
        guard case .success(let parsed) = IMAPCommandParser.parse(Array(command.utf8)),
              case .fetch(_, let attributes, _, _) = parsed.kind,
              case .bodySection(let section, let partial, _) = attributes.first
        else { return nil }
        return (section, partial)
    }
}

struct MIMESectionTests {
    /// Captured from Dovecot 2.3.19.1 (see `DovecotComparisonTests`).
    static let dovecot: [SectionFixture] = [
        SectionFixture(message: 1, "1", partial: nil, "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n\r\nSecond line.\r\n"),
        SectionFixture(message: 1, "1.MIME", partial: nil, "Return-Path: <alice@example.com>\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: =?ISO-8859-1?Q?caf=E9?= afternoon\r\nTo: mooch@owatagu.siam.edu.example, \"Doe, Jane\" <jane@x.example> (work)\r\nCc: undisclosed-recipients:;\r\nMessage-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"),
        SectionFixture(message: 1, "HEADER.FIELDS (FROM SUBJECT)", partial: nil, "From: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: =?ISO-8859-1?Q?caf=E9?= afternoon\r\n\r\n"),
        SectionFixture(message: 1, "TEXT", partial: "0.10", "Hello Joe,"),
        SectionFixture(message: 1, "2", partial: nil, ""),
        SectionFixture(message: 1, "1.HEADER", partial: nil, ""),
        SectionFixture(message: 1, "1.1", partial: nil, ""),
        SectionFixture(message: 1, "HEADER", partial: nil, "Return-Path: <alice@example.com>\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: =?ISO-8859-1?Q?caf=E9?= afternoon\r\nTo: mooch@owatagu.siam.edu.example, \"Doe, Jane\" <jane@x.example> (work)\r\nCc: undisclosed-recipients:;\r\nMessage-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n"),
        SectionFixture(message: 1, "", partial: nil, "Return-Path: <alice@example.com>\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.example>\r\nSubject: =?ISO-8859-1?Q?caf=E9?= afternoon\r\nTo: mooch@owatagu.siam.edu.example, \"Doe, Jane\" <jane@x.example> (work)\r\nCc: undisclosed-recipients:;\r\nMessage-Id: <B27397-0100000@Blurdybloop.example>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n\r\nSecond line.\r\n"),
        SectionFixture(message: 1, "", partial: "400.100", "o you think we can meet at 3:30 tomorrow?\r\n\r\nSecond line.\r\n"),
        SectionFixture(message: 2, "1.2", partial: nil, "<p>Gr&uuml;&szlig;e</p>"),
        SectionFixture(message: 2, "2.MIME", partial: nil, "Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n filename=\"report.pdf\"; size=12\r\nContent-ID: <part2@example.org>\r\nContent-Description: The report\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\nContent-Location: http://x.example/report.pdf\r\n\r\n"),
        SectionFixture(message: 2, "1", partial: nil, "--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus K=C3=B6ln\r\nsecond line\r\n--inner\r\nContent-Type: text/html; charset=\"utf-8\"\r\n\r\n<p>Gr&uuml;&szlig;e</p>\r\n--inner--\r\n"),
        SectionFixture(message: 2, "2", partial: "4.100", "Ri0xLjQKJcfs"),
        SectionFixture(message: 2, "TEXT", partial: "2000.5", ""),
        SectionFixture(message: 2, "1.1", partial: nil, "Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\nsecond line"),
        SectionFixture(message: 2, "1.1.MIME", partial: nil, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"),
        SectionFixture(message: 2, "2.HEADER", partial: nil, ""),
        SectionFixture(message: 2, "HEADER.FIELDS (content-type NOPE)", partial: nil, "Content-Type: multipart/mixed; boundary=\"=_outer'(+)_,-./:=?\"\r\n\r\n"),
        SectionFixture(message: 3, "2.HEADER", partial: nil, "From: Eve <eve@example.com>\r\nSender: list@example.com\r\nReply-To: replies@example.com\r\nTo: frank@example.com\r\nSubject: inner\r\nDate: Thu, 3 Apr 2025 12:00:00 +0000\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n"),
        SectionFixture(message: 3, "2.1", partial: nil, "plain"),
        SectionFixture(message: 3, "2.TEXT", partial: nil, "--b2\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b2\r\nContent-Type: text/enriched\r\n\r\n<bold>rich</bold>\r\n--b2--\r\n"),
        SectionFixture(message: 3, "1.MIME", partial: nil, "\r\n"),
        SectionFixture(message: 3, "3.1", partial: nil, "From: g@example.com\r\nSubject: digest one\r\n\r\none"),
        SectionFixture(message: 3, "3.1.HEADER", partial: nil, "From: g@example.com\r\nSubject: digest one\r\n\r\n"),
        SectionFixture(message: 3, "3.1.1", partial: nil, "one"),
        SectionFixture(message: 3, "3.1.TEXT", partial: nil, "one"),
        SectionFixture(message: 3, "9", partial: nil, ""),
        SectionFixture(message: 3, "1.HEADER", partial: nil, ""),
        SectionFixture(message: 3, "1.TEXT", partial: nil, ""),
        SectionFixture(message: 3, "2.1.MIME", partial: nil, "Content-Type: text/plain\r\n\r\n"),
        SectionFixture(message: 3, "HEADER.FIELDS.NOT (FROM TO SUBJECT DATE MESSAGE-ID MIME-VERSION)", partial: nil, "Content-Type: multipart/mixed; boundary=b1\r\n\r\n"),
        SectionFixture(message: 3, "2.HEADER.FIELDS (SUBJECT)", partial: nil, "Subject: inner\r\n\r\n"),
        SectionFixture(message: 3, "2", partial: nil, "From: Eve <eve@example.com>\r\nSender: list@example.com\r\nReply-To: replies@example.com\r\nTo: frank@example.com\r\nSubject: inner\r\nDate: Thu, 3 Apr 2025 12:00:00 +0000\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b2\r\nContent-Type: text/enriched\r\n\r\n<bold>rich</bold>\r\n--b2--\r\n"),
        SectionFixture(message: 3, "2.2", partial: nil, "<bold>rich</bold>"),
        SectionFixture(message: 3, "3", partial: nil, "--d\r\n\r\nFrom: g@example.com\r\nSubject: digest one\r\n\r\none\r\n--d\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n--d--\r\n"),
        SectionFixture(message: 3, "1.1", partial: nil, "See attached."),
        SectionFixture(message: 4, "2", partial: nil, "data\r\nmore\r\n"),
        SectionFixture(message: 4, "1.MIME", partial: nil, "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"),
        SectionFixture(message: 4, "HEADER", partial: nil, "From: h@example.com\r\nSubject: =?UTF-8?B?w6lsw6h2ZQ==?= =?UTF-8?B?IHRlc3Q=?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"),
        SectionFixture(message: 4, "1", partial: nil, "abc"),
        SectionFixture(message: 4, "TEXT", partial: "3.8", "z\r\nConte"),
    ]

    @Test(arguments: dovecot)
    func matchesDovecot(_ fixture: SectionFixture) throws {
        let (section, partial) = try #require(fixture.parsed)
        let message = MIMEMessage(Array(DovecotMessages.all[fixture.message - 1].utf8))
        #expect(String(decoding: message.section(section, partial: partial), as: UTF8.self) == fixture.expected)
        // Where the section is one run of octets, its range says the same.
        if partial == nil, let range = message.sectionRange(section) {
            #expect(String(decoding: message.bytes[range], as: UTF8.self) == fixture.expected)
        }
    }

    @Test func headerFieldsKeepFoldingAndOrder() {
        let message = MIMEMessage(Array("Subject: a\r\n  folded\r\nX-A: 1\r\nsubject: second\r\nX-B: 2\r\n\r\nbody".utf8))
        let fields = message.section(IMAPSection(text: .headerFields(["SUBJECT"])))
        #expect(String(decoding: fields, as: UTF8.self) == "Subject: a\r\n  folded\r\nsubject: second\r\n\r\n")
        let not = message.section(IMAPSection(text: .headerFieldsNot(["SUBJECT", "X-A"])))
        #expect(String(decoding: not, as: UTF8.self) == "X-B: 2\r\n\r\n")
        let none = message.section(IMAPSection(text: .headerFields(["NOPE"])))
        #expect(none == Array("\r\n".utf8))
    }

    @Test func messageWithoutBody() {
        let message = MIMEMessage(Array("Subject: x\nFrom: a@b".utf8))
        #expect(message.section(IMAPSection(text: .header)) == Array("Subject: x\r\nFrom: a@b".utf8))
        #expect(message.section(IMAPSection(text: .text)) == [])
        #expect(message.section(IMAPSection(text: .headerFields(["FROM"]))) == Array("From: a@b\r\n\r\n".utf8))
    }

    @Test func partials() {
        let data = Array("0123456789".utf8)
        #expect(MIMEMessage.apply(IMAPPartial(offset: 0, length: 3), to: data) == Array("012".utf8))
        #expect(MIMEMessage.apply(IMAPPartial(offset: 8, length: 10), to: data) == Array("89".utf8))
        #expect(MIMEMessage.apply(IMAPPartial(offset: 10, length: 1), to: data) == [])
        #expect(MIMEMessage.apply(IMAPPartial(offset: UInt32.max, length: UInt32.max), to: data) == [])
    }
}
