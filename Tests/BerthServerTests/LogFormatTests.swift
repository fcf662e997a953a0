import Logging
import Testing

@testable import BerthServer

/// The text log is read by people and by fail2ban: one line per event, session fields
/// first, every field splitting back into `key=value`.
struct LogFormatTests {
    private func line(
        _ message: Logger.Message, level: Logger.Level = .info, metadata: Logger.Metadata = [:], extra: Logger.Metadata? = nil
    ) -> String {
        let bytes = BerthLogHandler.textLine(level: level, message: message, metadata: metadata, extra: extra)
        let text = String(decoding: bytes, as: UTF8.self)
        // the timestamp: 2026-11-26T18:02:03.456Z
        #expect(text.utf8.count > 25 && text.hasSuffix("\n"))
        return String(text.dropFirst(25).dropLast())
    }

    @Test func timestampIsRFC3339UTCWithMilliseconds() throws {
        let text = String(decoding: BerthLogHandler.textLine(level: .info, message: "x", metadata: [:], extra: nil), as: UTF8.self)
        let stamp = Array(text.utf8.prefix(24))
        #expect(stamp.count == 24)
        for (index, byte) in stamp.enumerated() {
            switch index {
            case 4, 7: #expect(byte == UInt8(ascii: "-"))
            case 10: #expect(byte == UInt8(ascii: "T"))
            case 13, 16: #expect(byte == UInt8(ascii: ":"))
            case 19: #expect(byte == UInt8(ascii: "."))
            case 23: #expect(byte == UInt8(ascii: "Z"))
            default: #expect((UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte))
            }
        }
    }

    @Test func sessionFieldsFirstThenTheRestByName() {
        let session: Logger.Metadata = [
            "user": "alice@example.com", "proto": "smtp", "listener": "127.0.0.1:25", "client": "192.0.2.7", "session": "TP4F0001",
            "zone": "z",
        ]
        #expect(
            line("accepted", metadata: session, extra: ["size": .stringConvertible(1307), "from": "a@b.example", "tls": "TLSv1.3"])
                == "info accepted session=TP4F0001 client=192.0.2.7 listener=127.0.0.1:25 proto=smtp tls=TLSv1.3 user=alice@example.com from=a@b.example size=1307 zone=z")
    }

    /// The usual case: the call adds no session field, and the logger's are written as
    /// worked out when they were set.
    @Test func loggerFieldsWithAndWithoutFieldsOfTheCall() {
        let session: Logger.Metadata = ["zone": "z", "client": "192.0.2.7", "session": "TP4F0002", "code": "1"]
        #expect(line("connect", metadata: session) == "info connect session=TP4F0002 client=192.0.2.7 code=1 zone=z")
        #expect(line("connect", metadata: session, extra: [:]) == "info connect session=TP4F0002 client=192.0.2.7 code=1 zone=z")
        #expect(line("reply", metadata: session, extra: ["code": "250", "a": "b"])
            == "info reply session=TP4F0002 client=192.0.2.7 a=b code=250 zone=z")
    }

    @Test func aFieldOfTheCallWinsOverTheLoggers() {
        #expect(line("reply", level: .notice, metadata: ["code": "250", "session": "A"], extra: ["code": "421", "session": "B"])
            == "notice reply session=B code=421")
    }

    /// (value, as written): anything that could split a line or a field is quoted and escaped.
    static let values: [(String, String)] = [
        ("plain", "plain"),
        ("", "\"\""),
        ("two words", "\"two words\""),
        ("a=b", "\"a=b\""),
        ("say \"hi\"", "\"say \\\"hi\\\"\""),
        ("back\\slash", "back\\slash"),
        ("line\nforged=1", "\"line\\nforged=1\""),
        ("cr\r", "\"cr\\r\""),
        ("nul\u{0}bell\u{7}del\u{7F}", "\"nul\\u{0}bell\\u{7}del\\u{7f}\""),
        ("naïve", "\"naïve\""),
    ]

    @Test(arguments: values)
    func valuesAreQuotedWhenTheyCouldSplit(_ value: String, _ written: String) {
        #expect(line("x", extra: ["v": .string(value)]) == "info x v=\(written)")
    }

    @Test func nonStringValuesAreWrittenByTheirDescription() {
        #expect(line("x", extra: ["n": .stringConvertible(42), "ok": .stringConvertible(true)]) == "info x n=42 ok=true")
    }
}
