import BerthIMAP
import Testing

@testable import BerthMIME

/// A message (LF line ends, made CRLF here unless `raw`) and its BODYSTRUCTURE as
/// IMAPResponseEncoder writes it; the test is named by the message's first line.
struct StructureFixture: CustomTestStringConvertible, Sendable {
    let name: String
    let message: String
    let expected: String
    var testDescription: String { name }

    init(_ name: String, _ message: String, _ expected: String) {
        self.name = name
        self.message = crlf(message)
        self.expected = expected
    }
}

func encodedBodyStructure(_ message: MIMEMessage, extensions: Bool = true) -> String {
    let item: IMAPFetchItem = extensions ? .bodyStructure(message.bodyStructure) : .body(message.body)
    let bytes = IMAPResponseEncoder.encode(.data(.fetch(1, [item])))
    let text = String(decoding: bytes, as: UTF8.self)
    let prefix = extensions ? "* 1 FETCH (BODYSTRUCTURE " : "* 1 FETCH (BODY "
    return String(text.dropFirst(prefix.count).dropLast(2))  // ")" and "\r\n" (one Character)
}

struct MIMEStructureTests {
    static let fixtures: [StructureFixture] = [
        StructureFixture("no Content-Type at all", "Subject: x\n\nhello\n",
                         #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)"#),
        StructureFixture("text without trailing newline", "Content-Type: text/plain; charset=utf-8\n\nhello",
                         #"("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)"#),
        StructureFixture("invalid Content-Type falls back to the default", "Content-Type: garbage\n\nx\n",
                         #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)"#),
        StructureFixture("image with comments and odd spacing",
                         "Content-Type: image/png (a picture) ; name = \"a b.png\" (c)\nContent-Transfer-Encoding: BASE64\n\niVBORw0KGgo=\n",
                         #"("image" "png" ("name" "a b.png") NIL NIL "BASE64" 14 NIL NIL NIL NIL)"#),
        StructureFixture("multipart/alternative", """
            Content-Type: multipart/alternative; boundary=XX

            --XX
            Content-Type: text/plain

            plain
            --XX
            Content-Type: text/html; charset=utf-8

            <b>html</b>
            --XX--
            """,
            #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 11 0 NIL NIL NIL NIL) "alternative" ("boundary" "XX") NIL NIL NIL)"#),
        StructureFixture("multipart/mixed with base64 attachment", """
            Content-Type: multipart/mixed; boundary="b"

            --b

            see attached
            --b
            Content-Type: application/octet-stream
            Content-Transfer-Encoding: base64
            Content-Disposition: attachment; filename="data.bin"

            AAECAwQ=
            --b--
            """,
            #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 0 NIL NIL NIL NIL)("application" "octet-stream" NIL NIL NIL "base64" 8 NIL ("attachment" ("filename" "data.bin")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#),
        StructureFixture("missing closing boundary", """
            Content-Type: multipart/mixed; boundary=b

            --b

            one
            --b

            two
            """,
            #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 0 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 0 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#),
        StructureFixture("boundary never found", "Content-Type: multipart/mixed; boundary=b\n\nno parts here\n",
                         #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#),
        StructureFixture("boundary prefix of a longer line", """
            Content-Type: multipart/mixed; boundary=b

            --b

            --b2 is not a delimiter
            --b--
            """,
            #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 23 0 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#),
        StructureFixture("RFC 2231 parameters", """
            Content-Type: application/x-stuff;
             title*0*=us-ascii'en'This%20is%20even%20more%20;
             title*1*=%2A%2A%2Afun%2A%2A%2A%20;
             title*2="isn't it!"; plain*0="a"; plain*1="b"
            Content-Disposition: inline; filename*=UTF-8''%E2%82%AC.txt

            x
            """,
            #"("application" "x-stuff" ("title*" "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn't it!" "plain" "ab") NIL NIL "7bit" 1 NIL ("inline" ("filename*" "UTF-8''%E2%82%AC.txt")) NIL NIL)"#),
        StructureFixture("multipart/digest defaults", """
            Content-Type: multipart/digest; boundary=d

            --d

            Subject: one

            1
            --d
            Content-Type: text/plain

            2
            --d--
            """,
            #"(("message" "rfc822" NIL NIL NIL "7bit" 17 (NIL "one" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) "digest" ("boundary" "d") NIL NIL NIL)"#),
        StructureFixture("content-language and location on a multipart", """
            Content-Type: multipart/related; boundary=r; type="text/html"
            Content-Language: en
            Content-Location: http://x.example/

            --r
            Content-Type: text/html
            Content-ID: <a@b>
            Content-Description: page
            Content-Language: en, fr

            <p>
            --r--
            """,
            #"(("text" "html" ("charset" "us-ascii") "<a@b>" "page" "7bit" 3 0 NIL NIL ("en" "fr") NIL) "related" ("boundary" "r" "type" "text/html") NIL "en" "http://x.example/")"#),
    ]

    @Test(arguments: fixtures)
    func bodyStructure(_ fixture: StructureFixture) {
        #expect(encodedBodyStructure(MIMEMessage(Array(fixture.message.utf8))) == fixture.expected)
    }

    @Test func nestedMessageEnvelopeAndLines() throws {
        let message = MIMEMessage(Array(DovecotMessages.m3.utf8))
        guard case .multipart(let top) = message.bodyStructure, case .singlePart(let attached) = top.parts[1],
              case .message(let envelope, let body, let lines) = attached.kind
        else { Issue.record("no message/rfc822 part"); return }
        #expect(envelope.subject == "inner")
        #expect(envelope.sender == [IMAPAddress(name: nil, mailbox: "list", host: "example.com")])
        #expect(lines == 17)
        #expect(attached.fields.octets == 322)
        guard case .multipart(let inner) = body else { Issue.record("inner not multipart"); return }
        #expect(inner.subtype == "alternative")
        #expect(inner.parts.count == 2)
    }

    @Test func bodyFormHasNoExtensionData() {
        let message = MIMEMessage(Array(DovecotMessages.m3.utf8))
        #expect(message.body == message.bodyStructure.withoutExtensionData)
        #expect(!encodedBodyStructure(message, extensions: false).contains("inline"))
        #expect(encodedBodyStructure(message).contains("(\"inline\" NIL)"))
    }

    @Test func searchText() {
        let message = MIMEMessage(Array(DovecotMessages.m2.utf8))
        #expect(message.bodyText == "Grüße aus Köln\r\nsecond line\n<p>Gr&uuml;&szlig;e</p>\n")
        #expect(message.fullText.hasPrefix("From: bob@example.org\nTo: Team: "))
        #expect(message.fullText.hasSuffix(message.bodyText))
        #expect(MIMEMessage(Array(DovecotMessages.m1.utf8)).decodedHeaderValues("SUBJECT") == ["café afternoon"])
        let m3 = MIMEMessage(Array(DovecotMessages.m3.utf8))
        #expect(m3.bodyText.contains("Subject: inner\n"))
        #expect(m3.bodyText.contains("<bold>rich</bold>"))
        let latin = MIMEMessage(Array("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =\r\nau lait".utf8))
        #expect(latin.bodyText == "café au lait\n")
        let base64 = MIMEMessage(Array("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nw6lsw6h2ZQ==\r\n".utf8))
        #expect(base64.bodyText == "élève\n")
        let image = MIMEMessage(Array("Content-Type: image/gif\r\n\r\nGIF89a".utf8))
        #expect(image.bodyText == "")
        let bounded = MIMEMessage(Array(("Subject: s\r\n\r\n" + String(repeating: "é", count: 100)).utf8), limits: MIMELimits(maxSearchTextSize: 11))
        #expect(bounded.bodyText == "ééééé")
    }

    @Test func decodedParameters() {
        let message = MIMEMessage(Array(DovecotMessages.m4.utf8))
        guard case .multipart(let mixed) = message.root.content else { Issue.record("not multipart"); return }
        #expect(mixed[1].contentType.parameters.decodedValue("name") == "€ rates.txt")
        #expect(mixed[0].contentType.parameters.decodedValue("charset") == "iso-8859-1")
    }
}
