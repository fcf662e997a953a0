import BerthTestSupport
import NIOCore
import Testing

@testable import BerthNet

struct DotStufferTests {
    /// Stored form -> response body (CRLF, dot-stuffed, terminated), labelled by input.
    static let fixtures: [(stored: String, topLines: Int?, wire: String)] = [
        ("a\nb\n", nil, "a\r\nb\r\n.\r\n"),
        ("a\nb", nil, "a\r\nb\r\n.\r\n"),
        (".hidden\n..two\n", nil, "..hidden\r\n...two\r\n.\r\n"),
        ("a\n.\nb\n", nil, "a\r\n..\r\nb\r\n.\r\n"),
        ("a.b\n", nil, "a.b\r\n.\r\n"),
        ("a\r\nb\r\n", nil, "a\r\nb\r\n.\r\n"),
        ("a\r\nb\nc\r\n", nil, "a\r\nb\r\nc\r\n.\r\n"),
        ("\n\n", nil, "\r\n\r\n.\r\n"),
        ("", nil, ".\r\n"),
        (".", nil, "..\r\n.\r\n"),
        ("a\rb\n", nil, "a\rb\r\n.\r\n"),
        ("a\r", nil, "a\r\n.\r\n"),
        // TOP: the header, the blank line, then n body lines.
        ("H: 1\nI: 2\n\nb1\nb2\nb3\n", 0, "H: 1\r\nI: 2\r\n\r\n.\r\n"),
        ("H: 1\nI: 2\n\nb1\nb2\nb3\n", 2, "H: 1\r\nI: 2\r\n\r\nb1\r\nb2\r\n.\r\n"),
        ("H: 1\nI: 2\n\nb1\nb2\nb3\n", 3, "H: 1\r\nI: 2\r\n\r\nb1\r\nb2\r\nb3\r\n.\r\n"),
        ("H: 1\nI: 2\n\nb1\nb2\nb3\n", 50, "H: 1\r\nI: 2\r\n\r\nb1\r\nb2\r\nb3\r\n.\r\n"),
        ("H: 1\r\n\r\n.b1\r\nb2", 1, "H: 1\r\n\r\n..b1\r\n.\r\n"),
        ("H: 1\r\n\r\nb1\r\nb2", 9, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n"),
        ("H: 1\nI: 2", 0, "H: 1\r\nI: 2\r\n.\r\n"),
        ("\nbody\n", 0, "\r\n.\r\n"),
        ("H: 1\n\n\n\nb\n", 2, "H: 1\r\n\r\n\r\n\r\n.\r\n"),
        ("", 0, ".\r\n"),
    ]

    static func stuff(_ chunks: [[UInt8]], topLines: Int?) -> String {
        var stuffer = DotStuffer(topLines: topLines)
        var out = ByteBuffer()
        for chunk in chunks { stuffer.encode(chunk, into: &out) }
        stuffer.finish(into: &out)
        return String(buffer: out)
    }

    @Test(arguments: fixtures.indices)
    func wholeInput(_ index: Int) {
        let fixture = Self.fixtures[index]
        #expect(Self.stuff([Array(fixture.stored.utf8)], topLines: fixture.topLines) == fixture.wire,
                "input: \(fixture.stored.debugDescription) top: \(String(describing: fixture.topLines))")
        #expect(String(decoding: DotStuffer.stuff(Array(fixture.stored.utf8), topLines: fixture.topLines), as: UTF8.self)
            == fixture.wire)
    }

    /// Every split point, every three-way split, and byte by byte give the same output.
    @Test(arguments: fixtures.indices)
    func anyChunking(_ index: Int) {
        let fixture = Self.fixtures[index]
        let bytes = Array(fixture.stored.utf8)
        for first in 0...bytes.count {
            for second in first...bytes.count {
                let chunks = [Array(bytes[..<first]), Array(bytes[first..<second]), Array(bytes[second...])]
                #expect(Self.stuff(chunks, topLines: fixture.topLines) == fixture.wire,
                        "input: \(fixture.stored.debugDescription) split at \(first), \(second)")
            }
        }
        #expect(Self.stuff(bytes.map { [$0] }, topLines: fixture.topLines) == fixture.wire, "byte by byte")
    }

    @Test func topStopsReadingOnceComplete() {
        var stuffer = DotStuffer(topLines: 1)
        var out = ByteBuffer()
        stuffer.encode(Array("H: 1\n\nb1\n".utf8), into: &out)
        #expect(stuffer.isComplete)
        stuffer.encode(Array("b2\nb3\n".utf8), into: &out)
        stuffer.finish(into: &out)
        #expect(String(buffer: out) == "H: 1\r\n\r\nb1\r\n.\r\n")
    }

    @Test func byteBufferInput() {
        var stuffer = DotStuffer()
        var out = ByteBuffer()
        stuffer.encode(ByteBuffer(string: ".a\nb"), into: &out)
        stuffer.finish(into: &out)
        #expect(String(buffer: out) == "..a\r\nb\r\n.\r\n")
    }

    /// The response never holds a lone "." line before the end, whatever the input.
    @Test func randomMessagesStayFramed() {
        var generator = SeededGenerator(seed: 0xD07)
        let alphabet = Array(".\r\na ".utf8)
        for _ in 0..<500 {
            let length = Int.random(in: 0..<60, using: &generator)
            let message = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            let top: Int? = Bool.random(using: &generator) ? Int.random(in: 0..<4, using: &generator) : nil
            let wire = DotStuffer.stuff(message, topLines: top)
            let text = String(decoding: wire, as: UTF8.self)
            #expect(text.hasSuffix(".\r\n"))
            let lines = text.components(separatedBy: "\r\n").dropLast()  // after the final CRLF
            #expect(lines.last == ".")
            #expect(!lines.dropLast().contains("."), "a lone dot before the end: \(text.debugDescription)")
            // Every LF is preceded by CR.
            for (i, byte) in wire.enumerated() where byte == UInt8(ascii: "\n") {
                #expect(i > 0 && wire[i - 1] == UInt8(ascii: "\r"))
            }
        }
    }
}
