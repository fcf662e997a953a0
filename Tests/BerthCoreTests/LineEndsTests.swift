import Testing

@testable import BerthCore

/// Bytes and their two forms: every bare LF made CRLF, and every CRLF made LF.
struct LineEndsFixture: CustomTestStringConvertible, Sendable {
    let name: String
    let input: [UInt8]
    let crlf: [UInt8]
    let lf: [UInt8]
    var testDescription: String { "\(name): \(String(decoding: input, as: UTF8.self).debugDescription)" }

    init(_ name: String, _ input: String, crlf: String, lf: String) {
        self.name = name
        self.input = Array(input.utf8)
        self.crlf = Array(crlf.utf8)
        self.lf = Array(lf.utf8)
    }
}

struct LineEndsTests {
    static let fixtures: [LineEndsFixture] = [
        LineEndsFixture("empty", "", crlf: "", lf: ""),
        LineEndsFixture("no line end", "a", crlf: "a", lf: "a"),
        LineEndsFixture("lone CR", "a\rb", crlf: "a\rb", lf: "a\rb"),
        LineEndsFixture("lone CR at the end", "a\r", crlf: "a\r", lf: "a\r"),
        LineEndsFixture("lone LF", "a\nb", crlf: "a\r\nb", lf: "a\nb"),
        LineEndsFixture("lone LF first", "\na", crlf: "\r\na", lf: "\na"),
        LineEndsFixture("only LF", "\n", crlf: "\r\n", lf: "\n"),
        LineEndsFixture("CRLF", "a\r\nb", crlf: "a\r\nb", lf: "a\nb"),
        LineEndsFixture("only CRLF", "\r\n", crlf: "\r\n", lf: "\n"),
        LineEndsFixture("two LF", "\n\n", crlf: "\r\n\r\n", lf: "\n\n"),
        LineEndsFixture("CR before CRLF", "\r\r\n", crlf: "\r\r\n", lf: "\r\n"),
        LineEndsFixture("LF before CR", "\n\r", crlf: "\r\n\r", lf: "\n\r"),
        LineEndsFixture(
            "mixed", "a\r\nb\nc\rd\r\r\n\n\re", crlf: "a\r\nb\r\nc\rd\r\r\n\r\n\re", lf: "a\nb\nc\rd\r\n\n\re"),
        LineEndsFixture("LF, CRLF, lone CR, LF LF", "a\nb\r\nc\rd\n\n", crlf: "a\r\nb\r\nc\rd\r\n\r\n", lf: "a\nb\nc\rd\n\n"),
        LineEndsFixture("CR CR LF LF", "\r\r\n\n", crlf: "\r\r\n\r\n", lf: "\r\n\n"),
        LineEndsFixture("trailing line without newline, CRLF", "one\r\ntwo", crlf: "one\r\ntwo", lf: "one\ntwo"),
        LineEndsFixture("trailing line without newline, LF", "one\ntwo", crlf: "one\r\ntwo", lf: "one\ntwo"),
    ]

    @Test(arguments: fixtures)
    func toCRLF(_ fixture: LineEndsFixture) {
        #expect(LineEnds.toCRLF(fixture.input) == fixture.crlf)
        #expect(LineEnds.toCRLF(fixture.input.lazy.map { $0 }) == fixture.crlf, "not contiguous")
    }

    @Test(arguments: fixtures)
    func crlfCount(_ fixture: LineEndsFixture) {
        #expect(LineEnds.crlfCount(fixture.input) == fixture.crlf.count)
        #expect(LineEnds.crlfCount(fixture.input[...]) == fixture.crlf.count, "a slice")
        #expect(LineEnds.crlfCount(fixture.input.lazy.map { $0 }) == fixture.crlf.count, "not contiguous")
    }

    @Test(arguments: fixtures)
    func toLF(_ fixture: LineEndsFixture) {
        #expect(LineEnds.toLF(fixture.input) == fixture.lf)
        var appended = Array("kept".utf8)
        fixture.input.withUnsafeBytes { LineEnds.appendToLF($0, to: &appended) }
        #expect(appended == Array("kept".utf8) + fixture.lf)
    }

    /// A file read in pieces counts as the whole: a CR at the end of one piece and the LF
    /// at the start of the next are one CRLF.
    @Test(arguments: fixtures)
    func counterAcrossPieces(_ fixture: LineEndsFixture) {
        for split in 0...fixture.input.count {
            var counter = LineEnds.CRLFCounter()
            counter.add(fixture.input[..<split])
            fixture.input[split...].withUnsafeBytes { counter.add($0) }
            #expect(counter.count == fixture.crlf.count, "split at \(split)")
        }
    }

    /// Every string of up to 7 bytes over CR, LF and a letter, against the plain byte loops.
    @Test func everyShortInputMatchesTheByteLoops() {
        let alphabet: [UInt8] = [0x0D, 0x0A, 0x61]
        var inputs: [[UInt8]] = [[]]
        var frontier: [[UInt8]] = [[]]
        for _ in 1...7 {
            frontier = frontier.flatMap { prefix in alphabet.map { prefix + [$0] } }
            inputs += frontier
        }
        for input in inputs {
            var crlf: [UInt8] = []
            var previous: UInt8 = 0
            for byte in input {
                if byte == 0x0A && previous != 0x0D { crlf.append(0x0D) }
                crlf.append(byte)
                previous = byte
            }
            var lf: [UInt8] = []
            for (index, byte) in input.enumerated() where !(byte == 0x0D && index + 1 < input.count && input[index + 1] == 0x0A) {
                lf.append(byte)
            }
            #expect(LineEnds.toCRLF(input) == crlf, "\(input)")
            #expect(LineEnds.crlfCount(input) == crlf.count, "\(input)")
            #expect(LineEnds.toLF(input) == lf, "\(input)")
        }
    }
}
