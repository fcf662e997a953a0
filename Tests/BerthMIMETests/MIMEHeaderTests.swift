import Testing

@testable import BerthMIME

/// A header value and what RFC 2047 decoding makes of it; the test is named by the input.
struct DecodeFixture: CustomTestStringConvertible, Sendable {
    let input: String
    let expected: String
    var testDescription: String { input.debugDescription }

    init(_ input: String, _ expected: String) {
        self.input = input
        self.expected = expected
    }
}

struct MIMEHeaderTests {
    static let encodedWords: [DecodeFixture] = [
        DecodeFixture("plain subject", "plain subject"),
        DecodeFixture("=?ISO-8859-1?Q?caf=E9?= afternoon", "café afternoon"),
        DecodeFixture("=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", "Grüße aus Köln"),
        DecodeFixture("=?UTF-8?B?w6lsw6h2ZQ==?=", "élève"),
        DecodeFixture("=?UTF-8?B?w6lsw6h2ZQ?=", "élève"),
        // RFC 2047 §8: whitespace between adjacent encoded-words is dropped, other kept.
        DecodeFixture("(=?ISO-8859-1?Q?a?=)", "(a)"),
        DecodeFixture("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
        DecodeFixture("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
        DecodeFixture("(=?ISO-8859-1?Q?a?=  \t =?ISO-8859-1?Q?b?=)", "(ab)"),
        DecodeFixture("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
        DecodeFixture("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a=?ISO-8859-2?Q?_b?=)"),
        // A UTF-8 character split across two words.
        DecodeFixture("=?UTF-8?B?w6lsw6h2ZQ==?= =?UTF-8?B?IHRlc3Q=?=", "élève test"),
        DecodeFixture("=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"),
        // Mixed B and Q, mixed charsets, plain text between.
        DecodeFixture("Re: =?iso-8859-15?q?=A4uro?= and =?windows-1252?B?gA==?= =?us-ascii?Q?!?=", "Re: €uro and €!"),
        DecodeFixture("=?ISO-8859-1*en?Q?caf=E9?=", "café"),
        DecodeFixture("=?unknown-charset?Q?x?= y", "=?unknown-charset?Q?x?= y"),
        // Not encoded-words.
        DecodeFixture("=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
        DecodeFixture("=?utf-8?q?a b?=", "=?utf-8?q?a b?="),
        DecodeFixture("=??q?a?=", "=??q?a?="),
        DecodeFixture("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        DecodeFixture("a =?= b =?", "a =?= b =?"),
        // Raw 8-bit: UTF-8 when valid.
        DecodeFixture("Jörg", "Jörg"),
    ]

    @Test(arguments: encodedWords)
    func decodesEncodedWords(_ fixture: DecodeFixture) {
        #expect(MIMEHeader.decodedValue(fixture.input) == fixture.expected)
    }

    @Test func rawLatin1IsNotLost() {
        #expect(MIMEHeader.decodedValue([0x63, 0x61, 0x66, 0xE9]) == "café")
    }

    @Test func foldedFieldsKeepRawBytes() {
        let text = "Subject: a long\r\n\tfolded  subject \r\nX-Empty:\r\nX-Spaced : v\r\nnot a field\r\nTo: b@c\r\n\r\nbody\r\n"
        let bytes = Array(text.utf8)
        let header = MIMEHeader.parse(bytes, in: 0..<bytes.count)
        #expect(header.fields.map(\.name) == ["Subject", "X-Empty", "X-Spaced", "To"])
        #expect(header.value("subject") == "a long\tfolded  subject")
        #expect(header.value("X-EMPTY") == "")
        #expect(header.value("x-spaced") == "v")
        #expect(header.value("missing") == nil)
        let subject = header.field("SUBJECT")!
        #expect(String(decoding: bytes[subject.range], as: UTF8.self) == "Subject: a long\r\n\tfolded  subject \r\n")
        #expect(header.hasBlankLine)
        #expect(String(decoding: bytes[header.bodyStart...], as: UTF8.self) == "body\r\n")
    }

    @Test func lfOnlyMessage() {
        let message = MIMEMessage(Array("Subject: hi\n there\nFrom: a@b.example\n\nline 1\nline 2\n".utf8))
        #expect(message.bytes == Array("Subject: hi\r\n there\r\nFrom: a@b.example\r\n\r\nline 1\r\nline 2\r\n".utf8))
        #expect(message.header.value("Subject") == "hi there")
        #expect(message.size == 58)
        guard case .singlePart(let part) = message.bodyStructure else { Issue.record("not single"); return }
        #expect(part.fields.octets == 16)
        #expect(part.kind == .text(lines: 2))
    }

    @Test func headerLimits() {
        let limits = MIMELimits(maxHeaderSize: 64, maxHeaderFields: 2, maxLineLength: 5)
        let text = "A: 1234567890\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\nbody"
        let message = MIMEMessage(Array(text.utf8), limits: limits)
        #expect(message.header.fields.map(\.name) == ["A", "B"])
        #expect(message.header.value("A") == "12345")
        #expect(message.section(.init(text: .header)) == Array("A: 1234567890\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n".utf8))
        // Too big: the header stops before the field that crosses the limit.
        let big = MIMEMessage(Array(text.utf8), limits: MIMELimits(maxHeaderSize: 20))
        #expect(big.header.range == 0..<15)
        #expect(!big.header.hasBlankLine)
    }

    @Test func transferDecoding() {
        #expect(MIMETransferEncoding.decodeQuotedPrintable(Array("a=3Db=\r\nc= \r\nd=zz=4".utf8)) == Array("a=bcd=zz=4".utf8))
        #expect(MIMETransferEncoding.decodeBase64(Array("aGVs\r\nbG8=\r\n".utf8)) == Array("hello".utf8))
        #expect(MIMETransferEncoding.decodeBase64(Array("aGk=aGk=".utf8)) == Array("hihi".utf8))
        #expect(MIMETransferEncoding.decodeBase64(Array("!!".utf8)) == [])
    }
}
