import BerthTestSupport
import Testing

@testable import BerthIMAP

/// Fuzz-style, bounded and seeded: random bytes and mutated valid commands through the
/// framer and the parser never crash, every result is a command or an error, and the
/// framer never holds more than its limits allow.
struct IMAPFuzzTests {
    static let seeds: [String] = IMAPCommandParserTests.valid.map(\.input) + [
        "a LOGIN {5}\r\nalice {6+}\r\nsecret",
        "a APPEND INBOX (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {12+}\r\nhello\r\nworld",
        "a SEARCH CHARSET UTF-8 OR (FROM {3+}\r\nbob SUBJECT \"x\") NOT UID 1:*",
    ]

    static let limits = IMAPLimits(maxLineLength: 256, maxLiteralSize: 64, maxAppendLiteralSize: 512, maxLiteralsPerCommand: 4,
                                   maxCommandSize: 1024, appendChunkSize: 32)

    /// Feeds `input` in random chunks; checks every frame and the buffering bound.
    static func run(_ input: [UInt8], using generator: inout SeededGenerator) -> (commands: Int, errors: Int) {
        var framer = IMAPFramer(limits: limits)
        var commands = 0
        var errors = 0
        var rest = input[...]
        while !rest.isEmpty {
            let n = Int.random(in: 1...max(1, min(64, rest.count)), using: &generator)
            framer.append(rest.prefix(n))
            rest = rest.dropFirst(n)
            while let frame = framer.next() {
                switch frame {
                case .command(let bytes):
                    #expect(bytes.bytes.count <= limits.maxCommandSize)
                    switch IMAPCommandParser.parse(bytes) {
                    case .success: commands += 1
                    case .failure(let error):
                        #expect(!error.reason.isEmpty)
                        errors += 1
                    }
                case .error: errors += 1
                case .appendMessageBytes(let piece): #expect(piece.count <= limits.appendChunkSize)
                case .continuationRequest, .appendMessageBegin, .appendMessageEnd: break
                }
            }
            // After each drain, all input has been framed, kept within the limit, or dropped.
            #expect(framer.bufferedBytes <= limits.maxCommandSize)
            #expect(framer.commandBytes <= limits.maxCommandSize)
        }
        return (commands, errors)
    }

    @Test func randomBytes() {
        var generator = SeededGenerator(seed: 0xF022)
        let alphabet = Array("aA1 ()[]{}<>+-.*%$\\\"\r\n:,~&=".utf8) + [0, 0x7F, 0xFF, 0xC3]
        for _ in 0..<300 {
            let count = Int.random(in: 0...600, using: &generator)
            let bytes = (0..<count).map { _ in
                Bool.random(using: &generator) ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
            }
            _ = Self.run(bytes, using: &generator)
            // The parser alone, on the same bytes as one command.
            _ = IMAPCommandParser.parse(bytes)
        }
    }

    @Test func mutatedCommands() {
        var generator = SeededGenerator(seed: 0xC0FFEE)
        let replacements = Array(" ()[]{}<>\"\\*:,0123456789+-.\r\n".utf8) + [0, 0xFF]
        var parsed = 0
        for round in 0..<3000 {
            var bytes = Array(Self.seeds[round % Self.seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &generator) where !bytes.isEmpty {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: bytes[at] = replacements.randomElement(using: &generator)!
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(replacements.randomElement(using: &generator)!, at: at)
                default:
                    let end = min(bytes.count, at + Int.random(in: 1...20, using: &generator))
                    bytes.insert(contentsOf: bytes[at..<end], at: at)
                }
            }
            if case .success = IMAPCommandParser.parse(bytes) { parsed += 1 }
            _ = Self.run(bytes + Array("\r\n".utf8), using: &generator)
        }
        // The mutations leave some commands valid and break most.
        #expect(parsed > 0)
        #expect(parsed < 3000)
    }

    /// Every valid seed still frames and parses when sent as the client would.
    @Test func seedsFrameAndParse() {
        var generator = SeededGenerator(seed: 1)
        for seed in Self.seeds {
            let (commands, errors) = Self.run(Array((seed + "\r\n").utf8), using: &generator)
            #expect(commands == 1 && errors == 0, "seed: \(seed.debugDescription)")
        }
    }

    /// Huge numbers anywhere are errors, never overflow traps.
    @Test func hugeNumbers() {
        let huge = String(repeating: "9", count: 60)
        for template in ["a FETCH # FLAGS", "a FETCH 1 BODY[#]", "a FETCH 1 BODY[]<#.1>", "a SEARCH LARGER #", "a SEARCH MODSEQ #",
                         "a SELECT x (QRESYNC (# 1))", "a STORE 1 (UNCHANGEDSINCE #) FLAGS ()", "a LOGIN {#}\r\nx y",
                         "a SETQUOTA r (STORAGE #)", "a UID FETCH 1 FLAGS (CHANGEDSINCE #)"] {
            let line = template.replacingOccurrences(of: "#", with: huge)
            guard case .failure(let error) = IMAPCommandParser.parse(Array(line.utf8)) else {
                Issue.record("accepted: \(line)")
                continue
            }
            #expect(error.reason.contains("too large"), "\(line): \(error.reason)")
        }
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
