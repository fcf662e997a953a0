import BerthCore
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
    var metadata: Logger.Metadata = [:] {
        didSet { fields = LoggerFields(metadata) }
    }
    var metadataProvider: Logger.MetadataProvider?
    /// `metadata` as the text lines need it, worked out when it changes (a session sets its
    /// fields a few times), not for each of its lines.
    private var fields = LoggerFields([:])

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String,
        file: String, function: String, line: UInt
    ) {
        var output: [UInt8]
        switch format {
        case .text:
            output = Self.textLine(level: level, message: message, fields: fields, extra: extra)
        case .json:
            var merged = metadata
            if let extra { merged.merge(extra) { _, new in new } }
            var object: [String: String] = ["ts": Self.timestamp(), "level": level.rawValue, "msg": "\(message)"]
            for (key, value) in merged { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
            output = Array(data)
            output.append(0x0A)
        }
        // write(2) on descriptor 2: one call per line, so lines of concurrent sessions never interleave.
        output.withUnsafeBytes { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }

    /// `<time> <level> <message>` and the fields as `key=value`: session fields first, in
    /// the order an admin reads them, then the rest by name; a field of the call wins over
    /// the logger's. Built as bytes in one buffer: this runs for every line of every session.
    static func textLine(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata, extra: Logger.Metadata?
    ) -> [UInt8] {
        textLine(level: level, message: message, fields: LoggerFields(metadata), extra: extra)
    }

    fileprivate static func textLine(
        level: Logger.Level, message: Logger.Message, fields: LoggerFields, extra: Logger.Metadata?
    ) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        UTCTime.appendRFC3339(UTCTime.now(), to: &line)
        line.append(0x20)
        line += level.rawValue.utf8
        line.append(0x20)
        line += message.description.utf8
        let extra = extra ?? [:]
        if extra.keys.contains(where: sessionKeys.contains) {
            for key in sessionKeys {
                if let value = extra[key] ?? fields.metadata[key] { append(key, value, to: &line) }
            }
        } else {
            line += fields.session
        }
        if extra.isEmpty {
            for (key, value) in fields.rest { append(key, value, to: &line) }
        } else {
            var rest = fields.rest.filter { extra[$0.key] == nil }
            for (key, value) in extra where !sessionKeys.contains(key) { rest.append((key, value)) }
            rest.sort { $0.key < $1.key }
            for (key, value) in rest { append(key, value, to: &line) }
        }
        line.append(0x0A)
        return line
    }

    /// A logger's own fields, ready for its lines: the session fields written out, the others
    /// sorted by name.
    fileprivate struct LoggerFields {
        let metadata: Logger.Metadata
        let session: [UInt8]
        let rest: [(key: String, value: Logger.MetadataValue)]

        init(_ metadata: Logger.Metadata) {
            self.metadata = metadata
            var session: [UInt8] = []
            for key in BerthLogHandler.sessionKeys {
                if let value = metadata[key] { BerthLogHandler.append(key, value, to: &session) }
            }
            self.session = session
            rest = metadata.filter { !BerthLogHandler.sessionKeys.contains($0.key) }.map { ($0.key, $0.value) }
                .sorted { $0.key < $1.key }
        }
    }

    /// Session fields first, in the order an admin reads them; the rest by name.
    fileprivate static let sessionKeys = ["session", "client", "listener", "proto", "tls", "user"]

    fileprivate static func append(_ key: String, _ value: Logger.MetadataValue, to line: inout [UInt8]) {
        line.append(0x20)
        line += key.utf8
        line.append(0x3D)
        switch value {
        case .string(let text): appendQuoted(text, to: &line)
        case .stringConvertible(let convertible): appendQuoted(convertible.description, to: &line)
        default: appendQuoted("\(value)", to: &line)
        }
    }

    /// A value with spaces, quotes, `=` or anything but printable ASCII is quoted and
    /// escaped, so every line splits back into its fields (and log injection cannot
    /// forge one). Checked on bytes: this runs for every field of every line.
    private static func appendQuoted(_ value: String, to line: inout [UInt8]) {
        let safe = !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x3D }
        if safe {
            line += value.utf8
            return
        }
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
        escaped += "\""
        line += escaped.utf8
    }

    private static func timestamp() -> String {
        var stamp: [UInt8] = []
        UTCTime.appendRFC3339(UTCTime.now(), to: &stamp)
        return String(decoding: stamp, as: UTF8.self)
    }

    /// Installs the handler for every logger of the process (once, at start).
    static func bootstrap(level: Logger.Level, format: LogFormat) {
        LoggingSystem.bootstrap { label in
            BerthLogHandler(label: label, format: format, logLevel: level)
        }
    }
}
