import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under the system temporary directory.
public struct TempDirectory: Sendable {
    public let path: String

    public init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("berth-tests-\(UUID().uuidString)", isDirectory: true).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    public func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: URL(fileURLWithPath: file(name)))
        return file(name)
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The PEM blocks of a file, by label ("CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY").
public func pemBlocks(_ text: String) -> [(label: String, block: String)] {
    var blocks: [(String, String)] = []
    var current: [Substring] = []
    var label: String?
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("-----BEGIN ") {
            label = String(line.dropFirst("-----BEGIN ".count).dropLast("-----".count))
            current = [line]
        } else if line.hasPrefix("-----END "), let open = label {
            current.append(line)
            blocks.append((open, current.joined(separator: "\n") + "\n"))
            label = nil
        } else if label != nil {
            current.append(line)
        }
    }
    return blocks
}

/// Path of an executable on PATH, or nil.
public func executable(_ name: String) -> String? {
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// Runs a tool; returns its exit status and standard error.
@discardableResult
public func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let data = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

// MARK: Plain sockets, to probe listeners without NIO
