#if canImport(Glibc)
import Glibc
#endif
import BerthTestSupport
import Testing
@testable import BerthLDAP

@Suite("LDAP framer and decoder under random and mutated PDUs")
struct LDAPFuzzTests {
    static func residentKiB() -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, file) != nil {
            let text = String(cString: line)
            if text.hasPrefix("VmRSS:") { return Int(text.split(separator: " ")[1]) ?? 0 }
        }
        return 0
    }

    static func mutate(_ input: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            guard !bytes.isEmpty else { break }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: bytes[at] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
            case 1: bytes[at] = UInt8.random(in: 0...255, using: &random)
            case 2: bytes.insert(UInt8.random(in: 0...255, using: &random), at: at)
            case 3: bytes.remove(at: at)
            case 4: bytes = Array(bytes.prefix(at))
            default:
                // A length octet made large: the case that must not allocate.
                bytes[at] = [0x7F, 0x81, 0x84, 0xFF, 0x80][Int.random(in: 0..<5, using: &random)]
            }
        }
        return bytes
    }

    @Test("No crash, every input answered, memory flat")
    func fuzz() throws {
        var random = SeededGenerator(seed: 0x4C44_4150)
        let corpus = LDAPDecoderTests.captured.map { hex($0.1) } + LDAPDecoderTests.malformed.map(\.1)
        var decoded = 0, notDecoded = 0, notFramed = 0, needMore = 0
        func feed(_ bytes: [UInt8]) {
            let frame: LDAPFramer.Frame
            do {
                frame = try LDAPFramer.frame(bytes, maxSize: 64 * 1024)
            } catch {
                notFramed += 1
                return
            }
            guard case .message(let length) = frame else {
                needMore += 1
                return
            }
            do {
                _ = try LDAPDecoder.decode(bytes.prefix(length))
                decoded += 1
            } catch {
                notDecoded += 1
            }
        }
        let before = Self.residentKiB()
        for round in 0..<60_000 {
            if round % 4 == 0 {
                feed((0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
            } else {
                feed(Self.mutate(corpus[round % corpus.count], &random))
            }
        }
        let grown = Self.residentKiB() - before
        // Each path taken many times: the mutations reach the decoder, not only the framer.
        #expect(decoded > 500 && [notDecoded, notFramed, needMore].allSatisfy { $0 > 5_000 },
                "decoded \(decoded), not decoded \(notDecoded), not framed \(notFramed), incomplete \(needMore)")
        #expect(grown < 16 * 1024, "resident memory grew \(grown) KiB over 60,000 inputs")
    }
}
