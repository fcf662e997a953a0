import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format`: one line per event on stderr, as text (`key=value` pairs a person and
/// fail2ban read) or JSON (one object per line, for a log pipeline).
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

struct BerthLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String,
        file: String, function: String, line: UInt
    ) {
        var merged = metadata
        if let extra { merged.merge(extra) { _, new in new } }
        let output: String
        switch format {
        case .text:
            var text = "\(Self.timestamp()) \(level) \(message)"
            for (key, value) in merged.sorted(by: { Self.order($0.key) < Self.order($1.key) }) {
                text += " \(key)=\(Self.quoted("\(value)"))"
            }
            output = text + "\n"
        case .json:
            var object: [String: String] = ["ts": Self.timestamp(), "level": "\(level)", "msg": "\(message)"]
            for (key, value) in merged { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            output = String(decoding: data, as: UTF8.self) + "\n"
        }
        // write(2) on descriptor 2: one call per line, so lines of concurrent sessions never interleave.
        output.utf8CString.withUnsafeBufferPointer { pointer in
            _ = Glibc.write(2, pointer.baseAddress, pointer.count - 1)
        }
    }

    /// Session fields first, in the order an admin reads them.
    private static func order(_ key: String) -> String {
        let first = ["session", "client", "listener", "proto", "tls", "user"]
        if let index = first.firstIndex(of: key) { return "0\(index)" }
        return "1" + key
    }

    private static func quoted(_ value: String) -> String {
        let safe = value.allSatisfy { $0.isASCII && !$0.isWhitespace && $0 != "\"" && $0 != "=" && !$0.isNewline }
        if safe && !value.isEmpty { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
        return "\"\(escaped)\""
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let base = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let millis = now.tv_nsec / 1_000_000
        return base + "." + String(repeating: "0", count: millis < 10 ? 2 : millis < 100 ? 1 : 0) + "\(millis)Z"
    }

    /// Installs the handler for every logger of the process (once, at start).
    static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            BerthLogHandler(label: label, format: format, logLevel: level)
        }
    }
}
