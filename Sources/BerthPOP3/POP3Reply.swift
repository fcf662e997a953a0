import NIOCore

/// RFC 2449 §8 extended response codes (and RFC 3206's SYS and AUTH), sent in brackets
/// after `-ERR` so a client can tell a locked maildrop from a wrong password.
public enum POP3ResponseCode: String, Sendable, Hashable, CaseIterable {
    /// RFC 2449 §8.1.2: the maildrop is locked by another session.
    case inUse = "IN-USE"
    /// RFC 2449 §8.1.1: logged in too soon after the last login (not used by Berth).
    case loginDelay = "LOGIN-DELAY"
    /// RFC 3206 §4: a temporary server problem; try again later.
    case sysTemp = "SYS/TEMP"
    /// RFC 3206 §4: a permanent problem no retry will fix (a setting of this server).
    case sysPerm = "SYS/PERM"
    /// RFC 3206 §5: the credentials were wrong (ask the user again).
    case auth = "AUTH"
}

/// A POP3 server response (RFC 1939 §3, RFC 2449 §8, RFC 5034 §4).
public enum POP3Reply: Sendable, Hashable, CustomStringConvertible {
    /// `+OK text`
    case ok(String)
    /// `-ERR [CODE] text`
    case err(String, code: POP3ResponseCode? = nil)
    /// `+OK text`, then each line (dot-stuffed), then the terminating `.` line.
    case multiLine(String, [String])
    /// A SASL challenge: `+ base64` (RFC 5034 §4).
    case continuation(String)

    public var isPositive: Bool {
        if case .err = self { return false }
        return true
    }

    /// Writes the reply, CRLF line ends included. Text is 7-bit: anything else, and any
    /// control character, is written "?" (a reply never carries raw client bytes).
    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .ok(let text):
            Self.writeStatus("+OK", text, into: &buffer)
        case .err(let text, let code):
            Self.writeStatus("-ERR", code.map { "[\($0.rawValue)] " + text } ?? text, into: &buffer)
        case .multiLine(let text, let lines):
            Self.writeStatus("+OK", text, into: &buffer)
            for line in lines {
                // RFC 1939 §3: a line starting with the termination octet gets it doubled.
                if line.utf8.first == UInt8(ascii: ".") { buffer.writeInteger(UInt8(ascii: ".")) }
                Self.writeSevenBit(line, into: &buffer)
                buffer.writeStaticString("\r\n")
            }
            buffer.writeStaticString(".\r\n")
        case .continuation(let base64):
            // RFC 5034 §4: "+" SP, even for an empty challenge.
            buffer.writeStaticString("+ ")
            Self.writeSevenBit(base64, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
    }

    public var bytes: [UInt8] {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return Array(buffer.readableBytesView)
    }

    public var description: String { String(decoding: bytes, as: UTF8.self) }

    static func writeStatus(_ status: StaticString, _ text: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(status)
        if !text.isEmpty {
            buffer.writeInteger(UInt8(ascii: " "))
            writeSevenBit(text, into: &buffer)
        }
        buffer.writeStaticString("\r\n")
    }

    static func writeSevenBit(_ text: String, into buffer: inout ByteBuffer) {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            buffer.writeString(text)  // the common case, in one copy
            return
        }
        for byte in text.utf8 {
            buffer.writeInteger(byte >= 0x20 && byte < 0x7F ? byte : UInt8(ascii: "?"))
        }
    }
}
