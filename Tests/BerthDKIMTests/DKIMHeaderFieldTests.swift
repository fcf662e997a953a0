@testable import BerthDKIM
import Testing

struct HeaderFixture: CustomTestStringConvertible, Sendable {
    let label: String
    let block: String
    /// The canonical fields, in order.
    let canonical: [String]
    var testDescription: String { label }
}

@Suite("Relaxed header canonicalisation (RFC 6376 §3.4.2)")
struct DKIMHeaderFieldTests {
    static let fixtures: [HeaderFixture] = [
        .init(label: "RFC 6376 §3.4.5 example", block: "A: X\r\nB : Y\t\r\n\tZ  \r\n", canonical: ["a:X\r\n", "b:Y Z\r\n"]),
        .init(label: "unfolding a CRLF continuation", block: "Subject: hello\r\n world\r\n", canonical: ["subject:hello world\r\n"]),
        .init(label: "unfolding an LF continuation", block: "Subject: a\n\tb\n  c\n", canonical: ["subject:a b c\r\n"]),
        .init(label: "folded right after the colon", block: "To:\r\n  someone@example.org\r\n", canonical: ["to:someone@example.org\r\n"]),
        .init(label: "name lowercased, value case kept", block: "SUBJECT: Hello WORLD\r\nMessage-ID: <A@B>\r\n", canonical: ["subject:Hello WORLD\r\n", "message-id:<A@B>\r\n"]),
        .init(label: "WSP around the colon", block: "Subject \t:  \t x  \r\n", canonical: ["subject:x\r\n"]),
        .init(label: "WSP runs inside the value", block: "Subject: a \t  b\t\tc\r\n", canonical: ["subject:a b c\r\n"]),
        .init(label: "empty value", block: "X-Empty:\r\nX-Blank:   \r\n", canonical: ["x-empty:\r\n", "x-blank:\r\n"]),
        .init(label: "colon inside the value", block: "Date: Mon, 1 Jan 2024 10:00:00 +0000\n", canonical: ["date:Mon, 1 Jan 2024 10:00:00 +0000\r\n"]),
        .init(label: "last line without a line end", block: "From: a@b", canonical: ["from:a@b\r\n"]),
        .init(label: "an empty line ends the section", block: "A: 1\n\nB: 2\n", canonical: ["a:1\r\n"]),
        .init(label: "a line without a colon is skipped", block: "From me\nA: 1\n", canonical: ["a:1\r\n"]),
        .init(label: "a leading continuation line is skipped", block: " stray\nA: 1\n", canonical: ["a:1\r\n"]),
    ]

    @Test("canonical fields", arguments: fixtures)
    func canonicalFields(_ fixture: HeaderFixture) {
        let fields = DKIMHeaderField.fields(in: bytes(fixture.block))
        #expect(fields.map { String(decoding: $0.canonical, as: UTF8.self) } == fixture.canonical)
    }

    @Test func namesAreLowercasedForMatching() {
        #expect(DKIMHeaderField.fields(in: bytes("Content-TYPE : text/plain\n")).map(\.name) == ["content-type"])
    }
}

@Suite("Choosing the signed fields (RFC 6376 §5.4)")
struct DKIMHeaderSelectionTests {
    static let block = bytes(
        "Received: from a\n" + "To: first@example.org\n" + "From: Alice <alice@example.com>\n"
            + "To: second@example.org\n" + "Subject: hi\n"
    )

    @Test func instancesAreSignedBottomUp() throws {
        let fields = DKIMHeaderField.fields(in: Self.block)
        let (names, data) = try DKIMSigner.select(["from", "to"], from: fields)
        #expect(names == ["from", "to", "to"])
        #expect(String(decoding: data, as: UTF8.self) == "from:Alice <alice@example.com>\r\nto:second@example.org\r\nto:first@example.org\r\n")
    }

    @Test func absentFieldsAreLeftOutAndFromIsOverSigned() throws {
        let (names, _) = try DKIMSigner.select(DKIMSigner.defaultSignedHeaders, from: DKIMHeaderField.fields(in: Self.block))
        #expect(names == ["from", "from", "to", "to", "subject"])
    }

    @Test func listedNamesMatchWhateverTheirCase() throws {
        let (names, _) = try DKIMSigner.select(["FROM", "Subject"], from: DKIMHeaderField.fields(in: Self.block))
        #expect(names == ["from", "subject"])
    }

    @Test func fromIsListedEvenWhenTheMessageHasNone() throws {
        let (names, data) = try DKIMSigner.select(["from", "subject"], from: DKIMHeaderField.fields(in: bytes("Subject: x\n")))
        #expect(names == ["from", "subject"])
        #expect(data == bytes("subject:x\r\n"))
    }

    @Test func aListWithoutFromIsRefused() {
        #expect(throws: DKIMError.fromNotSigned) {
            try DKIMSigner.select(["subject"], from: DKIMHeaderField.fields(in: Self.block))
        }
    }
}
