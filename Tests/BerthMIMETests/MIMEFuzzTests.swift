import BerthCore
import BerthIMAP
import BerthTestSupport
import Testing

@testable import BerthMIME

/// Seeded fuzzing and worst cases: random and mutated messages never crash, every
/// structure encodes, every section stays inside the message, limits hold, and the
/// pathological inputs finish fast (no quadratic scans).
struct MIMEFuzzTests {
    static let limits = MIMELimits(maxHeaderSize: 4096, maxHeaderFields: 64, maxLineLength: 256, maxDepth: 8, maxParts: 50,
                                   maxSearchTextSize: 4096)

    /// Everything a server would ask of a message.
    static func exercise(_ bytes: [UInt8], limits: MIMELimits = limits, using generator: inout SeededGenerator) {
        let message = MIMEMessage(bytes, limits: limits)
        #expect(message.size == LineEnds.crlfCount(bytes))
        #expect(message.partCount <= limits.maxParts)
        #expect(depth(message.root) <= limits.maxDepth)
        _ = IMAPResponseEncoder.encode(.data(.fetch(1, [.envelope(message.envelope), .body(message.body),
                                                         .bodyStructure(message.bodyStructure)])))
        #expect(message.bodyText.utf8.count <= limits.maxSearchTextSize)
        #expect(message.fullText.utf8.count <= limits.maxSearchTextSize)
        _ = message.decodedHeaderValues("Subject")
        let texts: [IMAPSectionText?] = [nil, .header, .text, .mime, .headerFields(["FROM", "SUBJECT"]), .headerFieldsNot(["TO"])]
        for _ in 0..<8 {
            let path = (0..<Int.random(in: 0...3, using: &generator)).map { _ in UInt32.random(in: 1...3, using: &generator) }
            var text = texts.randomElement(using: &generator)!
            if path.isEmpty, text == .mime { text = nil }
            let section = IMAPSection(part: path, text: text)
            let data = message.section(section, partial: Bool.random(using: &generator) ? IMAPPartial(offset: 3, length: 10) : nil)
            if let range = message.sectionRange(section) {
                #expect(range.lowerBound >= 0 && range.upperBound <= message.bytes.count)
            }
            if case .headerFields = text {} else if case .headerFieldsNot = text {} else {
                #expect(data.count <= message.bytes.count)
            }
        }
    }

    static func depth(_ part: MIMEPart) -> Int {
        switch part.content {
        case .single: 0
        case .multipart(let parts): 1 + (parts.map(depth).max() ?? 0)
        case .message(let inner): 1 + depth(inner)
        }
    }

    static let seeds: [String] = DovecotMessages.all + MIMEStructureTests.fixtures.map(\.message)

    @Test func randomBytes() {
        var generator = SeededGenerator(seed: 0x4D1E)
        let alphabet = Array("ab:; =?-\"<>@,()\r\n\t\\Content-Type: multipart/mixed; boundary=b\n--b\n".utf8) + [0, 0x80, 0xC3, 0xFF]
        for _ in 0..<200 {
            let count = Int.random(in: 0...800, using: &generator)
            let bytes = (0..<count).map { _ in
                Bool.random(using: &generator) ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
            }
            Self.exercise(bytes, using: &generator)
            _ = MIMEHeader.decodedValue(bytes)
            _ = MIMEAddressParser.parse(String(decoding: bytes, as: UTF8.self))
        }
    }

    @Test func mutatedMessages() {
        var generator = SeededGenerator(seed: 0xB0D1)
        for _ in 0..<300 {
            var bytes = Array(Self.seeds.randomElement(using: &generator)!.utf8)
            for _ in 0..<Int.random(in: 1...8, using: &generator) where !bytes.isEmpty {
                let position = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0...4, using: &generator) {
                case 0: bytes[position] = UInt8.random(in: 0...255, using: &generator)
                case 1: bytes.remove(at: position)
                case 2: bytes.insert(contentsOf: Array("\r\n--b\r\n".utf8), at: position)
                case 3: bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...40, using: &generator)))
                default:
                    let length = Int.random(in: 1...60, using: &generator)
                    let start = Int.random(in: 0..<bytes.count, using: &generator)
                    bytes.insert(contentsOf: bytes[start..<min(bytes.count, start + length)], at: position)
                }
            }
            Self.exercise(bytes, using: &generator)
        }
    }

    @Test func manyHeaderLinesStayLinear() {
        var text = ""
        for index in 0..<100_000 { text += "X-Line-\(index): value\r\n" }
        text += "\r\nbody\r\n"
        let bytes = Array(text.utf8)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            let message = MIMEMessage(bytes)
            #expect(message.header.fields.count == MIMELimits.defaultHeaderFields)
            #expect(message.header.range.count <= MIMELimits.defaultHeaderSize)
            #expect(message.section(IMAPSection(text: .headerFields(["X-LINE-5"]))) == Array("X-Line-5: value\r\n\r\n".utf8))
            let unlimited = MIMEMessage(bytes, limits: MIMELimits(maxHeaderSize: .max, maxHeaderFields: .max))
            #expect(unlimited.header.fields.count == 100_000)
            #expect(unlimited.section(IMAPSection(text: .text)) == Array("body\r\n".utf8))
        }
        #expect(elapsed < .seconds(20))
    }

    @Test func deepNestingIsCapped() {
        // 200 nested multiparts, each with its own boundary, and 200 nested messages.
        var text = ""
        for level in 0..<200 { text += "Content-Type: multipart/mixed; boundary=b\(level)\r\n\r\n--b\(level)\r\n" }
        text += "\r\nleaf\r\n"
        for level in (0..<200).reversed() { text += "--b\(level)--\r\n" }
        let message = MIMEMessage(Array(text.utf8))
        #expect(message.isTruncated)
        #expect(Self.depth(message.root) == MIMELimits.defaultDepth)
        _ = IMAPResponseEncoder.encode(.data(.fetch(1, [.bodyStructure(message.bodyStructure)])))

        let messages = String(repeating: "Content-Type: message/rfc822\r\n\r\n", count: 10_000) + "Subject: end\r\n\r\nx"
        let nested = MIMEMessage(Array(messages.utf8))
        #expect(Self.depth(nested.root) == MIMELimits.defaultDepth)
    }

    @Test func manyPartsAreCapped() {
        var text = "Content-Type: multipart/mixed; boundary=p\r\n\r\n"
        for index in 0..<5_000 { text += "--p\r\n\r\npart \(index)\r\n" }
        text += "--p--\r\n"
        let message = MIMEMessage(Array(text.utf8))
        #expect(message.isTruncated)
        #expect(message.partCount == MIMELimits.defaultParts)
        guard case .multipart(let parts) = message.root.content else { Issue.record("not multipart"); return }
        #expect(parts.count == MIMELimits.defaultParts - 1)
        #expect(message.section(IMAPSection(part: [999])) == Array("part 998".utf8))
        #expect(message.section(IMAPSection(part: [1000])) == [])
    }

    @Test func pathologicalHeaderValues() {
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            let encoded = String(repeating: "=?", count: 50_000) + String(repeating: "=?a?q?", count: 20_000)
            _ = MIMEHeader.decodedValue(encoded)
            _ = MIMEAddressParser.parse(String(repeating: "\"\\", count: 30_000))
            _ = MIMEAddressParser.parse(String(repeating: "(", count: 30_000))
            _ = MIMEAddressParser.parse(String(repeating: "a:", count: 30_000))
            _ = MIMEAddressParser.parse(String(repeating: "<@", count: 30_000))
            _ = MIMEContentType(String(repeating: "a/b; x*0*=1", count: 10_000))
        }
        #expect(elapsed < .seconds(20))
    }
}
