import BerthTestSupport
import Testing

@testable import BerthDNS

/// Random and mutated packets through the parser: errors only, never a crash, and nothing
/// bigger comes out than went in. Seeded, so a failure repeats.
struct DNSFuzzTests {
    static let seeds: [[UInt8]] = [
        Recorded.mx, Recorded.aViaCNAME, Recorded.txt, Recorded.nxdomain, Recorded.nodata, Recorded.aaaa,
    ] + ParseFixture.all.map(\.bytes).filter { $0.count <= 600 }

    /// Parses through every path the resolver takes; checks the result is bounded by the input.
    static func exercise(_ bytes: [UInt8]) {
        let query = try! DNSQuery(id: 0x1234, name: "example.net", type: .mx)
        _ = ParseOutcome.of(bytes, query: query)
        _ = try? DNSMessage.parseIdentity(bytes)
        guard let message = try? DNSMessage(parsing: bytes, maximumSize: DNSLimits.udpResponseSize) else { return }
        let records = message.answers + message.authorities + message.additionals
        // A question takes at least 5 octets and a record at least 11.
        #expect(message.questions.count * 5 + records.count * 11 <= bytes.count)
        for name in message.questions.map(\.name) + records.map(\.name) {
            // 255 wire octets, each written as at most four characters ("\DDD").
            #expect(name.utf8.count <= DNSLimits.nameLength * 4)
        }
    }

    @Test func randomPacketsNeverCrash() {
        var generator = SeededGenerator(seed: 0xD15EA5E)
        for round in 0..<4000 {
            let length = Int.random(in: 0..<512, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Half get a plausible header (id, QR, one question) so the parser goes deeper.
            if round % 2 == 0 && bytes.count >= 12 {
                bytes.replaceSubrange(0..<6, with: [0x12, 0x34, 0x81, 0x80, 0x00, 0x01])
                bytes[6] = 0; bytes[7] = UInt8.random(in: 0...8, using: &generator)
            }
            Self.exercise(bytes)
        }
    }

    @Test func mutatedResponsesNeverCrash() {
        var generator = SeededGenerator(seed: 0xFEED)
        for _ in 0..<6000 {
            var bytes = Self.seeds.randomElement(using: &generator)!
            switch Int.random(in: 0..<5, using: &generator) {
            case 0:  // bit flips
                for _ in 0..<Int.random(in: 1...8, using: &generator) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= 1 << UInt8.random(in: 0...7, using: &generator)
                }
            case 1:  // truncation
                bytes.removeLast(Int.random(in: 0...bytes.count, using: &generator))
            case 2:  // a compression pointer dropped anywhere
                if bytes.count >= 2 {
                    let at = Int.random(in: 0..<(bytes.count - 1), using: &generator)
                    bytes[at] = 0xC0 | UInt8.random(in: 0...0x3F, using: &generator)
                    bytes[at + 1] = UInt8.random(in: 0...255, using: &generator)
                }
            case 3:  // a random byte overwritten with an extreme value
                if !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = [0x00, 0x3F, 0x40, 0x7F, 0xC0, 0xFF].randomElement(using: &generator)!
                }
            default:  // random junk appended or inserted
                let junk = (0..<Int.random(in: 1...32, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                bytes.insert(contentsOf: junk, at: Int.random(in: 0...bytes.count, using: &generator))
            }
            Self.exercise(bytes)
        }
    }

    /// Every prefix of every recorded response: the classic truncation sweep.
    @Test func everyPrefixOfTheRecordedResponses() {
        for seed in Self.seeds.prefix(6) {
            for length in 0...seed.count {
                Self.exercise(Array(seed.prefix(length)))
            }
        }
    }
}
