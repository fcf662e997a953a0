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
    let exit = try process.start()
    let data = errors.fileHandleForReading.readDataToEndOfFile()
    try exit.wait()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The end of a child process, awaited with a time limit.
public struct ProcessExit: Sendable {
    let process: Process
    let exited: DispatchSemaphore

    /// Blocks until the child ends. Foundation's `waitUntilExit` spins a run loop and is
    /// known to hang on Linux; this waits on the termination handler instead, and after
    /// `timeout` kills the child and throws, so a stuck tool fails its test instead of
    /// holding the whole run.
    public func wait(timeout: TimeInterval = 60) throws {
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            throw ProcessTimeout(tool: process.executableURL?.path ?? "?", seconds: timeout)
        }
    }
}

public struct ProcessTimeout: Error, CustomStringConvertible {
    public var tool: String
    public var seconds: TimeInterval
    public var description: String { "\(tool) did not exit within \(Int(seconds)) s" }
}

extension Process {
    /// `run()`, with the termination handler set first so that a child that ends at once
    /// is still seen to end.
    public func start() throws -> ProcessExit {
        let exited = DispatchSemaphore(value: 0)
        terminationHandler = { _ in exited.signal() }
        try run()
        return ProcessExit(process: self, exited: exited)
    }
}

// MARK: Plain sockets, to probe listeners without NIO

/// A long-running child (a daemon under test) spawned with `posix_spawn` and reaped with
/// `waitpid` here, outside Foundation. Foundation's `Process` learns of an exit when its
/// socket to the child closes; a daemon that closes inherited descriptors at start
/// (dnsmasq does) makes Foundation's one monitor thread block in `waitpid` on it until it
/// exits, and every other `Process` in the test binary hangs meanwhile.
public final class SpawnedDaemon: Sendable {
    public let pid: pid_t

    /// Starts `tool` with `arguments`; standard output and error go to `logPath`.
    public init(_ tool: String, _ arguments: [String], logPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard result == 0 else { throw SpawnError(tool: tool, reason: String(cString: strerror(result))) }
        self.pid = pid
    }

    /// Whether it still runs (reaping it if it ended).
    public var isRunning: Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    /// SIGKILL and reap. SIGKILL, not SIGTERM: a child spawned from a test thread inherits
    /// that thread's blocked signals, SIGTERM among them.
    public func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public var tool: String
        public var reason: String
        public var description: String { "cannot start \(tool): \(reason)" }
    }
}
