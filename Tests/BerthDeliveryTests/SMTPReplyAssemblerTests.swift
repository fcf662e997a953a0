import BerthDelivery
import NIOCore
import Testing

@Suite struct SMTPReplyAssemblerTests {
    static func replies(_ text: String) throws -> [SMTPClientReply] {
        var assembler = SMTPReplyAssembler()
        assembler.append(ByteBuffer(string: text))
        var result: [SMTPClientReply] = []
        while let reply = try assembler.next() { result.append(reply) }
        return result
    }

    @Test func singleAndMultiLine() throws {
        let parsed = try Self.replies("220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n354\r\n")
        #expect(parsed.map(\.code) == [220, 250, 354])
        #expect(parsed[1].extensions == ["PIPELINING": "", "SIZE": "1000", "STARTTLS": ""])
        #expect(parsed[2].lines == [""])
    }

    @Test func incompleteWaits() throws {
        #expect(try Self.replies("250-a\r\n250 b").isEmpty)
    }

    static let malformed: [(label: String, input: String)] = [
        ("letters for a code", "abc hello\r\n"),
        ("code out of range", "999 what\r\n"),
        ("code changes mid-reply", "250-a\r\n251 b\r\n"),
        ("no separator", "250hello\r\n"),
        ("bare LF", "250 ok\n"),
        ("short line", "25\r\n"),
    ]

    @Test(arguments: malformed.indices)
    func malformedRefused(_ index: Int) {
        #expect(throws: SMTPReplyAssembler.Failure.self, "\(Self.malformed[index].label)") {
            _ = try Self.replies(Self.malformed[index].input)
        }
    }

    @Test func limits() {
        #expect(throws: SMTPReplyAssembler.Failure.tooLong) {
            _ = try Self.replies("250 " + String(repeating: "x", count: 5000) + "\r\n")
        }
        #expect(throws: SMTPReplyAssembler.Failure.tooLong) {
            _ = try Self.replies(String(repeating: "250-x\r\n", count: 200) + "250 end\r\n")
        }
    }

    /// Random bytes: never a crash, only replies or a failure.
    @Test func fuzz() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = Array("0123456789- \r\nabc".utf8)
        for _ in 0..<2000 {
            var assembler = SMTPReplyAssembler()
            let bytes = (0..<Int.random(in: 0..<300, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            assembler.append(ByteBuffer(bytes: bytes))
            do { while try assembler.next() != nil {} } catch {}
        }
    }
}
