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
            for key in Self.sessionKeys {
                if let value = merged.removeValue(forKey: key) { Self.append(key, value, to: &text) }
            }
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) { Self.append(key, value, to: &text) }
            output = text + "\n"
        case .json:
            var object: [String: String] = ["ts": Self.timestamp(), "level": "\(level)", "msg": "\(message)"]
            for (key, value) in merged { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            output = String(decoding: data, as: UTF8.self) + "\n"
        }
        // write(2) on descriptor 2: one call per line, so lines of concurrent sessions never interleave.
        var line = output
        line.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }

    /// Session fields first, in the order an admin reads them; the rest by name.
    private static let sessionKeys = ["session", "client", "listener", "proto", "tls", "user"]

    private static func append(_ key: String, _ value: Logger.MetadataValue, to text: inout String) {
        text += " "
        text += key
        text += "="
        text += quoted("\(value)")
    }

    /// A value with spaces, quotes, `=` or anything but printable ASCII is quoted and
    /// escaped, so every line splits back into its fields (and log injection cannot
    /// forge one). Checked on bytes: this runs for every field of every line.
    private static func quoted(_ value: String) -> String {
        let safe = !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x3D }
        if safe { return value }
        var escaped = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: escaped += "\\u{\(String(scalar.value, radix: 16))}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
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
