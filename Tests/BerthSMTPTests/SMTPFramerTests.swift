import BerthTestSupport
import NIOCore
import Testing

@testable import BerthSMTP

struct SMTPFramerTests {
    enum Event: Equatable {
        case line(String)
        case tooLong
        case bare
    }

    /// Feeds `chunks` in command mode and collects every frame.
    static func commands(_ chunks: [String], maxLength: Int = SMTPLimits.commandLineLength) -> [Event] {
        var framer = SMTPFramer()
        var events: [Event] = []
        for chunk in chunks {
            framer.append(ByteBuffer(string: chunk))
            while let frame = framer.nextCommand(maxLength: maxLength) {
                switch frame {
                case .line(let b): events.append(.line(String(buffer: b)))
                case .tooLong: events.append(.tooLong)
                case .bareLineEnding: events.append(.bare)
                }
            }
        }
        return events
    }

    static let commandFixtures: [(chunks: [String], expected: [Event])] = [
        (["EHLO a\r\n"], [.line("EHLO a")]),
        (["EH", "LO a\r", "\n"], [.line("EHLO a")]),
        (["NOOP\r\nNOOP\r\nQUIT\r\n"], [.line("NOOP"), .line("NOOP"), .line("QUIT")]),
        (["NOOP\n"], [.bare]),
        (["NO\rOP\r\n"], [.bare]),
        (["\r\n"], [.line("")]),
        (["NOOP"], []),
        ([String(repeating: "A", count: 600) + "\r\nNOOP\r\n"], [.tooLong, .line("NOOP")]),
        ([String(repeating: "A", count: 300), String(repeating: "A", count: 300), "\r\nNOOP\r\n"], [.tooLong, .line("NOOP")]),
        ([String(repeating: "A", count: 510) + "\r\n"], [.line(String(repeating: "A", count: 510))]),
        ([String(repeating: "A", count: 511) + "\r\n"], [.tooLong]),
    ]

    @Test(arguments: commandFixtures.indices)
    func commandFraming(_ index: Int) {
        let fixture = Self.commandFixtures[index]
        #expect(Self.commands(fixture.chunks) == fixture.expected)
    }

    /// Byte-by-byte, whole, and in random splits all frame the same (ByteToMessageDecoderVerifier's idea).
    @Test func splitsDoNotMatter() {
        let input = "EHLO a\r\nMAIL FROM:<x@y.z>\r\nbad\nRCPT TO:<a@b.c>\r\n" + String(repeating: "Z", count: 700) + "\r\nQUIT\r\n"
        let whole = Self.commands([input])
        let bytes = Self.commands(input.map { String($0) })
        #expect(whole == bytes)
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<50 {
            var chunks: [String] = []
            var rest = Substring(input)
            while !rest.isEmpty {
                let n = Int.random(in: 1...max(1, min(40, rest.count)), using: &generator)
                chunks.append(String(rest.prefix(n)))
                rest = rest.dropFirst(n)
            }
            #expect(Self.commands(chunks) == whole)
        }
    }

    static func data(_ chunks: [String], maxSize: Int = 1 << 20) -> [Completed] {
        var framer = SMTPFramer(maxMessageSize: maxSize)
        framer.beginData()
        var frames: [Completed] = []
        var content = ""
        for chunk in chunks {
            framer.append(ByteBuffer(string: chunk))
            while let frame = framer.nextData() {
                switch frame {
                case .content(let piece):
                    content += String(buffer: piece)
                case .complete(let problem):
                    // With a problem, the pieces handed out so far are thrown away.
                    frames.append(Completed(content: problem == nil ? content : "", problem: problem))
                    content = ""
                    framer.beginData()
                }
            }
        }
        return frames
    }

    /// A whole body as the session sees it: the pieces joined, and how it ended.
    struct Completed: Equatable {
        var content: String
        var problem: SMTPFramer.DataProblem?
    }

    static func complete(_ content: String, _ problem: SMTPFramer.DataProblem? = nil) -> Completed {
        Completed(content: problem == nil ? content : "", problem: problem)
    }

    static let dataFixtures: [(chunks: [String], expected: [Completed])] = [
        (["Subject: x\r\n\r\nbody\r\n.\r\n"], [complete("Subject: x\r\n\r\nbody\r\n")]),
        ([".\r\n"], [complete("")]),
        (["a\r\n..b\r\n.\r\n"], [complete("a\r\n.b\r\n")]),                       // dot-unstuffing, RFC 5321 §4.5.2
        (["a\r\n", ".", "\r\n"], [complete("a\r\n")]),
        (["a\r\n.\r", "\n"], [complete("a\r\n")]),
        (["a\nb\r\n.\r\n"], [complete("", .bareLineEnding)]),
        (["a\rb\r\n.\r\n"], [complete("", .bareLineEnding)]),
        // Smuggling: "\n.\r\n" after a bare LF does not end the data; the real end does.
        (["a\n.\r\nMAIL FROM:<evil@x.y>\r\n.\r\n"], [complete("", .bareLineEnding)]),
        (["a\r\n.\nMAIL FROM:<evil@x.y>\r\n.\r\n"], [complete("", .bareLineEnding)]),
        ([String(repeating: "x", count: 1200) + "\r\n.\r\n"], [complete("", .lineTooLong)]),
        ([String(repeating: "x", count: 998) + "\r\n.\r\n"], [complete(String(repeating: "x", count: 998) + "\r\n")]),
        ([String(repeating: "x", count: 700), String(repeating: "x", count: 700), "\r\n.\r\n"], [complete("", .lineTooLong)]),
        // A body larger than one chunk comes out in pieces that join to the whole.
        ([String(repeating: String(repeating: "y", count: 98) + "\r\n", count: 400) + ".\r\n"],
         [complete(String(repeating: String(repeating: "y", count: 98) + "\r\n", count: 400))]),
    ]

    @Test(arguments: dataFixtures.indices)
    func dataFraming(_ index: Int) {
        let fixture = Self.dataFixtures[index]
        #expect(Self.data(fixture.chunks) == fixture.expected)
    }

    @Test func oversizedMessageIsFlaggedButConsumedToTheEnd() {
        var framer = SMTPFramer(maxMessageSize: 100)
        framer.beginData()
        framer.append(ByteBuffer(string: String(repeating: "0123456789\r\n", count: 20) + ".\r\nNOOP\r\n"))
        #expect(framer.nextData() == .complete(problem: .tooLarge))
        guard case .line(let next)? = framer.nextCommand() else {
            Issue.record("the command after the data was lost")
            return
        }
        #expect(String(buffer: next) == "NOOP")
    }

    @Test func discardBufferedDropsPipelinedBytes() {
        var framer = SMTPFramer()
        framer.append(ByteBuffer(string: "STARTTLS\r\nRSET\r\n"))
        #expect(framer.nextCommand() == .line(ByteBuffer(string: "STARTTLS")))
        #expect(framer.discardBuffered() == 6)
        #expect(framer.nextCommand() == nil)
    }

    /// Fuzz-style: random bytes in both modes never crash, never yield a line over the
    /// limit, and never keep more than the limit of an unterminated line buffered.
    @Test func randomInputRespectsLimits() {
        var generator = SeededGenerator(seed: 7)
        let alphabet: [UInt8] = Array("ab.\r\n \u{0}".utf8) + [0xFF]
        for round in 0..<300 {
            var framer = SMTPFramer(maxMessageSize: 4096)
            let dataMode = round % 2 == 1
            if dataMode { framer.beginData() }
            for _ in 0..<20 {
                let count = Int.random(in: 1...200, using: &generator)
                let bytes = (0..<count).map { _ in
                    Bool.random(using: &generator) ? alphabet.randomElement(using: &generator)! : UInt8(ascii: "x")
                }
                framer.append(ByteBuffer(bytes: bytes))
                if dataMode {
                    while let frame = framer.nextData() {
                        switch frame {
                        case .content(let piece): #expect(piece.readableBytes <= SMTPFramer.chunkSize + SMTPLimits.textLineLength)
                        case .complete: framer.beginData()
                        }
                    }
                    #expect(framer.bufferedBytes <= SMTPLimits.textLineLength + 200)
                } else {
                    while let frame = framer.nextCommand() {
                        if case .line(let line) = frame { #expect(line.readableBytes <= SMTPLimits.commandLineLength - 2) }
                    }
                    #expect(framer.bufferedBytes <= SMTPLimits.commandLineLength + 200)
                }
            }
        }
    }
}
