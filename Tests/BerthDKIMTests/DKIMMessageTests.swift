@testable import BerthDKIM
import Testing

struct SplitFixture: CustomTestStringConvertible, Sendable {
    let label: String
    let message: String
    let header: String
    let body: String
    var testDescription: String { label }
}

@Suite("Splitting a message into header section and body")
struct DKIMMessageTests {
    static let fixtures: [SplitFixture] = [
        .init(label: "LF", message: "A: 1\nB: 2\n\nbody\n", header: "A: 1\nB: 2\n", body: "body\n"),
        .init(label: "CRLF", message: "A: 1\r\nB: 2\r\n\r\nbody\r\n", header: "A: 1\r\nB: 2\r\n", body: "body\r\n"),
        .init(label: "LF then CRLF blank line", message: "A: 1\n\r\nbody", header: "A: 1\n", body: "body"),
        .init(label: "empty body", message: "A: 1\n\n", header: "A: 1\n", body: ""),
        .init(label: "no blank line: all header", message: "A: 1\nB: 2\n", header: "A: 1\nB: 2\n", body: ""),
        .init(label: "no header", message: "\nbody\n", header: "", body: "body\n"),
        .init(label: "blank lines in the body stay", message: "A: 1\n\n\nbody\n\n", header: "A: 1\n", body: "\nbody\n\n"),
        .init(label: "a bare CR line is not blank", message: "A: 1\n\rB\n\nbody", header: "A: 1\n\rB\n", body: "body"),
    ]

    @Test("split", arguments: fixtures)
    func split(_ fixture: SplitFixture) throws {
        let message = bytes(fixture.message)
        let (header, bodyStart) = try DKIMMessage.split(message)
        #expect(Array(header) == bytes(fixture.header))
        #expect(Array(message[bodyStart...]) == bytes(fixture.body))
    }

    @Test func headerSectionOverTheLimitIsRefused() throws {
        let header = bytes("A: " + String(repeating: "x", count: 96) + "\n")  // 100 bytes
        #expect(throws: DKIMError.headerSectionTooLarge(limit: 99)) {
            try DKIMMessage.split(header + bytes("\nbody"), maximumHeaderBytes: 99)
        }
        #expect(throws: DKIMError.headerSectionTooLarge(limit: 99)) {
            try DKIMMessage.split(header, maximumHeaderBytes: 99)
        }
        let (exact, _) = try DKIMMessage.split(header + bytes("\nbody"), maximumHeaderBytes: 100)
        #expect(exact.count == 100)
        #expect(try DKIMMessage.split(header, maximumHeaderBytes: 100).headerBlock.count == 100)
    }
}
