import BerthTestSupport
@testable import BerthDKIM
import Crypto
import Foundation


func sha256(_ bytes: some Sequence<UInt8>) -> [UInt8] {
    Array(SHA256.hash(data: Array(bytes)))
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Random body text built from the pieces that matter to relaxed canonicalisation.
func randomBody(length: Int, using rng: inout SeededGenerator, pieces: [String] = ["a", "b", " ", "\t", "\r", "\n", "\r\n", "  ", "\n\n"]) -> [UInt8] {
    var out: [UInt8] = []
    while out.count < length {
        out += bytes(pieces.randomElement(using: &rng)!)
    }
    return out
}

/// A plain, line-at-a-time reading of RFC 6376 §3.4.4 (relaxed body), written apart from
/// the streaming hasher so the two can be compared. "\r\n" and "\n" end lines.
func referenceRelaxedBody(_ body: [UInt8]) -> [UInt8] {
    var lines: [[UInt8]] = []
    var line: [UInt8] = []
    var index = 0
    while index < body.count {
        if body[index] == UInt8(ascii: "\n") {
            lines.append(line); line = []
        } else if body[index] == UInt8(ascii: "\r"), index + 1 < body.count, body[index + 1] == UInt8(ascii: "\n") {
            lines.append(line); line = []
            index += 1
        } else {
            line.append(body[index])
        }
        index += 1
    }
    if !line.isEmpty { lines.append(line) }
    var canonical = lines.map { line -> [UInt8] in
        var out: [UInt8] = []
        var space = false
        for byte in line {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                space = true
            } else {
                if space { out.append(UInt8(ascii: " ")) }
                space = false
                out.append(byte)
            }
        }
        return out
    }
    while canonical.last?.isEmpty == true { canonical.removeLast() }
    return canonical.flatMap { $0 + [13, 10] }
}

func bodyHash(_ body: [UInt8]) -> [UInt8] {
    var hasher = DKIMBodyHasher()
    hasher.update(body)
    return hasher.finalize()
}

/// Runs a tool; returns its exit status and standard output. Standard error goes to
/// `errorsPath`, so the child never blocks on a second pipe nobody reads.
func runCapturingOutput(_ tool: String, _ arguments: [String], errorsPath: String) throws -> (status: Int32, stdout: String) {
    _ = FileManager.default.createFile(atPath: errorsPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorsPath))
    let exit = try process.start()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    try exit.wait()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
