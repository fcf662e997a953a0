import NIOCore
import Testing

@testable import BerthNet

struct LineFramerTests {
    static func frames(_ chunks: [String], maxLength: Int = 16) -> [LineFramer.Frame] {
        var framer = LineFramer()
        var frames: [LineFramer.Frame] = []
        for chunk in chunks {
            framer.append(ByteBuffer(string: chunk))
            while let frame = framer.nextLine(maxLength: maxLength) { frames.append(frame) }
        }
        return frames
    }

    static func line(_ text: String) -> LineFramer.Frame { .line(ByteBuffer(string: text)) }

    static let fixtures: [(label: String, chunks: [String], expected: [LineFramer.Frame])] = [
        ("one line", ["NOOP\r\n"], [line("NOOP")]),
        ("two in one read", ["A\r\nB\r\n"], [line("A"), line("B")]),
        ("split CRLF", ["A\r", "\nB\r\n"], [line("A"), line("B")]),
        ("empty line", ["\r\n"], [line("")]),
        ("bare LF", ["A\nB\r\n"], [.bareLineEnding, line("B")]),
        ("bare CR inside", ["A\rB\r\n"], [.bareLineEnding]),
        ("exactly the limit (14 + CRLF = 16)", [String(repeating: "x", count: 14) + "\r\n"], [line(String(repeating: "x", count: 14))]),
        ("one over the limit, complete", [String(repeating: "x", count: 15) + "\r\n"], [.tooLong]),
        ("endless line: one tooLong, then the next line", [String(repeating: "x", count: 40), String(repeating: "x", count: 40), "\r\nOK\r\n"],
         [.tooLong, line("OK")]),
    ]

    @Test(arguments: fixtures.indices)
    func framing(_ index: Int) {
        let fixture = Self.fixtures[index]
        #expect(Self.frames(fixture.chunks) == fixture.expected, "\(fixture.label)")
    }

    @Test func anEndlessLineKeepsAtMostOneByte() {
        var framer = LineFramer()
        for _ in 0..<100 {
            framer.append(ByteBuffer(string: String(repeating: "x", count: 1000) + "\r"))
            _ = framer.nextLine(maxLength: 512)
            #expect(framer.bufferedBytes <= 1)
        }
    }

    @Test func anIdleFramerHoldsNoBuffer() {
        var framer = LineFramer()
        framer.append(ByteBuffer(string: "NOOP\r\n"))
        _ = framer.nextLine(maxLength: 512)
        #expect(framer.takeBuffer() == nil)
    }

    @Test func anotherModeTakesTheRestAndPutsItBack() {
        var framer = LineFramer()
        framer.append(ByteBuffer(string: "A\r\nraw bytes"))
        #expect(framer.nextLine(maxLength: 512) == Self.line("A"))
        var rest = framer.takeBuffer()!
        #expect(String(buffer: rest) == "raw bytes")
        rest.moveReaderIndex(forwardBy: 4)
        framer.putBack(rest)
        framer.append(ByteBuffer(string: "\r\n"))
        #expect(framer.nextLine(maxLength: 512) == Self.line("bytes"))
    }

    @Test func discardDropsEverything() {
        var framer = LineFramer()
        framer.append(ByteBuffer(string: "STARTTLS\r\nRSET\r\n"))
        _ = framer.nextLine(maxLength: 512)
        #expect(framer.discardBuffered() == 6)
        #expect(framer.nextLine(maxLength: 512) == nil)
    }
}
